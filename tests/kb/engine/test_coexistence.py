"""Coexistence gates over INVENTED estates (names, sites, organisations made up; real builds; bundled rules)."""

import json
from datetime import date

import pytest

from kb.engine.coexistence import coexistence_check
from kb.engine.planning import PlanError
from kb.engine.rules import Rules
from tests.conftest import ROOT
from tests.kb.engine.invented import ALL_2019, ccr, node

NOW = date(2026, 11, 25)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules.from_dicts(json.loads((ROOT / "kb" / "data" / "rules.json").read_text())["rules"])


def hub(fqdn, build, *, site="HQ", organisation="x.example", roles=("HubTransport",)):
    return node(fqdn, build, roles=roles, site=site, organisation=organisation, dotnet="4.8", prerequisites=ALL_2019)


@pytest.mark.parametrize(
    ("_case", "introduce", "build", "blocked", "reason"),
    [
        ("2007 SP1 blocks 2010", "2010", "8.1.436.0", True, "Exchange Server 2010 needs SP2 or later"),
        ("2007 SP2 passes the 2010 gate", "2010", "8.2.176.2", False, None),
        ("2007 SP3 RU4 blocks 2013", "2013", "8.3.192.1", True, "Exchange Server 2013 needs SP3 Update Rollup 10 or later"),
        ("2007 SP3 RU10 passes 2013", "2013", "8.3.298.3", False, None),
        ("2010 SP3 RU10 blocks 2016", "2016", "14.3.248.2", True, "needs SP3 Update Rollup 11 or later"),
        ("2007 may not remain for 2016", "2016", "8.3.517.0", True, "may not remain in the organisation"),
        ("2013 CU20 blocks 2019", "2019", "15.0.1367.3", True, "needs CU21 or later"),
        ("2013 may not remain for SE", "SE", "15.0.1497.48", True, "may not remain"),
    ],
)  # fmt: skip
def test_coexistence_gates(catalog, rules, _case, introduce, build, blocked, reason):
    report = coexistence_check(introduce, [hub("old.x.example", build)], catalog, rules, today=NOW)

    levels = [b for b in report.blockers if b.kind in ("level", "forbidden")]
    assert bool(levels) is blocked
    if blocked:
        assert reason in levels[0].reason


# -- fault 6: the clearing plan reaches the gate's level, across service packs ----------------------------------


def test_fault_6_a_2007_sp1_rollup_server_is_planned_to_sp3_rollup_10_not_an_sp1_rollup(catalog, rules):
    servers = [hub("hub-07.fabrikam.example", "8.1.359.2", organisation="fabrikam.example")]  # 2007 SP1 RU7

    report = coexistence_check("2013", servers, catalog, rules, today=NOW)

    (blocker,) = report.blockers
    assert (
        blocker.reason
        == "runs Exchange Server 2007 SP1 Update Rollup 7; Exchange Server 2013 needs SP3 Update Rollup 10 or later"
    )
    installs = [(s.description, s.command, s.kb) for s in blocker.plan.steps if s.kind == "install"]
    assert installs == [
        ("Install Exchange Server 2007 SP3 on HUB-07", "setup.com /mode:upgrade", None),
        (
            "Install Exchange Server 2007 SP3 Update Rollup 10 on HUB-07",
            "msiexec /update Exchange2007-KB2788321-x64-en.msp (elevated)",
            "KB2788321",
        ),
    ]
    # SP3 extends the schema: prepared once for the organisation before the server.
    assert [s.command for s in blocker.plan.steps if s.kind == "ad_preparation"] == [
        "setup.com /PrepareSchema",
        "setup.com /PrepareAD",
    ]
    assert blocker.plan.target == {"build": "8.3.298.3", "product": "Exchange Server 2007", "level": "SP3",
                                   "update": "Update Rollup 10", "kb": "KB2788321"}  # fmt: skip


