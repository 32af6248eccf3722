"""Planning rules, table-driven, over the real catalog and the bundled rules (no database)."""

import json
from datetime import UTC, date, datetime, time

import pytest

from kb.engine.compliance import ServerFacts
from kb.engine.estate import EstateServer, WindowSpec, rollout_plan
from kb.engine.planning import PlanError, PlanServer, plan_for_server, prerequisite_order
from kb.engine.rules import Rules
from tests.conftest import ROOT

NOW = date(2026, 11, 25)
ALL_2019 = (("ucma", "4.0"), ("url_rewrite", "2.1"), ("vcredist_2012", "2012"), ("vcredist_2013", "2013"))


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules.from_dicts(json.loads((ROOT / "kb" / "data" / "rules.json").read_text())["rules"])


# Invented servers (names and facts); the builds are real catalog builds.
def server(build, *, fqdn="ex01.contoso.example", roles=("Mailbox",), dotnet="4.8", prerequisites=ALL_2019, **extra):
    return PlanServer(fqdn, ServerFacts(build, "exsetup", tuple(roles), dotnet, tuple(sorted(prerequisites))), **extra)


def kinds_and_kbs(plan):
    return [(step.kind, step.kb) for step in plan.steps]


@pytest.mark.parametrize(
    ("_case", "build", "target", "installs"),
    [
        ("2007 SP3 RU4 → RU23 only", "8.3.192.1", None, ["Exchange Server 2007 SP3 Update Rollup 23"]),
        ("2007 SP2 → SP3 then its latest RU", "8.2.305.3", None, ["Exchange Server 2007 SP3", "Exchange Server 2007 SP3 Update Rollup 23"]),
        ("2010 SP3 RU4 → a named rollup", "14.3.174.1", "Update Rollup 10", ["Exchange Server 2010 SP3 Update Rollup 10"]),
        ("2019 CU14 Mar24SU → latest public SU of CU14 (not enrolled in ESU)", "15.2.1544.9", None, ["Exchange Server 2019 CU14 Oct25SU"]),
        ("2019 CU14 → CU15 then its latest public SU", "15.2.1544.9", "CU15", ["Exchange Server 2019 CU15", "Exchange Server 2019 CU15 Oct25SU"]),
        ("an ESU-only update named explicitly", "15.2.1544.9", "Aug26SU", ["Exchange Server 2019 CU14 Aug26SU (ESU-only update)"]),
        ("by KB", "15.2.1544.4", "KB5036386", ["Exchange Server 2019 CU14 Mar24SU"]),
    ],
)  # fmt: skip
def test_installs_skip_what_cumulation_makes_unnecessary(catalog, rules, _case, build, target, installs):
    plan = plan_for_server(server(build), catalog, rules, target=target, today=NOW)

    assert [
        s.description.removeprefix("Install ").removesuffix(" on EX01") for s in plan.steps if s.kind == "install"
    ] == installs
    assert plan.steps[-1].kind == "verify"


@pytest.mark.parametrize(
    ("_case", "build", "forefront", "expected"),
    [
        ("2007 with Forefront", "8.3.192.1", True, ["pre_step", "install", "post_step"]),
        ("2007 without Forefront", "8.3.192.1", False, ["install"]),
        ("2010 SP2 → SP3 + RU: disabled once around both", "14.2.390.3", True, ["pre_step", "install", "install", "post_step"]),
        ("2019 has no Forefront step", "15.2.1544.9", True, ["install"]),
    ],
)  # fmt: skip
def test_forefront_is_disabled_around_2007_2010_installs_only_where_installed(
    catalog, rules, _case, build, forefront, expected
):
    plan = plan_for_server(
        server(build, roles=("EdgeTransport",), is_forefront_installed=forefront), catalog, rules, today=NOW
    )

    around = [s for s in plan.steps if s.kind == "install" or (s.command or "").startswith("fscutility")]
    assert [s.kind for s in around] == expected
    commands = [s.command for s in around if s.kind != "install"]
    assert commands == (
        ["fscutility /disable", "fscutility /enable"] if forefront and expected[0] == "pre_step" else []
    )


def test_dotnet_stepping_follows_the_supported_order(catalog, rules):
    plan = plan_for_server(
        server("15.1.845.34", dotnet="4.6.2", prerequisites=()), catalog, rules, target="CU23", today=NOW
    )

    sequence = [
        s.description.removeprefix("Install ").removeprefix("Exchange Server 2016 ").replace(" on EX01", "")
        for s in plan.steps
        if s.kind == "install" or s.description.startswith("Install .NET")
    ]
    assert sequence == [
        "CU9", ".NET Framework 4.7.1 and reboot", "CU12", ".NET Framework 4.7.2 and reboot", "CU14",
        ".NET Framework 4.8 and reboot", "CU23", "CU23 Oct25SU",
    ]  # fmt: skip
    assert "newer ESU-only updates exist for CU23 (up to Aug26SU)" in " ".join(plan.notes)


