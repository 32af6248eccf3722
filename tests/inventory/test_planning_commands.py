"""plan, rollout, coexistence_check and organisation_esu on an INVENTED mixed estate of every product family and
kind of cluster (tests/inventory/mixed_estate.py), and on the invented demo estate, in the real database.

Each fault of issue 9 is checked in the text and the JSON format: names of cmdlets, scope, before/after, order."""

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

from inventory.models import Cluster, Organisation
from inventory.records import server_record_from_mapping
from inventory.services import server_upsert_many
from tests.inventory.mixed_estate import MIXED_ESTATE


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo(loaded_catalog, settings):
    settings.EXCHANGEPATCH_TODAY = "2026-11-25"
    call_command("demo_load", stdout=io.StringIO())


@pytest.fixture
def mixed(loaded_catalog, settings):
    settings.EXCHANGEPATCH_TODAY = "2026-11-25"
    records = []
    for item in MIXED_ESTATE:
        record, errors = server_record_from_mapping(item)
        assert errors == {}, item["fqdn"]
        records.append(record)
    server_upsert_many(records, source="invented test estate")


def text_steps(output: str) -> list[tuple[str, str, str, str]]:
    """(kind, scope, when, command) per numbered step of the text format."""
    found, current = [], None
    for line in output.splitlines():
        match = re.match(r"\s+\d+\. \[(\w+) · (\w+) · (\w+)\] ", line)
        if match:
            current = [*match.groups(), ""]
            found.append(current)
        elif current is not None and line.strip().startswith("> "):
            current[3] = line.strip()[2:]
    return [tuple(step) for step in found]


def json_steps(output: str) -> list[tuple[str, str, str, str]]:
    return [(s["kind"], s["scope"], s["when"], s["command"] or "") for s in json.loads(output)["steps"]]


def heads(steps) -> list[str]:
    return [command.split(" ")[0] for _, _, _, command in steps if command]


# -- fault 1 -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fault_1_ccr_service_pack_with_upgradecms(mixed, fmt):
    output = run("plan", "--cluster", "CCR-FAB", "--target", "SP3", "--format", fmt)
    steps = text_steps(output) if fmt == "text" else json_steps(output)

    sp_phase = steps[: next(i for i, step in enumerate(steps) if step[3].startswith("msiexec"))]
    assert [(kind, scope, when, command) for kind, scope, when, command in sp_phase if kind != "verify" or scope == "cluster"] == [
        ("pre_step", "node", "before", "fscutility /disable"),
        ("pre_step", "node", "before", "fscutility /disable"),
        ("gate", "cluster", "before", "Get-StorageGroupCopyStatus -Server CCR-FAB"),
        ("gate", "cluster", "before", "Test-ReplicationHealth -Identity CCR-FAB-B"),
        ("install", "node", "install", "setup.com /mode:upgrade"),  # CCR-FAB-B, the passive node
        ("gate", "cluster", "between", "Get-StorageGroupCopyStatus -Server CCR-FAB"),
        ("pre_step", "cluster", "between", 'Stop-ClusteredMailboxServer -Identity CCR-FAB -StopReason "Exchange Server 2007 SP3" -Confirm:$false'),
        ("failover", "cluster", "between", 'cluster.exe group "CCR-FAB" /moveto:CCR-FAB-B'),
        ("install", "cluster", "between", "setup.com /upgradecms"),
        ("verify", "cluster", "between", "Get-ClusteredMailboxServerStatus -Identity CCR-FAB"),
        ("install", "node", "install", "setup.com /mode:upgrade"),  # CCR-FAB-A, the former active node
        ("gate", "cluster", "after", "Get-StorageGroupCopyStatus -Server CCR-FAB"),
    ]  # fmt: skip
    if fmt == "json":
        plan = json.loads(output)
        assert [(m["fqdn"], m["role"]) for m in plan["members"]] == [
            ("ccr-fab-b.fabrikam.example", "passive"), ("ccr-fab-a.fabrikam.example", "active")]  # fmt: skip
        installs = [(s["server"], s["command"]) for s in plan["steps"] if s["kind"] == "install"]
        assert installs[:3] == [("ccr-fab-b.fabrikam.example", "setup.com /mode:upgrade"), (None, "setup.com /upgradecms"),
                                ("ccr-fab-a.fabrikam.example", "setup.com /mode:upgrade")]  # fmt: skip
    else:
        assert output.startswith("CCR CCR-FAB (fabrikam.example): 2 member(s), one maintenance window\n")


