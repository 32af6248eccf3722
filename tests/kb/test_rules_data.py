"""Shape of the bundled rules file (kb/data/rules.json): plain JSON checks, no database."""

import json
import re
from datetime import date
from pathlib import Path

import pytest

RULES_PATH = Path(__file__).resolve().parents[2] / "kb" / "data" / "rules.json"

PRODUCTS = ("2007", "2010", "2013", "2016", "2019", "SE")
CU_PRODUCTS = ("2013", "2016", "2019", "SE")
KINDS = {"support", "dotnet", "prerequisite", "step", "coexistence", "role_order", "runbook", "ad_preparation",
         "setup", "upgrade_path", "migration", "esu"}  # fmt: skip
RULE_KEYS = {"key", "kind", "products", "description", "data", "source"}
SOURCE_KEYS = {"title", "url", "document", "date", "is_practice"}
FACTS = {"filter_pack", "ucma", "vcredist_2012", "vcredist_2013", "url_rewrite"}
ROLES = {"ClientAccess", "HubTransport", "EdgeTransport", "UnifiedMessaging", "Mailbox"}
UPDATE_KINDS = {"PREVIEW", "RTM", "SP", "CU", "RU", "SU", "HU"}

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
LEVEL_RE = re.compile(r"^(RTM|SP[1-3]|CU[1-9][0-9]*)$")
DOTNET_RE = re.compile(r"^4\.[0-9](\.[0-9])?$")
KB_RE = re.compile(r"^KB[0-9]{6,7}$")


def load() -> dict:
    return json.loads(RULES_PATH.read_text(encoding="utf-8"))


RULES = load()["rules"]


def rules_of(kind: str) -> list[dict]:
    return [rule for rule in RULES if rule["kind"] == kind]


def by_key(key: str) -> dict:
    return next(rule for rule in RULES if rule["key"] == key)


def is_iso_date(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_file_has_schema_1_and_rules():
    payload = load()
    assert payload["schema"] == 1
    assert set(payload) == {"schema", "rules"}
    assert isinstance(payload["rules"], list)
    assert payload["rules"]


def test_keys_are_unique_and_dotted():
    keys = [rule["key"] for rule in RULES]
    assert len(keys) == len(set(keys))
    for key in keys:
        assert KEY_RE.match(key), key
        assert len(key) <= 100, key


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.get("key", "?"))
def test_rule_has_required_keys_and_known_kind(rule):
    assert set(rule) == RULE_KEYS
    assert rule["kind"] in KINDS
    assert isinstance(rule["description"], str)
    assert rule["description"].strip()
    assert isinstance(rule["data"], dict)
    products = rule["products"]
    assert isinstance(products, list)
    assert products
    assert len(products) == len(set(products))
    assert set(products) <= set(PRODUCTS)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.get("key", "?"))
def test_rule_source_is_complete(rule):
    source = rule["source"]
    assert set(source) == SOURCE_KEYS
    assert isinstance(source["title"], str)
    assert source["title"].strip()
    assert len(source["title"]) <= 300
    assert isinstance(source["document"], str)
    # A copy in ../shared/data, the domain notes, a Microsoft page not copied there, or a practitioner's source.
    assert source["document"].startswith(("data/docs/", "domain.md §", "microsoft: ", "practice: "))
    if source["document"].startswith("practice: "):
        assert source["is_practice"] is True
    assert len(source["document"]) <= 300
    if source["document"].startswith("data/docs/"):
        assert source["url"].startswith("https://learn.microsoft.com/")
        assert source["date"] == "2022-04-27"
    else:
        assert source["url"] is None or source["url"].startswith("https://")
    if source["url"] is not None:
        assert len(source["url"]) <= 500
    assert source["date"] is None or is_iso_date(source["date"])
    assert isinstance(source["is_practice"], bool)


def test_support_rules_one_per_product():
    rules = rules_of("support")
    covered = [product for rule in rules for product in rule["products"]]
    assert sorted(covered) == sorted(PRODUCTS)
    for rule in rules:
        data = rule["data"]
        assert set(data) == {"end_of_extended_support", "supported_level_count"}
        end = data["end_of_extended_support"]
        assert end is None or is_iso_date(end)
        (product,) = rule["products"]
        assert data["supported_level_count"] == (1 if product in {"2007", "2010"} else 2)
    ends = {rule["products"][0]: rule["data"]["end_of_extended_support"] for rule in rules}
    assert ends == {
        "2007": "2017-04-11",
        "2010": "2020-10-13",
        "2013": "2023-04-11",
        "2016": "2025-10-14",
        "2019": "2025-10-14",
        "SE": None,
    }