def test_fault_6_a_clustered_blocker_is_cleared_by_its_view_of_the_cluster_plan(catalog, rules):
    servers = ccr(build="8.3.192.1")

    report = coexistence_check("2013", servers, catalog, rules, today=NOW)

    assert sorted(b.fqdn for b in report.blockers) == ["ccr-fab-a.fabrikam.example", "ccr-fab-b.fabrikam.example"]
    plan = next(b.plan for b in report.blockers if b.fqdn == "ccr-fab-b.fabrikam.example")
    assert plan.cluster == {"name": "CCR-FAB", "kind": "CCR", "role": "passive"}
    assert "Move-ClusteredMailboxServer -Identity CCR-FAB -TargetMachine CCR-FAB-B" in " ".join(
        s.command or "" for s in plan.steps
    )


# -- fault 7: newer versions already present, and mixes Microsoft does not support -------------------------------


def test_fault_7_introducing_2010_where_2019_and_se_run_is_blocked(catalog, rules):
    servers = [hub("ex19.northwind.example", "15.2.1748.10", organisation="northwind.example", roles=("Mailbox",)),
               hub("se.northwind.example", "15.2.2562.46", organisation="northwind.example", roles=("Mailbox",))]  # fmt: skip

    report = coexistence_check("2010", servers, catalog, rules, today=NOW)

    assert [(b.kind, b.fqdn, b.rule.split(" ")[0]) for b in report.blockers] == [
        ("newer_present", "ex19.northwind.example", "coexistence.2019"),
        ("newer_present", "se.northwind.example", "coexistence.se"),
        ("no_return", "ex19.northwind.example", "coexistence.no_return"),
    ]
    assert report.blockers[0].reason == (
        "Exchange Server 2019 runs in this organisation (ex19.northwind.example) and does not coexist with Exchange "
        "Server 2010: Exchange Server 2010 cannot be introduced"
    )
    assert report.blockers[2].rule.endswith("practice)")


def test_fault_7_a_newer_version_sets_the_level_a_new_older_server_must_start_at(catalog, rules):
    servers = [hub("ex16.contoso.example", "15.1.2507.37", organisation="contoso.example", roles=("Mailbox",)),
               hub("ex10.contoso.example", "14.3.266.1", organisation="contoso.example")]  # fmt: skip

    report = coexistence_check("2010", servers, catalog, rules, today=NOW)

    assert report.blockers == ()
    assert report.requirements[0] == (
        "new Exchange Server 2010 servers must run SP3 Update Rollup 11 or later from the start: Exchange Server 2016 "
        "runs in this organisation (ex16.contoso.example) [coexistence.2016 (Exchange Server system requirements "
        "(Exchange 2016))]"
    )


def test_fault_7_an_organisation_mixing_2007_and_2016_is_flagged_without_introducing_anything(catalog, rules):
    servers = [hub("ex07.tailspin.example", "8.3.517.0", organisation="tailspin.example"),
               hub("ex16.tailspin.example", "15.1.2507.37", organisation="tailspin.example", roles=("Mailbox",)),
               hub("ok10.other.example", "14.3.513.0", organisation="other.example")]  # fmt: skip

    report = coexistence_check(None, servers, catalog, rules, today=NOW)

    (blocker,) = report.blockers
    assert (blocker.kind, blocker.fqdn, blocker.organisation, blocker.scope) == (
        "mix",
        "ex07.tailspin.example",
        "tailspin.example",
        "organisation",
    )
    assert blocker.reason.startswith(
        "Exchange Server 2007 runs beside Exchange Server 2016 (ex16.tailspin.example), which does not support it"
    )
    assert blocker.rule.startswith("coexistence.2016")


def test_fault_7_an_existing_mix_below_the_newer_versions_minimum_comes_with_a_plan(catalog, rules):
    servers = [hub("ex16.contoso.example", "15.1.2507.37", organisation="contoso.example", roles=("Mailbox",)),
               hub("ex10.contoso.example", "14.3.174.1", organisation="contoso.example")]  # 2010 SP3 RU4  # fmt: skip

    report = coexistence_check(None, servers, catalog, rules, today=NOW)

    (blocker,) = report.blockers
    assert blocker.reason == ("runs Exchange Server 2010 SP3 Update Rollup 4 beside Exchange Server 2016 "
                              "(ex16.contoso.example); Exchange Server 2016 needs SP3 Update Rollup 11 or later")  # fmt: skip
    assert [s.kb for s in blocker.plan.steps if s.kind == "install"] == ["KB3078674"]