# -- fault 2 -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fault_2_scr_moves_nothing_and_reads_copy_status_with_standby_machine(mixed, fmt):
    output = run("plan", "--cluster", "SCR-FAB", "--format", fmt)
    steps = text_steps(output) if fmt == "text" else json_steps(output)

    assert heads(steps) == ["Get-StorageGroupCopyStatus", "Get-StorageGroup", "msiexec", "Get-StorageGroup", "Get-Command",
                            "Get-StorageGroupCopyStatus", "msiexec", "Get-Command", "Get-StorageGroupCopyStatus"]  # fmt: skip
    assert {c for *_, c in steps if c.startswith("Get-StorageGroupCopyStatus")} == {
        "Get-StorageGroupCopyStatus -Server MBX-FAB-01 -StandbyMachine SCR-FAB-DR"
    }
    assert "Move-ClusteredMailboxServer" not in output and "Restore-StorageGroupCopy" not in output


@pytest.mark.django_db
def test_fault_2_the_ccr_copy_status_names_the_clustered_mailbox_server(mixed):
    output = run("plan", "--server", "ccr-fab-a.fabrikam.example", "--format", "json")

    status = {
        s["command"]
        for s in json.loads(output)["steps"]
        if (s["command"] or "").startswith("Get-StorageGroupCopyStatus")
    }
    assert status == {"Get-StorageGroupCopyStatus -Server CCR-FAB"}


# -- fault 3 -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fault_3_forefront_disabled_on_all_nodes_then_enabled_active_node_first(mixed, fmt):
    output = run("plan", "--cluster", "CCR-FAB", "--format", fmt)
    steps = text_steps(output) if fmt == "text" else json_steps(output)

    forefront = [(kind, scope, when, command) for kind, scope, when, command in steps
                 if command.startswith(("fscutility", "Test-Mailflow"))]  # fmt: skip
    assert forefront == [
        ("pre_step", "node", "before", "fscutility /disable"), ("pre_step", "node", "before", "fscutility /disable"),
        ("verify", "cluster", "after", "Test-Mailflow -TargetMailboxServer CCR-FAB"),
        ("post_step", "node", "after", "fscutility /enable"), ("post_step", "node", "after", "fscutility /enable"),
    ]  # fmt: skip
    installs = [i for i, step in enumerate(steps) if step[0] == "install"]
    disables = [i for i, step in enumerate(steps) if step[3] == "fscutility /disable"]
    assert max(disables) < min(installs) and steps.index(forefront[2]) > max(installs)
    if fmt == "text":
        assert "Enable Forefront Protection for Exchange on CCR-FAB-A (the active node first)" in output


# -- fault 4 -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fault_4_2010_dag_maintenance_scripts(mixed, fmt):
    output = run("plan", "--cluster", "DAG10", "--format", fmt)
    steps = text_steps(output) if fmt == "text" else json_steps(output)

    scripts = [(kind, scope, when, command) for kind, scope, when, command in steps if command.startswith("&")]
    assert scripts == [
        ("failover", "node", "before", '& "$exscripts\\StartDagServerMaintenance.ps1" -serverName DAG10-B'),
        ("post_step", "node", "after", '& "$exscripts\\StopDagServerMaintenance.ps1" -serverName DAG10-B'),
        ("failover", "node", "before", '& "$exscripts\\StartDagServerMaintenance.ps1" -serverName DAG10-A'),
        ("post_step", "node", "after", '& "$exscripts\\StopDagServerMaintenance.ps1" -serverName DAG10-A'),
        ("post_step", "cluster", "after", '& "$exscripts\\RedistributeActiveDatabases.ps1" -DagName DAG10 -BalanceDbsByActivationPreference -Confirm:$false'),
    ]  # fmt: skip
    start = steps.index(scripts[0])
    assert [kind for kind, *_ in steps[start - 2 : start]] == [
        "gate",
        "gate",
    ]  # copy status and replication health first


