"""The rules data (kb/data/rules.json, editable in the admin) as typed, immutable values for the engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


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
    products: tuple[str, ...]
    condition: str  # "forefront_installed", "dag_member", …
    applies_to_kinds: tuple[str, ...]
    before_description: str
    before_command: str | None
    after_description: str
    after_command: str | None
    note: str
    source: RuleSource


@dataclass(frozen=True, slots=True)
class GateRequirement:
    product: str
    min_level: str
    min_update: str | None


@dataclass(frozen=True, slots=True)
class CoexistenceGate:
    introduce: str
    scope: str  # "site" or "organization"
    requires: tuple[GateRequirement, ...]
    forbids: tuple[str, ...]
    self_min_level: str | None
    source: RuleSource


@dataclass(frozen=True, slots=True)
class DotnetRule:
    product: str
    levels: Mapping[str, tuple[str, ...]]
    preferred: Mapping[str, str]
    upgrade_rule: str
    source: RuleSource


@dataclass(frozen=True, slots=True)
class Rules:
    dotnet: Mapping[str, DotnetRule] = field(default_factory=dict)
    prerequisites: tuple[PrerequisiteRule, ...] = ()
    steps: tuple[StepRule, ...] = ()
    gates: tuple[CoexistenceGate, ...] = ()
    role_order: tuple[str, ...] = ("ClientAccess", "HubTransport", "EdgeTransport", "UnifiedMessaging", "Mailbox")

    @classmethod
    def from_dicts(cls, rules: Iterable[Mapping]) -> Rules:
        """Build from rule dictionaries shaped like kb/data/rules.json entries (disabled rules already left out)."""
        dotnet: dict[str, DotnetRule] = {}
        prerequisites, steps, gates = [], [], []
        role_order = cls.role_order
        for rule in rules:
            data, products = rule.get("data", {}), tuple(rule.get("products", ()))
            src = rule.get("source", {})
            source = RuleSource(rule["key"], src.get("title", ""), src.get("url") or "", bool(src.get("is_practice")))
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
                prerequisites.append(
                    PrerequisiteRule(
                        name=data["name"], products=products, fact=data["fact"], value=str(data.get("value", "any")),
                        kb=data.get("kb"), roles=tuple(data.get("roles", ())), levels_from=data.get("levels_from"),
                        command=data.get("command"), source=source, requires=tuple(data.get("requires", ())),
                    )
                )  # fmt: skip
            elif kind == "step":
                before, after = data.get("before", {}), data.get("after", {})
                steps.append(
                    StepRule(
                        products=products, condition=data.get("condition", ""),
                        applies_to_kinds=tuple(data.get("applies_to_kinds", ())),
                        before_description=before.get("description", ""), before_command=before.get("command"),
                        after_description=after.get("description", ""), after_command=after.get("command"),
                        note=data.get("cluster_note", "") or data.get("note", ""), source=source,
                    )
                )  # fmt: skip
            elif kind == "coexistence":
                gates.append(
                    CoexistenceGate(
                        introduce=data["introduce"], scope=data.get("scope", "organization"),
                        requires=tuple(
                            GateRequirement(r["product"], r["min_level"], r.get("min_update")) for r in data.get("requires", ())
                        ),
                        forbids=tuple(data.get("forbids", ())), self_min_level=data.get("self_min_level"), source=source,
                    )
                )  # fmt: skip
            elif kind == "role_order":
                role_order = tuple(data.get("order", role_order))
        return cls(dotnet, tuple(prerequisites), tuple(steps), tuple(gates), role_order)


def version_key(version: str) -> tuple[int, ...]:
    """ "4.7.2" → (4, 7, 2), for ordering .NET versions; unparseable parts sort first."""
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))
