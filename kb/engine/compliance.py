"""Compliance verdicts: from a server's facts, the catalog and the rules, what it runs, misses and should install."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from .builds import PRODUCTS, BuildForm, InvalidBuildError, ParsedBuild, parse_reported_build
from .catalog import Catalog, CatalogEntry, Level, Resolution
from .rules import Rules

CURRENT = "current"
UPDATE_AVAILABLE = "update_available"
SECURITY_UPDATE_MISSING = "security_update_missing"
UNSUPPORTED_LEVEL = "unsupported_level"
END_OF_LIFE = "end_of_life"
ROLLUP_UNKNOWN = "rollup_unknown"
UNKNOWN_BUILD = "unknown_build"
LEGACY = "legacy"  # Exchange 2003 or older: shown, never planned
EXCEPTED = "excepted"
STATES = (
    CURRENT, UPDATE_AVAILABLE, SECURITY_UPDATE_MISSING, UNSUPPORTED_LEVEL, END_OF_LIFE, ROLLUP_UNKNOWN, UNKNOWN_BUILD,
    LEGACY, EXCEPTED,
)  # fmt: skip
COMPLIANT_STATES = frozenset({CURRENT, EXCEPTED})


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """What the verdict depends on; equal facts give equal verdicts, so scans compute each distinct one once."""

    build_text: str
    build_source: str = "exsetup"  # "exsetup", "admin_display" or "manual"
    roles: tuple[str, ...] = ()
    dotnet: str | None = None
    prerequisites: tuple[tuple[str, str], ...] = ()  # sorted (fact, value) pairs

    def prerequisite(self, fact: str) -> str | None:
        return dict(self.prerequisites).get(fact)


@dataclass(frozen=True, slots=True)
class UpdateRef:
    title: str
    name: str
    kb: str | None
    build: str
    release_date: date | None
    is_security: bool

    @classmethod
    def of(cls, entry: CatalogEntry) -> UpdateRef:
        return cls(
            entry.title, entry.name or entry.level, entry.kb, entry.build.short, entry.release_date, entry.is_security
        )

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "kb": self.kb, "build": self.build}


@dataclass(frozen=True, slots=True)
class Verdict:
    state: str
    current: Mapping[str, str | None]
    install: UpdateRef | None = None
    supersedes: tuple[UpdateRef, ...] = ()
    security_updates: tuple[UpdateRef, ...] = ()
    missing: tuple[UpdateRef, ...] = ()  # every update the server misses, oldest first
    missing_prerequisites: tuple[str, ...] = ()
    days_behind: int | None = None
    reasons: tuple[str, ...] = ()
    resolution: Resolution | None = field(default=None, compare=False, repr=False)


def facts_parse(facts: ServerFacts) -> ParsedBuild:
    parsed = parse_reported_build(facts.build_text)
    if facts.build_source == "admin_display" and not parsed.form.is_level_only:
        return ParsedBuild(parsed.build, BuildForm.ADMIN_DISPLAY)
    return parsed


def evaluate(facts: ServerFacts, catalog: Catalog, rules: Rules, *, today: date, cache: dict | None = None) -> Verdict:
    """The verdict for one server; never raises for a bad build (that is the unknown_build state).

    The part that depends on the build alone is kept in `cache` (one per scan), so only the prerequisite check
    runs again for servers that share a build but differ in roles or .NET.
    """
    key = (facts.build_text, facts.build_source)
    if cache is not None and key in cache:
        base, target = cache[key]
    else:
        base, target = _evaluate_build(facts, catalog, today)
        if cache is not None:
            cache[key] = (base, target)
    if target is None:
        return base
    prerequisites = missing_prerequisites(facts, catalog, rules, *target)
    return replace(base, missing_prerequisites=tuple(prerequisites)) if prerequisites else base


def _evaluate_build(facts: ServerFacts, catalog: Catalog, today: date) -> tuple[Verdict, tuple[str, str] | None]:
    """The verdict without prerequisites, and the (product, level) whose prerequisites apply, if any."""
    try:
        parsed = facts_parse(facts)
    except InvalidBuildError as error:
        return Verdict(UNKNOWN_BUILD, _current(None, facts.build_text), reasons=(str(error),)), None
    resolution = catalog.resolve(parsed, today=today)
    current = _current(resolution, facts.build_text)
    # Support notes are restated below with the action to take.
    notes = tuple(n for n in resolution.notes if "supported level" not in n and "end of extended support" not in n)
    resolution = replace(resolution, notes=notes)
    if resolution.product is None and resolution.build.major < 8:
        return Verdict(LEGACY, current, reasons=notes, resolution=resolution), None
    if resolution.product is None or resolution.level is None:
        return Verdict(UNKNOWN_BUILD, current, reasons=notes, resolution=resolution), None
    product, level = resolution.product, resolution.level

    # Precedence: what the build is (unknown), then how far behind the level is, then what we cannot see,
    # then the product's end of support, then the updates missing within the level.
    if level not in catalog.support_window(product.key, today):
        return _unsupported_level(catalog, resolution, current, today)
    if not resolution.is_update_known:
        latest = catalog.latest_in_series(product.key, level.name, today)
        reasons = (
            *notes,
            f"the latest update for {level.name} is {_describe(latest)}; install it unless it is already there",
        )
        if catalog.is_end_of_life(product.key, today):
            reasons = (*reasons, _end_of_support_reason(catalog, product.key))
        install = UpdateRef.of(latest) if latest and not latest.is_base else None
        return Verdict(ROLLUP_UNKNOWN, current, install=install, reasons=reasons, resolution=resolution), None
    if catalog.is_end_of_life(product.key, today):
        return _end_of_life(catalog, resolution, current, today), None

    missing = _newer_in_series(catalog, level, resolution, today)
    if not missing:
        reasons = (*notes, f"runs the latest update of {product.name} {level.name}")
        return Verdict(CURRENT, current, days_behind=0, reasons=reasons, resolution=resolution), None
    install = missing[-1]
    superseded = missing[:-1]
    security = [entry for entry in missing if entry.is_security]
    state = SECURITY_UPDATE_MISSING if security else UPDATE_AVAILABLE
    reasons = [*notes, _install_reason(install, superseded)]
    if security:
        reasons.append("security updates missing: " + ", ".join(_describe(e) for e in security))
    verdict = Verdict(
        state, current, UpdateRef.of(install), tuple(map(UpdateRef.of, superseded)), tuple(map(UpdateRef.of, security)),
        tuple(map(UpdateRef.of, missing)), (), _days_behind(missing, today), tuple(reasons), resolution,
    )  # fmt: skip
    return verdict, (product.key, level.name)


def _end_of_life(catalog: Catalog, resolution: Resolution, current, today) -> Verdict:
    product, level = resolution.product, resolution.level
    reasons = [*resolution.notes, _end_of_support_reason(catalog, product.key)]
    missing = _newer_in_series(catalog, level, resolution, today) if resolution.is_update_known else []
    if missing:
        reasons.append("until then: " + _install_reason(missing[-1], missing[:-1]))
    return Verdict(
        END_OF_LIFE, current,
        install=UpdateRef.of(missing[-1]) if missing else None,
        supersedes=tuple(map(UpdateRef.of, missing[:-1])),
        security_updates=tuple(UpdateRef.of(e) for e in missing if e.is_security),
        missing=tuple(map(UpdateRef.of, missing)),
        days_behind=_days_behind(missing, today) if missing else None,
        reasons=tuple(reasons), resolution=resolution,
    )  # fmt: skip


def _unsupported_level(catalog: Catalog, resolution: Resolution, current, today) -> tuple[Verdict, tuple | None]:
    product, level = resolution.product, resolution.level
    target = catalog.latest_level(product.key, today)
    supported = ", ".join(lvl.name for lvl in catalog.support_window(product.key, today)) or "none"
    reasons = [*resolution.notes]
    if target is None or target.base_build <= level.base_build:
        reasons.append(f"{level.name} is not supported and the catalog has no newer level")
        return Verdict(UNSUPPORTED_LEVEL, current, reasons=tuple(reasons), resolution=resolution), None
    newer_levels = [
        lvl for lvl in catalog.levels(product.key) if level.base_build < lvl.base_build <= target.base_build
    ]
    in_series = _newer_in_series(catalog, level, resolution, today) if resolution.is_update_known else []
    base = catalog.series(product.key, target.name)[0]
    latest = catalog.latest_in_series(product.key, target.name, today)
    skipped = in_series + [catalog.series(p.product, p.name)[0] for p in newer_levels if p != target]
    missing = sorted([*in_series, *(catalog.series(p.product, p.name)[0] for p in newer_levels)], key=_released)
    reasons.append(
        f"{level.name} is older than the newest supported levels ({supported}); install {target.name}"
        + (f" ({base.kb})" if base.kb else "")
        + (f", then {latest.name}" if latest and not latest.is_base else "")
    )
    if skipped:
        reasons.append(f"{target.name} is cumulative: it includes " + ", ".join(_short(e) for e in skipped))
    security = [e for e in missing if e.is_security]
    verdict = Verdict(
        UNSUPPORTED_LEVEL, current, UpdateRef.of(base), tuple(map(UpdateRef.of, skipped)),
        tuple(map(UpdateRef.of, security)), tuple(map(UpdateRef.of, missing)), (),
        _days_behind(missing, today), tuple(reasons), resolution,
    )  # fmt: skip
    return verdict, (product.key, target.name)


def _newer_in_series(catalog: Catalog, level: Level, resolution: Resolution, today: date) -> list[CatalogEntry]:
    """Installable updates of the server's level newer than what it runs, oldest first."""
    floor = resolution.floor
    return [
        entry
        for entry in catalog.installable(level.product, level.name, today)
        if floor is None or entry.build > floor.build
    ]


