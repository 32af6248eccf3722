"""The update catalog as plain data: entries, levels, series semantics and resolving a build."""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from .builds import (
    AD_SERIAL_OFFSET,
    PRODUCTS,
    Build,
    BuildForm,
    ParsedBuild,
    ProductInfo,
    parse_build,
    product_for_build,
    service_pack_for_build,
)


class Kind(StrEnum):
    PREVIEW = "PREVIEW"
    RTM = "RTM"
    SP = "SP"
    CU = "CU"
    RU = "RU"
    SU = "SU"
    HU = "HU"


BASE_KINDS = frozenset({Kind.PREVIEW, Kind.RTM, Kind.SP, Kind.CU})


def update_name(kind: Kind, *, number: int | None = None, label: str | None = None, revision: int = 1) -> str | None:
    """Display name of an update within its level: "Update Rollup 6", "Mar24SU v2"; None for a base level."""
    if kind in BASE_KINDS:
        return None
    base = f"Update Rollup {number}" if kind is Kind.RU else label
    return f"{base} v{revision}" if revision > 1 else base


@dataclass(frozen=True, slots=True)
class AlternateBuild:
    """A build another source gives for the same update (a recorded conflict)."""

    build: Build
    source: str


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A value another source gives for one field of an update, and why the catalog keeps its own."""

    field: str
    value: str
    source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One catalog row: a base level (RTM/SP/CU) or an update (RU/SU/HU) with its build."""

    product: str
    level: str
    kind: Kind
    build: Build
    number: int | None = None  # rollup number (RU)
    label: str | None = None  # SU/HU label, e.g. "Mar24SU"
    revision: int = 1  # re-release: 2 for "v2"
    kb: str | None = None
    release_date: date | None = None
    is_month_only_date: bool = False  # "December, 2015": the day is not known
    is_security: bool = False
    is_recalled: bool = False
    sources: tuple[str, ...] = ()
    alternate_builds: tuple[AlternateBuild, ...] = ()
    field_sources: tuple[tuple[str, str], ...] = ()  # (field, source) the kept build, kb and release_date come from
    disagreements: tuple[Disagreement, ...] = ()

    def source_of(self, name: str) -> str | None:
        """The source the kept value of a field comes from (the first source for rows stored before this was kept)."""
        found = dict(self.field_sources).get(name)
        if found is None and getattr(self, name) is not None and self.sources:
            return self.sources[0]
        return found

    @property
    def is_base(self) -> bool:
        return self.kind in BASE_KINDS

    @property
    def name(self) -> str | None:
        return update_name(self.kind, number=self.number, label=self.label, revision=self.revision)

    @property
    def identity(self) -> tuple:
        """Natural key: the same update from two sources has the same identity."""
        return (
            self.product,
            self.level,
            self.kind.value,
            self.number if self.kind is Kind.RU else self.label,
            self.revision,
        )

    @property
    def title(self) -> str:
        product = PRODUCTS[self.product].name
        return f"{product} {self.level}" + (f" {self.name}" if self.name else "")


@dataclass(frozen=True, slots=True)
class Level:
    """A servicing level (RTM, SP, CU) of a product, with its base build."""

    product: str
    name: str
    kind: Kind
    base_build: Build
    release_date: date | None
    kb: str | None


