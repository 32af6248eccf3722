"""The estate as planning sees it: servers resolved once, grouped by organisation and cluster; each server's plan in
its cluster's plan; and the rollout of everything into waves inside maintenance windows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .builds import InvalidBuildError
from .catalog import Catalog, Resolution
from .compliance import ServerFacts, facts_parse
from .planning import (
    INSTALL,
    GroupPlan,
    OrganisationContext,
    Plan,
    PlanError,
    PlanServer,
    ServerGroup,
    Step,
    ad_state,
    cms_unknown_message,
    plan_for_group,
)
from .rules import Rules


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


class Estate:
    """The servers of an estate, resolved once, with their organisations and clusters."""

    def __init__(self, servers: Sequence[EstateServer], catalog: Catalog, rules: Rules, *, today: date) -> None:
        self.servers = list(servers)
        self.catalog, self.rules, self.today = catalog, rules, today
        self.by_fqdn = {item.server.fqdn: item for item in self.servers}
        self._resolved: dict[ServerFacts, Resolution | None] = {}
        self._work_cache: dict = {}
        self.contexts = self._contexts()
        self.groups = self._groups()
        self.clustered_mailbox_servers = {
            (item.organisation, item.server.name.lower()): item
            for item in self.servers
            if item.server.is_clustered_mailbox_server
        }

    def resolution(self, facts: ServerFacts) -> Resolution | None:
        if facts not in self._resolved:
            try:
                resolution = self.catalog.resolve(facts_parse(facts), today=self.today)
            except InvalidBuildError:
                resolution = None
            self._resolved[facts] = resolution if resolution and resolution.level else None
        return self._resolved[facts]

    def product(self, item: EstateServer) -> str | None:
        resolution = self.resolution(item.server.facts)
        return resolution.product.key if resolution else None

    def _contexts(self) -> dict[str, OrganisationContext]:
        products: dict[str, dict[str, list[str]]] = {}
        mailbox: dict[str, dict[str, list[str]]] = {}
        levels: dict[str, list] = {}
        sites: dict[str, dict[str, str]] = {}
        cms_mapped = {(item.organisation, item.server.cluster.lower()) for item in self.servers if item.server.cluster}
        for item in self.servers:
            org = item.organisation
            sites.setdefault(org, {})[item.server.fqdn] = item.site
            resolution = self.resolution(item.server.facts)
            if resolution is None:
                continue
            is_mapped_cms = item.server.is_clustered_mailbox_server and (org, item.server.name.lower()) in cms_mapped
            if is_mapped_cms:
                continue  # its nodes stand for it
            key = resolution.product.key
            products.setdefault(org, {}).setdefault(key, []).append(item.server.fqdn)
            if "Mailbox" in item.server.facts.roles:
                mailbox.setdefault(org, {}).setdefault(key, []).append(item.server.fqdn)
            floor = resolution.floor.build if resolution.floor is not None and resolution.is_update_known else None
            levels.setdefault(org, []).append((key, resolution.level.name, floor))
        return {
            org: OrganisationContext(
                org, {k: tuple(v) for k, v in products.get(org, {}).items()},
                ad_state(levels.get(org, ()), self.rules, self.catalog),
                {k: tuple(v) for k, v in mailbox.get(org, {}).items()}, sites.get(org, {}),
            )
            for org in sites
        }  # fmt: skip

    def _groups(self) -> dict[tuple[str, str], ServerGroup]:
        members: dict[tuple[str, str], list[EstateServer]] = {}
        for item in self.servers:
            if item.server.cluster and not item.server.is_clustered_mailbox_server:
                members.setdefault((item.organisation, item.server.cluster.lower()), []).append(item)
        groups = {}
        for key, items in members.items():
            kinds = {item.server.cluster_kind for item in items}
            groups[key] = ServerGroup(items[0].server.cluster, sorted(kinds)[0], key[0],
                                      tuple(item.server for item in sorted(items, key=lambda i: i.server.fqdn)))  # fmt: skip
        return groups

    def context(self, organisation: str) -> OrganisationContext:
        return self.contexts.get(organisation) or OrganisationContext(organisation)

    def group_of(self, item: EstateServer) -> ServerGroup | None:
        server = item.server
        if server.is_clustered_mailbox_server:
            return self.groups.get((item.organisation, server.name.lower()))
        if server.cluster:
            return self.groups.get((item.organisation, server.cluster.lower()))
        return None

    def group_named(self, name: str, organisation: str | None = None) -> ServerGroup:
        found = [g for (org, key), g in self.groups.items() if key == name.lower() and organisation in (None, org)]
        if not found:
            cms = [
                i
                for i in self.servers
                if i.server.is_clustered_mailbox_server and i.server.name.lower() == name.lower()
            ]
            if cms:
                raise PlanError(cms_unknown_message(cms[0].server))
            raise PlanError(f"--cluster: {name} is not a cluster or DAG in the inventory")
        if len(found) > 1:
            orgs = ", ".join(sorted(g.organisation for g in found))
            raise PlanError(f"--cluster: {name} exists in several organisations ({orgs}): name the organisation")
        return found[0]

    def plan_group(self, group: ServerGroup, *, target: str | None = None) -> GroupPlan:
        return plan_for_group(group, self.catalog, self.rules, target=target, today=self.today,
                              context=self.context(group.organisation), cache=self._work_cache)  # fmt: skip

    def plan_server(self, fqdn: str, *, target: str | None = None) -> Plan:
        """A server's plan: its view of its cluster's plan, the whole cluster plan for a clustered mailbox server."""
        item = self.by_fqdn.get(fqdn.lower())
        if item is None:
            raise PlanError(f"--server: {fqdn} is not in the inventory")
        group = self.group_of(item)
        if item.server.is_clustered_mailbox_server:
            if group is None:
                raise PlanError(cms_unknown_message(item.server))
            whole = self.plan_group(group, target=target)
            return Plan(item.server.fqdn, whole.members[0].current if whole.members else {},
                        whole.members[0].target if whole.members else {}, whole.steps,
                        (f"{item.server.fqdn} is the clustered mailbox server of {group.kind} {group.name}: its plan is "
                         "the plan of its nodes", *whole.notes), {"name": group.name, "kind": group.kind, "role": "clustered mailbox server"})  # fmt: skip
        if group is None:
            group = ServerGroup(item.server.fqdn, None, item.organisation, (item.server,))
        try:
            plan = self.plan_group(group, target=target)
        except PlanError:
            if len(group.members) > 1:  # say why this server cannot be planned, not the first member's reason
                alone = ServerGroup(group.name, group.kind, group.organisation, (item.server,))
                plan_for_group(alone, self.catalog, self.rules, target=target, today=self.today,
                               context=self.context(group.organisation), cache=self._work_cache)  # fmt: skip
            raise
        member = next(m for m in plan.members if m.fqdn == item.server.fqdn)
        if member.blocked:
            raise PlanError(member.blocked)
        return plan.view(item.server.fqdn)


@dataclass(frozen=True, slots=True)
class RolloutItem:
    """One unit of a wave: a standalone server, one member's part of a DAG or SCR plan, or a whole 2007 cluster."""

    fqdn: str
    site: str
    is_internet_facing: bool
    roles: tuple[str, ...]
    cluster: str | None
    servers: tuple[str, ...]
    window_sets: tuple[tuple[WindowSpec, ...], ...]
    plan: Plan
    organisation: str = ""
    is_active: bool = False
    order: int = 0  # its place in its cluster's plan