# -- fault 5 -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fault_5_every_2019_dag_member_drained(mixed, fmt):
    output = run("plan", "--cluster", "DAG19", "--format", fmt)
    steps = text_steps(output) if fmt == "text" else json_steps(output)

    member = ["Get-MailboxDatabase", "Test-ReplicationHealth", "Set-ServerComponentState", "Restart-Service",
              "Redirect-Message", "Suspend-ClusterNode", "Set-MailboxServer", "Get-MailboxServer", "Set-MailboxServer",
              "Get-MailboxDatabaseCopyStatus", "Set-ServerComponentState", "Get-ServerComponentState", "Run",
              "Set-ServerComponentState", "Resume-ClusterNode", "Set-MailboxServer", "Set-MailboxServer",
              "Set-ServerComponentState", "Restart-Service", "Get-ServerComponentState", "Get-Command",
              "Get-MailboxDatabaseCopyStatus"]  # fmt: skip
    assert heads(steps) == [*member, *member, "&"]
    drains = [c for *_, c in steps if "HubTransport -State Draining" in c]
    assert drains == ["Set-ServerComponentState DAG19-B -Component HubTransport -State Draining -Requester Maintenance",
                      "Set-ServerComponentState DAG19-A -Component HubTransport -State Draining -Requester Maintenance"]  # fmt: skip
    assert (
        "failover",
        "node",
        "before",
        "Set-MailboxServer DAG19-B -DatabaseCopyActivationDisabledAndMoveNow $true",
    ) in steps
    assert steps[-1] == (
        "post_step",
        "cluster",
        "after",
        '& "$exscripts\\RedistributeActiveDatabases.ps1" -DagName DAG19 -BalanceDbsByActivationPreference -Confirm:$false',
    )


# -- fault 6 -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fault_6_the_clearing_plan_reaches_sp3_rollup_10(mixed, fmt):
    output = run("coexistence_check", "--introduce", "2013", "--organisation", "fabrikam.example", "--format", fmt)

    if fmt == "json":
        report = json.loads(output)
        blocker = next(b for b in report["blockers"] if b["fqdn"] == "hub-fab-07.fabrikam.example")
        installs = [(s["command"], s["kb"]) for s in blocker["plan"]["steps"] if s["kind"] == "install"]
        assert installs == [
            ("setup.com /mode:upgrade", None),
            ("msiexec /update Exchange2007-KB2788321-x64-en.msp (elevated)", "KB2788321"),
        ]
        assert blocker["plan"]["target"]["level"] == "SP3" and blocker["plan"]["target"]["update"] == "Update Rollup 10"
        assert (blocker["kind"], blocker["scope"]) == ("level", "organisation")
    else:
        section = output.split("- [level, organisation] hub-fab-07.fabrikam.example", 1)[1].split("\n- [", 1)[0]
        assert (
            "runs Exchange Server 2007 SP1 Update Rollup 7; Exchange Server 2013 needs SP3 Update Rollup 10 or later"
            in section
        )
        assert (
            "hub-fab-07.fabrikam.example: Exchange Server 2007 SP1 Update Rollup 7 → Exchange Server 2007 SP3 Update Rollup 10"
            in section
        )
        assert [c for *_, c in text_steps(section) if c.startswith(("setup.com", "msiexec"))] == [
            "setup.com /mode:upgrade", "msiexec /update Exchange2007-KB2788321-x64-en.msp (elevated)"]  # fmt: skip
        assert "cleared by the CCR CCR-FAB plan above (plan --cluster CCR-FAB)" in output


