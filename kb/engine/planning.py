"""Upgrade planning: an ordered, prerequisite-aware plan per server, and a rollout order for an estate."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .builds import PRODUCTS, BuildForm, InvalidBuildError, product_for_build
from .catalog import Catalog, CatalogEntry, Kind, Level, Resolution, normalize_kb
from .compliance import ServerFacts, facts_parse
from .names import canonical_update_name
from .rules import GateRequirement, PrerequisiteRule, Rules, StepRule, version_key

PREREQUISITE, PRE_STEP, INSTALL, POST_STEP, VERIFY = "prerequisite", "pre_step", "install", "post_step", "verify"
VERIFY_COMMAND = "Get-Command Exsetup.exe | ForEach {$_.FileVersionInfo}"
COPY_STATUS = {
    "2007": "Get-StorageGroupCopyStatus -Server {name}",
    "2010": "Get-MailboxDatabaseCopyStatus -Server {name}",
}
MOVE_ACTIVE = {
    "2007": "Move-ClusteredMailboxServer -Identity {cluster} -TargetMachine <passive node> -MoveComment 'Patching'",
    "2010": "Move-ActiveMailboxDatabase -Server {name}",
}


class PlanError(ValueError):
    """The request cannot be planned; the message explains why and, where there is one, the way that works."""


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    description: str
    command: str | None = None
    kb: str | None = None
    reason: str = ""
    rule: str | None = None  # the rule key and its source

    def as_dict(self) -> dict:
        return {
            "kind": self.kind, "description": self.description, "command": self.command, "kb": self.kb,
            "reason": self.reason, "rule": self.rule,
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

    @property
    def is_empty(self) -> bool:
        return not any(step.kind == INSTALL for step in self.steps)

    def as_dict(self) -> dict:
        return {
            "server": self.fqdn, "current": dict(self.current), "target": dict(self.target),
            "steps": [step.as_dict() for step in self.steps], "notes": list(self.notes),
        }  # fmt: skip


# -- per-server plan -------------------------------------------------------------------------------


def plan_for_server(
    server: PlanServer, catalog: Catalog, rules: Rules, *, target: str | None = None, today: date
) -> Plan:
    """Steps from the server's current build to the target: default the latest update of its current level."""
    try:
        parsed = facts_parse(server.facts)
    except InvalidBuildError as error:
        raise PlanError(f"{server.fqdn}: {error}") from None
    resolution = catalog.resolve(parsed, today=today)
    if resolution.product is None or resolution.level is None:
        raise PlanError(f"{server.fqdn}: build {parsed.build} is not a known Exchange 2007 or later build")
    if parsed.form.is_level_only and not resolution.product.is_cumulative:
        notes = ("rollup level unknown (AdminDisplayVersion): the plan assumes the service pack without rollups",)
    elif parsed.form is BuildForm.ADMIN_DISPLAY:
        notes = ("security update level unknown (AdminDisplayVersion): the plan assumes the CU without SUs",)
    else:
        notes = ()
    product = resolution.product.key
    if target and _is_se_target(target):
        return _plan_to_se(server, catalog, rules, resolution, today, notes)
    goal_level, goal = _target(catalog, product, resolution, target, today, server.fqdn)
    current_build = resolution.build
    if goal.build < current_build or (goal.build == current_build and target and goal.level != resolution.level.name):
        raise PlanError(
            f"{server.fqdn}: {goal.title} ({goal.build}) is older than the current build {current_build}: "
            "a downgrade is not supported (uninstalling a CU or SP means rebuilding the server)"
        )
    installs = _install_chain(server, catalog, rules, resolution, goal_level, goal, today)
    steps = _assemble(server, catalog, rules, product, resolution.level, installs, goal)
    current = {"build": current_build.short, "product": resolution.product.name, "level": resolution.level.name,
               "update": resolution.entry.name if resolution.entry else None}  # fmt: skip
    target_info = {"build": goal.build.short, "product": PRODUCTS[goal.product].name, "level": goal.level,
                   "update": goal.name, "kb": goal.kb}  # fmt: skip
    if not installs:
        notes = (*notes, f"already at or above {goal.title}: nothing to install")
    return Plan(server.fqdn, current, target_info, tuple(steps), notes)