@dataclass(frozen=True, slots=True)
class Wave:
    number: int
    starts_at: datetime | None
    window: str | None
    servers: tuple[RolloutItem, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rollout:
    waves: tuple[Wave, ...]
    blocked: tuple[tuple[str, str], ...]  # (fqdn, reason)
    up_to_date: tuple[str, ...] = ()
    preparation: tuple[tuple[str, tuple[Step, ...]], ...] = ()  # (organisation, steps) before the first wave

    def as_dict(self) -> dict:
        def step_dict(step: Step) -> dict:
            return {k: v for k, v in step.as_dict().items() if k not in ("rule", "number")}

        return {
            "preparation": [
                {"organisation": org, "steps": [step_dict(step) for step in steps]} for org, steps in self.preparation
            ],
            "waves": [
                {
                    "number": wave.number,
                    "starts_at": wave.starts_at.isoformat() if wave.starts_at else None,
                    "window": wave.window,
                    "notes": list(wave.notes),
                    "servers": [_item_dict(item, step_dict) for item in wave.servers],
                }
                for wave in self.waves
            ],
            "blocked": [{"fqdn": fqdn, "reason": reason} for fqdn, reason in self.blocked],
            "up_to_date": list(self.up_to_date),
        }


def _item_dict(item: RolloutItem, step_dict) -> dict:
    return {"fqdn": item.fqdn, "site": item.site, "roles": list(item.roles), "cluster": item.cluster,
            "servers": list(item.servers), "steps": [step_dict(step) for step in item.plan.steps]}  # fmt: skip


def rollout_plan(
    servers: Sequence[EstateServer], catalog: Catalog, rules: Rules, *, today: date, start: datetime,
    site: str | None = None,
) -> Rollout:  # fmt: skip
    """Waves: Internet-facing sites first; within a site the role order; a cluster or DAG follows its own plan
    (passive/drained members first, one member per wave; a 2007 CCR/SCC whole, in one window); Active Directory
    preparation once per organisation before the first wave; each wave in the next window all its servers share.
    With `site`, the plans still see the whole estate (a DAG across sites), and only that site's work is listed."""
    estate = Estate(servers, catalog, rules, today=today)
    units: list[RolloutItem] = []
    blocked: list[tuple[str, str]] = []
    up_to_date: list[str] = []
    preparation: dict[str, list[Step]] = {}
    done_groups: set[tuple[str, str]] = set()
    for item in estate.servers:
        server = item.server
        if server.is_clustered_mailbox_server:
            if estate.group_of(item) is None:
                blocked.append((server.fqdn, cms_unknown_message(server, named=False)))
            continue
        group = estate.group_of(item)
        if group is not None:
            key = (group.organisation, group.name.lower())
            if key in done_groups:
                continue
            done_groups.add(key)
            _group_units(estate, group, units, blocked, up_to_date, preparation)
            continue
        try:
            plan = estate.plan_server(server.fqdn)
        except PlanError as error:
            blocked.append((server.fqdn, str(error).split(": ", 1)[-1]))
            continue
        if plan.is_empty:
            up_to_date.append(server.fqdn)
            continue
        _collect_preparation(preparation, item.organisation, plan.steps)
        own = tuple(step for step in plan.steps if step.scope != "organisation")
        units.append(RolloutItem(server.fqdn, item.site, item.is_internet_facing, server.facts.roles, None,
                                 (server.fqdn,), (item.windows,), replace(plan, steps=own), item.organisation))  # fmt: skip
    if site is not None:
        in_site = {item.server.fqdn for item in estate.servers if item.site == site}
        units = [unit for unit in units if unit.site == site]
        blocked = [(fqdn, reason) for fqdn, reason in blocked if fqdn in in_site]
        up_to_date = [fqdn for fqdn in up_to_date if fqdn in in_site]
        organisations = {unit.organisation for unit in units}
        preparation = {org: steps for org, steps in preparation.items() if org in organisations}
    waves = _place(units, rules)
    return Rollout(tuple(_schedule(waves, start)), tuple(blocked), tuple(up_to_date),
                   tuple((org, tuple(steps)) for org, steps in sorted(preparation.items())))  # fmt: skip


def _collect_preparation(preparation: dict[str, list[Step]], organisation: str, steps: Iterable[Step]) -> None:
    bucket = preparation.setdefault(organisation, [])
    for step in steps:
        if step.scope == "organisation" and all((s.description, s.command) != (step.description, step.command)
                                                for s in bucket):  # fmt: skip
            bucket.append(replace(step, number=None))
    if not bucket:
        del preparation[organisation]


def _group_units(estate: Estate, group: ServerGroup, units, blocked, up_to_date, preparation) -> None:
    items = {fqdn: estate.by_fqdn[fqdn] for fqdn in (m.fqdn for m in group.members)}
    try:
        plan = estate.plan_group(group)
    except PlanError as error:
        blocked.extend((fqdn, str(error).split(": ", 1)[-1]) for fqdn in items)
        return
    for member in plan.members:
        if member.blocked:
            blocked.append((member.fqdn, member.blocked.split(": ", 1)[-1]))
    if plan.is_empty:
        up_to_date.extend(m.fqdn for m in plan.members if not m.blocked)
        return
    _collect_preparation(preparation, group.organisation, plan.steps)
    steps = [step for step in plan.steps if step.scope != "organisation"]
    working = {step.server for step in steps if step.kind == INSTALL and step.server}
    up_to_date.extend(
        m.fqdn for m in plan.members if not m.blocked and m.fqdn not in working and not plan.is_one_window
    )
    cms = estate.clustered_mailbox_servers.get((group.organisation, group.name.lower()))
    if plan.is_one_window:
        first = items[plan.members[0].fqdn]
        whole = Plan(cms.server.fqdn if cms else group.name, {}, {}, tuple(steps), plan.notes,
                     {"name": group.name, "kind": group.kind, "role": "whole cluster"})  # fmt: skip
        units.append(RolloutItem(whole.fqdn, first.site, first.is_internet_facing, first.server.facts.roles,
                                 group.name, tuple(items), tuple(i.windows for i in items.values()), whole,
                                 group.organisation, False, 1))  # fmt: skip
        return
    members = [m for m in plan.members if m.fqdn in working]
    order = {m.fqdn: number for number, m in enumerate(plan.members, start=1)}
    for member in members:
        item = items[member.fqdn]
        segment = order[member.fqdn]
        own = tuple(step for step in steps if step.segment == segment)
        view = replace(plan.view(member.fqdn), steps=own)
        units.append(RolloutItem(member.fqdn, item.site, item.is_internet_facing, item.server.facts.roles, group.name,
                                 (member.fqdn,), (item.windows,), view, group.organisation, item.server.is_active,
                                 segment))  # fmt: skip


def _place(units: list[RolloutItem], rules: Rules) -> list[list[RolloutItem]]:
    rank = {role: index for index, role in enumerate(rules.role_order)}
    groups: dict[tuple, list[RolloutItem]] = {}
    for unit in units:
        role = min((rank.get(r, len(rank)) for r in unit.roles), default=len(rank))
        groups.setdefault((not unit.is_internet_facing, unit.site, role), []).append(unit)
    waves: list[list[RolloutItem]] = []
    taken: dict[tuple, set[int]] = {}  # cluster → the waves that already hold one of its members
    for key in sorted(groups):
        first = len(waves)
        for unit in sorted(groups[key], key=lambda u: (u.is_active, u.order, u.fqdn)):
            cluster = (unit.organisation, unit.cluster) if unit.cluster else None
            busy = taken.setdefault(cluster, set()) if cluster else set()
            index = first
            while index < len(waves) and index in busy:
                index += 1
            if index == len(waves):
                waves.append([])
            waves[index].append(unit)
            busy.add(index)
    return _in_plan_order(waves)


def _same_cluster(a: RolloutItem, b: RolloutItem) -> bool:
    return bool(a.cluster) and (a.organisation, a.cluster) == (b.organisation, b.cluster)


def _in_plan_order(waves: list[list[RolloutItem]]) -> list[list[RolloutItem]]:
    """Each member of a cluster after the members its plan puts before it (they may sit in another site's wave)."""
    where: dict[int, int] = {}  # id(unit) → wave index; units compare by value, which is slow and not what is meant
    clusters: dict[tuple, list[RolloutItem]] = {}
    for index, wave in enumerate(waves):
        for unit in wave:
            where[id(unit)] = index
            if unit.cluster:
                clusters.setdefault((unit.organisation, unit.cluster), []).append(unit)
    holding: dict[tuple, set[int]] = {key: {where[id(u)] for u in units} for key, units in clusters.items()}
    for key, members in clusters.items():
        previous = -1
        for unit in sorted(members, key=lambda u: u.order):
            index = where[id(unit)]
            if index <= previous:
                waves[index] = [other for other in waves[index] if other is not unit]
                holding[key].discard(index)
                target = previous + 1
                # A later wave without another member of the cluster, whose servers share a window with this one.
                while target < len(waves) and (target in holding[key] or not _shares_window(unit, waves[target])):
                    target += 1
                if target == len(waves):
                    waves.append([])
                waves[target].append(unit)
                where[id(unit)], index = target, target
                holding[key].add(target)
            previous = index
    return [wave for wave in waves if wave]


def _shares_window(unit: RolloutItem, wave: list[RolloutItem]) -> bool:
    sets = [{w.name for w in windows} for item in (*wave, unit) for windows in item.window_sets if windows]
    return not sets or bool(set.intersection(*sets))


def _schedule(waves: list[list[RolloutItem]], start: datetime) -> list[Wave]:
    result = []
    after = start
    for number, wave in enumerate(waves, start=1):
        constrained = [windows for unit in wave for windows in unit.window_sets if windows]
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
        ordered = tuple(sorted(wave, key=lambda unit: (unit.is_active, unit.fqdn.lower())))
        result.append(Wave(number, starts_at, window_name, ordered, tuple(notes)))
    return result