def test_dotnet_rules_one_per_cu_product():
    covered = [product for rule in rules_of("dotnet") for product in rule["products"]]
    assert sorted(covered) == sorted(CU_PRODUCTS)


@pytest.mark.parametrize("rule", rules_of("dotnet"), ids=lambda rule: rule["key"])
def test_dotnet_levels_are_well_formed(rule):
    data = rule["data"]
    assert set(data) == {"levels", "preferred", "upgrade_rule"}
    assert isinstance(data["upgrade_rule"], str)
    assert data["upgrade_rule"].strip()
    levels, preferred = data["levels"], data["preferred"]
    assert levels
    assert set(preferred) == set(levels)
    for level, versions in levels.items():
        assert LEVEL_RE.match(level), level
        assert versions, level
        assert all(DOTNET_RE.match(version) for version in versions), (level, versions)
        assert len(versions) == len(set(versions)), level
        assert versions == sorted(versions, key=version_key), level
        assert preferred[level] == versions[-1], level


def test_dotnet_levels_cover_every_level():
    def names(rule_key: str) -> set[str]:
        return set(by_key(rule_key)["data"]["levels"])

    # Exchange 2013 SP1 is CU4: the catalog names it "SP1" and has no "CU4".
    assert names("dotnet.2013") == {"RTM", "CU1", "CU2", "CU3", "SP1"} | {f"CU{n}" for n in range(5, 24)}
    assert names("dotnet.2016") == {"RTM"} | {f"CU{n}" for n in range(1, 24)}
    assert names("dotnet.2019") == {"RTM"} | {f"CU{n}" for n in range(1, 16)}
    assert names("dotnet.se") == {"RTM"}


def test_dotnet_spot_checks_from_the_matrix():
    levels_2013 = by_key("dotnet.2013")["data"]["levels"]
    assert levels_2013["CU23"] == ["4.7.2", "4.8"]
    assert levels_2013["CU19"] == ["4.6.2", "4.7.1"]
    assert levels_2013["CU15"] == ["4.5.1", "4.5.2", "4.6.1", "4.6.2"]
    assert levels_2013["SP1"] == ["4.5", "4.5.1", "4.5.2"]
    assert levels_2013["RTM"] == ["4.5"]
    levels_2016 = by_key("dotnet.2016")["data"]["levels"]
    assert levels_2016["CU23"] == ["4.8"]
    assert levels_2016["CU14"] == ["4.7.2", "4.8"]
    assert levels_2016["CU3"] == ["4.5.2", "4.6.1", "4.6.2"]
    assert levels_2016["RTM"] == ["4.5.2"]
    levels_2019 = by_key("dotnet.2019")["data"]["levels"]
    assert levels_2019["CU12"] == ["4.8"]
    assert levels_2019["CU4"] == ["4.8"]
    assert levels_2019["CU3"] == ["4.7.2", "4.8"]
    assert levels_2019["CU1"] == ["4.7.2"]
    assert levels_2019["CU15"] == ["4.8", "4.8.1"]
    assert by_key("dotnet.se")["data"]["preferred"] == {"RTM": "4.8.1"}


@pytest.mark.parametrize("rule", rules_of("prerequisite"), ids=lambda rule: rule["key"])
def test_prerequisite_data_is_well_formed(rule):
    data = rule["data"]
    assert set(data) == {"name", "fact", "value", "kb", "roles", "levels_from", "command"}
    assert isinstance(data["name"], str)
    assert data["name"].strip()
    assert data["fact"] in FACTS
    assert isinstance(data["value"], str)
    assert data["value"].strip()
    assert data["kb"] is None or KB_RE.match(data["kb"])
    assert isinstance(data["roles"], list)
    assert set(data["roles"]) <= ROLES
    assert data["levels_from"] is None or LEVEL_RE.match(data["levels_from"])
    assert data["command"] is None or (isinstance(data["command"], str) and data["command"].strip())