def _is_se_target(target: str) -> bool:
    return target.strip().lower() in {"se", "exchange se", "exchange server se", "subscription edition"}


def _target(catalog: Catalog, product: str, resolution: Resolution, target: str | None, today: date, fqdn: str):
    level = resolution.level
    if not target:
        # The latest update of the current level; from a level past N-1, the newest level (what compliance asks).
        if level not in catalog.support_window(product, today):
            newest = catalog.latest_level(product, today)
            if newest is not None and newest.base_build > level.base_build:
                level = newest
        return level, catalog.latest_in_series(product, level.name, today)
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
        return catalog.level(product, entry.level), entry
    if (other := _other_product(text, product)) is not None:
        raise PlanError(_cross_version_message(product, other))
    as_level = catalog.level(product, text.upper()) or catalog.level(product, text)
    if as_level is not None:
        return as_level, catalog.latest_in_series(product, as_level.name, today)
    wanted = (canonical_update_name(text) or text).lower()  # "Nov24SUv2", "RU3-v3": Microsoft's spellings
    for candidate in (level.name, *(lvl.name for lvl in reversed(catalog.levels(product)))):
        for entry in catalog.installable(product, candidate):
            if entry.name and entry.name.lower() == wanted:
                return catalog.level(product, entry.level), entry
    raise PlanError(f"--target: {target!r} is not a level, update or KB of {PRODUCTS[product].name}")


def _other_product(text: str, product: str) -> str | None:
    match = re.fullmatch(r"(?i)(?:exchange\s+(?:server\s+)?)?(2007|2010|2013|2016|2019)", text)
    if match and match.group(1) != product:
        return match.group(1)
    return None


def _cross_version_message(current: str, wanted: str) -> str:
    return (
        f"no in-place upgrade from {PRODUCTS[current].name} to {PRODUCTS[wanted].name}: install new "
        f"{PRODUCTS[wanted].name} servers, move mailboxes and namespaces to them, then decommission this server "
        "(the only in-place path between versions is Exchange 2019 CU14 or CU15 to SE)"
    )


def _plan_to_se(server, catalog, rules, resolution, today, notes) -> Plan:
    product, level = resolution.product.key, resolution.level
    if product == "SE":
        raise PlanError(f"{server.fqdn}: already runs Exchange Server SE")
    if product != "2019":
        raise PlanError(
            _cross_version_message(product, "SE").replace("Exchange Server Subscription Edition", "Exchange SE")
        )
    se_level = catalog.latest_level("SE", today)
    if se_level is None:
        raise PlanError("the catalog has no Exchange SE release yet")
    steps: list[Step] = []
    if level.name not in ("CU14", "CU15"):
        cu14 = catalog.level("2019", "CU14")
        chain = _install_chain(server, catalog, rules, resolution, cu14, catalog.series("2019", "CU14")[0], today)
        steps.extend(_assemble(server, catalog, rules, "2019", level, chain, catalog.series("2019", "CU14")[0]))
        steps = [s for s in steps if s.kind != VERIFY]
        notes = (*notes, "first reach Exchange 2019 CU14 or CU15: only they upgrade in place to SE")
    goal = catalog.latest_in_series("SE", se_level.name, today)
    chain = [
        _CuInstall(catalog.series("SE", se_level.name)[0], "in-place upgrade to Exchange SE (from 2019 CU14/CU15)")
    ]
    if goal is not None and not goal.is_base:
        chain.append(_CuInstall(goal, f"latest update of SE {se_level.name}"))
    se_steps = _assemble(server, catalog, rules, "SE", se_level, chain, goal)
    steps.extend(step for step in se_steps if step.kind != PREREQUISITE or step not in steps)
    current = {"build": resolution.build.short, "product": resolution.product.name, "level": level.name,
               "update": resolution.entry.name if resolution.entry else None}  # fmt: skip
    target_info = {"build": goal.build.short, "product": PRODUCTS["SE"].name, "level": goal.level, "update": goal.name,
                   "kb": goal.kb}  # fmt: skip
    return Plan(server.fqdn, current, target_info, tuple(steps), notes)


