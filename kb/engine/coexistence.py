"""Coexistence: what stops a version from joining an organisation, and what an organisation already runs side by side
that Microsoft does not support. Gates, their scope (organisation or AD site) and their sources are rules data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from .builds import PRODUCT_ORDER, PRODUCTS, InvalidBuildError
from .catalog import Catalog
from .compliance import facts_parse
from .estate import Estate, EstateServer
from .planning import Plan, PlanError
from .rules import CoexistenceGate, GateRequirement, Rules


@dataclass(frozen=True, slots=True)
class Blocker:
    fqdn: str  # the server at fault; empty for a finding about a site
    site: str
    reason: str
    plan: Plan | None  # the plan that clears it, where a patch can
    rule: str
    organisation: str = ""
    scope: str = "organisation"  # "organisation" or "site": which servers the rule looks at
    kind: str = "level"  # level, forbidden, newer_present, no_return, later_level, mix, routing, unknown

    def as_dict(self) -> dict:
        return {
            "fqdn": self.fqdn, "organisation": self.organisation, "site": self.site, "scope": self.scope,
            "kind": self.kind, "reason": self.reason, "rule": self.rule,
            "plan": self.plan.as_dict() if self.plan else None,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class CoexistenceReport:
    introduce: str | None
    blockers: tuple[Blocker, ...]
    requirements: tuple[str, ...] = ()  # what the newcomer itself must meet where it is installed

    @property
    def is_blocked(self) -> bool:
        return bool(self.blockers)

    def as_dict(self) -> dict:
        return {
            "introduce": self.introduce, "is_blocked": self.is_blocked,
            "blockers": [blocker.as_dict() for blocker in self.blockers], "requirements": list(self.requirements),
        }  # fmt: skip


def coexistence_check(
    introduce: str | None, servers: Sequence[EstateServer], catalog: Catalog, rules: Rules, *, today: date,
    site: str | None = None, organisation: str | None = None,
) -> CoexistenceReport:  # fmt: skip
    """What stops `introduce` from joining each organisation (or the one named, or the one of the site named), and
    what every organisation already runs side by side against Microsoft's rules (without `introduce`: that only).
    Servers of other organisations never block."""
    if introduce is not None and rules.gate_for(introduce) is None:
        known = ", ".join(gate.introduce for gate in rules.gates if gate.from_level is None)
        raise PlanError(f"--introduce: no coexistence rules for {introduce!r} (known: {known})")
    estate = Estate(servers, catalog, rules, today=today)
    if site and organisation is None:
        organisation = next((s.organisation for s in servers if s.site == site), None)
    names = [organisation] if organisation else sorted({s.organisation for s in servers})
    blockers: list[Blocker] = []
    requirements: list[str] = []
    for name in names:
        check = _Organisation(estate, name, site)
        if introduce is not None:
            check.introduce(introduce)
        check.existing_mix()
        check.routing(introduce)
        blockers.extend(check.blockers)
        requirements.extend(r for r in check.requirements if r not in requirements)
    unique: dict[tuple, Blocker] = {}
    for blocker in blockers:
        unique.setdefault((blocker.organisation, blocker.fqdn, blocker.rule, blocker.kind, blocker.reason), blocker)
    return CoexistenceReport(introduce, tuple(unique.values()), tuple(requirements))


class _Organisation:
    def __init__(self, estate: Estate, name: str, site: str | None) -> None:
        self.estate, self.name, self.site = estate, name, site
        self.rules, self.catalog, self.today = estate.rules, estate.catalog, estate.today
        self.blockers: list[Blocker] = []
        self.requirements: list[str] = []
        self.items: list[EstateServer] = []
        self.present: dict[str, list[EstateServer]] = {}
        for item in estate.servers:
            if item.organisation != name or self._is_mapped_cms(item):
                continue
            self.items.append(item)
            try:
                facts_parse(item.server.facts)
            except InvalidBuildError as error:
                self.blockers.append(self._blocker(item, f"unknown build: {error}", None, "", kind="unknown"))
                continue
            product = estate.product(item)
            if product is not None:
                self.present.setdefault(product, []).append(item)

    def _is_mapped_cms(self, item: EstateServer) -> bool:
        # A clustered mailbox server whose nodes are known is checked through its nodes.
        return item.server.is_clustered_mailbox_server and self.estate.group_of(item) is not None

    def _blocker(self, item: EstateServer | None, reason: str, plan: Plan | None, rule: str, *,
                 scope: str = "organisation", kind: str = "level", site: str | None = None) -> Blocker:  # fmt: skip
        return Blocker(item.server.fqdn if item else "", site if site is not None else item.site if item else "",
                       reason, plan, rule, self.name, scope, kind)  # fmt: skip

    def _servers(self, product: str) -> str:
        return ", ".join(item.server.fqdn for item in self.present.get(product, ()))

    # -- a newcomer ------------------------------------------------------------------------------------------------

    def introduce(self, product: str) -> None:
        gate = self.rules.gate_for(product)
        name = PRODUCTS[product].name
        for requirement in gate.requires:
            candidates = self.present.get(requirement.product, ())
            if requirement.scope == "site" and self.site:
                candidates = [item for item in candidates if item.site == self.site]
            for item in candidates:
                blocker = self._requirement(item, requirement, gate, product, requirement.scope)
                if blocker is not None:
                    self.blockers.append(blocker)
        for forbidden in gate.forbids:
            for item in self.present.get(forbidden, ()):
                reason = (f"{PRODUCTS[forbidden].name} may not remain in the organisation when {name} is introduced: "
                          "move its workloads to newer servers and decommission it")  # fmt: skip
                self.blockers.append(self._blocker(item, reason, None, gate.source.cite(), kind="forbidden"))
        if gate.self_min_level:
            own = GateRequirement(product, gate.self_min_level, None)
            for item in self.present.get(product, ()):
                blocker = self._requirement(item, own, gate, product, "organisation")
                if blocker is not None:
                    self.blockers.append(blocker)
        self._later_levels_of_newcomer(product)
        self._newer_versions(product)

    def _later_levels_of_newcomer(self, product: str) -> None:
        """A new server is installed at the newest level; a later-level gate (SE CU2) may refuse this organisation."""
        newest = self.catalog.latest_level(product, self.today)
        if newest is None:
            return
        for gate in self.rules.later_gates(product):
            start = self.catalog.level(product, gate.from_level)
            if start is None or newest.base_build < start.base_build:
                continue
            present = [p for p in gate.forbids if self.present.get(p)]
            if not present:
                continue
            older = [lvl for lvl in self.catalog.levels(product) if lvl.base_build < start.base_build]
            remains = ", ".join(f"{PRODUCTS[p].name} ({self._servers(p)})" for p in present)
            reason = (f"a new {PRODUCTS[product].name} server would be installed at {newest.name}, whose setup "
                      f"refuses an organisation that still runs {remains}")  # fmt: skip
            if older:
                self.requirements.append(f"{reason}: install it at {older[-1].name} instead, or decommission them "
                                         f"first [{gate.source.cite()}]")  # fmt: skip
            else:
                self.blockers.append(self._blocker(None, reason, None, gate.source.cite(), kind="later_level", site=""))

    def _newer_versions(self, product: str) -> None:
        """Versions newer than the newcomer that already run here: their gates decide whether it may join."""
        name = PRODUCTS[product].name
        newer = [p for p in PRODUCT_ORDER[PRODUCT_ORDER.index(product) + 1 :] if self.present.get(p)]
        for other in newer:
            gate = self.rules.gate_for(other)
            if gate is None:
                continue
            if product in gate.forbids:
                reason = (f"{PRODUCTS[other].name} runs in this organisation ({self._servers(other)}) and does not "
                          f"coexist with {name}: {name} cannot be introduced")  # fmt: skip
                first = self.present[other][0]
                self.blockers.append(self._blocker(first, reason, None, gate.source.cite(), kind="newer_present"))
                continue
            for requirement in gate.requires:
                if requirement.product == product:
                    needed = requirement.min_level + (f" {requirement.min_update}" if requirement.min_update else "")
                    self.requirements.append(
                        f"new {name} servers must run {needed} or later from the start: {PRODUCTS[other].name} runs "
                        f"in this organisation ({self._servers(other)}) [{gate.source.cite()}]"
                    )
        if newer and not self.present.get(product) and self.rules.no_return is not None:
            versions = " and ".join(PRODUCTS[p].name for p in newer)
            verb, its = ("runs", "its") if len(newer) == 1 else ("run", "their")
            reason = (f"{versions} already {verb} here, so {its} /PrepareAD has run, and no {name} server remains: "
                      f"setup will not add the first {name} server now")  # fmt: skip
            first = self.present[newer[0]][0]
            self.blockers.append(self._blocker(first, reason, None, self.rules.no_return.cite(), kind="no_return"))

    # -- what already runs side by side ----------------------------------------------------------------------------

    def existing_mix(self) -> None:
        """Every pair of versions present: the newer one's gate must accept the older one, at its level."""
        present = [p for p in PRODUCT_ORDER if self.present.get(p)]
        for index, newer in enumerate(present):
            gate = self.rules.gate_for(newer)
            if gate is None:
                continue
            for older in present[:index]:
                if older in gate.forbids:
                    for item in self.present[older]:
                        reason = (f"{PRODUCTS[older].name} runs beside {PRODUCTS[newer].name} "
                                  f"({self._servers(newer)}), which does not support it: move its workloads and "
                                  "decommission it")  # fmt: skip
                        self.blockers.append(self._blocker(item, reason, None, gate.source.cite(), kind="mix"))
                    continue
                for requirement in gate.requires:
                    if requirement.product != older:
                        continue
                    for item in self.present[older]:
                        blocker = self._requirement(item, requirement, gate, newer, requirement.scope, present=True)
                        if blocker is not None:
                            self.blockers.append(blocker)
            for later in self.rules.later_gates(newer):
                start = self.catalog.level(newer, later.from_level)
                beyond = [
                    item for item in self.present[newer] if start is not None and self._level_at_least(item, start)
                ]
                for forbidden in later.forbids:
                    if beyond and self.present.get(forbidden):
                        for item in self.present[forbidden]:
                            reason = (f"{PRODUCTS[forbidden].name} runs beside {PRODUCTS[newer].name} "
                                      f"{later.from_level} or later, which does not support it")  # fmt: skip
                            self.blockers.append(self._blocker(item, reason, None, later.source.cite(), kind="mix"))

    def _level_at_least(self, item: EstateServer, level) -> bool:
        resolution = self.estate.resolution(item.server.facts)
        return bool(resolution and resolution.level.base_build >= level.base_build)

    def routing(self, introduce: str | None) -> None:
        """Per AD site, during 2007/2010 coexistence: a Mailbox server needs a Hub Transport of its own version there."""
        for rule in self.rules.routing:
            versions = [p for p in rule.products if self.present.get(p)]
            mixed = len(versions) > 1 or (introduce in rule.products and versions and introduce not in versions)
            if not mixed:
                continue
            sites = sorted({item.site for p in versions for item in self.present[p]})
            for site in sites:
                if self.site and site != self.site:
                    continue
                for product in versions:
                    here = [item for item in self.present[product] if item.site == site]
                    mailboxes = [i for i in here if rule.mailbox_role in i.server.facts.roles]
                    transports = [i for i in here if rule.transport_role in i.server.facts.roles]
                    if mailboxes and not transports:
                        reason = (f"{PRODUCTS[product].name} Mailbox servers in {site} "
                                  f"({', '.join(i.server.fqdn for i in mailboxes)}) have no {PRODUCTS[product].name} "
                                  f"Hub Transport server in their site")  # fmt: skip
                        self.blockers.append(self._blocker(None, reason, None, rule.source.cite(), scope="site",
                                                           kind="routing", site=site))  # fmt: skip
            if introduce in rule.products:
                old = [p for p in versions if p != introduce]
                where = f"in {self.site}" if self.site else "in each AD site that gets one"
                hubs = [i.server.fqdn for p in old for i in self.present[p] if rule.transport_role in i.server.facts.roles
                        and (not self.site or i.site == self.site)]  # fmt: skip
                keep = f" ({', '.join(hubs)})" if hubs else ""
                self.requirements.append(
                    f"{where}: install an {PRODUCTS[introduce].name} Hub Transport server before or with the first "
                    f"{PRODUCTS[introduce].name} Mailbox server, and keep the "
                    f"{' and '.join(PRODUCTS[p].name for p in old)} Hub Transport servers{keep} until the last "
                    f"Mailbox server of their version there is gone [{rule.source.cite()}]"
                )

    # -- one server against a minimum level ----------------------------------------------------------------------

    def _requirement(self, item: EstateServer, requirement: GateRequirement, gate: CoexistenceGate, newer: str,
                     scope: str, *, present: bool = False) -> Blocker | None:  # fmt: skip
        resolution = self.estate.resolution(item.server.facts)
        minimum = self.catalog.level(requirement.product, requirement.min_level)
        if resolution is None or minimum is None:
            return None
        needed = requirement.min_level + (f" {requirement.min_update}" if requirement.min_update else "")
        required_entry = self.catalog.find(product=requirement.product, level=requirement.min_level,
                                           name=requirement.min_update)  # fmt: skip
        if resolution.level.base_build > minimum.base_build:
            return None
        kind = "mix" if present else "level"
        if resolution.level.name == minimum.name:
            if requirement.min_update is None:
                return None
            if not resolution.is_update_known:
                reason = f"needs {needed} or later; its rollup level is unknown (report the ExSetup.exe version)"
                if item.server.is_clustered_mailbox_server:
                    reason += "; it is a clustered mailbox server whose nodes are not in the inventory: import them"
                return self._blocker(item, reason, None, gate.source.cite(), scope=scope, kind=kind)
            if (
                required_entry is not None
                and resolution.floor is not None
                and resolution.floor.build >= required_entry.build
            ):
                return None
        # The plan must reach the gate's level, across service packs where needed: target the level and update.
        target = needed
        try:
            plan = self.estate.plan_server(item.server.fqdn, target=target)
        except PlanError as error:
            plan, note = None, f" ({str(error).split(': ', 1)[-1]})"
        else:
            note = ""
        current = resolution.level.name + (
            f" {resolution.entry.name}" if resolution.entry and resolution.entry.name else ""
        )
        beside = f" beside {PRODUCTS[newer].name} ({self._servers(newer)})" if present else ""
        reason = (f"runs {PRODUCTS[requirement.product].name} {current}{beside}; {PRODUCTS[newer].name} needs "
                  f"{needed} or later{note}")  # fmt: skip
        return self._blocker(item, reason, plan, gate.source.cite(), scope=scope, kind=kind)
