"""Shape of the bundled rules file (kb/data/rules.json): plain JSON checks, no database."""

import json
import re
from datetime import date
from pathlib import Path

import pytest

RULES_PATH = Path(__file__).resolve().parents[2] / "kb" / "data" / "rules.json"

PRODUCTS = ("2007", "2010", "2013", "2016", "2019", "SE")
CU_PRODUCTS = ("2013", "2016", "2019", "SE")
KINDS = {"support", "dotnet", "prerequisite", "step", "coexistence", "role_order"}
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
    assert source["document"].startswith(("data/docs/", "domain.md §"))
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


def test_coexistence_rules_one_per_introduced_product():
    rules = rules_of("coexistence")
    assert sorted(rule["data"]["introduce"] for rule in rules) == sorted(["2010", "2013", "2016", "2019", "SE"])
    for rule in rules:
        data = rule["data"]
        assert set(data) == {"introduce", "scope", "requires", "forbids", "self_min_level"}
        assert rule["products"] == [data["introduce"]]
        assert data["scope"] in {"organization", "site"}
        assert set(data["forbids"]) <= set(PRODUCTS)
        assert data["introduce"] not in data["forbids"]
        assert data["self_min_level"] is None or LEVEL_RE.match(data["self_min_level"])
        for item in data["requires"]:
            assert set(item) == {"product", "min_level", "min_update"}
            assert item["product"] in PRODUCTS
            assert item["product"] not in data["forbids"]
            assert LEVEL_RE.match(item["min_level"])
            assert item["min_update"] is None or re.match(r"^Update Rollup [0-9]+$", item["min_update"])


def test_role_order_rule():
    (rule,) = rules_of("role_order")
    assert rule["key"] == "role_order.default"
    assert sorted(rule["products"]) == sorted(PRODUCTS)
    order = rule["data"]["order"]
    assert order == ["ClientAccess", "HubTransport", "EdgeTransport", "UnifiedMessaging", "Mailbox"]
    assert rule["source"]["is_practice"] is True