@dataclass(frozen=True, slots=True)
class _CuInstall:
    entry: CatalogEntry
    reason: str
    dotnet_before: str | None = None  # .NET to install first


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
            f"{server.fqdn}: no supported path from {current.name} on .NET {start_dotnet or '(not reported)'} to "
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


def _assemble(server: PlanServer, catalog, rules: Rules, product: str, level: Level, chain, goal) -> list[Step]:
    steps: list[Step] = []
    if not chain:
        return steps
    target_level = chain[-1].entry.level
    steps.extend(_prerequisite_steps(server, catalog, rules, product, target_level))
    steps.extend(_cluster_pre_steps(server, product))
    step_rules = [rule for rule in rules.steps if product in rule.products and _condition(rule, server)]
    installs = [index for index, link in enumerate(chain) if link.reason]
    # A pre-step runs once before the first install it applies to, its post-step once after the last one.
    spans: dict[int, list[int]] = {}
    for number, rule in enumerate(step_rules):
        applies = [i for i in installs if _install_kind(chain[i].entry) in rule.applies_to_kinds]
        if applies:
            spans[number] = [applies[0], applies[-1]]
    seen_install = False
    for index, link in enumerate(chain):
        if link.dotnet_before:
            dotnet = rules.dotnet[product]
            steps.append(
                Step(PREREQUISITE, f"Install .NET Framework {link.dotnet_before} and reboot", None, None,
                     f"{link.entry.level} supports .NET {', '.join(dotnet.levels.get(link.entry.level, ()))}",
                     dotnet.source.cite())
            )  # fmt: skip
        if not link.reason:
            continue
        entry = link.entry
        for number, (first, _) in spans.items():
            if first == index:
                rule = step_rules[number]
                steps.append(
                    Step(
                        PRE_STEP,
                        rule.before_description,
                        rule.before_command,
                        None,
                        _step_reason(rule),
                        rule.source.cite(),
                    )
                )
        steps.append(Step(INSTALL, f"Install {entry.title}", _install_command(entry), entry.kb, link.reason))
        for number, (_, last) in reversed(spans.items()):
            if last == index:
                rule = step_rules[number]
                steps.append(
                    Step(
                        POST_STEP,
                        rule.after_description,
                        rule.after_command,
                        None,
                        _step_reason(rule),
                        rule.source.cite(),
                    )
                )
        seen_install = True
    if seen_install:
        steps.extend(_cluster_post_steps(server, product))
        final = chain[-1].entry
        steps.append(
            Step(
                VERIFY,
                f"Check that ExSetup.exe reports {final.build.long}",
                VERIFY_COMMAND,
                final.kb,
                f"{final.title} is build {final.build.short}",
            )
        )
    return steps


def _install_kind(entry: CatalogEntry) -> str:
    """A base level (CU, SP, or SE RTM over 2019) is a setup run: its steps are the CU/SP steps."""
    if entry.is_base:
        return "CU" if PRODUCTS[entry.product].is_cumulative else "SP"
    return entry.kind.value


def _condition(rule: StepRule, server: PlanServer) -> bool:
    if rule.condition == "forefront_installed":
        return server.is_forefront_installed
    if rule.condition == "dag_member":
        return server.cluster_kind == "DAG"
    return False


def _step_reason(rule: StepRule) -> str:
    text = "required around this install" + (f"; {rule.note}" if rule.note else "")
    return text


