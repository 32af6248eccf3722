"""The rules data (kb/data/rules.json, editable in the admin) as typed, immutable values for the engine."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

# What a runbook step may say about itself; the engine and the rules tests share these vocabularies.
STEP_KINDS = ("ad_preparation", "prerequisite", "gate", "pre_step", "failover", "install", "post_step", "verify")
SCOPES = ("node", "cluster", "site", "organisation")
WHENS = ("before", "between", "after")
MEMBER_FILTERS = ("any", "passive", "active")
CLUSTER_KINDS = ("CCR", "SCR", "SCC", "DAG")
MEMBER_ORDERS = ("passive_first",)
NEEDS = ("other_server", "clustered")
AD_STEPS = ("schema", "organisation", "domains")
# The values a runbook or migration step may name; lower-case {name} only, so PowerShell's {$_.Status} is text.
PLACEHOLDERS = ("server", "fqdn", "cluster", "cms", "target", "active", "source", "standby", "other", "update", "build",
                "site", "license_switch", "old_license_switch")  # fmt: skip
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class RuleError(ValueError):
    """A rule's data cannot be used; the message names the rule and the field."""


@dataclass(frozen=True, slots=True)
class RuleSource:
    key: str
    title: str
    url: str = ""
    is_practice: bool = False

    def cite(self) -> str:
        return f"{self.key} ({self.title}{', practice' if self.is_practice else ''})"


@dataclass(frozen=True, slots=True)
class PrerequisiteRule:
    name: str
    products: tuple[str, ...]
    fact: str  # the server fact checked, e.g. "filter_pack"
    value: str  # the value required; "any" means installed at all
    kb: str | None
    roles: tuple[str, ...]  # empty: every role
    levels_from: str | None  # first level that needs it
    command: str | None
    source: RuleSource
    requires: tuple[str, ...] = ()  # keys of prerequisite rules to install first


@dataclass(frozen=True, slots=True)
class StepRule:
    """A step pair around the installs of a kind (Forefront): per server, or across a cluster of `cluster_kinds`."""

    products: tuple[str, ...]
    condition: str  # "forefront_installed", …
    applies_to_kinds: tuple[str, ...]
    before_description: str
    before_command: str | None
    after_description: str
    after_command: str | None
    note: str
    source: RuleSource
    cluster_kinds: tuple[str, ...] = ()  # in these clusters: before on every node first, after once all are done
    cluster_verify_description: str = ""
    cluster_verify_command: str | None = None


@dataclass(frozen=True, slots=True)
class RunbookStep:
    """One step of a maintenance, failover or verification procedure, as a template.

    Placeholders: {server} (the node's NetBIOS name), {fqdn}, {cluster}, {cms}, {target} (the node taking over),
    {active}, {source} and {standby} (SCR), {other} (the FQDN of another server to take queued mail), {update}.
    """

    id: str
    kind: str
    scope: str
    when: str
    description: str
    command: str | None = None
    on: str = "any"  # member steps: every member, only passive ones (standby), only the active one (source)
    products: tuple[str, ...] = ()  # empty: every product of the runbook
    roles: tuple[str, ...] = ()  # empty: every role
    needs: str | None = None  # "other_server": left out (with a note) when there is none; "clustered": DAG members only
    note: str = ""
    is_practice: bool = False


@dataclass(frozen=True, slots=True)
class Runbook:
    """The procedure around installs of some kinds, for one product family and one kind of cluster (None:
    standalone). Steps of scope node run per member; cluster steps run once, before (`before`), between the
    passive members and the active one (`between`: the failover) or after all members (`after`)."""

    products: tuple[str, ...]
    cluster_kind: str | None
    install_kinds: tuple[str, ...]  # empty: every kind
    roles: tuple[str, ...]  # empty: every role
    member_order: str
    is_one_window: bool  # the whole group in one maintenance window (a failover in the middle)
    steps: tuple[RunbookStep, ...]
    notes: tuple[str, ...]
    source: RuleSource

    def cite(self, step: RunbookStep) -> str:
        if step.is_practice and not self.source.is_practice:
            return f"{self.source.key} ({self.source.title}; this step: practice)"
        return self.source.cite()


@dataclass(frozen=True, slots=True)
class GateRequirement:
    product: str
    min_level: str
    min_update: str | None
    scope: str = "organisation"  # "organisation" or "site": which servers setup checks


@dataclass(frozen=True, slots=True)
class CoexistenceGate:
    introduce: str
    requires: tuple[GateRequirement, ...]
    forbids: tuple[str, ...]
    self_min_level: str | None
    source: RuleSource
    from_level: str | None = None  # the gate applies from this level of the newcomer on (SE CU2)


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """Per AD site: a Mailbox server needs a transport server of its own version in its site."""

    products: tuple[str, ...]
    mailbox_role: str
    transport_role: str
    source: RuleSource