def missing_prerequisites(
    facts: ServerFacts, catalog: Catalog, rules: Rules, product: str, target_level: str
) -> list[str]:
    """Prerequisites the target level needs that the server's facts do not show."""
    missing = []
    dotnet = rules.dotnet.get(product)
    if dotnet and target_level in dotnet.levels:
        allowed = dotnet.levels[target_level]
        if facts.dotnet not in allowed:
            has = f"server has {facts.dotnet}" if facts.dotnet else ".NET version not reported"
            preferred = dotnet.preferred.get(target_level) or allowed[-1]
            missing.append(f".NET Framework {preferred} ({target_level} supports {', '.join(allowed)}; {has})")
    order = [lvl.name for lvl in catalog.levels(product)]
    for rule in rules.prerequisites:
        if product not in rule.products:
            continue
        if rule.roles and not set(rule.roles) & set(facts.roles):
            continue
        needs_level = rule.levels_from and rule.levels_from in order and target_level in order
        if needs_level and order.index(target_level) < order.index(rule.levels_from):
            continue
        value = facts.prerequisite(rule.fact)
        if value and (rule.value == "any" or value.strip().lower() == rule.value.strip().lower()):
            continue
        missing.append(rule.name + (f" ({rule.kb})" if rule.kb else ""))
    return missing


