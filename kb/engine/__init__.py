"""Pure domain logic for Exchange builds, the catalog, compliance and planning (no Django imports)."""