def _install_command(entry: CatalogEntry) -> str:
    if entry.is_base:
        if entry.product in ("2007", "2010"):
            return "setup.com /mode:upgrade"
        number = int(entry.level[2:]) if entry.level.startswith("CU") else 0
        # The diagnostic-data licence switch arrived with 2016 CU22 and 2019 CU11.
        is_new_switch = entry.product == "SE" or number >= {"2016": 22, "2019": 11}.get(entry.product, 10**6)
        switch = (
            "/IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF"
            if is_new_switch
            else "/IAcceptExchangeServerLicenseTerms"
        )
        return f"Setup.exe /Mode:Upgrade {switch}"
    kb = entry.kb or "<KB>"
    if entry.kind is Kind.RU:
        return f"msiexec /update Exchange{entry.product}-{kb}-x64-en.msp (elevated)"
    return f"Run the {entry.name} package for {entry.level} ({kb}) from an elevated command prompt"


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
            f"Install {rule.name}",
            rule.command,
            rule.kb,
            f"required by {PRODUCTS[product].name} {target_level}"
            + (f" ({', '.join(rule.roles)} role)" if rule.roles else ""),
            rule.source.cite(),
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


def _cluster_pre_steps(server: PlanServer, product: str) -> list[Step]:
    if not server.cluster:
        return []
    family = "2007" if product == "2007" else "2010"
    check = COPY_STATUS[family].format(name=server.name)
    steps = [
        Step(
            PRE_STEP,
            "Check replication health: copy status Healthy, CopyQueueLength 0 and ReplayQueueLength 0",
            check,
            None,
            f"member of {server.cluster_kind} {server.cluster}: patch one member at a time",
        )
    ]
    if server.is_active:
        steps.append(
            Step(
                PRE_STEP,
                f"Move the active role off {server.name}",
                MOVE_ACTIVE[family].format(name=server.name, cluster=server.cluster),
                None,
                "the active member is patched last, after its passive members",
            )
        )
    return steps


def _cluster_post_steps(server: PlanServer, product: str) -> list[Step]:
    if not server.cluster:
        return []
    family = "2007" if product == "2007" else "2010"
    return [
        Step(
            POST_STEP,
            "Check replication health again before patching the next member",
            COPY_STATUS[family].format(name=server.name),
            None,
            f"{server.cluster_kind} {server.cluster}",
        )
    ]


# -- estate rollout --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A recurring maintenance window in its own time zone."""

    name: str
    time_zone: str
    weekdays: tuple[int, ...]  # 0 = Monday
    start: clock
    duration_minutes: int
    week_of_month: int | None = None  # only the Nth such weekday of the month

    def next_start(self, after: datetime) -> datetime | None:
        """The first start at or after `after` (an aware datetime), within the next 400 days."""
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        local = after.astimezone(zone)
        for offset in range(400):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.weekdays:
                continue
            if self.week_of_month and (day.day - 1) // 7 + 1 != self.week_of_month:
                continue
            start = datetime.combine(day, self.start, tzinfo=zone)
            if start >= after:
                return start
        return None


@dataclass(frozen=True, slots=True)
class EstateServer:
    server: PlanServer
    site: str
    is_internet_facing: bool
    windows: tuple[WindowSpec, ...] = ()
    organisation: str = ""


@dataclass(frozen=True, slots=True)
class Wave:
    number: int
    starts_at: datetime | None
    window: str | None
    servers: tuple[tuple[EstateServer, Plan], ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rollout:
    waves: tuple[Wave, ...]
    blocked: tuple[tuple[str, str], ...]  # (fqdn, reason)
    up_to_date: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "waves": [
                {
                    "number": wave.number,
                    "starts_at": wave.starts_at.isoformat() if wave.starts_at else None,
                    "window": wave.window,
                    "notes": list(wave.notes),
                    "servers": [
                        {
                            "fqdn": item.server.fqdn,
                            "site": item.site,
                            "roles": list(item.server.facts.roles),
                            "steps": [{k: v for k, v in step.as_dict().items() if k != "rule"} for step in plan.steps],
                        }
                        for item, plan in wave.servers
                    ],
                }
                for wave in self.waves
            ],
            "blocked": [{"fqdn": fqdn, "reason": reason} for fqdn, reason in self.blocked],
            "up_to_date": list(self.up_to_date),
        }