def test_prerequisites_cover_every_fact():
    assert {rule["data"]["fact"] for rule in rules_of("prerequisite")} == FACTS
    url_rewrite = {
        rule["products"][0]: rule["data"]["levels_from"]
        for rule in rules_of("prerequisite")
        if rule["data"]["fact"] == "url_rewrite"
    }
    assert url_rewrite == {"2016": "CU22", "2019": "CU11"}


@pytest.mark.parametrize("rule", rules_of("step"), ids=lambda rule: rule["key"])
def test_step_data_is_well_formed(rule):
    data = rule["data"]
    assert isinstance(data["condition"], str)
    assert data["condition"].strip()
    assert data["applies_to_kinds"]
    assert set(data["applies_to_kinds"]) <= UPDATE_KINDS
    for moment in ("before", "after"):
        assert set(data[moment]) == {"description", "command"}
        assert data[moment]["description"].strip()
        assert data[moment]["command"].strip()


def test_forefront_step():
    rule = by_key("step.forefront")
    assert rule["products"] == ["2007", "2010"]
    assert rule["data"]["applies_to_kinds"] == ["SP", "RU"]
    assert rule["data"]["before"]["command"] == "fscutility /disable"
    assert rule["data"]["after"]["command"] == "fscutility /enable"
    assert rule["data"]["cluster_note"].strip()
    assert rule["data"]["cluster"]["kinds"] == ["CCR", "SCC"]
    assert rule["data"]["cluster"]["verify"]["command"] == "Test-Mailflow -TargetMailboxServer {cms}"


def test_coexistence_gates_one_per_introduced_product_and_scoped_requirements():
    gates = [rule for rule in rules_of("coexistence") if rule["data"].get("type", "gate") == "gate"]
    first = [rule for rule in gates if rule["data"].get("from_level") is None]
    assert sorted(rule["data"]["introduce"] for rule in first) == sorted(["2010", "2013", "2016", "2019", "SE"])
    for rule in gates:
        data = rule["data"]
        assert set(data) <= {"introduce", "requires", "forbids", "self_min_level", "from_level", "type"}
        assert rule["products"] == [data["introduce"]]
        assert set(data["forbids"]) <= set(PRODUCTS)
        assert data["introduce"] not in data["forbids"]
        assert data["self_min_level"] is None or LEVEL_RE.match(data["self_min_level"])
        for item in data["requires"]:
            assert set(item) == {"product", "min_level", "min_update", "scope"}
            assert item["scope"] in {"organisation", "site"}
            assert item["product"] in PRODUCTS
            assert item["product"] not in data["forbids"]
            assert LEVEL_RE.match(item["min_level"])
            assert item["min_update"] is None or re.match(r"^Update Rollup [0-9]+$", item["min_update"])
    # 2010 setup checks every 2007 server of the organisation, Edge included; SE CU2 refuses 2016 and 2019.
    assert by_key("coexistence.2010")["data"]["requires"][0]["scope"] == "organisation"
    assert by_key("coexistence.se_cu2")["data"] | {} == {
        "introduce": "SE", "from_level": "CU2", "requires": [], "forbids": ["2016", "2019"], "self_min_level": None,
    }  # fmt: skip


def test_the_routing_rule_is_per_site_and_the_point_of_no_return_is_practice():
    routing = by_key("coexistence.routing_hub")
    assert routing["data"] == {"type": "routing", "products": ["2007", "2010"], "mailbox_role": "Mailbox",
                               "transport_role": "HubTransport"}  # fmt: skip
    assert by_key("coexistence.no_return")["source"]["is_practice"] is True


STEP_KINDS = {"ad_preparation", "prerequisite", "gate", "pre_step", "failover", "install", "post_step", "verify"}
RUNBOOK_KEYS = {"runbook.2007.ccr.service_pack", "runbook.2007.ccr.rollup", "runbook.2007.scc.service_pack",
                "runbook.2007.scc.rollup", "runbook.2007.scr", "runbook.2010.dag", "runbook.2013_plus.dag",
                "runbook.2013_plus.standalone", "runbook.2007_2010.standalone", "runbook.edge"}  # fmt: skip


def test_there_is_a_runbook_for_every_family_and_kind_of_cluster():
    assert {rule["key"] for rule in rules_of("runbook")} == RUNBOOK_KEYS
    covered = {(product, rule["data"]["cluster_kind"]) for rule in rules_of("runbook") for product in rule["products"]}
    assert {("2007", "CCR"), ("2007", "SCR"), ("2007", "SCC"), ("2010", "DAG"), ("2013", "DAG"), ("2016", "DAG"),
            ("2019", "DAG"), ("SE", "DAG"), ("2007", None), ("2010", None), ("2019", None), ("SE", None)} <= covered  # fmt: skip


