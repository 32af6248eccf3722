"""Merge catalog rows from several sources by authority per field; every disagreement is kept as a conflict."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from .builds import Build, product_for_build, service_pack_for_build
from .catalog import AlternateBuild, CatalogEntry, Disagreement

COMPARED_FIELDS = ("build", "release_date", "kb")

# Which kind of source is believed for which field, most trusted first. An update's KB: the build page links
# each row to the support article of that product and build, where the CSV often gives one KB to every product
# of a month. Its build and date: the CSV lists re-releases as rows of their own, where the page gives some
# rollups the build (and date) of their v2. Kinds not listed (bundled notes) never override a value.
BUILD_PAGE, BUILD_CSV = "build_page", "build_csv"
FIELD_AUTHORITY: dict[str, tuple[str, ...]] = {
    "kb": (BUILD_PAGE, BUILD_CSV),
    "build": (BUILD_CSV, BUILD_PAGE),
    "release_date": (BUILD_CSV, BUILD_PAGE),
}
WHY_AUTHORITY = {
    "kb": "the build page's support link for this product and build wins for a KB",
    "build": "the CSV wins for builds: it lists re-releases as rows of their own",
    "release_date": "the CSV wins for release dates, with its builds",
}


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


def merge_rows(
    existing: Iterable[CatalogEntry], rows: Iterable[ImportedRow], *, kinds: Mapping[str, str] | None = None
) -> MergeResult:
    """Fold rows into existing entries by natural identity.

    Per field, a missing value is filled; a source restating its own value replaces it; otherwise the value of the
    source with authority for that field (FIELD_AUTHORITY, by the kinds of the sources) is kept, and the other is
    recorded as a Conflict and a Disagreement on the entry (for builds, also as an alternate build). One exception
    comes before authority: a KB that one source gives to several products of one month, where the other source
    names a separate article per product, is that source's simplification and loses. The result does not depend on
    the order in which sources are merged.
    """
    rows = list(rows)
    kinds = dict(kinds or {})
    result = MergeResult(entries={entry.identity: entry for entry in existing})
    lumped = _LumpedKbs(result.entries.values(), rows)
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
            result.entries[identity] = _with_field_sources(row, row.source)
            result.created.append(identity)
            touched.add(identity)
            continue
        merged, changed, conflicts = _merge_entry(current, row, problem, kinds, lumped)
        result.entries[identity] = merged
        result.conflicts.extend(conflicts)
        if identity in touched:
            continue
        touched.add(identity)
        (result.updated if changed else result.unchanged).append(identity)
    return result


def _with_field_sources(row: ImportedRow, source: str) -> CatalogEntry:
    entry = row.entry
    stated = tuple((name, source) for name in COMPARED_FIELDS if getattr(entry, name) is not None)
    return dataclasses.replace(entry, field_sources=stated, is_month_only_date=row.is_month_only_date)


def _merge_entry(
    current: CatalogEntry, row: ImportedRow, problem: str | None, kinds: Mapping[str, str], lumped: _LumpedKbs
) -> tuple[CatalogEntry, bool, list[Conflict]]:
    incoming = row.entry
    changes: dict[str, object] = {}
    field_sources = dict(current.field_sources)
    disagreements = list(current.disagreements)
    alternates = list(current.alternate_builds)
    conflicts: list[Conflict] = []
    for name in COMPARED_FIELDS:
        kept, other = getattr(current, name), getattr(incoming, name)
        if other is None:
            continue
        kept_source = current.source_of(name)
        if kept == other:
            if kept_source is None or _rank(name, row.source, kinds) > _rank(name, kept_source, kinds):
                field_sources[name] = row.source  # the same value, now from the source with authority
            # This document still disagrees with the other sources of the field: say so on every import.
            conflicts += [
                Conflict(
                    current.identity, current.title, name, str(kept), field_sources[name], d.value, d.source, d.note
                )
                for d in current.disagreements
                if d.field == name and d.source != row.source
            ]
            continue
        if name == "release_date" and _same_month(kept, other):
            if row.is_month_only_date:
                continue  # "December, 2015" agrees with any day of that December
            if current.is_month_only_date:
                changes.update(release_date=other, is_month_only_date=False)  # the day, where only the month was known
                field_sources[name] = row.source
                continue
        if kept is None or (kept_source == row.source and not problem):
            changes[name] = other
            field_sources[name] = row.source
            continue
        wins, note = _incoming_wins(name, current, kept_source or "", row, problem, kinds, lumped)
        if wins:
            changes[name] = other
            field_sources[name] = row.source
            loser = Disagreement(name, str(kept), kept_source or "", note)
            conflicts.append(
                Conflict(
                    current.identity, current.title, name, str(other), row.source, str(kept), kept_source or "", note
                )
            )
            if name == "build":
                alternates = [a for a in alternates if a.build != other] + [
                    AlternateBuild(_as_build(kept), kept_source or "")
                ]
        else:
            loser = Disagreement(name, str(other), row.source, note)
            conflicts.append(
                Conflict(
                    current.identity, current.title, name, str(kept), kept_source or "", str(other), row.source, note
                )
            )
            if name == "build":
                alternates.append(AlternateBuild(_as_build(other), row.source))
        disagreements = [d for d in disagreements if (d.field, d.value) != (name, str(other))] + [loser]
    if incoming.is_recalled and not current.is_recalled:
        changes["is_recalled"] = True
    if row.source not in current.sources:
        changes["sources"] = (*current.sources, row.source)
    value_changed = bool(changes.keys() - {"sources"})
    changes["field_sources"] = tuple(sorted(field_sources.items()))
    changes["disagreements"] = tuple(dict.fromkeys(disagreements))
    changes["alternate_builds"] = tuple(dict.fromkeys(alternates))
    return dataclasses.replace(current, **changes), value_changed, conflicts


def _incoming_wins(
    name: str, current: CatalogEntry, kept_source: str, row: ImportedRow, problem: str | None,
    kinds: Mapping[str, str], lumped: _LumpedKbs,
) -> tuple[bool, str]:  # fmt: skip
    """Whether the incoming value replaces the kept one, and the note that says why one of them is kept."""
    if problem:
        return False, problem
    if name == "kb" and current.label:
        if note := lumped.simplification(current, kept_source, row.source):
            return True, note
        if note := lumped.simplification(current, row.source, kept_source):
            return False, note
    incoming, kept = _rank(name, row.source, kinds), _rank(name, kept_source, kinds)
    if incoming == kept:
        return False, ""
    if min(incoming, kept) == 0:
        return (
            incoming > kept,
            f"{row.source if incoming < kept else kept_source} is not a source of record: it never overrides",
        )
    return incoming > kept, WHY_AUTHORITY[name]


def _rank(name: str, source: str, kinds: Mapping[str, str]) -> int:
    order = FIELD_AUTHORITY[name]
    kind = kinds.get(source)
    return len(order) - order.index(kind) if kind in order else 0


class _LumpedKbs:
    """Which KB each source gives to each product of one security or hotfix update (label and revision)."""

    def __init__(self, entries: Iterable[CatalogEntry], rows: Iterable[ImportedRow]) -> None:
        self._claims: dict[tuple[str, tuple], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for entry in entries:
            if entry.label and entry.kb:
                self._claim(entry.source_of("kb") or "", entry, entry.kb)
            for item in entry.disagreements:
                if item.field == "kb" and entry.label:
                    self._claim(item.source, entry, item.value)
        for row in rows:
            if row.entry.label and row.entry.kb:
                self._claim(row.source, row.entry, row.entry.kb)

    def _claim(self, source: str, entry: CatalogEntry, kb: str) -> None:
        self._claims[(source, (entry.label, entry.revision))][entry.product].add(kb)

    def simplification(self, entry: CatalogEntry, lumper: str, splitter: str) -> str | None:
        """A note when `lumper` gives this entry's KB to another product of the month to which `splitter` gives a
        different article than to this one."""
        month = (entry.label, entry.revision)
        mine, theirs = self._claims.get((lumper, month), {}), self._claims.get((splitter, month), {})
        kb_here = mine.get(entry.product, set())
        split_here = theirs.get(entry.product, set())
        lumped = sorted(
            product
            for product, kbs in mine.items()
            if product != entry.product and kbs & kb_here and theirs.get(product) and not theirs[product] & split_here
        )
        if not lumped or not split_here:
            return None
        products = ", ".join(sorted(product for product, kbs in mine.items() if kbs & kb_here))
        return (
            f"{lumper} gives {', '.join(sorted(kb_here))} to {entry.label} of {products} alike, where {splitter} "
            "names a separate article per product: a simplification"
        )


def _same_month(a: object, b: object) -> bool:
    return isinstance(a, date) and isinstance(b, date) and (a.year, a.month) == (b.year, b.month)


def _as_build(value: object) -> Build:
    assert isinstance(value, Build)
    return value