def rollout_plan(
    servers: Sequence[EstateServer], catalog: Catalog, rules: Rules, *, today: date, start: datetime
) -> Rollout:
    """Waves: Internet-facing sites first; within a site the role order; one member of a cluster or DAG per wave,
    passive members before the active one; each wave in the next maintenance window all its servers share."""
    plans: dict[tuple, Plan | PlanError] = {}
    planned: list[tuple[EstateServer, Plan]] = []
    blocked, up_to_date = [], []
    for item in servers:
        key = (item.server.facts, item.server.is_forefront_installed, item.server.cluster_kind, item.server.is_active)
        if key not in plans:
            try:
                plans[key] = plan_for_server(item.server, catalog, rules, today=today)
            except PlanError as error:
                plans[key] = error
        result = plans[key]
        if isinstance(result, PlanError):
            blocked.append((item.server.fqdn, str(result).split(": ", 1)[-1]))
        elif result.is_empty:
            up_to_date.append(item.server.fqdn)
        else:
            planned.append((item, replace(result, fqdn=item.server.fqdn)))
    rank = {role: index for index, role in enumerate(rules.role_order)}
    groups: dict[tuple, list[tuple[EstateServer, Plan]]] = {}
    for item, plan in planned:
        role = min((rank.get(r, len(rank)) for r in item.server.facts.roles), default=len(rank))
        groups.setdefault((not item.is_internet_facing, item.site, role), []).append((item, plan))
    waves: list[list[tuple[EstateServer, Plan]]] = []
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda pair: (pair[0].server.is_active, pair[0].server.fqdn))
        first = len(waves)
        for pair in members:
            cluster = pair[0].server.cluster
            index = first
            while index < len(waves) and cluster and any(other.server.cluster == cluster for other, _ in waves[index]):
                index += 1
            if index == len(waves):
                waves.append([])
            waves[index].append(pair)
    waves = _active_after_passive(waves)
    return Rollout(tuple(_schedule(waves, start)), tuple(blocked), tuple(up_to_date))


def _active_after_passive(waves: list[list]) -> list[list]:
    """Move an active member behind every passive member of its cluster (they may sit in another site's wave)."""
    last_passive: dict[str, int] = {}
    for index, wave in enumerate(waves):
        for item, _ in wave:
            if item.server.cluster and not item.server.is_active:
                last_passive[item.server.cluster] = index
    for index in range(len(waves)):
        for pair in list(waves[index]):
            item = pair[0]
            cluster = item.server.cluster
            if not (cluster and item.server.is_active and last_passive.get(cluster, -1) >= index):
                continue
            waves[index].remove(pair)
            target = last_passive[cluster] + 1
            while target < len(waves) and any(other.server.cluster == cluster for other, _ in waves[target]):
                target += 1
            if target == len(waves):
                waves.append([])
            waves[target].append(pair)
    return [wave for wave in waves if wave]


def _schedule(waves: list[list], start: datetime) -> list[Wave]:
    result = []
    after = start
    for number, wave in enumerate(waves, start=1):
        constrained = [item.windows for item, _ in wave if item.windows]
        names = set.intersection(*({w.name for w in windows} for windows in constrained)) if constrained else set()
        notes: list[str] = []
        starts_at, window_name = None, None
        if constrained and not names:
            notes.append("its servers share no maintenance window: schedule by hand or split the wave")
        elif names:
            specs = {w.name: w for windows in constrained for w in windows if w.name in names}
            options = [(spec.next_start(after), spec) for spec in specs.values()]
            options = [(when, spec) for when, spec in options if when is not None]
            if options:
                when, spec = min(options, key=lambda pair: (pair[0], pair[1].name))
                starts_at, window_name = when, spec.name
                after = when + timedelta(minutes=spec.duration_minutes)
        else:
            notes.append("no maintenance window set for these servers")
        ordered = tuple(sorted(wave, key=lambda pair: (pair[0].server.is_active, pair[0].server.fqdn)))
        result.append(Wave(number, starts_at, window_name, ordered, tuple(notes)))
    return result


# -- coexistence -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Blocker:
    fqdn: str
    site: str
    reason: str
    plan: Plan | None
    rule: str
    organisation: str = ""


