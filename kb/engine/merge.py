"""Merge catalog rows from several sources without silent overwrites: disagreements become conflicts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from .builds import Build, product_for_build, service_pack_for_build
from .catalog import AlternateBuild, CatalogEntry

COMPARED_FIELDS = ("build", "release_date", "kb")


@dataclass(frozen=True, slots=True)
class ImportedRow:
    """One row as a source document states it; `entry.sources` is the one source it came from."""

    entry: CatalogEntry
    source: str
    line: int | None = None
    raw_name: str = ""
    is_month_only_date: bool = False  # "December, 2015": only year and month are known

    def inconsistency(self) -> str | None:
        """A build that contradicts the row's own name (e.g. an SP2 rollup listed with an SP3 build)."""
        entry = self.entry
        product = product_for_build(entry.build)
        if product is None or product.key != entry.product:
            return f"build {entry.build} is not an {entry.product} build"
        service_pack = service_pack_for_build(entry.build)
        if service_pack is not None and service_pack != entry.level:
            return f"build {entry.build} is a {service_pack} build but the row names {entry.level}"
        return None


@dataclass(frozen=True, slots=True)
class Conflict:
    identity: tuple
    title: str
    field: str
    kept_value: str
    kept_source: str
    other_value: str
    other_source: str
    note: str = ""


@dataclass(slots=True)
class MergeResult:
    entries: dict[tuple, CatalogEntry]
    created: list[tuple] = field(default_factory=list)
    updated: list[tuple] = field(default_factory=list)
    unchanged: list[tuple] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "conflicts": len(self.conflicts),
        }


def merge_rows(existing: Iterable[CatalogEntry], rows: Iterable[ImportedRow]) -> MergeResult:
    """Fold rows into existing entries by natural identity.

    A value is filled when missing, replaced only when the same source restates it, and otherwise kept
    with the other source's value recorded as a Conflict (and, for builds, as an alternate build).
    """
    result = MergeResult(entries={entry.identity: entry for entry in existing})
    touched: set[tuple] = set()
    for row in rows:
        identity = row.entry.identity
        current = result.entries.get(identity)
        problem = row.inconsistency()
        if current is None:
            if problem:
                result.conflicts.append(
                    Conflict(identity, row.entry.title, "build", "", "", str(row.entry.build), row.source, problem)
                )
                continue
            result.entries[identity] = row.entry
            result.created.append(identity)
            touched.add(identity)
            continue
        merged, changed, conflicts = _merge_entry(current, row, problem)
        result.entries[identity] = merged
        result.conflicts.extend(conflicts)
        if identity in touched:
            continue
        touched.add(identity)
        (result.updated if changed else result.unchanged).append(identity)
    return result


def _merge_entry(
    current: CatalogEntry, row: ImportedRow, problem: str | None
) -> tuple[CatalogEntry, bool, list[Conflict]]:
    incoming = row.entry
    is_own_source = set(current.sources) <= {row.source}
    changes: dict[str, object] = {}
    conflicts: list[Conflict] = []
    for name in COMPARED_FIELDS:
        kept, other = getattr(current, name), getattr(incoming, name)
        if other is None or kept == other:
            continue
        if name == "release_date" and row.is_month_only_date and _same_month(kept, other):
            continue
        if kept is None or (is_own_source and not problem):
            changes[name] = other
            continue
        conflicts.append(
            Conflict(
                current.identity,
                current.title,
                name,
                str(kept),
                ", ".join(current.sources),
                str(other),
                row.source,
                problem or "",
            )
        )
        if name == "build":
            alternates = (*current.alternate_builds, AlternateBuild(_as_build(other), row.source))
            changes["alternate_builds"] = tuple(dict.fromkeys(alternates))
    if incoming.is_recalled and not current.is_recalled:
        changes["is_recalled"] = True
    if row.source not in current.sources:
        changes["sources"] = (*current.sources, row.source)
    value_changed = any(key not in {"sources", "alternate_builds"} for key in changes)
    return dataclasses.replace(current, **changes), value_changed, conflicts


def _same_month(a: object, b: object) -> bool:
    return isinstance(a, date) and isinstance(b, date) and (a.year, a.month) == (b.year, b.month)


def _as_build(value: object) -> Build:
    assert isinstance(value, Build)
    return value