@dataclass(frozen=True, slots=True)
class DotnetRule:
    product: str
    levels: Mapping[str, tuple[str, ...]]
    preferred: Mapping[str, str]
    upgrade_rule: str
    source: RuleSource


@dataclass(frozen=True, slots=True)
class AdVersions:
    """The Active Directory objects a level leaves behind (rangeUpper, objectVersion Default and Configuration)."""

    range_upper: int | None
    object_version_default: int | None = None
    object_version_configuration: int | None = None


@dataclass(frozen=True, slots=True)
class AdUpdate:
    """An update (not a level) that changes Active Directory: new versions, or a preparation it always requires."""

    level: str
    update: str  # the update's name within its level, e.g. "May22SU"
    versions: AdVersions | None
    requires: tuple[str, ...] = ()  # "schema", "organisation", "domains": needed even without a new version number


@dataclass(frozen=True, slots=True)
class AdPreparationRule:
    product: str
    levels: Mapping[str, AdVersions]
    updates: tuple[AdUpdate, ...]
    commands: Mapping[str, str]  # "schema", "organisation", "domains" → command template
    verify_command: str | None
    source: RuleSource
    configuration_line: str = ""  # products whose objectVersion (Configuration) values compare (SE continues 2019)


@dataclass(frozen=True, slots=True)
class SetupRule:
    """How each kind of install is run for a product, and the licence switch its setup takes."""

    product: str
    commands: Mapping[str, str]  # install kind → template: {kb} {name} {level} {product} {license_switch}
    license_switch: str
    new_license_switch: str
    new_switch_from: str | None  # first level whose setup takes the new switch
    source: RuleSource


@dataclass(frozen=True, slots=True)
class UpgradePath:
    """An in-place upgrade between versions (2019 CU14/CU15 → SE)."""

    from_product: str
    from_levels: tuple[str, ...]
    to_product: str
    source: RuleSource


@dataclass(frozen=True, slots=True)
class Migration:
    """A swing plan to a newer version: build new servers, move the workloads, decommission the old one."""

    from_products: tuple[str, ...]
    to_product: str
    steps: tuple[RunbookStep, ...]
    source: RuleSource


@dataclass(frozen=True, slots=True)
class EsuRule:
    """Updates of a product released after its end of support reach only organisations enrolled in Microsoft's
    Extended Security Update program, and only for the levels it covers."""

    product: str
    released_after: date
    levels: tuple[str, ...]
    source: RuleSource