# -- fault 7 -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fault_7_newer_versions_block_an_older_one_and_mixes_are_flagged(mixed, fmt):
    newer = run("coexistence_check", "--introduce", "2010", "--organisation", "northwind.example", "--format", fmt)
    mix = run("coexistence_check", "--organisation", "tailspin.example", "--format", fmt)

    if fmt == "json":
        assert [(b["kind"], b["fqdn"]) for b in json.loads(newer)["blockers"]] == [
            ("newer_present", "dag19-a.northwind.example"), ("newer_present", "se-01.northwind.example"),
            ("no_return", "dag19-a.northwind.example")]  # fmt: skip
        report = json.loads(mix)
        assert (report["introduce"], report["is_blocked"]) == (None, True)
        assert [(b["kind"], b["fqdn"], b["rule"].split(" ")[0]) for b in report["blockers"]] == [
            ("mix", "ex07-ts.tailspin.example", "coexistence.2016")]  # fmt: skip
    else:
        assert newer.splitlines()[0] == "3 blocker(s) for introducing Exchange 2010:"
        assert ("- [newer_present, organisation] dag19-a.northwind.example (northwind.example, Amsterdam): Exchange Server "
                "2019 runs in this organisation (dag19-a.northwind.example, dag19-b.northwind.example) and does not "
                "coexist with Exchange Server 2010") in newer  # fmt: skip
        assert mix.splitlines()[0] == "1 blocker(s) for the versions already side by side:"


# -- fault 8 -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fault_8_a_clustered_mailbox_server_is_planned_through_its_nodes(mixed, fmt):
    output = run("plan", "--server", "ccr-fab.fabrikam.example", "--format", fmt)

    if fmt == "json":
        plan = json.loads(output)
        assert plan["cluster"] == {"name": "CCR-FAB", "kind": "CCR", "role": "clustered mailbox server"}
        assert {s["server"] for s in plan["steps"] if s["kind"] == "install"} == {
            "ccr-fab-a.fabrikam.example", "ccr-fab-b.fabrikam.example", None}  # fmt: skip
    else:
        assert (
            "note: ccr-fab.fabrikam.example is the clustered mailbox server of CCR CCR-FAB: its plan is the plan of its nodes"
            in output
        )
        assert "> setup.com /upgradecms" in output


@pytest.mark.django_db
def test_fault_8_a_clustered_mailbox_server_without_nodes_is_refused(mixed):
    with pytest.raises(CommandError) as error:
        run("plan", "--server", "cms-lost.fabrikam.example")

    assert str(error.value).startswith(
        "cms-lost.fabrikam.example is a clustered mailbox server (IsMemberOfCluster: Yes) whose nodes are not in the "
        "inventory: import its nodes (one row per node with its ExSetup.exe build, cluster=CMS-LOST"
    )
    rollout = json.loads(run("rollout", "--all", "--format", "json"))
    assert [b["fqdn"] for b in rollout["blocked"]] == ["cms-lost.fabrikam.example"]


