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
    esu_until: date | None = None  # the organisation's Extended Security Update enrolment ends (None: not enrolled)

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
    is_esu_only: bool = False

    @classmethod
    def of(cls, entry: CatalogEntry, rules: Rules | None = None) -> UpdateRef:
        return cls(
            entry.title, entry.name or entry.level, entry.kb, entry.build.short, entry.release_date, entry.is_security,
            bool(rules and is_esu_only(entry, rules)),
        )  # fmt: skip

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "kb": self.kb,
            "build": self.build,
            "esu_only": self.is_esu_only,
        }


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
    # Separate facts beside the state: whether the level is supported today, and whether the server runs the newest
    # security update released for its level (None: cannot tell, e.g. AdminDisplayVersion, or rollups, which the
    # sources do not flag as security updates).
    is_supported: bool | None = None
    latest_security_update: UpdateRef | None = None
    has_latest_security_update: bool | None = None


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
    key = (facts.build_text, facts.build_source, facts.esu_until)
    if cache is not None and key in cache:
        base, target = cache[key]
    else:
        base, target = _evaluate_build(facts, catalog, rules, today)
        if cache is not None:
            cache[key] = (base, target)
    if target is None:
        return base
    prerequisites = missing_prerequisites(facts, catalog, rules, *target)
    return replace(base, missing_prerequisites=tuple(prerequisites)) if prerequisites else base


def _evaluate_build(
    facts: ServerFacts, catalog: Catalog, rules: Rules, today: date
) -> tuple[Verdict, tuple[str, str] | None]:
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
    verdict, target = _evaluate_level(facts, catalog, rules, resolution, current, today)
    latest, has_latest = latest_security_fact(catalog, rules, resolution, today)
    facts_beside = {"is_supported": resolution.is_supported, "latest_security_update": latest,
                    "has_latest_security_update": has_latest}  # fmt: skip
    return replace(verdict, **facts_beside), target or (product.key, level.name)


def _evaluate_level(facts, catalog: Catalog, rules: Rules, resolution: Resolution, current, today: date):
    product, level, notes = resolution.product, resolution.level, resolution.notes
    covered = esu_covers(rules, product.key, level.name, facts.esu_until, today)
    # Precedence: how far behind the level is, then what we cannot see, then the product's end of support (unless
    # the organisation's ESU enrolment covers the level), then the updates missing within the level.
    if level not in catalog.support_window(product.key, today):
        return _unsupported_level(catalog, rules, resolution, current, today, facts.esu_until)
    if not resolution.is_update_known:
        latest = latest_obtainable(catalog, rules, product.key, level.name, today, facts.esu_until)
        reasons = (
            *notes,
            f"the latest update for {level.name} is {_describe(latest, rules)}; install it unless it is already there",
        )
        if catalog.is_end_of_life(product.key, today):
            reasons = (*reasons, _end_of_support_reason(catalog, rules, product.key, facts.esu_until, today))
        install = UpdateRef.of(latest, rules) if latest and not latest.is_base else None
        return Verdict(ROLLUP_UNKNOWN, current, install=install, reasons=reasons, resolution=resolution), None
    if catalog.is_end_of_life(product.key, today) and not covered:
        return _end_of_life(catalog, rules, resolution, current, today, facts.esu_until), None

    missing = _newer_in_series(catalog, level, resolution, today)
    esu_reasons = (_end_of_support_reason(catalog, rules, product.key, facts.esu_until, today),) if covered else ()
    if not missing:
        reasons = (*notes, f"runs the latest update of {product.name} {level.name}", *esu_reasons)
        return Verdict(CURRENT, current, days_behind=0, reasons=reasons, resolution=resolution), None
    install = missing[-1]
    superseded = missing[:-1]
    security = [entry for entry in missing if entry.is_security]
    state = SECURITY_UPDATE_MISSING if security else UPDATE_AVAILABLE
    reasons = [*notes, _install_reason(install, superseded, rules)]
    if security:
        reasons.append("security updates missing: " + ", ".join(_describe(e, rules) for e in security))
    reasons.extend(esu_reasons)
    ref = lambda entry: UpdateRef.of(entry, rules)  # noqa: E731
    verdict = Verdict(
        state, current, ref(install), tuple(map(ref, superseded)), tuple(map(ref, security)),
        tuple(map(ref, missing)), (), _days_behind(missing, today), tuple(reasons), resolution,
    )  # fmt: skip
    return verdict, None


def _end_of_life(catalog: Catalog, rules: Rules, resolution: Resolution, current, today, esu_until) -> Verdict:
    """Past end of support (and not covered by ESU): still what is missing, what to install until then, how far
    behind; ESU-only updates are listed as missing but are not what to install."""
    product, level = resolution.product, resolution.level
    reasons = [*resolution.notes, _end_of_support_reason(catalog, rules, product.key, esu_until, today)]
    missing = _newer_in_series(catalog, level, resolution, today) if resolution.is_update_known else []
    reachable = [entry for entry in missing if not is_esu_only(entry, rules)]
    if reachable:
        reasons.append("until then: " + _install_reason(reachable[-1], reachable[:-1], rules))
    esu_only = [entry for entry in missing if is_esu_only(entry, rules)]
    if esu_only:
        reasons.append(
            f"{len(esu_only)} ESU-only update(s) not installed ({', '.join(_short(e) for e in esu_only)}): "
            "obtainable only through Microsoft's Extended Security Update program"
        )
    ref = lambda entry: UpdateRef.of(entry, rules)  # noqa: E731
    return Verdict(
        END_OF_LIFE, current,
        install=ref(reachable[-1]) if reachable else None,
        supersedes=tuple(map(ref, reachable[:-1])),
        security_updates=tuple(ref(e) for e in missing if e.is_security),
        missing=tuple(map(ref, missing)),
        days_behind=_days_behind(missing, today) if missing else None,
        reasons=tuple(reasons), resolution=resolution,
    )  # fmt: skip


