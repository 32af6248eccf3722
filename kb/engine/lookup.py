"""`build_info`: describe reported builds against the catalog as plain dictionaries (command and API share it)."""

from __future__ import annotations

from datetime import date

from .builds import InvalidBuildError, parse_reported_build
from .catalog import Catalog, Resolution

FIELDS = (
    "input", "build", "product", "level", "update", "kb", "release_date", "exact", "is_supported", "is_latest",
    "notes", "error",
)  # fmt: skip


def build_info(text: str, catalog: Catalog, *, today: date) -> dict:
    """One object per input; `error` says why an input is not a build, and everything else is then null."""
    try:
        parsed = parse_reported_build(text)
    except InvalidBuildError as error:
        return dict.fromkeys(FIELDS) | {"input": text, "exact": False, "is_supported": False, "is_latest": False,
                                        "notes": [], "error": str(error)}  # fmt: skip
    return resolution_info(text, catalog.resolve(parsed, today=today))


def resolution_info(text: str, resolution: Resolution) -> dict:
    entry = resolution.entry
    return {
        "input": text,
        "build": resolution.build.short,
        "product": resolution.product.name if resolution.product else None,
        "level": resolution.level.name if resolution.level else None,
        "update": entry.name if entry else None,
        "kb": entry.kb if entry else None,
        "release_date": entry.release_date.isoformat() if entry and entry.release_date else None,
        "exact": resolution.exact,
        "is_supported": resolution.is_supported,
        "is_latest": resolution.is_latest,
        "notes": list(resolution.notes),
        "error": None,
    }