# -- the whole mixed estate ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rollout_of_every_family_and_kind_of_cluster(mixed):
    rollout = json.loads(run("rollout", "--all", "--format", "json"))

    units = [(item["cluster"], tuple(item["servers"])) for wave in rollout["waves"] for item in wave["servers"]]
    assert ("CCR-FAB", ("ccr-fab-a.fabrikam.example", "ccr-fab-b.fabrikam.example")) in units  # whole, one window
    assert ("SCC-FAB", ("scc-fab-a.fabrikam.example", "scc-fab-b.fabrikam.example")) in units
    waves_of = {}
    for number, wave in enumerate(rollout["waves"]):
        for item in wave["servers"]:
            for fqdn in item["servers"]:
                waves_of[fqdn] = number
    for first, then in [("dag19-b.northwind.example", "dag19-a.northwind.example"),
                        ("dag10-b.contoso.example", "dag10-a.contoso.example"),
                        ("dag16-b.contoso.example", "dag16-a.contoso.example"),
                        ("scr-fab-dr.fabrikam.example", "mbx-fab-01.fabrikam.example")]:  # fmt: skip
        assert waves_of[first] < waves_of[then]
    assert waves_of["edge-fab-01.fabrikam.example"] == 0  # the Internet-facing DMZ first
    ex13 = next(
        item for wave in rollout["waves"] for item in wave["servers"] if item["fqdn"] == "ex13-c.contoso.example"
    )
    assert [s["command"].split(" ")[0] for s in ex13["steps"] if s["kind"] == "install"] == ["Run"]  # CU23 Mar23SU
    assert "Set-ServerComponentState" in {(s["command"] or "").split(" ")[0] for s in ex13["steps"]}
    assert rollout["up_to_date"] == ["ex07-ts.tailspin.example"]
    first_step = rollout["waves"][0]["servers"][0]["steps"][0]
    assert set(first_step) == {"kind", "description", "command", "kb", "reason", "scope", "when", "server"}


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "csv"])
def test_cluster_plans_render_in_every_format(mixed, fmt):
    output = run("plan", "--cluster", "SCC-FAB", "--format", fmt)

    if fmt == "json":
        assert json.loads(output)["one_window"] is True
    elif fmt == "csv":
        header, *rows = output.splitlines()
        assert header == "wave,starts_at,fqdn,site,step,kind,description,command,kb,reason,scope,when,runs_on,rule"
        assert (
            rows[0].startswith(",,SCC-FAB,,1,gate,") and "Get-ClusteredMailboxServerStatus -Identity SCC-FAB" in rows[0]
        )
    elif fmt == "markdown":
        assert output.startswith("### SCC SCC-FAB (fabrikam.example): 2 member(s), one maintenance window")
        assert "| # | Kind | Scope | When | Runs on | Step | Command | KB | Why | Source |" in output
    else:
        assert "Move-ClusteredMailboxServer -Identity SCC-FAB -TargetMachine SCC-FAB-B" in output


@pytest.mark.django_db
def test_an_organisation_enrolled_in_esu_is_planned_to_the_esu_only_update(mixed):
    before = json.loads(run("plan", "--server", "dag16-b.contoso.example", "--format", "json"))
    message = run("organisation_esu", "contoso.example", "--until", "2027-04-14")
    after = json.loads(run("plan", "--server", "dag16-b.contoso.example", "--format", "json"))

    assert (
        message.strip()
        == "contoso.example: enrolled in Extended Security Updates until 2027-04-14; run `scan` to refresh the verdicts"
    )
    assert Organisation.objects.get(name="contoso.example").esu_enrolled_until.isoformat() == "2027-04-14"
    assert before["target"]["update"] == "Oct25SU"
    assert after["target"]["update"] == "Aug26SU"
    assert [s["description"] for s in after["steps"] if s["kind"] == "install"] == [
        "Install Exchange Server 2016 CU23 Aug26SU (ESU-only update) on DAG16-B"
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nowhere.example", "--until", "2027-01-01"), "organisation: 'nowhere.example' is not an organisation in the inventory"),
        (("contoso.example", "--until", "next year"), "--until: 'next year' is not a date (YYYY-MM-DD)"),
    ],
)  # fmt: skip
def test_organisation_esu_errors_change_nothing(mixed, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run("organisation_esu", *args)

    assert not Organisation.objects.filter(esu_enrolled_until__isnull=False).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cluster", "NOPE"), "--cluster: NOPE is not a cluster or DAG in the inventory"),
        (("--cluster", "CMS-LOST"), "cms-lost.fabrikam.example is a clustered mailbox server"),
        (("--cluster", "DAG19", "--organisation", "atlantis.example"), "--organisation: 'atlantis.example' is not an organisation"),
        (("--cluster", "DAG16", "--target", "SE"), "Exchange Server Subscription Edition cannot join organisation contoso.example while Exchange Server 2010 and Exchange Server 2013 remain"),
    ],
)  # fmt: skip
def test_plan_cluster_errors_are_one_line(mixed, args, message):
    with pytest.raises(CommandError) as error:
        run("plan", *args)

    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert Cluster.objects.count() == 6  # nothing written