def _unsupported_level(catalog: Catalog, rules: Rules, resolution: Resolution, current, today, esu_until):
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
    latest = latest_obtainable(catalog, rules, product.key, target.name, today, esu_until)
    skipped = in_series + [catalog.series(p.product, p.name)[0] for p in newer_levels if p != target]
    missing = sorted([*in_series, *(catalog.series(p.product, p.name)[0] for p in newer_levels)], key=_released)
    reasons.append(
        f"{level.name} is older than the newest supported levels ({supported}); install {target.name}"
        + (f" ({base.kb})" if base.kb else "")
        + (f", then {_short(latest)}" + (" (ESU-only update)" if is_esu_only(latest, rules) else "")
           if latest and not latest.is_base else "")
    )  # fmt: skip
    if skipped:
        reasons.append(f"{target.name} is cumulative: it includes " + ", ".join(_short(e) for e in skipped))
    if catalog.is_end_of_life(product.key, today):
        reasons.append(_end_of_support_reason(catalog, rules, product.key, esu_until, today))
    security = [e for e in missing if e.is_security]
    ref = lambda entry: UpdateRef.of(entry, rules)  # noqa: E731
    verdict = Verdict(
        UNSUPPORTED_LEVEL, current, ref(base), tuple(map(ref, skipped)),
        tuple(map(ref, security)), tuple(map(ref, missing)), (),
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


def is_esu_only(entry: CatalogEntry | None, rules: Rules) -> bool:
    """An update of a product past its end of support, released after it: an Extended Security Update."""
    if entry is None or entry.is_base:
        return False
    esu = rules.esu.get(entry.product)
    return bool(esu and entry.release_date and entry.release_date > esu.released_after)


def esu_covers(rules: Rules, product: str, level: str, esu_until: date | None, today: date) -> bool:
    """The organisation is enrolled today and the program covers this level."""
    esu = rules.esu.get(product)
    return bool(esu and esu_until and esu_until >= today and level in esu.levels)


def latest_obtainable(
    catalog: Catalog, rules: Rules, product: str, level: str, today: date, esu_until: date | None
) -> CatalogEntry | None:
    """The newest update of a level an organisation can get: ESU-only updates only when its enrolment covers it."""
    covered = esu_covers(rules, product, level, esu_until, today)
    entries = [e for e in catalog.installable(product, level, today) if covered or not is_esu_only(e, rules)]
    return entries[-1] if entries else None


def latest_security_fact(
    catalog: Catalog, rules: Rules, resolution: Resolution, today: date
) -> tuple[UpdateRef | None, bool | None]:
    """The newest security update released for the server's level, and whether the server has it."""
    level = resolution.level
    if level is None or resolution.product is None or not resolution.product.is_cumulative:
        return None, None
    security = [e for e in catalog.installable(level.product, level.name, today) if e.is_security]
    if not security:
        return None, None
    latest = security[-1]
    if not resolution.is_update_known or resolution.floor is None:
        return UpdateRef.of(latest, rules), None
    return UpdateRef.of(latest, rules), resolution.floor.build >= latest.build


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


def _end_of_support_reason(catalog: Catalog, rules: Rules, product: str, esu_until: date | None, today: date) -> str:
    support = catalog.support.get(product)
    ended = support.end_of_extended_support.isoformat() if support and support.end_of_extended_support else "?"
    paths = [path for path in rules.upgrade_paths if path.from_product == product]
    if paths:
        path = "; ".join(
            f"upgrade in place to {PRODUCTS[p.to_product].name} from {' or '.join(p.from_levels)}, or move to new servers"
            for p in paths
        )
    else:
        path = "no in-place upgrade to a newer version: install new servers, move the workloads, decommission"
    text = f"{PRODUCTS[product].name} reached the end of extended support on {ended}; {path}"
    esu = rules.esu.get(product)
    if esu and esu_until and esu_until >= today:
        text += f"; the organisation is enrolled in Extended Security Updates until {esu_until.isoformat()} (ESU-only updates, not support)"
    elif esu:
        text += "; updates released after that date are ESU-only updates (the organisation is not marked enrolled)"
    return text


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


def _install_reason(install: CatalogEntry, superseded: list[CatalogEntry], rules: Rules | None = None) -> str:
    text = f"install {_describe(install, rules)}"
    updates = [e for e in superseded if not e.is_base]
    if updates:
        text += f"; it includes {_short(updates[0])}" + (f" to {_short(updates[-1])}" if len(updates) > 1 else "")
    return text


def _describe(entry: CatalogEntry | None, rules: Rules | None = None) -> str:
    if entry is None:
        return "unknown"
    esu = " (ESU-only update)" if rules is not None and is_esu_only(entry, rules) else ""
    return f"{entry.name or entry.level}" + (f" ({entry.kb})" if entry.kb else "") + f", build {entry.build}{esu}"


def _short(entry: CatalogEntry) -> str:
    return entry.name or entry.level


def _released(entry: CatalogEntry) -> tuple:
    return (entry.release_date or date.max, entry.build)


def _days_behind(missing: list[CatalogEntry], today: date) -> int | None:
    dates = [entry.release_date for entry in missing if entry.release_date]
    return max(0, (today - min(dates)).days) if dates else None