@dataclass(frozen=True, slots=True)
class Rules:
    dotnet: Mapping[str, DotnetRule] = field(default_factory=dict)
    prerequisites: tuple[PrerequisiteRule, ...] = ()
    steps: tuple[StepRule, ...] = ()
    gates: tuple[CoexistenceGate, ...] = ()
    role_order: tuple[str, ...] = ("ClientAccess", "HubTransport", "EdgeTransport", "UnifiedMessaging", "Mailbox")
    runbooks: tuple[Runbook, ...] = ()
    ad_preparation: Mapping[str, AdPreparationRule] = field(default_factory=dict)
    setup: Mapping[str, SetupRule] = field(default_factory=dict)
    upgrade_paths: tuple[UpgradePath, ...] = ()
    migrations: tuple[Migration, ...] = ()
    esu: Mapping[str, EsuRule] = field(default_factory=dict)
    routing: tuple[RoutingRule, ...] = ()
    no_return: RuleSource | None = None  # an older version cannot join once a newer version's /PrepareAD ran

    @classmethod
    def from_dicts(cls, rules: Iterable[Mapping]) -> Rules:
        """Build from rule dictionaries shaped like kb/data/rules.json entries (disabled rules already left out).

        Raises RuleError naming the rule and the field when a rule's data does not fit its kind.
        """
        parts: dict[str, list] = {"prerequisites": [], "steps": [], "gates": [], "runbooks": [], "paths": [],
                                  "migrations": [], "routing": []}  # fmt: skip
        dotnet: dict[str, DotnetRule] = {}
        ad: dict[str, AdPreparationRule] = {}
        setup: dict[str, SetupRule] = {}
        esu: dict[str, EsuRule] = {}
        role_order = cls.role_order
        no_return = None
        for rule in rules:
            key = rule.get("key", "?")
            try:
                data, products = rule.get("data", {}), tuple(rule.get("products", ()))
                src = rule.get("source", {})
                source = RuleSource(key, src.get("title", ""), src.get("url") or "", bool(src.get("is_practice")))
                kind = rule["kind"]
                if kind == "dotnet":
                    for product in products:
                        dotnet[product] = DotnetRule(
                            product,
                            {level: tuple(versions) for level, versions in data.get("levels", {}).items()},
                            dict(data.get("preferred", {})),
                            data.get("upgrade_rule", ""),
                            source,
                        )
                elif kind == "prerequisite":
                    parts["prerequisites"].append(_prerequisite(data, products, source))
                elif kind == "step":
                    parts["steps"].append(_step_rule(data, products, source))
                elif kind == "coexistence":
                    _coexistence(data, products, source, parts)
                    if data.get("type") == "no_return":
                        no_return = source
                elif kind == "role_order":
                    role_order = tuple(data.get("order", role_order))
                elif kind == "runbook":
                    parts["runbooks"].append(_runbook(data, products, source))
                elif kind == "ad_preparation":
                    for product in products:
                        ad[product] = _ad_preparation(data, product, source)
                elif kind == "setup":
                    for product in products:
                        setup[product] = _setup(data, product, source)
                elif kind == "upgrade_path":
                    parts["paths"].append(UpgradePath(data["from"], tuple(data["from_levels"]), data["to"], source))
                elif kind == "migration":
                    steps = tuple(_runbook_step(item, index) for index, item in enumerate(data["steps"]))
                    parts["migrations"].append(Migration(tuple(data["from"]), data["to"], steps, source))
                elif kind == "esu":
                    after = date.fromisoformat(data["released_after"])
                    for product in products:
                        esu[product] = EsuRule(product, after, tuple(data.get("levels", {}).get(product, ())), source)
            except RuleError as error:
                raise RuleError(f"rule {key}: {error}") from None
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
                raise RuleError(f"rule {key}: {detail}") from None
        return cls(
            dotnet, tuple(parts["prerequisites"]), tuple(parts["steps"]), tuple(parts["gates"]), role_order,
            tuple(parts["runbooks"]), ad, setup, tuple(parts["paths"]), tuple(parts["migrations"]), esu,
            tuple(parts["routing"]), no_return,
        )  # fmt: skip

    def runbook_for(self, product: str, cluster_kind: str | None, install_kind: str, roles: Iterable[str]):
        """The most specific runbook for a product, a kind of cluster, an install kind and a server's roles."""
        roles = set(roles)
        candidates = [
            runbook
            for runbook in self.runbooks
            if product in runbook.products
            and runbook.cluster_kind == cluster_kind
            and (not runbook.install_kinds or install_kind in runbook.install_kinds)
            and (not runbook.roles or roles & set(runbook.roles))
        ]
        return max(candidates, key=lambda r: (bool(r.roles), bool(r.install_kinds)), default=None)

    def gate_for(self, introduce: str) -> CoexistenceGate | None:
        """The gate for a newcomer's first level (gates that start at a later level are `later_gates`)."""
        return next((gate for gate in self.gates if gate.introduce == introduce and gate.from_level is None), None)

    def later_gates(self, product: str) -> list[CoexistenceGate]:
        return [gate for gate in self.gates if gate.introduce == product and gate.from_level is not None]


def _prerequisite(data: Mapping, products: tuple[str, ...], source: RuleSource) -> PrerequisiteRule:
    return PrerequisiteRule(
        name=data["name"], products=products, fact=data["fact"], value=str(data.get("value", "any")),
        kb=data.get("kb"), roles=tuple(data.get("roles", ())), levels_from=data.get("levels_from"),
        command=data.get("command"), source=source, requires=tuple(data.get("requires", ())),
    )  # fmt: skip


def _step_rule(data: Mapping, products: tuple[str, ...], source: RuleSource) -> StepRule:
    before, after, cluster = data.get("before", {}), data.get("after", {}), data.get("cluster", {})
    verify = cluster.get("verify", {})
    kinds = tuple(cluster.get("kinds", ()))
    _check_choices("cluster.kinds", kinds, CLUSTER_KINDS)
    return StepRule(
        products=products, condition=data.get("condition", ""), applies_to_kinds=tuple(data.get("applies_to_kinds", ())),
        before_description=before.get("description", ""), before_command=before.get("command"),
        after_description=after.get("description", ""), after_command=after.get("command"),
        note=data.get("cluster_note", "") or data.get("note", ""), source=source, cluster_kinds=kinds,
        cluster_verify_description=verify.get("description", ""), cluster_verify_command=verify.get("command"),
    )  # fmt: skip