# -- the demo estate ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "csv"])
def test_plan_renders_every_format(demo, fmt):
    output = run("plan", "--server", "ccr-ex07-a.fabrikam.example", "--format", fmt)

    if fmt == "json":
        plan = json.loads(output)
        assert plan["cluster"] == {"name": "CCR-EX07", "kind": "CCR", "role": "active"}
        assert [s["command"].split(" ")[0] for s in plan["steps"] if s["kind"] in ("install", "failover")] == [
            "Move-ClusteredMailboxServer", "msiexec"]  # fmt: skip
        assert plan["target"]["kb"] == "KB4011325"
    elif fmt == "csv":
        assert (
            output.splitlines()[0]
            == "wave,starts_at,fqdn,site,step,kind,description,command,kb,reason,scope,when,runs_on,rule"
        )
    elif fmt == "markdown":
        assert output.startswith("### ccr-ex07-a.fabrikam.example: Exchange Server 2007 SP3 Update Rollup 4 → ")
        assert (
            "| install | node | install | ccr-ex07-a.fabrikam.example | Install Exchange Server 2007 SP3 Update Rollup 23 on CCR-EX07-A |"
            in output
        )
    else:
        assert "fscutility /disable" in output and "Move-ClusteredMailboxServer" in output


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--server", "nope.contoso.example"), "--server: nope.contoso.example is not in the inventory"),
        (("--server", "mbx-ex19-01.contoso.example", "--target", "CU99"), "'CU99' is not a level, update or KB"),
        (
            ("--server", "mbx-ex19-01.contoso.example", "--target", "2016"),
            "no in-place upgrade from Exchange Server 2019",
        ),
        (("--server", "mbx-ex19-01.contoso.example", "--target", "CU13"), "a downgrade is not supported"),
    ],
)
def test_plan_errors_are_one_line(demo, args, message):
    with pytest.raises(CommandError) as error:
        run("plan", *args)

    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.django_db
def test_rollout_json_follows_the_documented_shape(demo):
    rollout = json.loads(run("rollout", "--all", "--format", "json"))

    assert set(rollout) == {"preparation", "waves", "blocked", "up_to_date"}
    wave = rollout["waves"][0]
    assert set(wave) == {"number", "starts_at", "window", "notes", "servers"}
    assert set(wave["servers"][0]) == {"fqdn", "site", "roles", "cluster", "servers", "steps"}
    assert set(wave["servers"][0]["steps"][0]) == {
        "kind",
        "description",
        "command",
        "kb",
        "reason",
        "scope",
        "when",
        "server",
    }
    ccr = [item for w in rollout["waves"] for item in w["servers"] if item["cluster"] == "CCR-EX07"]
    assert [item["servers"] for item in ccr] == [["ccr-ex07-a.fabrikam.example", "ccr-ex07-b.fabrikam.example"]]
    assert {"fqdn": "lab-unknown-01.contoso.example",
            "reason": "build 16.0.100.1 is not a known Exchange 2007 or later build"} in rollout["blocked"]  # fmt: skip


@pytest.mark.django_db
def test_rollout_for_one_site_and_an_unknown_site(demo):
    output = run("rollout", "--site", "Amsterdam", "--format", "markdown")

    assert output.startswith("## Rollout plan")
    assert "mbx-ex19-02.contoso.example" in output and "edge-ex19-01" not in output
    with pytest.raises(CommandError, match="--site: 'Atlantis' is not a site in the inventory"):
        run("rollout", "--site", "Atlantis")


@pytest.mark.django_db
def test_coexistence_check_lists_blockers_with_plans(demo):
    result = json.loads(run("coexistence_check", "--introduce", "2013", "--format", "json"))

    blocked = {b["fqdn"] for b in result["blockers"]}
    assert {"ccr-ex07-a.fabrikam.example", "ccr-ex07-b.fabrikam.example", "hub-ex07-01.fabrikam.example"} <= blocked
    first = next(b for b in result["blockers"] if b["fqdn"] == "hub-ex07-01.fabrikam.example")
    assert first["plan"]["target"]["update"] == "Update Rollup 10"
    assert first["plan"]["target"]["level"] == "SP3"  # from SP2: the service pack first
    with pytest.raises(CommandError, match="no coexistence rules for '2003'"):
        run("coexistence_check", "--introduce", "2003")
