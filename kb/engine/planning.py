"""Upgrade planning: version-correct plans for a server and for a whole cluster or DAG (with per-server views).
Procedures come from the runbook rules; this module only assembles them (the estate and the rollout: estate.py)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from .builds import PRODUCT_ORDER, PRODUCTS, BuildForm, InvalidBuildError, product_for_build
from .catalog import Catalog, CatalogEntry, Kind, Level, Resolution, normalize_kb
from .compliance import ServerFacts, esu_covers, facts_parse, is_esu_only, latest_obtainable
from .names import canonical_update_name
from .rules import (
    AdVersions,
    Migration,
    PrerequisiteRule,
    Rules,
    Runbook,
    RunbookStep,
    StepRule,
    version_key,
)

AD_PREPARATION, PREREQUISITE, GATE, PRE_STEP = "ad_preparation", "prerequisite", "gate", "pre_step"
FAILOVER, INSTALL, POST_STEP, VERIFY = "failover", "install", "post_step", "verify"
VERIFY_COMMAND = "Get-Command Exsetup.exe | ForEach {$_.FileVersionInfo}"


class PlanError(ValueError):
    """The request cannot be planned; the message explains why and, where there is one, the way that works."""


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_FORMATS: dict[str, str] = {}


def fill(template: str, values: Mapping[str, str]) -> str:
    """Put values into a rule's template: only lower-case {names} are placeholders, so PowerShell's
    `{$_.Status -eq "Mounted"}` stays as it is. An unknown name raises KeyError."""
    pattern = _FORMATS.get(template)
    if pattern is None:  # once per template: a str.format pattern with every other brace doubled
        parts = _PLACEHOLDER.split(template)
        pattern = _FORMATS[template] = "".join(
            part.replace("{", "{{").replace("}", "}}") if index % 2 == 0 else "{" + part + "}"
            for index, part in enumerate(parts)
        )
    return pattern.format_map(values)


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    description: str
    command: str | None = None
    kb: str | None = None
    reason: str = ""
    rule: str | None = None  # the rule key and its source
    scope: str = "node"  # node, cluster, site, organisation
    when: str = "before"  # before, between (a cluster's failover), install, after
    server: str | None = None  # the FQDN it runs on or concerns; None for a cluster or organisation step
    segment: int = 1  # the rollout unit it belongs to (0: organisation preparation)
    number: int | None = None  # its number in the plan it was cut from (a per-server view of a cluster plan)

    def as_dict(self) -> dict:
        return {
            "number": self.number, "kind": self.kind, "description": self.description, "command": self.command,
            "kb": self.kb, "reason": self.reason, "rule": self.rule, "scope": self.scope, "when": self.when,
            "server": self.server,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class PlanServer:
    """A server's facts as planning needs them."""

    fqdn: str
    facts: ServerFacts
    is_forefront_installed: bool = False
    cluster: str | None = None
    cluster_kind: str | None = None
    is_active: bool = False
    is_clustered_mailbox_server: bool = False  # a 2007 CCR/SCC clustered mailbox server (its nodes are the members)

    @property
    def name(self) -> str:
        return self.fqdn.split(".")[0].upper()