def coexistence_check(
    introduce: str, servers: Sequence[EstateServer], catalog: Catalog, rules: Rules, *, today: date,
    site: str | None = None, organisation: str | None = None,
) -> list[Blocker]:  # fmt: skip
    """What stops a newer version from entering an organisation (or one of its sites), with the plan that clears
    each. Servers of other organisations never block; a site-scoped gate (2010 into 2007) looks at that site only,
    an organisation-wide gate at the whole organisation even when a site is named."""
    gate = next((g for g in rules.gates if g.introduce == introduce), None)
    if gate is None:
        raise PlanError(
            f"--introduce: no coexistence rules for {introduce!r} (known: {', '.join(g.introduce for g in rules.gates)})"
        )
    if site and organisation is None:
        organisation = next((s.organisation for s in servers if s.site == site), None)
    scoped = [
        s
        for s in servers
        if (organisation is None or s.organisation == organisation)
        and (site is None or gate.scope != "site" or s.site == site)
    ]
    blockers: list[Blocker] = []
    for item in scoped:
        blockers.extend(
            replace(b, organisation=item.organisation)
            for b in _server_blockers(item, introduce, gate, catalog, rules, today)
        )
    return blockers


def _server_blockers(
    item: EstateServer, introduce: str, gate, catalog: Catalog, rules: Rules, today: date
) -> list[Blocker]:
    try:
        parsed = facts_parse(item.server.facts)
    except InvalidBuildError as error:
        return [Blocker(item.server.fqdn, item.site, f"unknown build: {error}", None, gate.source.cite())]
    product = product_for_build(parsed.build)
    if product is None:
        return []
    if product.key in gate.forbids:
        reason = (
            f"{product.name} may not remain in the organisation when {PRODUCTS[introduce].name} is introduced: "
            "move its workloads to newer servers and decommission it"
        )
        return [Blocker(item.server.fqdn, item.site, reason, None, gate.source.cite())]
    requirements = [r for r in gate.requires if r.product == product.key]
    if gate.self_min_level and product.key == introduce:
        # The newcomer itself must be recent enough (e.g. 2013 CU2+ beside 2007).
        requirements.append(GateRequirement(introduce, gate.self_min_level, None))
    found = (_requirement_blocker(item, requirement, catalog, rules, today, gate) for requirement in requirements)
    return [blocker for blocker in found if blocker is not None]


def _requirement_blocker(
    item: EstateServer, requirement, catalog: Catalog, rules: Rules, today, gate
) -> Blocker | None:
    resolution = catalog.resolve(facts_parse(item.server.facts), today=today)
    minimum = catalog.level(requirement.product, requirement.min_level)
    if resolution.level is None or minimum is None:
        return None
    needed = requirement.min_level + (f" {requirement.min_update}" if requirement.min_update else "")
    required_entry = catalog.find(product=requirement.product, level=requirement.min_level, name=requirement.min_update)
    if resolution.level.base_build > minimum.base_build:
        return None
    if resolution.level.name == minimum.name:
        if requirement.min_update is None:
            return None
        if not resolution.is_update_known:
            reason = f"needs {needed} or later; its rollup level is unknown (report the ExSetup.exe version)"
            return Blocker(item.server.fqdn, item.site, reason, None, gate.source.cite())
        if (
            required_entry is not None
            and resolution.floor is not None
            and resolution.floor.build >= required_entry.build
        ):
            return None
    target = requirement.min_update or requirement.min_level
    try:
        plan = plan_for_server(item.server, catalog, rules, target=target, today=today)
    except PlanError as error:
        plan, note = None, f" ({error})"
    else:
        note = ""
    current = resolution.level.name + (
        f" {resolution.entry.name}" if resolution.entry and resolution.entry.name else ""
    )
    reason = f"runs {PRODUCTS[requirement.product].name} {current}; {PRODUCTS[gate.introduce].name} needs {needed} or later{note}"
    return Blocker(item.server.fqdn, item.site, reason, plan, gate.source.cite())
