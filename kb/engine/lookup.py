"""`build_info`: describe reported builds against the catalog as plain dictionaries (command and API share it)."""

from __future__ import annotations

from datetime import date

from .builds import InvalidBuildError, parse_reported_build
from .catalog import Catalog, Resolution

FIELDS = (
    "input", "build", "form", "product", "level", "update", "kb", "release_date", "exact", "is_supported", "is_latest",
    "sources", "notes", "catalog_as_of", "error",
)  # fmt: skip
FIELD_LABELS = {"build": "build", "kb": "KB", "release_date": "release date"}


def build_info(text: str, catalog: Catalog, *, today: date) -> dict:
    """One object per input; `error` says why an input is not a build (or cannot be one), and everything that
    describes the build is then null."""
    try:
        parsed = parse_reported_build(text)
    except InvalidBuildError as error:
        return _error(text, catalog, str(error))
    resolution = catalog.resolve(parsed, today=today)
    if resolution.error:
        return _error(text, catalog, f"{text!r} is not an Exchange build: {resolution.error}")
    return resolution_info(text, resolution, catalog, today=today)


def _error(text: str, catalog: Catalog, message: str) -> dict:
    return dict.fromkeys(FIELDS) | {
        "input": text, "exact": False, "is_supported": False, "is_latest": False, "sources": {}, "notes": [],
        "catalog_as_of": _as_of(catalog), "error": message,
    }  # fmt: skip


def resolution_info(text: str, resolution: Resolution, catalog: Catalog, *, today: date) -> dict:
    entry = resolution.entry
    freshness = catalog.freshness_notes(today)  # said last: it concerns the catalog, not this build
    notes = [note for note in resolution.notes if note not in freshness]
    sources: dict[str, str] = {}
    if entry is not None:
        sources = {name: source for name in FIELD_LABELS if (source := entry.source_of(name))}
        # Build disagreements are already in the notes (the resolution matched or named them).
        notes += [
            f"{FIELD_LABELS[d.field]}: {d.source} says {d.value}" + (f" ({d.note})" if d.note else "")
            for d in entry.disagreements
            if d.field != "build"
        ]
    notes += freshness
    return {
        "input": text,
        "build": resolution.build.short,
        "form": resolution.form.value,
        "product": resolution.product.name if resolution.product else None,
        "level": resolution.level.name if resolution.level else None,
        "update": entry.name if entry else None,
        "kb": entry.kb if entry else None,
        "release_date": entry.release_date.isoformat() if entry and entry.release_date else None,
        "exact": resolution.exact,
        "is_supported": resolution.is_supported,
        "is_latest": resolution.is_latest,
        "sources": sources,
        "notes": notes,
        "catalog_as_of": _as_of(catalog),
        "error": None,
    }


def _as_of(catalog: Catalog) -> str | None:
    return catalog.as_of.isoformat() if catalog.as_of else None