def test_the_2010_gate_is_organisation_wide_and_edge_included(catalog, rules):
    """2010 setup checks every 2007 server of the organisation, Edge included, wherever the new server goes."""
    servers = [hub("hq.x.example", "8.3.517.0", site="HQ"),
               hub("edge.x.example", "8.1.436.0", site="DMZ", roles=("EdgeTransport",))]  # fmt: skip

    report = coexistence_check("2010", servers, catalog, rules, today=NOW, site="HQ")

    assert [(b.fqdn, b.kind, b.scope) for b in report.blockers] == [("edge.x.example", "level", "organisation")]


def test_the_routing_rule_is_per_ad_site(catalog, rules):
    servers = [hub("hub07.x.example", "8.3.517.0", site="HQ"),
               hub("mbx07.x.example", "8.3.517.0", site="HQ", roles=("Mailbox",)),
               hub("mbx10.x.example", "14.3.513.0", site="Branch", roles=("Mailbox",)),
               hub("hub07b.x.example", "8.3.517.0", site="Branch")]  # fmt: skip

    report = coexistence_check(None, servers, catalog, rules, today=NOW)
    introducing = coexistence_check("2010", servers[:2], catalog, rules, today=NOW, site="HQ")

    (blocker,) = report.blockers
    assert (blocker.kind, blocker.scope, blocker.site, blocker.fqdn) == ("routing", "site", "Branch", "")
    assert blocker.reason == ("Exchange Server 2010 Mailbox servers in Branch (mbx10.x.example) have no Exchange "
                              "Server 2010 Hub Transport server in their site")  # fmt: skip
    assert introducing.requirements == (
        "in HQ: install an Exchange Server 2010 Hub Transport server before or with the first Exchange Server 2010 "
        "Mailbox server, and keep the Exchange Server 2007 Hub Transport servers (hub07.x.example) until the last "
        "Mailbox server of their version there is gone [coexistence.routing_hub (ExchangePatch domain notes §4)]",
    )


def test_a_blocker_comes_with_the_plan_that_clears_it(catalog, rules):
    report = coexistence_check("2013", [hub("old.x.example", "8.3.192.1")], catalog, rules, today=NOW)

    assert [s.kb for s in report.blockers[0].plan.steps if s.kind == "install"] == ["KB2788321"]
    assert report.blockers[0].rule.startswith("coexistence.2013")


def test_unknown_product_to_introduce_is_an_error(catalog, rules):
    with pytest.raises(PlanError, match="no coexistence rules for '2003'"):
        coexistence_check("2003", [], catalog, rules, today=NOW)


def test_servers_of_another_organisation_never_block(catalog, rules):
    servers = [hub("old.fabrikam.example", "8.3.192.1", organisation="fabrikam.example"),
               hub("new.contoso.example", "15.2.1544.9", organisation="contoso.example")]  # fmt: skip

    assert coexistence_check("SE", servers, catalog, rules, today=NOW, organisation="contoso.example").blockers == ()
    blocked = coexistence_check("SE", servers, catalog, rules, today=NOW).blockers
    assert [(b.fqdn, b.organisation, b.kind) for b in blocked] == [
        ("old.fabrikam.example", "fabrikam.example", "forbidden")
    ]


def test_the_newcomer_itself_must_meet_its_minimum_level(catalog, rules):
    servers = [node("ex13.x.example", "15.0.620.29", dotnet="4.5", organisation="x.example")]  # 2013 CU1

    report = coexistence_check("2013", servers, catalog, rules, today=NOW)

    assert [b.reason.split("; ")[-1] for b in report.blockers] == ["Exchange Server 2013 needs CU2 or later"]
    assert next(s.kb for s in report.blockers[0].plan.steps if s.kind == "install") == "KB2859928"  # CU2