def has_fix(resolution: Resolution | None, carriers: Iterable[CatalogEntry], catalog: Catalog) -> bool | None:
    """Whether a server has a fix: it runs a carrier's series at or above it, or a later level released after it.

    None when it cannot be told (unknown build, or a rollup level AdminDisplayVersion does not show).
    """
    if resolution is None or resolution.level is None or resolution.product is None:
        return None
    level = resolution.level
    unknown = False
    for carrier in carriers:
        if carrier.product != level.product:
            continue
        if carrier.level == level.name:
            if not resolution.is_update_known:
                unknown = unknown or (resolution.floor is None or resolution.floor.build < carrier.build)
                if resolution.floor is not None and resolution.floor.build >= carrier.build:
                    return True
                continue
            if resolution.floor is not None and resolution.floor.build >= carrier.build:
                return True
            continue
        carrier_level = catalog.level(carrier.product, carrier.level)
        if carrier_level is None or level.base_build <= carrier_level.base_build:
            continue
        if carrier.release_date is None or level.release_date is None or level.release_date >= carrier.release_date:
            return True
    return None if unknown else False


def _end_of_support_reason(catalog: Catalog, product: str) -> str:
    support = catalog.support.get(product)
    ended = support.end_of_extended_support.isoformat() if support and support.end_of_extended_support else "?"
    path = (
        "upgrade in place to Exchange Server SE from CU14 or CU15, or move to new servers"
        if product == "2019"
        else "no in-place upgrade to a newer version: install new servers, move the workloads, decommission"
    )
    return f"{PRODUCTS[product].name} reached the end of extended support on {ended}; {path}"


def _current(resolution: Resolution | None, text: str) -> dict:
    if resolution is None:
        return {"build": text, "product": None, "level": None, "update": None, "kb": None}
    entry = resolution.entry
    return {
        "build": resolution.build.short,
        "product": resolution.product.name if resolution.product else None,
        "level": resolution.level.name if resolution.level else None,
        "update": entry.name if entry else None,
        "kb": entry.kb if entry else None,
    }


def _install_reason(install: CatalogEntry, superseded: list[CatalogEntry]) -> str:
    text = f"install {_describe(install)}"
    updates = [e for e in superseded if not e.is_base]
    if updates:
        text += f"; it includes {_short(updates[0])}" + (f" to {_short(updates[-1])}" if len(updates) > 1 else "")
    return text


def _describe(entry: CatalogEntry | None) -> str:
    if entry is None:
        return "unknown"
    return f"{entry.name or entry.level}" + (f" ({entry.kb})" if entry.kb else "") + f", build {entry.build}"


def _short(entry: CatalogEntry) -> str:
    return entry.name or entry.level


def _released(entry: CatalogEntry) -> tuple:
    return (entry.release_date or date.max, entry.build)


def _days_behind(missing: list[CatalogEntry], today: date) -> int | None:
    dates = [entry.release_date for entry in missing if entry.release_date]
    return max(0, (today - min(dates)).days) if dates else None