def test_dotnet_first_when_the_current_cu_supports_what_the_target_needs(catalog, rules):
    plan = plan_for_server(server("15.2.1118.7", dotnet="4.7.2"), catalog, rules, today=NOW)

    steps = [(s.kind, s.description) for s in plan.steps if s.kind in ("prerequisite", "install")]
    assert steps == [
        ("prerequisite", "Install .NET Framework 4.8 on EX01 and reboot"),
        ("install", "Install Exchange Server 2019 CU15 on EX01"),
        ("install", "Install Exchange Server 2019 CU15 Oct25SU on EX01"),
    ]


def test_missing_prerequisites_come_first_with_their_source(catalog, rules):
    plan = plan_for_server(
        server("14.3.468.0", roles=("HubTransport",), prerequisites=()), catalog, rules, today=date(2020, 6, 1)
    )

    assert (plan.steps[0].kind, plan.steps[0].kb) == ("prerequisite", "KB2460041")
    assert plan.steps[0].rule.startswith("prerequisite.filter_pack.2010")


def test_a_dag_member_planned_alone_is_drained_and_says_so(catalog, rules):
    plan = plan_for_server(
        server("15.2.1544.9", cluster="DAG1", cluster_kind="DAG"), catalog, rules, target="CU15", today=NOW
    )

    commands = [(s.kind, s.command.split()[0]) for s in plan.steps if s.command]
    assert commands[0] == ("ad_preparation", "Setup.exe")  # CU15 raises objectVersion (Configuration) 16762 → 16763
    assert commands.index(("pre_step", "Set-ServerComponentState")) < commands.index(("install", "Setup.exe"))
    assert ("pre_step", "Suspend-ClusterNode") in commands and ("post_step", "Resume-ClusterNode") in commands
    assert (
        plan.notes[0] == "planned without the other members of DAG1: plan the whole DAG to get its order and failovers"
    )


@pytest.mark.parametrize(
    ("_case", "build", "target", "message"),
    [
        ("downgrade", "15.2.1544.9", "CU11", "a downgrade is not supported"),
        ("across major versions", "15.1.2507.6", "2019", "no in-place upgrade from Exchange Server 2016 to Exchange Server 2019"),
        ("KB of another product", "15.2.1544.9", "KB4011325", "KB4011325 is an update for Exchange Server 2007, not Exchange Server 2019"),
        ("unknown target", "15.2.1544.9", "CU99", "'CU99' is not a level, update or KB of Exchange Server 2019"),
        ("unknown KB", "15.2.1544.9", "KB1234567", "KB1234567 is not in the catalog"),
        ("2019 from 2016", "15.1.2507.6", "2019", "no in-place upgrade from Exchange Server 2016 to Exchange Server 2019"),
        ("an older version", "15.2.1544.9", "2016", "no in-place upgrade from Exchange Server 2019 to Exchange Server 2016: it is an older version"),
        ("unknown build", "16.0.1.1", None, "is not a known Exchange 2007 or later build"),
    ],
)  # fmt: skip
def test_impossible_requests_are_explained(catalog, rules, _case, build, target, message):
    with pytest.raises(PlanError) as error:
        plan_for_server(server(build), catalog, rules, target=target, today=NOW)

    assert message in str(error.value)


def test_2019_cu14_upgrades_in_place_to_se(catalog, rules):
    plan = plan_for_server(server("15.2.1544.9"), catalog, rules, target="SE", today=NOW)

    installs = [s for s in plan.steps if s.kind == "install"]
    assert [s.kb for s in installs] == ["KB5047155", "KB5121573"]
    assert installs[0].command.startswith("Setup.exe /Mode:Upgrade")
    assert plan.target["product"] == "Exchange Server Subscription Edition"


def test_prerequisites_that_form_a_cycle_are_named(rules):
    # Invented rules: A requires B, B requires A.
    cyclic = Rules.from_dicts(
        [
            {"key": "prerequisite.a", "kind": "prerequisite", "products": ["2019"], "source": {"title": "invented"},
             "data": {"name": "A", "fact": "ucma", "value": "4.0", "requires": ["prerequisite.b"]}},
            {"key": "prerequisite.b", "kind": "prerequisite", "products": ["2019"], "source": {"title": "invented"},
             "data": {"name": "B", "fact": "vcredist_2012", "value": "2012", "requires": ["prerequisite.a"]}},
        ]
    )  # fmt: skip
    with pytest.raises(
        PlanError, match=r"prerequisites form a cycle: prerequisite\.a → prerequisite\.b → prerequisite\.a"
    ):
        prerequisite_order(cyclic.prerequisites)