@dataclass(frozen=True, slots=True)
class Plan:
    fqdn: str
    current: Mapping[str, str | None]
    target: Mapping[str, str | None]
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    cluster: Mapping[str, str | None] | None = None  # {"name", "kind", "role"} for a member's view of its cluster plan

    @property
    def is_empty(self) -> bool:
        return not any(step.kind == INSTALL for step in self.steps)

    def as_dict(self) -> dict:
        return {
            "server": self.fqdn, "current": dict(self.current), "target": dict(self.target),
            "cluster": dict(self.cluster) if self.cluster else None,
            "steps": [step.as_dict() for step in self.steps], "notes": list(self.notes),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class MemberPlan:
    fqdn: str
    role: str  # "active", "passive" (SCR: "source", "standby"), or "member"
    current: Mapping[str, str | None]
    target: Mapping[str, str | None]
    notes: tuple[str, ...] = ()
    blocked: str | None = None  # why this member could not be planned

    def as_dict(self) -> dict:
        return {"fqdn": self.fqdn, "role": self.role, "current": dict(self.current), "target": dict(self.target),
                "notes": list(self.notes), "blocked": self.blocked}  # fmt: skip


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """One plan for a whole cluster or DAG (or a standalone server: a group of one)."""

    name: str
    kind: str | None
    organisation: str
    members: tuple[MemberPlan, ...]
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    is_one_window: bool = False  # the whole plan runs in one maintenance window (a failover in the middle)

    @property
    def is_empty(self) -> bool:
        return not any(step.kind == INSTALL for step in self.steps)

    def view(self, fqdn: str) -> Plan:
        """One member's view: its own steps and the cluster and organisation steps, numbered as in the whole plan."""
        member = next((m for m in self.members if m.fqdn == fqdn), None)
        if member is None:
            raise PlanError(f"{fqdn} is not a member of {self.name}")
        steps = tuple(step for step in self.steps if step.server in (fqdn, None))
        if self.kind is None:
            return Plan(fqdn, member.current, member.target, steps, (*self.notes, *member.notes))
        whole = "run it as one change, in one maintenance window" if self.is_one_window else "one member at a time"
        note = (f"this is {fqdn}'s view of the {self.kind} {self.name} plan (plan --cluster {self.name}): steps keep "
                f"the numbers of the whole plan; {whole}")  # fmt: skip
        cluster = {"name": self.name, "kind": self.kind, "role": member.role}
        return Plan(fqdn, member.current, member.target, steps, (note, *self.notes, *member.notes), cluster)

    def as_dict(self) -> dict:
        return {
            "cluster": self.name, "kind": self.kind, "organisation": self.organisation,
            "one_window": self.is_one_window, "members": [m.as_dict() for m in self.members],
            "steps": [step.as_dict() for step in self.steps], "notes": list(self.notes),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServerGroup:
    """The members of a cluster or DAG as planning needs them."""

    name: str
    kind: str | None
    organisation: str
    members: tuple[PlanServer, ...]


@dataclass(frozen=True, slots=True)
class AdState:
    """What Active Directory holds at least, estimated from the levels of the organisation's servers."""

    range_upper: int | None = None
    object_version_default: int | None = None
    configuration: Mapping[str, int] = field(default_factory=dict)  # per product line (their values do not compare)


@dataclass(frozen=True, slots=True)
class OrganisationContext:
    """What a plan needs to know about the rest of the organisation."""

    name: str
    products: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # product → FQDNs of its servers
    ad: AdState = field(default_factory=AdState)
    mailbox_servers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # product → Mailbox FQDNs
    sites: Mapping[str, str] = field(default_factory=dict)  # FQDN → AD site


# -- one server's work: target, installs, prerequisites ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CuInstall:
    entry: CatalogEntry
    reason: str
    dotnet_before: str | None = None  # .NET to install first


@dataclass(frozen=True, slots=True)
class _Work:
    """What one server needs: its installs in order and its prerequisites (or a swing migration)."""

    server: PlanServer
    product: str
    chain: tuple[_CuInstall, ...]
    prerequisites: tuple[Step, ...]
    current: Mapping[str, str | None]
    target: Mapping[str, str | None]
    notes: tuple[str, ...] = ()
    migration: Migration | None = None
    goal: CatalogEntry | None = None
    goal_product: str | None = None
    resolution: Resolution | None = None


def _resolve(server: PlanServer, catalog: Catalog, today: date) -> Resolution:
    try:
        parsed = facts_parse(server.facts)
    except InvalidBuildError as error:
        raise PlanError(str(error)) from None
    resolution = catalog.resolve(parsed, today=today)
    if resolution.product is None or resolution.level is None:
        raise PlanError(f"build {parsed.build} is not a known Exchange 2007 or later build")
    return resolution


def _current_info(resolution: Resolution) -> dict:
    return {"build": resolution.build.short, "product": resolution.product.name, "level": resolution.level.name,
            "update": resolution.entry.name if resolution.entry else None}  # fmt: skip


def _target_info(goal: CatalogEntry) -> dict:
    return {"build": goal.build.short, "product": PRODUCTS[goal.product].name, "level": goal.level,
            "update": goal.name, "kb": goal.kb}  # fmt: skip


def _work(server: PlanServer, catalog: Catalog, rules: Rules, target: str | None, today: date,
          context: OrganisationContext, cache: dict | None = None) -> _Work:  # fmt: skip
    """What one server needs. The part that depends on its facts alone is computed once per distinct facts (a rollout
    of thousands of servers shares a few hundred builds); the steps that name the server are made per server."""
    key = (server.facts, target, context.name)
    if cache is not None and key in cache:
        core = cache[key]
    else:
        try:
            core = _work_core(server, catalog, rules, target, today, context)
        except PlanError as error:
            core = error
        if cache is not None:
            cache[key] = core
    if isinstance(core, PlanError):
        raise PlanError(f"{server.fqdn}: {core}")
    if core.chain:
        product, level = core.chain[-1].entry.product, core.chain[-1].entry.level
        core = replace(core, prerequisites=tuple(_prerequisite_steps(server, catalog, rules, product, level)))
    return replace(core, server=server)


def _work_core(server: PlanServer, catalog: Catalog, rules: Rules, target: str | None, today: date,
               context: OrganisationContext) -> _Work:  # fmt: skip
    """The installs from the server's build to the target: default the latest update of its level it can obtain.
    Errors do not name the server (the caller does)."""
    resolution = _resolve(server, catalog, today)
    form = "AdminDisplayVersion" if resolution.form is BuildForm.ADMIN_DISPLAY else "AD serialNumber"
    if resolution.form.is_level_only and not resolution.product.is_cumulative:
        notes = (f"rollup level unknown ({form}): the plan assumes the service pack without rollups",)
    elif resolution.form.is_level_only:
        notes = (f"security update level unknown ({form}): the plan assumes the CU without SUs",)
    else:
        notes = ()
    product = resolution.product.key
    wanted = _version_target(target, product) if target else None
    if wanted is not None:
        return _version_work(server, catalog, rules, resolution, wanted, today, context, notes)
    goal_level, goal = _target(catalog, rules, product, resolution, target, today, server, context)
    current_build = resolution.build
    if not target and goal.build < current_build and resolution.floor is not None:
        # It already runs more than the organisation can obtain (an ESU-only update, an unmarked enrolment).
        note = f"already runs {resolution.floor.title}, beyond {goal.title}: nothing to install"
        if is_esu_only(resolution.floor, rules):
            note += " (it runs an ESU-only update: mark the organisation's enrolment with organisation_esu)"
        return _Work(server, product, (), (), _current_info(resolution), _target_info(resolution.floor),
                     (*notes, note), goal=resolution.floor, goal_product=product, resolution=resolution)  # fmt: skip
    if goal.build < current_build or (goal.build == current_build and target and goal.level != resolution.level.name):
        raise PlanError(
            f"{goal.title} ({goal.build}) is older than the current build {current_build}: "
            "a downgrade is not supported (uninstalling a CU or SP means rebuilding the server)"
        )
    chain = _install_chain(server, catalog, rules, resolution, goal_level, goal, today)
    notes = (*notes, *_esu_notes(rules, server, chain, today))
    newest = catalog.latest_in_series(product, goal_level.name, today)
    obtainable = latest_obtainable(catalog, rules, product, goal_level.name, today, server.facts.esu_until)
    if goal == obtainable and newest is not None and newest.build > goal.build and is_esu_only(newest, rules):
        esu, until = rules.esu[product], server.facts.esu_until
        why = ("this one is not marked enrolled" if until is None else f"its enrolment ended on {until.isoformat()}"
               if until < today else f"the program does not cover {goal_level.name}")  # fmt: skip
        notes = (*notes, f"newer ESU-only updates exist for {goal_level.name} (up to {newest.name}): Microsoft gives them "
                         f"only to organisations enrolled in its Extended Security Update program, and {why}; "
                         f"{PRODUCTS[product].name} is past the end of support [{esu.source.key}]")  # fmt: skip
    if not chain:
        notes = (*notes, f"already at or above {goal.title}: nothing to install")
    return _Work(server, product, tuple(chain), (), _current_info(resolution), _target_info(goal), notes,
                 goal=goal, goal_product=product, resolution=resolution)  # fmt: skip


def _version_target(text: str, product: str) -> str | None:
    """The product a target names when it names a version ("SE", "Exchange 2019"), if not the server's own."""
    cleaned = re.sub(r"(?i)^exchange\s+(server\s+)?", "", text.strip()).strip()
    aliases = {"se": "SE", "subscription edition": "SE"} | {key.lower(): key for key in PRODUCTS}
    wanted = aliases.get(cleaned.lower())
    return wanted if wanted is not None and wanted != product else None


def _version_work(server, catalog, rules, resolution, wanted, today, context, notes) -> _Work:
    """To another version: in place where an upgrade path allows it (2019 CU14/CU15 → SE), else a swing migration
    where a rule describes one, else an error that says how it is done."""
    product, level = resolution.product.key, resolution.level
    if PRODUCT_ORDER.index(wanted) < PRODUCT_ORDER.index(product):
        raise PlanError(
            f"no in-place upgrade from {PRODUCTS[product].name} to {PRODUCTS[wanted].name}: it is an older version "
            "(a server cannot go back to an older version)"
        )
    path = next((p for p in rules.upgrade_paths if p.from_product == product and p.to_product == wanted), None)
    migration = next((m for m in rules.migrations if product in m.from_products and m.to_product == wanted), None)
    to_level = _allowed_latest_level(catalog, rules, wanted, today, context)
    if to_level is None:
        raise PlanError(f"the catalog has no {PRODUCTS[wanted].name} release yet")
    goal = latest_obtainable(catalog, rules, wanted, to_level.name, today, server.facts.esu_until)
    if path is not None:
        _coexistence_guard(rules, wanted, context)
        chain: list[_CuInstall] = []
        if level.name not in path.from_levels:
            stops = [catalog.level(product, name) for name in path.from_levels]
            stop = max((lvl for lvl in stops if lvl and (lvl.release_date is None or lvl.release_date <= today)),
                       key=lambda lvl: lvl.base_build, default=None)  # fmt: skip
            if stop is None or stop.base_build < level.base_build:
                raise PlanError(f"no in-place path from {level.name} to {PRODUCTS[wanted].name}")
            base = catalog.series(product, stop.name)[0]
            chain.extend(_install_chain(server, catalog, rules, resolution, stop, base, today))
            notes = (*notes, f"first reach {PRODUCTS[product].name} {' or '.join(path.from_levels)}: only they "
                             f"upgrade in place to {PRODUCTS[wanted].name} [{path.source.key}]")  # fmt: skip
        base = catalog.series(wanted, to_level.name)[0]
        reason = (f"in-place upgrade to {PRODUCTS[wanted].name} from {PRODUCTS[product].name} "
                  f"{' or '.join(path.from_levels)}, like a CU install [{path.source.key}]")  # fmt: skip
        chain.append(_CuInstall(base, reason))
        if goal is not None and not goal.is_base:
            chain.append(_CuInstall(goal, f"latest update of {PRODUCTS[wanted].name} {to_level.name}"))
        final = goal or base
        notes = (*notes, *_esu_notes(rules, server, chain, today))
        return _Work(server, product, tuple(chain), (), _current_info(resolution), _target_info(final), notes,
                     goal=final, goal_product=wanted, resolution=resolution)  # fmt: skip
    if migration is not None:
        _coexistence_guard(rules, wanted, context)
        final = goal or catalog.series(wanted, to_level.name)[0]
        notes = (*notes, f"no in-place upgrade from {PRODUCTS[product].name}: a swing migration to a new "
                         f"{PRODUCTS[wanted].name} server [{migration.source.key}]")  # fmt: skip
        return _Work(server, product, (), (), _current_info(resolution), _target_info(final), notes, migration,
                     goal=final, goal_product=wanted, resolution=resolution)  # fmt: skip
    raise PlanError(_cross_version_message(rules, product, wanted))


def _cross_version_message(rules: Rules, current: str, wanted: str) -> str:
    paths = " and ".join(
        f"{PRODUCTS[p.from_product].name} {' or '.join(p.from_levels)} to {PRODUCTS[p.to_product].name}"
        for p in rules.upgrade_paths
    )
    only = f" (the only in-place path between versions is {paths})" if paths else ""
    return (
        f"no in-place upgrade from {PRODUCTS[current].name} to {PRODUCTS[wanted].name}: install new "
        f"{PRODUCTS[wanted].name} servers, move mailboxes and namespaces to them, then decommission this server{only}"
    )


def _allowed_latest_level(catalog: Catalog, rules: Rules, product: str, today: date,
                          context: OrganisationContext) -> Level | None:  # fmt: skip
    """The newest level whose setup accepts this organisation (later SE CUs refuse 2016/2019 beside them)."""
    levels = [lvl for lvl in catalog.levels(product) if lvl.kind is not Kind.PREVIEW
              and (lvl.release_date is None or lvl.release_date <= today)]  # fmt: skip
    for level in reversed(levels):
        if not _blocking_gates(rules, product, level, context, catalog):
            return level
    return levels[0] if levels else None


def _blocking_gates(rules: Rules, product: str, level: Level, context: OrganisationContext, catalog: Catalog):
    """Later-level gates of a product (SE CU2) that this level reaches and that the organisation does not meet."""
    found = []
    for gate in rules.later_gates(product):
        start = catalog.level(product, gate.from_level)
        if start is None or level.base_build < start.base_build:
            continue
        present = [p for p in gate.forbids if context.products.get(p)]
        if present:
            found.append((gate, present))
    return found


def _remain(products: Sequence[str]) -> str:
    names = " and ".join(PRODUCTS[p].name for p in products)
    return f"{names} {'remains' if len(products) == 1 else 'remain'}"


def _coexistence_guard(rules: Rules, product: str, context: OrganisationContext) -> None:
    """A plan to another version must be able to join the organisation (SE setup refuses Exchange 2013)."""
    gate = rules.gate_for(product)
    if gate is None:
        return
    present = [p for p in gate.forbids if context.products.get(p)]
    if present:
        servers = ", ".join(fqdn for p in present for fqdn in context.products[p])
        raise PlanError(
            f"{PRODUCTS[product].name} cannot join organisation {context.name} while "
            f"{_remain(present)} ({servers}) [{gate.source.cite()}]"
        )


def _target(catalog: Catalog, rules: Rules, product: str, resolution: Resolution, target: str | None, today: date,
            server: PlanServer, context: OrganisationContext):  # fmt: skip
    level = resolution.level
    esu_until = server.facts.esu_until
    if not target:
        # The latest update of the current level; from a level past N-1, the newest level (what compliance asks),
        # as far as the organisation lets it go (a later SE CU that refuses 2016/2019 beside it).
        if level not in catalog.support_window(product, today):
            newest = _allowed_latest_level(catalog, rules, product, today, context)
            if newest is not None and newest.base_build > level.base_build:
                level = newest
        return level, latest_obtainable(catalog, rules, product, level.name, today, esu_until)
    text = target.strip()
    if re.fullmatch(r"(?i)(KB\s*)?\d{6,8}", text):
        kb = normalize_kb(text)
        matches = [e for e in catalog.by_kb(kb) if not e.is_recalled]
        if not matches:
            raise PlanError(f"--target: {kb} is not in the catalog")
        same = [e for e in matches if e.product == product]
        if not same:
            raise PlanError(
                f"--target: {kb} is an update for {PRODUCTS[matches[0].product].name}, not {PRODUCTS[product].name}"
            )
        mine = [e for e in same if e.level == level.name]
        entry = (mine or sorted(same, key=lambda e: e.build))[-1]
        return _checked_level(catalog, rules, product, entry.level, context, server), entry
    as_level = catalog.level(product, text.upper()) or catalog.level(product, text)
    if as_level is not None:
        _checked_level(catalog, rules, product, as_level.name, context, server)
        return as_level, latest_obtainable(catalog, rules, product, as_level.name, today, esu_until)
    # "SP3 Update Rollup 10", "CU14 Mar24SU": an update of a named level (what a coexistence gate asks for).
    qualified = re.fullmatch(r"(?i)(RTM|SP\d|CU\d+)\s+(.+)", text)
    if qualified and (named_level := catalog.level(product, qualified.group(1).upper())) is not None:
        entry = _update_named(catalog, product, named_level.name, qualified.group(2))
        if entry is not None:
            return _checked_level(catalog, rules, product, named_level.name, context, server), entry
    for candidate in (level.name, *(lvl.name for lvl in reversed(catalog.levels(product)))):
        entry = _update_named(catalog, product, candidate, text)
        if entry is not None:
            return _checked_level(catalog, rules, product, entry.level, context, server), entry
    raise PlanError(f"--target: {target!r} is not a level, update or KB of {PRODUCTS[product].name}")


def _update_named(catalog: Catalog, product: str, level: str, text: str) -> CatalogEntry | None:
    """The installable update of a level whose name is `text` (the one place update names are matched), in any of
    Microsoft's spellings of a re-release ("Nov24SUv2", "Nov24SU-v2", "RU3-v3")."""
    wanted = (canonical_update_name(text) or text).strip().lower()
    for entry in catalog.installable(product, level):
        if entry.name and entry.name.lower() == wanted:
            return entry
    return None


def _checked_level(catalog, rules, product, level_name, context, server) -> Level:
    level = catalog.level(product, level_name)
    blocking = _blocking_gates(rules, product, level, context, catalog)
    if blocking:
        gate, present = blocking[0]
        servers = ", ".join(fqdn for p in present for fqdn in context.products[p])
        raise PlanError(
            f"{PRODUCTS[product].name} {level_name} setup refuses to run while "
            f"{_remain(present)} in organisation {context.name} ({servers}): "
            f"move their mailboxes and decommission them first [{gate.source.cite()}]"
        )
    return level


def _esu_notes(rules: Rules, server: PlanServer, chain: Sequence[_CuInstall], today: date) -> tuple[str, ...]:
    notes = []
    for link in chain:
        entry = link.entry
        if not link.reason or not is_esu_only(entry, rules):
            continue
        esu = rules.esu[entry.product]
        if esu_covers(rules, entry.product, entry.level, server.facts.esu_until, today):
            notes.append(f"{entry.name} is an ESU-only update: the organisation is enrolled until "
                         f"{server.facts.esu_until.isoformat()} [{esu.source.key}]")  # fmt: skip
        else:
            notes.append(f"{entry.name} is an ESU-only update: Microsoft gives it only to organisations enrolled in "
                         f"its Extended Security Update program, and this one is not marked enrolled [{esu.source.key}]")  # fmt: skip
    return tuple(notes)


def _install_chain(
    server, catalog, rules, resolution, goal_level: Level, goal: CatalogEntry, today
) -> list[_CuInstall]:
    """The installs to reach the goal: never intermediate rollups or SUs; CUs stepped only where .NET requires."""
    product = goal.product
    current_level = resolution.level
    floor = resolution.floor if resolution.is_update_known else catalog.series(product, current_level.name)[0]
    chain: list[_CuInstall] = []
    if goal_level.name != current_level.name:
        base_of = catalog.series(product, goal_level.name)[0]
        if PRODUCTS[product].is_cumulative and product in rules.dotnet:
            chain.extend(_dotnet_path(server, catalog, rules, current_level, goal_level, today))
        else:
            chain.append(
                _CuInstall(base_of, f"{goal_level.name} is cumulative: it includes every earlier level and update")
            )
    if not goal.is_base and (floor is None or goal.build > floor.build or goal_level.name != current_level.name):
        chain.append(_CuInstall(goal, f"{goal.name} is cumulative within {goal.level}: no earlier update is needed"))
    return chain


def _dotnet_path(server, catalog, rules, current: Level, goal: Level, today) -> list[_CuInstall]:
    """Shortest sequence of .NET upgrades and CU installs from the current CU to the goal CU (breadth-first search).

    The supportability matrix's rule: never run a CU on a .NET it does not support; when jumping from an old CU,
    upgrade .NET to the newest version the current CU supports, then install the newest CU that supports it.
    """
    product = goal.product
    table = rules.dotnet[product]
    order = [lvl.name for lvl in catalog.levels(product) if lvl.kind is not Kind.PREVIEW]
    if current.name not in order or goal.name not in order:
        return [_CuInstall(catalog.series(product, goal.name)[0], f"{goal.name} is cumulative")]
    start_dotnet = server.facts.dotnet or ""
    start, end = order.index(current.name), order.index(goal.name)
    levels = order[start : end + 1]

    def versions(level: str) -> tuple[str, ...]:
        return table.levels.get(level, ())

    start_state = (current.name, start_dotnet)
    previous: dict[tuple[str, str], tuple[tuple[str, str], str]] = {start_state: (start_state, "")}
    queue = deque([start_state])
    found = None
    while queue:
        state = queue.popleft()
        level, dotnet = state
        if level == goal.name and dotnet in versions(goal.name):
            found = state
            break
        moves = []
        # Install the newest reachable CU first: fewer installs win ties.
        for candidate in reversed(levels[levels.index(level) + 1 :]):
            if dotnet in versions(candidate):
                moves.append(((candidate, dotnet), "cu"))
        for version in sorted(versions(level), key=version_key, reverse=True):
            if not dotnet or version_key(version) > version_key(dotnet):
                moves.append(((level, version), "dotnet"))
        for nxt, how in moves:
            if nxt not in previous:
                previous[nxt] = (state, how)
                queue.append(nxt)
    if found is None:
        raise PlanError(
            f"no supported path from {current.name} on .NET {start_dotnet or '(not reported)'} to "
            f"{goal.name}: the .NET rules ({table.source.key}) leave a gap"
        )
    path = []
    state = found
    while state != start_state:
        before, how = previous[state]
        path.append((how, state))
        state = before
    path.reverse()
    chain: list[_CuInstall] = []
    pending_dotnet = None
    for how, (level, dotnet) in path:
        if how == "dotnet":
            pending_dotnet = dotnet
            continue
        reason = f"{level} supports .NET {', '.join(versions(level))}" + (
            f" and is the newest CU that runs on .NET {dotnet}" if level != goal.name else ""
        )
        chain.append(_CuInstall(catalog.series(product, level)[0], reason, pending_dotnet))
        pending_dotnet = None
    if pending_dotnet:  # .NET upgrade after the last CU (the goal needs a newer .NET than it was installed on)
        chain.append(
            _CuInstall(chain[-1].entry if chain else catalog.series(product, goal.name)[0], "", pending_dotnet)
        )
    return chain


def _prerequisite_steps(
    server: PlanServer, catalog: Catalog, rules: Rules, product: str, target_level: str
) -> list[Step]:
    order = [lvl.name for lvl in catalog.levels(product)]
    wanted: dict[str, PrerequisiteRule] = {}
    for rule in rules.prerequisites:
        if product not in rule.products or (rule.roles and not set(rule.roles) & set(server.facts.roles)):
            continue
        needs_level = rule.levels_from and rule.levels_from in order and target_level in order
        if needs_level and order.index(target_level) < order.index(rule.levels_from):
            continue
        value = server.facts.prerequisite(rule.fact)
        if value and (rule.value == "any" or value.strip().lower() == rule.value.strip().lower()):
            continue
        wanted[rule.source.key] = rule
    return [
        Step(
            PREREQUISITE,
            f"Install {rule.name} on {server.name}",
            rule.command,
            rule.kb,
            f"required by {PRODUCTS[product].name} {target_level}"
            + (f" ({', '.join(rule.roles)} role)" if rule.roles else ""),
            rule.source.cite(),
            server=server.fqdn,
        )
        for rule in prerequisite_order(wanted.values())
    ]


def prerequisite_order(prerequisites: Iterable[PrerequisiteRule]) -> list[PrerequisiteRule]:
    """Topological order by each rule's `requires`; a cycle is an error that names it."""
    rules = {rule.source.key: rule for rule in prerequisites}
    ordered: list[PrerequisiteRule] = []
    state: dict[str, str] = {}

    def visit(key: str, trail: list[str]) -> None:
        if state.get(key) == "done" or key not in rules:
            return
        if state.get(key) == "visiting":
            cycle = [*trail[trail.index(key) :], key]
            raise PlanError("prerequisites form a cycle: " + " → ".join(cycle))
        state[key] = "visiting"
        for required in rules[key].requires:
            visit(required, [*trail, key])
        state[key] = "done"
        ordered.append(rules[key])

    for key in sorted(rules):
        visit(key, [])
    return ordered


def install_kind(entry: CatalogEntry) -> str:
    """A base level (CU, SP, or SE RTM over 2019) is a setup run: its steps are the CU/SP steps."""
    if entry.is_base:
        return "CU" if PRODUCTS[entry.product].is_cumulative else "SP"
    return entry.kind.value


def _license_switch(rules: Rules, catalog: Catalog, product: str, level: str) -> str:
    setup = rules.setup.get(product)
    if setup is None:
        return ""
    if setup.new_switch_from:
        start, mine = catalog.level(product, setup.new_switch_from), catalog.level(product, level)
        if start is not None and mine is not None and mine.base_build >= start.base_build:
            return setup.new_license_switch
    return setup.license_switch


def _install_command(rules: Rules, catalog: Catalog, entry: CatalogEntry) -> str | None:
    setup = rules.setup.get(entry.product)
    template = setup.commands.get(install_kind(entry)) if setup else None
    if template is None:
        return None
    values = {"product": entry.product, "kb": entry.kb or "<KB>", "name": entry.name or entry.level,
              "level": entry.level, "license_switch": _license_switch(rules, catalog, entry.product, entry.level)}  # fmt: skip
    try:
        return fill(template, values)
    except KeyError as error:
        raise PlanError(
            f"{setup.source.key}: the {install_kind(entry)} command uses an unknown placeholder {error}"
        ) from None


# -- Active Directory preparation -----------------------------------------------------------------------------------


def _ad_versions_of(rules: Rules, catalog: Catalog, product: str, level: str, build) -> tuple[AdVersions | None, set]:
    """The AD versions a server at this level and build leaves behind, and the preparations its updates require."""
    rule = rules.ad_preparation.get(product)
    if rule is None:
        return None, set()
    versions = rule.levels.get(level)
    required: set[str] = set()
    for update in rule.updates:
        if update.level != level:
            continue
        entry = catalog.find(product=product, level=level, name=update.update)
        if entry is not None and build is not None and build >= entry.build:
            versions = _max_versions(versions, update.versions)
            required |= set(update.requires)
    return versions, required


def _max_versions(a: AdVersions | None, b: AdVersions | None) -> AdVersions | None:
    if a is None or b is None:
        return a or b

    def top(x, y):
        return max(v for v in (x, y) if v is not None) if x is not None or y is not None else None

    return AdVersions(top(a.range_upper, b.range_upper), top(a.object_version_default, b.object_version_default),
                      top(a.object_version_configuration, b.object_version_configuration))  # fmt: skip


def ad_state(entries: Iterable[tuple[str, str, object]], rules: Rules, catalog: Catalog) -> AdState:
    """The highest AD versions the organisation's servers imply: (product, level, build) per server."""
    range_upper = default = None
    configuration: dict[str, int] = {}
    for product, level, build in entries:
        versions, _ = _ad_versions_of(rules, catalog, product, level, build)
        if versions is None:
            continue
        if versions.range_upper is not None:
            range_upper = max(range_upper or 0, versions.range_upper)
        if versions.object_version_default is not None:
            default = max(default or 0, versions.object_version_default)
        if versions.object_version_configuration is not None:
            line = rules.ad_preparation[product].configuration_line or product
            configuration[line] = max(configuration.get(line, 0), versions.object_version_configuration)
    return AdState(range_upper, default, configuration)


def _with_server(state: AdState, work: _Work, rules: Rules, catalog: Catalog) -> AdState:
    """The organisation's AD state counts the server itself (a plan may be made without the rest of the estate)."""
    resolution = work.resolution
    if resolution is None or resolution.level is None:
        return state
    floor = resolution.floor.build if resolution.floor is not None and resolution.is_update_known else None
    own = ad_state([(resolution.product.key, resolution.level.name, floor)], rules, catalog)

    def top(a, b):
        return max(v for v in (a, b) if v is not None) if a is not None or b is not None else None

    configuration = dict(state.configuration)
    for line, value in own.configuration.items():
        configuration[line] = max(configuration.get(line, 0), value)
    return AdState(top(state.range_upper, own.range_upper),
                   top(state.object_version_default, own.object_version_default), configuration)  # fmt: skip


def _ad_steps(works: Sequence[_Work], rules: Rules, catalog: Catalog, context: OrganisationContext) -> list[Step]:
    """Schema, organisation and domain preparation the plans' goals need, once for the organisation."""
    wanted: dict[tuple[str, str], tuple[str, str, str]] = {}  # (product, what) → (level, detail, goal title)
    for work in works:
        if work.goal is None or (not work.chain and work.migration is None):
            continue
        product, goal = work.goal_product, work.goal
        rule = rules.ad_preparation.get(product)
        if rule is None:
            continue
        versions, required = _ad_versions_of(rules, catalog, product, goal.level, goal.build)
        resolution = work.resolution
        if resolution is not None and resolution.product.key == product:
            floor = resolution.floor.build if resolution.floor is not None and resolution.is_update_known else None
            _, already = _ad_versions_of(rules, catalog, product, resolution.level.name, floor)
            required -= already
        state = _with_server(context.ad, work, rules, catalog)
        checks = []
        if versions is not None:
            if versions.range_upper is not None and (state.range_upper or 0) < versions.range_upper:
                checks.append(("schema", f"rangeUpper {versions.range_upper}; the organisation's servers imply "
                                         f"{state.range_upper or 'none'}"))  # fmt: skip
            config = state.configuration.get(rule.configuration_line or product)
            if (
                versions.object_version_configuration is not None
                and (config or 0) < versions.object_version_configuration
            ):
                checks.append(("organisation", f"objectVersion (Configuration) {versions.object_version_configuration}; "
                                               f"the servers of that line imply {config or 'none'}"))  # fmt: skip
            elif versions.object_version_configuration is None and any(what == "schema" for what, _ in checks):
                checks.append(("organisation", "every schema change of this version comes with /PrepareAD"))
            if (
                versions.object_version_default is not None
                and (state.object_version_default or 0) < versions.object_version_default
            ):
                checks.append(("domains", f"objectVersion (Default) {versions.object_version_default}; the "
                                          f"organisation's servers imply {state.object_version_default or 'none'}"))  # fmt: skip
        for what in sorted(required):
            if not any(name == what for name, _ in checks):
                checks.append((what, f"{goal.title} requires it (its version numbers do not change)"))
        for what, detail in checks:
            key = (product, what)
            if (
                key not in wanted
                or catalog.level(product, goal.level).base_build > catalog.level(product, wanted[key][0]).base_build
            ):
                wanted[key] = (goal.level, detail, goal.title)
    steps = []
    names = {"schema": "Extend the Active Directory schema", "organisation": "Prepare Active Directory for the organisation",
             "domains": "Prepare every Active Directory domain"}  # fmt: skip
    for product in PRODUCT_ORDER:
        rule = rules.ad_preparation.get(product)
        for what in ("schema", "organisation", "domains"):
            if (product, what) not in wanted or rule is None:
                continue
            level, detail, title = wanted[(product, what)]
            command = fill(rule.commands[what], {"license_switch": _license_switch(rules, catalog, product, level)})
            steps.append(Step(
                AD_PREPARATION, f"{names[what]} with the {title} media ({detail})", command, None,
                f"once for organisation {context.name}, before the first server; skip it if Active Directory already "
                "shows these versions (the inventory only sees its servers); wait for replication before the next step",
                rule.source.cite(), "organisation", "before", None, 0,
            ))  # fmt: skip
        if (product, "schema") in wanted and rule is not None and rule.verify_command:
            steps.append(Step(VERIFY, "Read the schema version Active Directory now holds (rangeUpper)",
                              rule.verify_command, None, "compare with the value above before installing",
                              rule.source.cite(), "organisation", "before", None, 0))  # fmt: skip
    return steps


# -- assembling a group's plan from the runbooks ------------------------------------------------------------------


def _member_order(members: Sequence[PlanServer]) -> list[PlanServer]:
    """Passive (drained, standby) members first, then the active one(s); FQDN order within."""
    return sorted(members, key=lambda m: (m.is_active, m.fqdn))


def _role(member: PlanServer, kind: str | None) -> str:
    if kind is None:
        return "server"
    if kind == "SCR":
        return "source" if member.is_active else "standby"
    if kind == "DAG":
        return "member with active copies" if member.is_active else "member without active copies"
    return "active" if member.is_active else "passive"


class _Assembly:
    """Collects the steps of a group plan with their segment (rollout unit)."""

    def __init__(self, group: ServerGroup, rules: Rules, catalog: Catalog, context: OrganisationContext) -> None:
        self.group, self.rules, self.catalog, self.context = group, rules, catalog, context
        self.steps: list[Step] = []
        self.notes: list[str] = []
        self.segment = 1

    def add(self, step: Step) -> None:
        self.append(step.kind, step.description, step.command, step.kb, step.reason, step.rule, step.scope,
                    step.when, step.server)  # fmt: skip

    def append(self, kind, description, command, kb, reason, rule, scope, when, server) -> None:
        last = self.steps[-1] if self.steps else None
        if last is not None and command and (last.kind, last.command, last.server) == (kind, command, server):
            return  # one phase's closing check is the next phase's opening check: run it once
        segment = 0 if scope == "organisation" else self.segment
        # Built once, positionally: a rollout of 10,000 servers adds some 200,000 steps.
        self.steps.append(Step(kind, description, command, kb, reason, rule, scope, when, server, segment,
                               len(self.steps) + 1))  # fmt: skip

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def template(self, runbook: Runbook | Migration, step: RunbookStep, values: Mapping[str, str], *,
                 server: PlanServer | None, when: str | None = None) -> None:  # fmt: skip
        try:
            description = fill(step.description, values)
            command = fill(step.command, values) if step.command else None
        except KeyError as error:
            raise PlanError(f"{runbook.source.key}: step {step.id} uses an unknown placeholder {error}") from None
        cached = _CITES.get(id(step))
        if cached is not None and cached[0] is step and cached[1] is runbook:
            cite = cached[2]
        else:  # the objects are kept in the entry, so their ids cannot be reused for other ones
            cite = runbook.cite(step) if isinstance(runbook, Runbook) else runbook.source.cite()
            _CITES[id(step)] = (step, runbook, cite)
        reason = step.note or ("practice" if step.is_practice else "")
        # A node step runs on its server; a migration's site steps (the new server) concern the server it replaces.
        concerns = step.scope == "node" or (isinstance(runbook, Migration) and step.scope == "site")
        self.append(step.kind, description, command, None, reason, cite, step.scope, when or step.when,
                    server.fqdn if server is not None and concerns else None)  # fmt: skip


_CITES: dict[int, tuple] = {}  # a step's citation is the same every time: built once per step object


def plan_for_group(group: ServerGroup, catalog: Catalog, rules: Rules, *, target: str | None = None, today: date,
                   context: OrganisationContext | None = None, cache: dict | None = None) -> GroupPlan:  # fmt: skip
    """One plan for a cluster, a DAG or a standalone server (a group of one)."""
    context = context or OrganisationContext(group.organisation)
    ordered = _member_order(group.members)
    works: dict[str, _Work] = {}
    failures: list[tuple[PlanServer, str]] = []
    for member in ordered:
        try:
            works[member.fqdn] = _work(member, catalog, rules, target, today, context, cache)
        except PlanError as error:
            failures.append((member, str(error)))
    one_window = group.kind is not None and any(r.is_one_window for r in rules.runbooks if r.cluster_kind == group.kind)
    if failures and (one_window or len(group.members) == 1 or not works):
        member, reason = failures[0]
        if len(group.members) == 1:
            raise PlanError(reason)
        if not works:
            raise PlanError(f"{group.name}: no member can be planned: {reason}")
        raise PlanError(f"{group.name}: the {group.kind} is planned as a whole and {member.fqdn} cannot be planned: "
                        f"{reason.split(': ', 1)[-1]}")  # fmt: skip
    blocked = dict((member.fqdn, reason) for member, reason in failures)
    members = tuple(
        MemberPlan(m.fqdn, _role(m, group.kind), works[m.fqdn].current if m.fqdn in works else {},
                   works[m.fqdn].target if m.fqdn in works else {}, works[m.fqdn].notes if m.fqdn in works else (),
                   blocked.get(m.fqdn))
        for m in ordered
    )  # fmt: skip
    assembly = _Assembly(group, rules, catalog, context)
    for step in _ad_steps(list(works.values()), rules, catalog, context):
        assembly.add(step)
    segments = {member.fqdn: number for number, member in enumerate(ordered, start=1)}
    migrating = [works[m.fqdn] for m in ordered if m.fqdn in works and works[m.fqdn].migration is not None]
    if migrating:
        _assemble_migrations(assembly, migrating, segments)
    else:
        _assemble_runbooks(assembly, [m for m in ordered if m.fqdn in works], works, segments, one_window)
    for member, reason in failures:
        assembly.note(f"{member.fqdn} is not in this plan: {reason.split(': ', 1)[-1]}")
    return GroupPlan(group.name, group.kind, group.organisation, members, tuple(assembly.steps), tuple(assembly.notes),
                     one_window)  # fmt: skip


def _phases(assembly: _Assembly, members: Sequence[PlanServer], works: Mapping[str, _Work]):
    """Consecutive installs that share a runbook form a phase (2007 CCR: the service pack, then the rollup)."""
    group, rules = assembly.group, assembly.rules
    phases: dict[int, tuple[Runbook | None, dict[str, list[_CuInstall]]]] = {}
    first_build: dict[int, object] = {}
    for member in members:
        for link in works[member.fqdn].chain:
            runbook = rules.runbook_for(link.entry.product, group.kind, install_kind(link.entry), member.facts.roles)
            if runbook is None and group.kind is not None:
                raise PlanError(
                    f"{group.name}: no runbook for {PRODUCTS[link.entry.product].name} {install_kind(link.entry)} "
                    f"installs on a {group.kind} member: add one to the rules (kind runbook)"
                )
            key = id(runbook)
            phases.setdefault(key, (runbook, {}))[1].setdefault(member.fqdn, []).append(link)
            first_build[key] = min(first_build.get(key, link.entry.build), link.entry.build)
    return [phases[key] for key in sorted(phases, key=lambda k: first_build[k])]


def _assemble_runbooks(assembly: _Assembly, members: list[PlanServer], works: Mapping[str, _Work],
                       segments: Mapping[str, int], one_window: bool) -> None:  # fmt: skip
    """Phase by phase: the cluster's opening steps, the passive members one at a time, the failover to an updated
    node, the formerly active member(s), the closing steps. In a one-window cluster the node that took over is the
    active one in the next phase, so its former active node is patched first then."""
    group = assembly.group
    phases = _phases(assembly, members, works)
    if not phases:
        return
    active = {m.fqdn for m in members if m.is_active}
    spans = _forefront_spans(assembly, members, phases)
    spanning = [rule for rule in spans if group.kind in rule.cluster_kinds]
    if one_window:
        assembly.segment = 1
    for rule in spanning:
        for member in members:
            if member.is_forefront_installed:
                assembly.add(Step(PRE_STEP, f"{rule.before_description} on {member.name}", rule.before_command, None,
                                  _step_reason(rule), rule.source.cite(), "node", "before", member.fqdn))  # fmt: skip
    prerequisites_done: set[str] = set()
    for runbook, by_member in phases:
        order = sorted(members, key=lambda m: (m.fqdn in active, m.fqdn))
        passive = [m for m in order if m.fqdn not in active]
        working = [m for m in order if m.fqdn in by_member]
        target = next((m for m in passive if m.fqdn in by_member), passive[0] if passive else None)
        values = {**_group_values(group, members, active), "target": target.name if target else "<updated node>",
                  "update": _phase_title(by_member)}  # fmt: skip
        steps = runbook.steps if runbook else ()
        between = [step for step in steps if step.when == "between"]
        if not one_window:
            assembly.segment = segments[working[0].fqdn]
        for step in steps:
            if step.scope == "cluster" and step.when == "before":
                assembly.template(runbook, step, values, server=None)
        handed_over = False
        for member in order:
            if member.fqdn in active and between and not handed_over and target is not None and member is not target:
                for step in between:
                    assembly.template(runbook, step, values, server=None)
                handed_over = True
            if member.fqdn not in by_member:
                continue
            if not one_window:
                assembly.segment = segments[member.fqdn]
            if member.fqdn not in prerequisites_done:
                for step in works[member.fqdn].prerequisites:
                    assembly.add(step)
                prerequisites_done.add(member.fqdn)
            _member_block(assembly, runbook, member, by_member[member.fqdn], values, spans, spanning,
                          member.fqdn in active)  # fmt: skip
        for step in steps:
            if step.scope == "cluster" and step.when == "after":
                assembly.template(runbook, step, values, server=None)
        for note in runbook.notes if runbook else ():
            assembly.note(note)
        if handed_over:
            active = {target.fqdn}
    values = _group_values(group, members, active)
    for rule in spanning:
        if rule.cluster_verify_command:
            assembly.add(Step(VERIFY, fill(rule.cluster_verify_description, values),
                              fill(rule.cluster_verify_command, values), None, _step_reason(rule),
                              rule.source.cite(), "cluster", "after"))  # fmt: skip
        for member in sorted(members, key=lambda m: (m.fqdn not in active, m.fqdn)):
            if member.is_forefront_installed:
                first = " (the active node first)" if member.fqdn in active else ""
                assembly.add(Step(POST_STEP, f"{rule.after_description} on {member.name}{first}", rule.after_command,
                                  None, _step_reason(rule), rule.source.cite(), "node", "after", member.fqdn))  # fmt: skip


def _phase_title(by_member: Mapping[str, list[_CuInstall]]) -> str:
    titles = []
    for links in by_member.values():
        for link in links:
            if link.reason and link.entry.title not in titles:
                titles.append(link.entry.title)
    return titles[-1] if titles else "maintenance"


def _group_values(group: ServerGroup, members: Sequence[PlanServer], active: set[str]) -> dict[str, str]:
    holders = [m for m in members if m.fqdn in active]
    source = holders[0] if group.kind == "SCR" and holders else None
    standbys = [m for m in members if m.fqdn not in active] if group.kind == "SCR" else []
    return {
        "cluster": group.name, "cms": group.name, "active": holders[0].name if holders else "<active node>",
        "source": source.name if source else "<SCR source>",
        "standby": standbys[0].name if standbys else "<SCR standby>",
    }  # fmt: skip


def _member_block(assembly: _Assembly, runbook: Runbook | None, member: PlanServer, links: list[_CuInstall],
                  values: Mapping[str, str], spans, spanning, is_active: bool) -> None:  # fmt: skip
    """One member's part of a phase: the runbook's steps before, its installs (each .NET upgrade just before the CU
    that needs it; Forefront around them unless it spans the cluster), the runbook's steps after."""
    rules, catalog, group = assembly.rules, assembly.catalog, assembly.group
    installs = [link for link in links if link.reason]
    final = installs[-1].entry if installs else links[-1].entry
    member_values = {**values, "server": member.name, "fqdn": member.fqdn, "build": final.build.long,
                     "update": final.title, "other": _other_server(assembly, member)}  # fmt: skip
    key = (id(runbook), is_active, final.product, member.facts.roles, group.kind is None)
    steps = _MEMBER_STEPS.get(key)
    if steps is None or steps[0] is not runbook:
        chosen = [s for s in (runbook.steps if runbook else ()) if s.scope != "cluster"
                  and _step_applies(s, is_active, member, final, group)]  # fmt: skip
        steps = _MEMBER_STEPS[key] = (runbook, chosen)
    steps = steps[1]
    for step in steps:
        if step.when == "before" and not _needs_missing(assembly, step, member, member_values):
            assembly.template(runbook, step, member_values, server=member)
    around = [rule for rule in spans if rule not in spanning and member.fqdn in spans[rule]]
    for link in links:
        for rule in around:
            if spans[rule][member.fqdn][0] is link:
                assembly.add(Step(PRE_STEP, f"{rule.before_description} on {member.name}", rule.before_command, None,
                                  _step_reason(rule), rule.source.cite(), "node", "before", member.fqdn))  # fmt: skip
        if link.dotnet_before:
            dotnet = rules.dotnet[link.entry.product]
            assembly.add(Step(PREREQUISITE, f"Install .NET Framework {link.dotnet_before} on {member.name} and reboot",
                              None, None,
                              f"{link.entry.level} supports .NET {', '.join(dotnet.levels.get(link.entry.level, ()))}",
                              dotnet.source.cite(), "node", "before", member.fqdn))  # fmt: skip
        if link.reason:
            entry = link.entry
            esu = " (ESU-only update)" if is_esu_only(entry, rules) else ""
            assembly.add(Step(INSTALL, f"Install {entry.title}{esu} on {member.name}",
                              _install_command(rules, catalog, entry), entry.kb, link.reason, None, "node", "install",
                              member.fqdn))  # fmt: skip
        for rule in around:
            if spans[rule][member.fqdn][1] is link:
                assembly.add(Step(POST_STEP, f"{rule.after_description} on {member.name}", rule.after_command, None,
                                  _step_reason(rule), rule.source.cite(), "node", "after", member.fqdn))  # fmt: skip
    for step in steps:
        if step.when == "after" and not _needs_missing(assembly, step, member, member_values):
            assembly.template(runbook, step, member_values, server=member)
    if runbook is None and installs:
        assembly.add(Step(VERIFY, f"ExSetup.exe on {member.name} reports {final.build.long} ({final.title})",
                          VERIFY_COMMAND, final.kb, f"{final.title} is build {final.build.short}", None, "node",
                          "after", member.fqdn))  # fmt: skip


_MEMBER_STEPS: dict[tuple, tuple] = {}  # a runbook's node steps for one kind of member (the runbook kept alive)


def _step_applies(
    step: RunbookStep, is_active: bool, member: PlanServer, entry: CatalogEntry, group: ServerGroup
) -> bool:
    if step.on == "passive" and is_active:
        return False
    if step.on == "active" and not is_active:
        return False
    if step.products and entry.product not in step.products:
        return False
    if step.roles and not set(step.roles) & set(member.facts.roles):
        return False
    return not (step.needs == "clustered" and group.kind is None)


def _needs_missing(assembly: _Assembly, step: RunbookStep, member: PlanServer, values: Mapping[str, str]) -> bool:
    if step.needs == "other_server" and not values.get("other"):
        assembly.note(f"{member.fqdn}: no other Mailbox server to take its queued mail, so the step "
                      f"\"{fill(step.description, {**values, 'other': '…'})}\" is left out: queued mail waits "
                      "until the server is back")  # fmt: skip
        return True
    return False


def _other_server(assembly: _Assembly, member: PlanServer) -> str:
    """A server to take a member's queued mail: another member of its DAG, else another Mailbox server of the
    organisation running the same or a newer version."""
    others = [m.fqdn for m in assembly.group.members if m.fqdn != member.fqdn]
    if others:
        return others[0]
    product = product_for_build(facts_parse(member.facts).build)
    if product is None:
        return ""
    newer = PRODUCT_ORDER[PRODUCT_ORDER.index(product.key) :]
    servers = assembly.context.mailbox_servers
    return next((fqdn for key in newer for fqdn in servers.get(key, ()) if fqdn != member.fqdn), "")


def _forefront_spans(assembly: _Assembly, members, phases) -> dict[StepRule, dict[str, tuple]]:
    """Per step rule (Forefront), per member: the first and last install it wraps."""
    spans: dict[StepRule, dict[str, tuple]] = {}
    for rule in assembly.rules.steps:
        for member in members:
            if not _condition(rule, member):
                continue
            links = [link for _, by_member in phases for link in by_member.get(member.fqdn, ())
                     if link.reason and link.entry.product in rule.products
                     and install_kind(link.entry) in rule.applies_to_kinds]  # fmt: skip
            if links:
                spans.setdefault(rule, {})[member.fqdn] = (links[0], links[-1])
    return spans


def _condition(rule: StepRule, server: PlanServer) -> bool:
    if rule.condition == "forefront_installed":
        return server.is_forefront_installed
    return False


def _step_reason(rule: StepRule) -> str:
    return "required around this install" + (f"; {rule.note}" if rule.note else "")


def _assemble_migrations(assembly: _Assembly, works: Sequence[_Work], segments: Mapping[str, int]) -> None:
    """Swing plans, one server after the other: new server, moves, decommission."""
    rules, catalog = assembly.rules, assembly.catalog
    for work in works:
        assembly.segment = segments[work.server.fqdn]
        member, migration, goal = work.server, work.migration, work.goal
        level = work.current.get("level") or ""
        values = {
            "server": member.name, "fqdn": member.fqdn, "site": _site_of(assembly, member),
            "cluster": assembly.group.name if assembly.group.kind else "", "update": goal.title,
            "license_switch": _license_switch(rules, catalog, goal.product, goal.level),
            "old_license_switch": _license_switch(rules, catalog, work.product, level),
        }  # fmt: skip
        for step in migration.steps:
            if step.needs == "clustered" and assembly.group.kind is None:
                continue
            assembly.template(migration, step, values, server=member)
            if step.id == "new_server" and not goal.is_base:
                assembly.add(Step(INSTALL, f"Install {goal.title} on the new server", _install_command(rules, catalog, goal),
                                  goal.kb, f"{goal.name} is cumulative within {goal.level}", None, "site", "before",
                                  member.fqdn))  # fmt: skip


def _site_of(assembly: _Assembly, member: PlanServer) -> str:
    return assembly.context.sites.get(member.fqdn) or "its site"


# -- plans for one server, in or out of a cluster ------------------------------------------------------------------


def plan_for_server(server: PlanServer, catalog: Catalog, rules: Rules, *, target: str | None = None, today: date,
                    context: OrganisationContext | None = None) -> Plan:  # fmt: skip
    """A server's plan. A cluster member planned on its own is a group of one, said so in a note: plan the whole
    group with `plan_for_group` (the estate functions below do)."""
    if server.is_clustered_mailbox_server:
        raise PlanError(cms_unknown_message(server))
    group = ServerGroup(server.cluster or server.fqdn, server.cluster_kind if server.cluster else None,
                        context.name if context else "", (server,))  # fmt: skip
    plan = plan_for_group(group, catalog, rules, target=target, today=today, context=context).view(server.fqdn)
    if server.cluster:
        plan = replace(plan, notes=(f"planned without the other members of {server.cluster}: plan the whole "
                                    f"{server.cluster_kind} to get its order and failovers", *plan.notes))  # fmt: skip
    return plan


def cms_unknown_message(server: PlanServer, *, named: bool = True) -> str:
    text = (
        "a clustered mailbox server (IsMemberOfCluster: Yes) whose nodes are not in the inventory: import its nodes "
        f"(one row per node with its ExSetup.exe build, cluster={server.name}, cluster_kind CCR or SCC, cluster_role "
        "active or passive) before planning it; the plan of a clustered mailbox server is the plan of its nodes"
    )
    return f"{server.fqdn} is {text}" if named else text