def _coexistence(data: Mapping, products: tuple[str, ...], source: RuleSource, parts: dict[str, list]) -> None:
    kind = data.get("type", "gate")
    if kind == "routing":
        parts["routing"].append(
            RoutingRule(tuple(data["products"]), data["mailbox_role"], data["transport_role"], source)
        )
        return
    if kind == "no_return":
        return
    if kind != "gate":
        raise RuleError(f"type: {kind!r} is not gate, routing or no_return")
    requires = []
    for item in data.get("requires", ()):
        scope = item.get("scope", "organisation")
        _check_choices("requires.scope", (scope,), ("organisation", "site"))
        requires.append(GateRequirement(item["product"], item["min_level"], item.get("min_update"), scope))
    parts["gates"].append(
        CoexistenceGate(
            introduce=data["introduce"], requires=tuple(requires), forbids=tuple(data.get("forbids", ())),
            self_min_level=data.get("self_min_level"), source=source, from_level=data.get("from_level"),
        )
    )  # fmt: skip


def _runbook_step(item: Mapping, index: int) -> RunbookStep:
    where = f"steps[{index}]"
    step = RunbookStep(
        id=item.get("id", str(index)), kind=item["kind"], scope=item["scope"], when=item["when"],
        description=item["description"], command=item.get("command"), on=item.get("on", "any"),
        products=tuple(item.get("products", ())), roles=tuple(item.get("roles", ())), needs=item.get("needs"),
        note=item.get("note", ""), is_practice=bool(item.get("is_practice", False)),
    )  # fmt: skip
    _check_choices(f"{where}.kind", (step.kind,), STEP_KINDS)
    _check_choices(f"{where}.scope", (step.scope,), SCOPES)
    _check_choices(f"{where}.when", (step.when,), WHENS)
    _check_choices(f"{where}.on", (step.on,), MEMBER_FILTERS)
    if step.needs is not None:
        _check_choices(f"{where}.needs", (step.needs,), NEEDS)
    if step.when == "between" and step.scope != "cluster":
        raise RuleError(f"{where}: only cluster steps run between members (when: between)")
    for text in (step.description, step.command or ""):
        unknown = sorted(set(_PLACEHOLDER.findall(text)) - set(PLACEHOLDERS))
        if unknown:
            raise RuleError(f"{where}: unknown placeholder(s) {', '.join(unknown)} (known: {', '.join(PLACEHOLDERS)})")
    return step


def _runbook(data: Mapping, products: tuple[str, ...], source: RuleSource) -> Runbook:
    cluster_kind = data.get("cluster_kind")
    if cluster_kind is not None:
        _check_choices("cluster_kind", (cluster_kind,), CLUSTER_KINDS)
    order = data.get("member_order", "passive_first")
    _check_choices("member_order", (order,), MEMBER_ORDERS)
    return Runbook(
        products=products, cluster_kind=cluster_kind, install_kinds=tuple(data.get("install_kinds", ())),
        roles=tuple(data.get("roles", ())), member_order=order, is_one_window=bool(data.get("one_window", False)),
        steps=tuple(_runbook_step(item, index) for index, item in enumerate(data.get("steps", ()))),
        notes=tuple(data.get("notes", ())), source=source,
    )  # fmt: skip


def _ad_versions(item: Mapping) -> AdVersions:
    return AdVersions(item.get("range_upper"), item.get("object_version_default"),
                      item.get("object_version_configuration"))  # fmt: skip


def _ad_preparation(data: Mapping, product: str, source: RuleSource) -> AdPreparationRule:
    levels = {level: _ad_versions(item) for level, item in data.get("levels", {}).items()}
    updates = []
    for item in data.get("updates", ()):
        requires = tuple(item.get("requires", ()))
        _check_choices("updates.requires", requires, AD_STEPS)
        versions = _ad_versions(item) if "range_upper" in item else None
        updates.append(AdUpdate(item["level"], item["update"], versions, requires))
    commands = dict(data["commands"])
    _check_choices("commands", tuple(commands), AD_STEPS)
    line = data.get("configuration_line") or product
    return AdPreparationRule(product, levels, tuple(updates), commands, data.get("verify_command"), source, line)


def _setup(data: Mapping, product: str, source: RuleSource) -> SetupRule:
    switch = data.get("license_switch", {})
    return SetupRule(
        product, dict(data["commands"]), switch.get("default", ""), switch.get("new", ""),
        switch.get("new_from", {}).get(product), source,
    )  # fmt: skip


def _check_choices(name: str, values: Iterable[str], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for value in values:
        if value not in allowed:
            raise RuleError(f"{name}: {value!r} is not one of {', '.join(allowed)}")


def version_key(version: str) -> tuple[int, ...]:
    """ "4.7.2" → (4, 7, 2), for ordering .NET versions; unparseable parts sort first."""
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))