# -- rollout ---------------------------------------------------------------------------------------

SUNDAY = WindowSpec("Sunday 01:00", "Europe/Amsterdam", (6,), time(1, 0), 240)
TUESDAY = WindowSpec("Tuesday 20:00", "UTC", (1,), time(20, 0), 120)
START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def estate(fqdn, site, roles, *, internet=False, cluster=None, active=False, windows=(), build="15.2.1544.9"):
    plan_server = server(
        build, fqdn=fqdn, roles=roles, cluster=cluster, cluster_kind="DAG" if cluster else None, is_active=active
    )
    return EstateServer(plan_server, site, internet, tuple(windows))


def order(rollout):
    return [[item.fqdn.split(".")[0] for item in wave.servers] for wave in rollout.waves]


def test_internet_facing_sites_first_then_the_role_order(catalog, rules):
    servers = [
        estate("mbx1.x.example", "Internal", ("Mailbox",)),
        estate("cas1.x.example", "Internal", ("ClientAccess",), build="14.3.468.0"),
        estate("hub1.x.example", "Internal", ("HubTransport",), build="14.3.468.0"),
        estate("edge1.x.example", "Internal", ("EdgeTransport",)),
        estate("um1.x.example", "Internal", ("UnifiedMessaging",), build="14.3.468.0"),
        estate("mbx2.x.example", "Perimeter", ("Mailbox",), internet=True),
    ]
    rollout = rollout_plan(servers, catalog, rules, today=NOW, start=START)

    assert order(rollout) == [["mbx2"], ["cas1"], ["hub1"], ["edge1"], ["um1"], ["mbx1"]]


def test_dag_members_are_in_separate_waves_passive_first(catalog, rules):
    servers = [
        estate("a.x.example", "Site", ("Mailbox",), cluster="DAG1", active=True),
        estate("b.x.example", "Site", ("Mailbox",), cluster="DAG1"),
        estate("c.x.example", "Site", ("Mailbox",), cluster="DAG1"),
        estate("d.x.example", "Site", ("Mailbox",), cluster="DAG2", active=True),
        estate("e.x.example", "Site", ("Mailbox",)),
    ]
    rollout = rollout_plan(servers, catalog, rules, today=NOW, start=START)

    assert order(rollout) == [["b", "e", "d"], ["c"], ["a"]]  # within a wave, active members are listed last


def test_an_active_member_in_an_earlier_site_still_waits_for_its_passive_members(catalog, rules):
    servers = [
        estate("active.x.example", "Perimeter", ("Mailbox",), internet=True, cluster="DAG1", active=True),
        estate("passive.x.example", "Internal", ("Mailbox",), cluster="DAG1"),
    ]
    rollout = rollout_plan(servers, catalog, rules, today=NOW, start=START)

    assert order(rollout) == [["passive"], ["active"]]


def test_waves_go_into_the_next_shared_maintenance_window(catalog, rules):
    servers = [
        estate("a.x.example", "Site", ("ClientAccess",), build="14.3.468.0", windows=[SUNDAY, TUESDAY]),
        estate("b.x.example", "Site", ("Mailbox",), windows=[TUESDAY]),
        estate("c.x.example", "Other", ("Mailbox",), windows=[SUNDAY]),
        estate("d.x.example", "Other", ("Mailbox",), windows=[TUESDAY]),
    ]
    rollout = rollout_plan(servers, catalog, rules, today=NOW, start=START)
    waves = rollout.waves

    assert order(rollout) == [["c", "d"], ["a"], ["b"]]  # sites in name order, then the role order
    assert [(w.window, w.starts_at.isoformat() if w.starts_at else None) for w in waves] == [
        (None, None),  # c and d share no window
        ("Sunday 01:00", "2026-11-29T01:00:00+01:00"),  # the earliest window a's windows offer
        ("Tuesday 20:00", "2026-12-01T20:00:00+00:00"),  # after the previous wave's window
    ]
    assert waves[0].notes == ("its servers share no maintenance window: schedule by hand or split the wave",)


def test_blocked_and_up_to_date_servers_are_reported(catalog, rules):
    servers = [
        estate("new.x.example", "Site", ("Mailbox",), build="15.2.2562.46"),
        estate("odd.x.example", "Site", ("Mailbox",), build="16.0.1.1"),
    ]
    rollout = rollout_plan(servers, catalog, rules, today=NOW, start=START).as_dict()

    assert rollout["waves"] == []
    assert rollout["up_to_date"] == ["new.x.example"]
    assert rollout["blocked"] == [
        {"fqdn": "odd.x.example", "reason": "build 16.0.1.1 is not a known Exchange 2007 or later build"}
    ]