@dataclass(frozen=True, slots=True)
class ProductSupport:
    """Support facts for a product, from the rules data (Microsoft's lifecycle and N/N-1 policy)."""

    end_of_extended_support: date | None
    supported_level_count: int  # 2 for N and N-1 CUs; 1 for the latest service pack


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a reported build means against the catalog."""

    build: Build
    form: BuildForm
    product: ProductInfo | None
    level: Level | None
    entry: CatalogEntry | None  # the catalog row when the update is known; None for unlisted or unknown
    floor: CatalogEntry | None  # newest row of the same series at or below the build (what it at least has)
    exact: bool
    is_update_known: bool
    is_supported: bool
    is_latest: bool | None  # None: the build is newer than every row of the catalog, which cannot tell
    notes: tuple[str, ...] = field(default=())
    error: str | None = None  # the build cannot exist (far beyond every known build of its version)

    @property
    def update_name(self) -> str | None:
        return self.entry.name if self.entry else None

    @property
    def is_newer_than_catalog(self) -> bool:
        return self.is_latest is None and self.error is None and self.product is not None


# How far past the newest known build number of a major.minor a build may be and still be a release the catalog
# does not know yet. Exchange build numbers grow by at most a few hundred a year (2016 went from 225 to 2507 in
# ten years), so 2000 is years of releases; anything further is a typo, a misread AD serialNumber or invented.
FAR_BEYOND = 2000
# How old the catalog may be before verdicts warn that updates released since are missing.
STALE_AFTER_DAYS = 45


class Catalog:
    """An immutable, indexed view over catalog entries; every lookup is in memory."""

    def __init__(
        self,
        entries: Iterable[CatalogEntry],
        support: Mapping[str, ProductSupport] | None = None,
        *,
        as_of: date | None = None,
    ) -> None:
        self.entries: tuple[CatalogEntry, ...] = tuple(sorted(entries, key=lambda e: (e.build, e.revision)))
        self.support = dict(support or {})
        self.as_of = as_of  # the date of the newest build-number source: what the catalog can know about
        self._newest_by_version: dict[tuple[int, int], Build] = {}
        self._newest_by_product: dict[str, Build] = {}
        self._freshness_cache: dict[date, tuple[str, ...]] = {}
        self._by_build: dict[Build, list[CatalogEntry]] = defaultdict(list)
        self._by_alternate: dict[Build, list[CatalogEntry]] = defaultdict(list)
        self._series: dict[tuple[str, str], list[CatalogEntry]] = defaultdict(list)
        levels: dict[str, list[Level]] = defaultdict(list)
        for entry in self.entries:
            self._by_build[entry.build].append(entry)
            # Entries are in build order: the last one seen is the newest.
            self._newest_by_version[(entry.build.major, entry.build.minor)] = entry.build
            self._newest_by_product[entry.product] = entry.build
            for alternate in entry.alternate_builds:
                self._by_alternate[alternate.build].append(entry)
            self._series[(entry.product, entry.level)].append(entry)
            if entry.is_base:
                levels[entry.product].append(
                    Level(entry.product, entry.level, entry.kind, entry.build, entry.release_date, entry.kb)
                )
        self._levels = {product: sorted(items, key=lambda lvl: lvl.base_build) for product, items in levels.items()}
        self._level_by_name = {(lvl.product, lvl.name): lvl for items in self._levels.values() for lvl in items}
        self._series_builds = {key: [e.build for e in items] for key, items in self._series.items()}
        self._newest_cache: dict[tuple[str, date], CatalogEntry | None] = {}
        self._supported_cache: dict[tuple[str, date], list[Level]] = {}

    # -- lookups -----------------------------------------------------------------------------------
    def levels(self, product: str) -> list[Level]:
        return list(self._levels.get(product, ()))

    def level(self, product: str, name: str) -> Level | None:
        return self._level_by_name.get((product, name))

    def series(self, product: str, level: str) -> list[CatalogEntry]:
        """Entries of one level in build order: the base first, then its RUs or SUs/HUs."""
        return list(self._series.get((product, level), ()))

    def installable(self, product: str, level: str, today: date | None = None) -> list[CatalogEntry]:
        """Entries of a level one can install (not recalled; released by `today` when given)."""
        return [
            e
            for e in self._series.get((product, level), ())
            if not e.is_recalled and (today is None or e.release_date is None or e.release_date <= today)
        ]

    def latest_in_series(self, product: str, level: str, today: date | None = None) -> CatalogEntry | None:
        items = self.installable(product, level, today)
        return items[-1] if items else None

    def latest_level(self, product: str, today: date | None = None) -> Level | None:
        levels = [
            lvl
            for lvl in self._levels.get(product, ())
            if lvl.kind is not Kind.PREVIEW and (today is None or lvl.release_date is None or lvl.release_date <= today)
        ]
        return levels[-1] if levels else None

    def find(self, *, product: str, level: str, name: str | None) -> CatalogEntry | None:
        for entry in self._series.get((product, level), ()):
            if entry.name == name:
                return entry
        return None

    def by_kb(self, kb: str) -> list[CatalogEntry]:
        kb = normalize_kb(kb)
        return [e for e in self.entries if e.kb == kb]

    def level_for(self, build: Build) -> Level | None:
        """The level a build belongs to: the SP named by its minor version, or the CU whose base it is at or above."""
        product = product_for_build(build)
        if product is None:
            return None
        if not product.is_cumulative:
            return self.level(product.key, service_pack_for_build(build) or "")
        levels = self._levels.get(product.key, [])
        same_build = [lvl for lvl in levels if lvl.base_build.build == build.build]
        if same_build:
            at_or_below = [lvl for lvl in same_build if lvl.base_build <= build]
            return at_or_below[-1] if at_or_below else same_build[0]
        below = [lvl for lvl in levels if lvl.base_build <= build]
        return below[-1] if below else None

    def floor_in_series(self, level: Level, build: Build) -> CatalogEntry | None:
        key = (level.product, level.name)
        index = bisect.bisect_right(self._series_builds.get(key, []), build)
        return self._series[key][index - 1] if index else None

    # -- support -----------------------------------------------------------------------------------
    def supported_levels(self, product: str, today: date) -> list[Level]:
        key = (product, today)
        if key not in self._supported_cache:
            self._supported_cache[key] = self._compute_supported_levels(product, today)
        return self._supported_cache[key]

    def _compute_supported_levels(self, product: str, today: date) -> list[Level]:
        if self.is_end_of_life(product, today):
            return []
        return self.support_window(product, today)

    def support_window(self, product: str, today: date) -> list[Level]:
        """The N newest levels as of today, or as of the end of extended support once it has passed."""
        facts = self.support.get(product)
        if facts is None:
            return []
        if facts.end_of_extended_support and today > facts.end_of_extended_support:
            today = facts.end_of_extended_support
        released = [
            lvl
            for lvl in self._levels.get(product, ())
            if lvl.kind is not Kind.PREVIEW and (lvl.release_date is None or lvl.release_date <= today)
        ]
        return released[-facts.supported_level_count :] if facts.supported_level_count else []

    def is_level_supported(self, level: Level, today: date) -> bool:
        return level in self.supported_levels(level.product, today)

    def is_end_of_life(self, product: str, today: date) -> bool:
        facts = self.support.get(product)
        return bool(facts and facts.end_of_extended_support and today > facts.end_of_extended_support)

    def newest_entry(self, product: str, today: date) -> CatalogEntry | None:
        """The newest installable build of a product released by `today`."""
        key = (product, today)
        if key not in self._newest_cache:
            candidates = [
                e
                for e in self.entries
                if e.product == product and not e.is_recalled and e.kind is not Kind.PREVIEW
                and (e.release_date is None or e.release_date <= today)
            ]  # fmt: skip
            self._newest_cache[key] = max(candidates, key=lambda e: e.build) if candidates else None
        return self._newest_cache[key]

    # -- resolution --------------------------------------------------------------------------------
    def resolve(self, reported: ParsedBuild | Build, *, today: date) -> Resolution:
        """What a build is; the catalog's age, when it is worth a warning, is the last note of every build with a
        product."""
        parsed = reported if isinstance(reported, ParsedBuild) else ParsedBuild(reported, BuildForm.SHORT)
        build = parsed.build
        product = product_for_build(build)
        if product is None:
            note = (
                "legacy Exchange (2003 or older): shown, never planned; no update of it is tracked (move its "
                "mailboxes to a supported version and decommission it)"
                if build.major < 8
                else f"{build.major}.{build.minor} is not a known Exchange version"
            )
            return Resolution(build, parsed.form, None, None, None, None, False, False, False, False, (note,))
        if error := self._impossible(build):
            return Resolution(build, parsed.form, None, None, None, None, False, False, False, False, (error,), error)
        notes: list[str] = [self._serial_note(build)] if parsed.form is BuildForm.AD_SERIAL_NUMBER else []
        tail = self.freshness_notes(today)
        level = self.level_for(build)
        if level is None:
            notes.append(f"older than any {product.name} level in the catalog")
            return Resolution(
                build, parsed.form, product, None, None, None, False, False, False, False, (*notes, *tail)
            )
        if self._is_newer_level(product, level, build):
            notes.append(
                f"newer than the catalog: no {product.name} level with build number {build.build} is listed (newest "
                f"{level.name} {level.base_build}{self._as_of_text()}); refresh the catalog"
            )
            return Resolution(build, parsed.form, product, None, None, None, False, False, False, None, (*notes, *tail))

        floor = self.floor_in_series(level, build)
        is_supported = self.is_level_supported(level, today)
        newest = self.newest_entry(product.key, today)

        if parsed.form.is_level_only:
            base = self.series(level.product, level.name)[0]
            shown = "AdminDisplayVersion" if parsed.form is BuildForm.ADMIN_DISPLAY else "the AD serialNumber"
            if product.is_cumulative:
                notes.append(
                    f"security update level unknown: {shown} shows the CU only; report the ExSetup.exe version"
                )
            else:
                notes.append(
                    f"rollup level unknown: {shown} shows the service pack only; report the ExSetup.exe version"
                )
            return Resolution(
                build, parsed.form, product, level, None, base, False, False, is_supported, False, (*notes, *tail)
            )

        entry, exact = self._exact_entry(product.key, build, notes)
        if entry is not None and (entry.product, entry.level) != (level.product, level.name):
            # Matched through a conflicting source's build: the row's own level is the truth to report.
            level = self.level(entry.product, entry.level) or level
            is_supported = self.is_level_supported(level, today)
        is_latest: bool | None = newest is not None and build >= newest.build
        if entry is None:
            newest_listed = self._series[(level.product, level.name)][-1]
            if floor is newest_listed and build > newest_listed.build:
                notes.append(
                    f"newer than the catalog: above {newest_listed.name or newest_listed.level} {newest_listed.build}, "
                    f"the newest {product.name} {level.name} build it lists{self._as_of_text()}"
                )
                if build > self._newest_by_product[product.key]:
                    is_latest = None
            else:
                nearest = f"; nearest listed below: {floor.name or floor.level} {floor.build}" if floor else ""
                notes.append(f"unlisted build of {product.name} {level.name}{nearest}")
        if entry is not None and entry.is_recalled:
            notes.append(f"{entry.name} was recalled; install its re-release")
        if not is_supported:
            if self.is_end_of_life(product.key, today):
                notes.append(f"{product.name} is past the end of extended support")
            else:
                notes.append(f"{level.name} is not a supported level (Microsoft supports the newest levels only)")
        return Resolution(
            build,
            parsed.form,
            product,
            level,
            entry,
            entry or floor,
            exact,
            True,
            is_supported,
            is_latest,
            (*notes, *tail),
        )

    def freshness_notes(self, today: date) -> tuple[str, ...]:
        """A warning when the catalog is older than STALE_AFTER_DAYS: updates released since are missing from it."""
        if today not in self._freshness_cache:
            days = (today - self.as_of).days if self.as_of else 0
            self._freshness_cache[today] = (
                (
                    f"the catalog is {days} days old (as of {self.as_of.isoformat()}): updates released since are "
                    "not in it; refresh it (catalog_import)",
                )
                if self.as_of and days > STALE_AFTER_DAYS
                else ()
            )
        return self._freshness_cache[today]

    def _as_of_text(self) -> str:
        return f"; catalog as of {self.as_of.isoformat()}" if self.as_of else ""

    def _impossible(self, build: Build) -> str | None:
        """Why a build cannot exist: its build number is far beyond every known build of its major.minor."""
        newest = self._newest_by_version.get((build.major, build.minor))
        if newest is None or build.build <= newest.build + FAR_BEYOND:
            return None
        reason = (
            f"build number {build.build} is far beyond every known {build.major}.{build.minor} build (newest "
            f"{newest}{self._as_of_text()}): no such Exchange build"
        )
        serial = build.build - AD_SERIAL_OFFSET
        if 0 <= serial <= newest.build + FAR_BEYOND:
            reason += (
                f"; an AD serialNumber 'Version {build.major}.{build.minor} (Build {build.build}.{build.revision})' is "
                f"{build.major}.{build.minor}.{serial}.{build.revision}"
            )
        return reason

    def _is_newer_level(self, product: ProductInfo, level: Level, build: Build) -> bool:
        """A CU product's build whose build number is above every level's: a CU the catalog does not list yet."""
        if not product.is_cumulative or build.build == level.base_build.build:
            return False
        return build.build > self._levels[product.key][-1].base_build.build  # levels are in build order

    @staticmethod
    def _serial_note(build: Build) -> str:
        return (
            f"read as the Active Directory serialNumber form: Build {build.build + AD_SERIAL_OFFSET}.{build.revision} "
            f"is {build} (the directory adds {AD_SERIAL_OFFSET} to the build number)"
        )

    def _exact_entry(self, product: str, build: Build, notes: list[str]) -> tuple[CatalogEntry | None, bool]:
        primary = [e for e in self._by_build.get(build, ()) if e.product == product]
        if primary:
            entry = max(primary, key=lambda e: e.revision)
            for other in self._by_alternate.get(build, ()):
                if other is not entry:
                    sources = ", ".join(a.source for a in other.alternate_builds if a.build == build)
                    notes.append(f"conflict: {sources} lists {build} as {other.title} (catalog keeps {other.build})")
            return entry, True
        alternates = [e for e in self._by_alternate.get(build, ()) if e.product == product]
        if alternates:
            entry = alternates[0]
            sources = ", ".join(a.source for a in entry.alternate_builds if a.build == build)
            notes.append(f"conflict: {build} is listed by {sources}; the catalog keeps {entry.build} for {entry.title}")
            return entry, True
        return None, False


_KB = re.compile(r"(?:KB)?\s*(\d{6,8})", re.IGNORECASE | re.ASCII)


class InvalidKBError(ValueError):
    def __init__(self, text: object) -> None:
        super().__init__(f"{text!r} is not a KB number (expected KB followed by 6 to 8 digits)")


def normalize_kb(value: object) -> str:
    """ "kb2608656", "2608656", "KB 2608656" → "KB2608656"; raises InvalidKBError otherwise."""
    match = _KB.fullmatch(str(value).strip())
    if not match:
        raise InvalidKBError(value)
    return f"KB{match.group(1)}"


def entry_to_dict(entry: CatalogEntry) -> dict:
    """The snapshot's JSON form of an entry."""
    return {
        "product": entry.product,
        "level": entry.level,
        "kind": entry.kind.value,
        "build": entry.build.short,
        "number": entry.number,
        "label": entry.label,
        "revision": entry.revision,
        "kb": entry.kb,
        "release_date": entry.release_date.isoformat() if entry.release_date else None,
        "is_month_only_date": entry.is_month_only_date,
        "is_security": entry.is_security,
        "is_recalled": entry.is_recalled,
        "sources": list(entry.sources),
        "alternate_builds": [{"build": a.build.short, "source": a.source} for a in entry.alternate_builds],
        "field_sources": dict(entry.field_sources),
        "disagreements": [disagreement_to_dict(d) for d in entry.disagreements],
    }


def disagreement_to_dict(item: Disagreement) -> dict:
    return {"field": item.field, "value": item.value, "source": item.source, "note": item.note}


def disagreement_from_dict(item: dict) -> Disagreement:
    return Disagreement(item["field"], item["value"], item["source"], item.get("note", ""))


def entry_from_dict(item: dict) -> CatalogEntry:
    return CatalogEntry(
        product=item["product"],
        level=item["level"],
        kind=Kind(item["kind"]),
        build=parse_build(item["build"]),
        number=item["number"],
        label=item["label"],
        revision=item["revision"],
        kb=item["kb"],
        release_date=date.fromisoformat(item["release_date"]) if item["release_date"] else None,
        is_month_only_date=item.get("is_month_only_date", False),
        is_security=item["is_security"],
        is_recalled=item["is_recalled"],
        sources=tuple(item["sources"]),
        alternate_builds=tuple(AlternateBuild(parse_build(a["build"]), a["source"]) for a in item["alternate_builds"]),
        field_sources=tuple(item.get("field_sources", {}).items()),
        disagreements=tuple(disagreement_from_dict(d) for d in item.get("disagreements", ())),
    )