@pytest.mark.parametrize("rule", rules_of("runbook"), ids=lambda rule: rule["key"])
def test_runbook_steps_say_what_where_and_when(rule):
    data = rule["data"]
    assert data["cluster_kind"] in {None, "CCR", "SCR", "SCC", "DAG"}
    assert set(data["install_kinds"]) <= UPDATE_KINDS
    ids = [step["id"] for step in data["steps"]]
    assert len(ids) == len(set(ids))
    for step in data["steps"]:
        assert step["kind"] in STEP_KINDS
        assert step["scope"] in {"node", "cluster", "site", "organisation"}
        assert step["when"] in {"before", "between", "after"}
        assert step["description"].strip()
        assert step["when"] != "between" or step["scope"] == "cluster"
        assert step["command"] is None or step["command"].strip()
    # Every runbook checks the build each node reports afterwards.
    assert "exsetup" in ids


def test_failover_gates_come_before_every_failover():
    """Copy status Healthy with empty queues (and Test-ReplicationHealth) before a failover, wherever copies exist."""
    for key in ("runbook.2007.ccr.rollup", "runbook.2010.dag", "runbook.2013_plus.dag"):
        steps = by_key(key)["data"]["steps"]
        kinds = [(step["kind"], (step["command"] or "").split(" ")[0]) for step in steps]
        failover = next(index for index, (kind, _) in enumerate(kinds) if kind == "failover")
        gates = [command for kind, command in kinds[:failover] if kind == "gate"]
        assert any(command.startswith(("Get-StorageGroupCopyStatus", "Get-MailboxDatabase")) for command in gates), key
        assert "Test-ReplicationHealth" in gates, key


def test_ad_preparation_rules_name_every_level_of_the_catalog(snapshot):
    levels, base = {}, {}
    for entry in snapshot["entries"]:
        if entry["kind"] in ("RTM", "SP", "CU"):
            levels.setdefault(entry["product"], set()).add(entry["level"])
            base[(entry["product"], entry["level"])] = version_key(entry["build"])
    for rule in rules_of("ad_preparation"):
        (product,) = rule["products"]
        data = rule["data"]
        assert set(data["levels"]) == levels[product], product
        assert set(data["commands"]) == {"schema", "organisation", "domains"}
        in_build_order = sorted(data["levels"], key=lambda name: base[(product, name)])
        uppers = [data["levels"][name]["range_upper"] for name in in_build_order]
        assert uppers == sorted(uppers), f"{product}: rangeUpper never goes down from one level to the next"
    assert by_key("ad_preparation.2019")["data"]["levels"]["CU15"] == {
        "range_upper": 17003, "object_version_default": 13243, "object_version_configuration": 16763,
    }  # fmt: skip


def test_esu_and_the_road_to_se():
    esu = by_key("esu.2016_2019")
    assert esu["data"] == {"released_after": "2025-10-14", "levels": {"2016": ["CU23"], "2019": ["CU14", "CU15"]}}
    assert by_key("upgrade_path.2019_se")["data"] == {"from": "2019", "from_levels": ["CU14", "CU15"], "to": "SE"}
    migration = by_key("migration.2016_se")["data"]
    assert migration["from"] == ["2016"] and migration["to"] == "SE"
    assert migration["steps"][0]["id"] == "new_server"
    assert [step["id"] for step in migration["steps"]][-1] == "uninstall"


def test_the_bundled_rules_load_as_engine_values():
    from kb.engine.rules import Rules

    rules = Rules.from_dicts(RULES)
    assert len(rules.runbooks) == len(RUNBOOK_KEYS)
    assert sorted(rules.ad_preparation) == sorted(PRODUCTS)
    assert rules.no_return is not None and rules.no_return.is_practice


def test_role_order_rule():
    (rule,) = rules_of("role_order")
    assert rule["key"] == "role_order.default"
    assert sorted(rule["products"]) == sorted(PRODUCTS)
    order = rule["data"]["order"]
    assert order == ["ClientAccess", "HubTransport", "EdgeTransport", "UnifiedMessaging", "Mailbox"]
    assert rule["source"]["is_practice"] is True
