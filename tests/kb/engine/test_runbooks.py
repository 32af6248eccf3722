"""Cluster, DAG and standalone plans assembled from the runbook rules, one test per fault of issue 9 (no database).

Every estate here is INVENTED (names, sites, organisations); the builds are real catalog builds and the rules are the
bundled kb/data/rules.json."""

import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from kb.engine.catalog import Catalog, CatalogEntry, Kind
from kb.engine.estate import Estate, rollout_plan
from kb.engine.planning import PlanError
from kb.engine.rules import RuleError, Rules
from tests.conftest import ROOT, SUPPORT
from tests.kb.engine.invented import ALL_2019, FILTER_PACK, ccr, commands, dag, node, shape

NOW = date(2026, 11, 25)
START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules.from_dicts(json.loads((ROOT / "kb" / "data" / "rules.json").read_text())["rules"])


def estate(servers, catalog, rules):
    return Estate(servers, catalog, rules, today=NOW)


# -- fault 1: a 2007 CCR service pack upgrades the clustered mailbox server itself --------------------------------


def test_fault_1_ccr_service_pack_upgrades_the_passive_node_then_the_cms_then_the_former_active(catalog, rules):
    # SP2 → SP3 and its latest rollup (what "SP3" means as a target): the service pack procedure, then the rollup one.
    plan = estate(ccr(), catalog, rules).plan_group(estate(ccr(), catalog, rules).group_named("CCR-FAB"), target="SP3")

    assert shape(plan.steps) == [
        ("ad_preparation", "organisation", "before", "setup.com", ""),  # /PrepareSchema: SP3 raises rangeUpper to 14625
        ("ad_preparation", "organisation", "before", "setup.com", ""),  # /PrepareAD
        ("verify", "organisation", "before", '([ADSI]("LDAP://CN=ms-Exch-Schema-Version-Pt,"', ""),
        ("pre_step", "node", "before", "fscutility", "ccr-fab-b"),
        ("pre_step", "node", "before", "fscutility", "ccr-fab-a"),
        ("gate", "cluster", "before", "Get-StorageGroupCopyStatus", ""),
        ("gate", "cluster", "before", "Test-ReplicationHealth", ""),
        ("install", "node", "install", "setup.com", "ccr-fab-b"),  # the passive node first
        ("verify", "node", "after", "Get-Command", "ccr-fab-b"),
        ("gate", "cluster", "between", "Get-StorageGroupCopyStatus", ""),
        ("pre_step", "cluster", "between", "Stop-ClusteredMailboxServer", ""),
        ("failover", "cluster", "between", "cluster.exe", ""),
        ("install", "cluster", "between", "setup.com", ""),  # /upgradecms on the upgraded node
        ("verify", "cluster", "between", "Get-ClusteredMailboxServerStatus", ""),
        ("install", "node", "install", "setup.com", "ccr-fab-a"),  # then the former active node
        ("verify", "node", "after", "Get-Command", "ccr-fab-a"),
        ("gate", "cluster", "after", "Get-StorageGroupCopyStatus", ""),
        # The rollup: CCR-FAB-A is passive now, so it is patched first and takes the CMS back.
        ("install", "node", "install", "msiexec", "ccr-fab-a"),
        ("verify", "node", "after", "Get-Command", "ccr-fab-a"),
        ("gate", "cluster", "between", "Get-StorageGroupCopyStatus", ""),
        ("gate", "cluster", "between", "Test-ReplicationHealth", ""),
        ("failover", "cluster", "between", "Move-ClusteredMailboxServer", ""),
        ("verify", "cluster", "between", "Get-ClusteredMailboxServerStatus", ""),
        ("install", "node", "install", "msiexec", "ccr-fab-b"),
        ("verify", "node", "after", "Get-Command", "ccr-fab-b"),
        ("gate", "cluster", "after", "Get-StorageGroupCopyStatus", ""),
        ("verify", "cluster", "after", "Test-Mailflow", ""),
        ("post_step", "node", "after", "fscutility", "ccr-fab-a"),  # CCR-FAB-A holds the CMS at the end: first
        ("post_step", "node", "after", "fscutility", "ccr-fab-b"),
    ]
    by_command = {s.command: s for s in plan.steps}
    assert [s.command for s in plan.steps if s.kind == "ad_preparation"] == [
        "setup.com /PrepareSchema",
        "setup.com /PrepareAD",
    ]
    assert by_command["setup.com /upgradecms"].description.endswith(
        "on CCR-FAB-B: setup upgrades its configuration to the new service pack and brings it online"
    )
    assert 'cluster.exe group "CCR-FAB" /moveto:CCR-FAB-B' in by_command
    assert (
        'Stop-ClusteredMailboxServer -Identity CCR-FAB -StopReason "Exchange Server 2007 SP3" -Confirm:$false'
        in by_command
    )
    upgradecms = [s.command for s in plan.steps].index("setup.com /upgradecms")
    assert not any(
        "Move-ClusteredMailboxServer" in c for c in commands(plan.steps[:upgradecms])
    )  # a stopped CMS is not moved with it
    assert plan.is_one_window


def test_fault_1_a_service_pack_and_its_rollup_are_two_procedures_with_the_roles_swapped(catalog, rules):
    servers = ccr(forefront=False)
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("CCR-FAB"))

    installs = [
        (s.description.split(" on ")[0].removeprefix("Install "), s.server) for s in plan.steps if s.kind == "install"
    ]
    assert installs == [
        ("Exchange Server 2007 SP3", "ccr-fab-b.fabrikam.example"),
        ("Upgrade the clustered mailbox server CCR-FAB", None),
        ("Exchange Server 2007 SP3", "ccr-fab-a.fabrikam.example"),
        # The rollup: CCR-FAB-A is the passive node now, so it goes first; a scheduled failover back to it follows.
        ("Exchange Server 2007 SP3 Update Rollup 23", "ccr-fab-a.fabrikam.example"),
        ("Exchange Server 2007 SP3 Update Rollup 23", "ccr-fab-b.fabrikam.example"),
    ]
    moves = [c for c in commands(plan.steps) if c.startswith("Move-ClusteredMailboxServer")]
    assert moves == [
        'Move-ClusteredMailboxServer -Identity CCR-FAB -TargetMachine CCR-FAB-A -MoveComment "Exchange Server 2007 SP3 Update Rollup 23" -Confirm:$false'
    ]


# -- fault 2: SCR has nothing to move; copy status needs -StandbyMachine; CCR copy status is the CMS's --------------


def test_fault_2_scr_patches_the_standby_then_the_source_and_moves_nothing(catalog, rules):
    servers = [
        node("mbx-fab-01.fabrikam.example", "8.3.192.1", cluster="SCR-FAB", kind="SCR", active=True),
        node("scr-fab-dr.fabrikam.example", "8.3.192.1", cluster="SCR-FAB", kind="SCR", site="DR"),
    ]
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("SCR-FAB"))

    assert shape(plan.steps) == [
        ("gate", "node", "before", "Get-StorageGroupCopyStatus", "scr-fab-dr"),
        ("pre_step", "node", "before", "Get-StorageGroup", "scr-fab-dr"),  # suspend the copies to the standby
        ("install", "node", "install", "msiexec", "scr-fab-dr"),
        ("post_step", "node", "after", "Get-StorageGroup", "scr-fab-dr"),  # resume them
        ("verify", "node", "after", "Get-Command", "scr-fab-dr"),
        ("gate", "node", "after", "Get-StorageGroupCopyStatus", "scr-fab-dr"),
        ("pre_step", "node", "before", "", "mbx-fab-01"),  # the source: announce the outage, nothing moves
        ("install", "node", "install", "msiexec", "mbx-fab-01"),
        ("verify", "node", "after", "Get-Command", "mbx-fab-01"),
        ("gate", "node", "after", "Get-StorageGroupCopyStatus", "mbx-fab-01"),
    ]
    status = [c for c in commands(plan.steps) if c.startswith("Get-StorageGroupCopyStatus")]
    assert set(status) == {"Get-StorageGroupCopyStatus -Server MBX-FAB-01 -StandbyMachine SCR-FAB-DR"}
    assert not any(
        c.startswith(("Move-ClusteredMailboxServer", "Restore-StorageGroupCopy")) for c in commands(plan.steps)
    )
    assert "do not activate the standby for patching" in plan.notes[0]
    assert not plan.is_one_window  # standby and source may go into different windows


def test_fault_2_ccr_copy_status_is_read_for_the_clustered_mailbox_server_not_a_node(catalog, rules):
    plan = estate(ccr(), catalog, rules).plan_group(estate(ccr(), catalog, rules).group_named("CCR-FAB"))

    status = {c for c in commands(plan.steps) if c.startswith("Get-StorageGroupCopyStatus")}
    assert status == {"Get-StorageGroupCopyStatus -Server CCR-FAB"}


# -- fault 3: Forefront across a cluster is disabled on all nodes first and enabled last, active node first ---------


def test_fault_3_forefront_spans_the_cluster(catalog, rules):
    servers = ccr(build="8.3.192.1")
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("CCR-FAB"))

    steps = [(s.kind, s.command, (s.server or "").split(".")[0]) for s in plan.steps]
    forefront = [
        (kind, where)
        for kind, command, where in steps
        if command and command.startswith(("fscutility", "Test-Mailflow"))
    ]
    assert forefront == [
        ("pre_step", "ccr-fab-b"), ("pre_step", "ccr-fab-a"),  # disable on all nodes before anything is patched
        ("verify", ""),  # verify mail flow through the clustered mailbox server
        ("post_step", "ccr-fab-b"), ("post_step", "ccr-fab-a"),  # enable, starting with the node that is active now
    ]  # fmt: skip
    first_install = next(i for i, step in enumerate(plan.steps) if step.kind == "install")
    last_install = max(i for i, step in enumerate(plan.steps) if step.kind == "install")
    disables = [i for i, s in enumerate(plan.steps) if s.command == "fscutility /disable"]
    enables = [i for i, s in enumerate(plan.steps) if s.command == "fscutility /enable"]
    assert max(disables) < first_install and min(enables) > last_install
    assert (
        plan.steps[min(enables)].description
        == "Enable Forefront Protection for Exchange on CCR-FAB-B (the active node first)"
    )


def test_fault_3_a_dag_member_disables_forefront_around_its_own_install_only(catalog, rules):
    servers = [replace(item, server=replace(item.server, is_forefront_installed=True))
               for item in dag("DAG10", "14.3.174.1", ("a", "b"), prerequisites=FILTER_PACK)]  # fmt: skip
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("DAG10"))

    flow = [(s.command.split(" ")[0] if s.command else "", (s.server or "").split(".")[0]) for s in plan.steps
            if s.kind == "install" or (s.command or "").startswith("fscutility")]  # fmt: skip
    assert flow == [("fscutility", "dag10-b"), ("msiexec", "dag10-b"), ("fscutility", "dag10-b"),
                    ("fscutility", "dag10-a"), ("msiexec", "dag10-a"), ("fscutility", "dag10-a")]  # fmt: skip


# -- fault 4: 2010 DAG members get StartDagServerMaintenance / StopDagServerMaintenance, the DAG a rebalance -------


def test_fault_4_2010_dag_members_one_at_a_time_in_dag_maintenance(catalog, rules):
    servers = dag("DAG10", "14.3.174.1", ("a", "b", "c"), active=("a", "c"), prerequisites=FILTER_PACK)
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("DAG10"))

    member = [
        ("gate", "node", "before", "Get-MailboxDatabase"),
        ("gate", "node", "before", "Test-ReplicationHealth"),
        ("failover", "node", "before", "&"),  # StartDagServerMaintenance.ps1
        ("install", "node", "install", "msiexec"),
        ("post_step", "node", "after", "&"),  # StopDagServerMaintenance.ps1
        ("verify", "node", "after", "Get-Command"),
        ("gate", "node", "after", "Get-MailboxDatabaseCopyStatus"),
    ]
    assert [step[:4] for step in shape(plan.steps)] == [
        *member,
        *member,
        *member,
        ("post_step", "cluster", "after", "&"),
    ]
    assert [s.server.split(".")[0] for s in plan.steps if s.kind == "install"] == ["dag10-b", "dag10-a", "dag10-c"]
    scripts = [c for c in commands(plan.steps) if c.startswith("&")]
    assert scripts[:2] == ['& "$exscripts\\StartDagServerMaintenance.ps1" -serverName DAG10-B',
                           '& "$exscripts\\StopDagServerMaintenance.ps1" -serverName DAG10-B']  # fmt: skip
    assert (
        scripts[-1]
        == '& "$exscripts\\RedistributeActiveDatabases.ps1" -DagName DAG10 -BalanceDbsByActivationPreference -Confirm:$false'
    )
    assert [m.role for m in plan.members] == [
        "member without active copies",
        "member with active copies",
        "member with active copies",
    ]
    # One member per rollout segment; the rebalance closes the last member's segment.
    assert sorted({s.segment for s in plan.steps}) == [1, 2, 3]
    assert plan.steps[-1].segment == 3


# -- fault 5: 2013+ DAG members are drained fully, every one of them, and the reverse follows ------------------------

DRAIN_2019 = [
    "Get-MailboxDatabase -Server {n} | Get-MailboxDatabaseCopyStatus | Format-Table Name,Status,CopyQueueLength,ReplayQueueLength,ContentIndexState -AutoSize",
    "Test-ReplicationHealth -Identity {n}",
    "Set-ServerComponentState {n} -Component HubTransport -State Draining -Requester Maintenance",
    "Restart-Service MSExchangeTransport",
    "Redirect-Message -Server {n} -Target {other}",
    "Suspend-ClusterNode -Name {n}",
    "Set-MailboxServer {n} -DatabaseCopyActivationDisabledAndMoveNow $true",
    "Get-MailboxServer {n} | Format-List DatabaseCopyAutoActivationPolicy",
    "Set-MailboxServer {n} -DatabaseCopyAutoActivationPolicy Blocked",
    'Get-MailboxDatabaseCopyStatus -Server {n} | Where-Object {{$_.Status -eq "Mounted"}}',
    "Set-ServerComponentState {n} -Component ServerWideOffline -State Inactive -Requester Maintenance",
    "Get-ServerComponentState {n} | Format-Table Component,State -AutoSize; Get-ClusterNode {n}; Get-Queue -Server {n}",
]
RESTORE_2019 = [
    "Set-ServerComponentState {n} -Component ServerWideOffline -State Active -Requester Maintenance",
    "Resume-ClusterNode -Name {n}",
    "Set-MailboxServer {n} -DatabaseCopyActivationDisabledAndMoveNow $false",
    "Set-MailboxServer {n} -DatabaseCopyAutoActivationPolicy Unrestricted",
    "Set-ServerComponentState {n} -Component HubTransport -State Active -Requester Maintenance",
    "Restart-Service MSExchangeTransport",
    "Get-ServerComponentState {n} | Format-Table Component,State -AutoSize",
    "Get-Command Exsetup.exe | ForEach {{$_.FileVersionInfo}}",
    "Get-MailboxDatabaseCopyStatus -Server {n} | Format-Table Name,Status,CopyQueueLength,ReplayQueueLength -AutoSize",
]


def test_fault_5_every_2019_dag_member_is_drained_and_restored_and_the_dag_rebalanced(catalog, rules):
    servers = dag("DAG19", "15.2.1748.10", ("a", "b"), active=("a", "b"))  # both hold active copies
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("DAG19"))

    expected = []
    for name, other in (("DAG19-A", "dag19-b.contoso.example"), ("DAG19-B", "dag19-a.contoso.example")):
        expected += [c.format(n=name, other=other) for c in DRAIN_2019]
        expected += ["Run the Oct25SU package for CU15 (KB5066367) from an elevated command prompt"]
        expected += [c.format(n=name) for c in RESTORE_2019]
    expected.append(
        '& "$exscripts\\RedistributeActiveDatabases.ps1" -DagName DAG19 -BalanceDbsByActivationPreference -Confirm:$false'
    )
    assert commands(plan.steps) == expected
    whens = {s.command: (s.kind, s.when) for s in plan.steps}
    assert whens["Suspend-ClusterNode -Name DAG19-A"] == ("pre_step", "before")
    assert whens["Resume-ClusterNode -Name DAG19-A"] == ("post_step", "after")
    assert whens["Set-MailboxServer DAG19-A -DatabaseCopyActivationDisabledAndMoveNow $true"] == ("failover", "before")
    assert not any("UMCallRouter" in c for c in commands(plan.steps))  # Unified Messaging left with Exchange 2019


def test_fault_5_2016_dag_members_also_drain_unified_messaging(catalog, rules):
    servers = dag("DAG16", "15.1.2507.37", ("a", "b"), prerequisites=(("ucma", "4.0"), ("url_rewrite", "2.1"),
                                                                      ("vcredist_2012", "2012"), ("vcredist_2013", "2013")))  # fmt: skip
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("DAG16"))

    um = [s.command for s in plan.steps if "UMCallRouter" in (s.command or "")]
    assert um == [
        "Set-ServerComponentState DAG16-B -Component UMCallRouter -State Draining -Requester Maintenance",
        "Set-ServerComponentState DAG16-B -Component UMCallRouter -State Active -Requester Maintenance",
        "Set-ServerComponentState DAG16-A -Component UMCallRouter -State Draining -Requester Maintenance",
        "Set-ServerComponentState DAG16-A -Component UMCallRouter -State Active -Requester Maintenance",
    ]


def test_dotnet_and_the_cu_go_inside_the_maintenance_window(catalog, rules):
    servers = dag("DAG19", "15.2.1118.7", ("a",), dotnet="4.7.2")  # CU12 on .NET 4.7.2
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("DAG19"))

    flow = [s.command or s.description for s in plan.steps if s.scope == "node"]
    offline = flow.index(
        "Set-ServerComponentState DAG19-A -Component ServerWideOffline -State Inactive -Requester Maintenance"
    )
    dotnet = flow.index("Install .NET Framework 4.8 on DAG19-A and reboot")
    setup = flow.index("Setup.exe /Mode:Upgrade /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF")
    online = flow.index(
        "Set-ServerComponentState DAG19-A -Component ServerWideOffline -State Active -Requester Maintenance"
    )
    assert offline < dotnet < setup < online


# -- fault 8: a clustered mailbox server is planned through its nodes, or refused -----------------------------------


def test_fault_8_a_clustered_mailbox_server_is_the_plan_of_its_nodes(catalog, rules):
    cms = node("ccr-fab.fabrikam.example", "Version 8.2 (Build 176.2)", source="admin_display", cms=True)
    servers = [cms, *ccr()]
    plan = estate(servers, catalog, rules).plan_server("ccr-fab.fabrikam.example", target="SP3")

    assert plan.cluster == {"name": "CCR-FAB", "kind": "CCR", "role": "clustered mailbox server"}
    assert "setup.com /upgradecms" in commands(plan.steps)
    assert {s.server for s in plan.steps if s.kind == "install"} == {
        "ccr-fab-a.fabrikam.example",
        "ccr-fab-b.fabrikam.example",
        None,
    }


def test_fault_8_a_clustered_mailbox_server_without_nodes_is_refused_with_what_to_import(catalog, rules):
    cms = node("cms-lost.fabrikam.example", "Version 8.3 (Build 83.6)", source="admin_display", cms=True)

    with pytest.raises(PlanError) as error:
        estate([cms], catalog, rules).plan_server("cms-lost.fabrikam.example")

    assert str(error.value) == (
        "cms-lost.fabrikam.example is a clustered mailbox server (IsMemberOfCluster: Yes) whose nodes are not in the "
        "inventory: import its nodes (one row per node with its ExSetup.exe build, cluster=CMS-LOST, cluster_kind CCR "
        "or SCC, cluster_role active or passive) before planning it; the plan of a clustered mailbox server is the "
        "plan of its nodes"
    )


# -- per-server views, standalone and Edge servers ----------------------------------------------------------------


def test_a_members_view_keeps_the_cluster_steps_and_the_numbers_of_the_whole_plan(catalog, rules):
    servers = ccr()
    whole = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("CCR-FAB"))
    view = estate(servers, catalog, rules).plan_server("ccr-fab-b.fabrikam.example")

    assert [s.number for s in view.steps] == [
        s.number for s in whole.steps if s.server in (None, "ccr-fab-b.fabrikam.example")
    ]
    assert view.cluster == {"name": "CCR-FAB", "kind": "CCR", "role": "passive"}
    assert view.notes[0].startswith(
        "this is ccr-fab-b.fabrikam.example's view of the CCR CCR-FAB plan (plan --cluster CCR-FAB)"
    )
    assert "ccr-fab-a.fabrikam.example" not in {s.server for s in view.steps}


@pytest.mark.parametrize(
    ("_case", "server", "expected"),
    [
        ("2007 Edge with Forefront", node("edge.f.example", "8.3.192.1", roles=("EdgeTransport",), forefront=True),
         [("pre_step", ""), ("gate", "Get-Queue"), ("pre_step", "fscutility"), ("install", "msiexec"),
          ("post_step", "fscutility"), ("verify", "Get-Command"), ("verify", "Get-Queue"),
          ("verify", "Test-EdgeSynchronization"), ("post_step", "")]),
        ("2010 Hub Transport outside a DAG", node("hub.f.example", "14.3.496.0", roles=("HubTransport",), prerequisites=FILTER_PACK),
         [("install", "msiexec"), ("verify", "Get-Command"), ("verify", "Test-ServiceHealth")]),
        ("2019 Mailbox outside a DAG", node("mbx.c.example", "15.2.1748.10", prerequisites=ALL_2019, dotnet="4.8"),
         [("pre_step", "Set-ServerComponentState"), ("pre_step", "Restart-Service"), ("pre_step", "Set-ServerComponentState"),
          ("install", "Run"), ("post_step", "Set-ServerComponentState"), ("post_step", "Set-ServerComponentState"),
          ("post_step", "Restart-Service"), ("verify", "Get-ServerComponentState"), ("verify", "Get-Command"),
          ("verify", "Test-ServiceHealth")]),
    ],
)  # fmt: skip
def test_standalone_and_edge_runbooks(catalog, rules, _case, server, expected):
    plan = estate([server], catalog, rules).plan_server(server.server.fqdn)

    assert [(s.kind, (s.command or "").split(" ")[0]) for s in plan.steps] == expected


def test_a_standalone_2019_server_redirects_its_queue_to_another_mailbox_server_of_the_organisation(catalog, rules):
    servers = [node("mbx1.c.example", "15.2.1748.10", prerequisites=ALL_2019, dotnet="4.8", organisation="c.example"),
               node("mbx2.c.example", "15.2.1748.49", prerequisites=ALL_2019, dotnet="4.8", organisation="c.example")]  # fmt: skip
    plan = estate(servers, catalog, rules).plan_server("mbx1.c.example")

    assert "Redirect-Message -Server MBX1 -Target mbx2.c.example" in commands(plan.steps)


# -- Active Directory preparation, once per organisation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "servers", "target", "expected"),
    [
        ("2019 CU12 → CU15: new objectVersions", dag("D", "15.2.1118.7", ("a",), dotnet="4.8"), "CU15",
         ["Setup.exe /PrepareAD /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF"]),
        ("2019 CU14 → CU14 SU: nothing", dag("D", "15.2.1544.4", ("a",)), None, []),
        ("2016 CU20 → CU23: schema, organisation, domains", dag("D", "15.1.2242.4", ("a",)), "CU23",
         ["Setup.exe /PrepareSchema /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF",
          "Setup.exe /PrepareAD /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF",
          "Setup.exe /PrepareAllDomains /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF",
          '([ADSI]("LDAP://CN=ms-Exch-Schema-Version-Pt," + ([ADSI]"LDAP://RootDSE").schemaNamingContext)).rangeUpper']),
        ("a newer version's schema already covers 2016", [*dag("D", "15.1.2242.4", ("a",)), *dag("E", "15.2.1748.10", ("a",))], "CU23",
         ["Setup.exe /PrepareAD /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF"]),
        ("2013 CU23 → Jul21SU: schema classes without a new rangeUpper", dag("D", "15.0.1497.2", ("a",), dotnet="4.8"), "Jul21SU",
         ["Setup.exe /PrepareSchema /IAcceptExchangeServerLicenseTerms",
          '([ADSI]("LDAP://CN=ms-Exch-Schema-Version-Pt," + ([ADSI]"LDAP://RootDSE").schemaNamingContext)).rangeUpper']),
    ],
)  # fmt: skip
def test_ad_preparation_where_the_target_needs_it(catalog, rules, _case, servers, target, expected):
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("D"), target=target)

    preparation = [s for s in plan.steps if s.scope == "organisation"]
    assert [s.command for s in preparation] == expected
    assert all(s.when == "before" and s.segment == 0 and s.server is None for s in preparation)
    assert plan.steps[: len(preparation)] == tuple(preparation)  # before the first server


def test_a_rollout_prepares_active_directory_once_per_organisation_before_the_first_wave(catalog, rules):
    servers = [*dag("DAG19", "15.2.1118.7", ("a", "b"), dotnet="4.8"),
               node("mbx.contoso.example", "15.2.1118.7", prerequisites=ALL_2019, dotnet="4.8", organisation="contoso.example")]  # fmt: skip
    rollout = rollout_plan(servers, catalog, rules, today=NOW, start=START)

    assert [(org, [s.command for s in steps]) for org, steps in rollout.preparation] == [
        ("contoso.example", ["Setup.exe /PrepareAD /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF"])
    ]
    assert not any(
        s.scope == "organisation" for wave in rollout.waves for item in wave.servers for s in item.plan.steps
    )


# -- ESU and the road to SE --------------------------------------------------------------------------------------


def test_an_enrolled_organisation_gets_esu_only_updates_labelled_as_such(catalog, rules):
    enrolled = [
        node("mbx.c.example", "15.2.1748.10", prerequisites=ALL_2019, dotnet="4.8", esu_until=date(2027, 4, 14))
    ]
    plain = [node("mbx.c.example", "15.2.1748.10", prerequisites=ALL_2019, dotnet="4.8")]

    with_esu = estate(enrolled, catalog, rules).plan_server("mbx.c.example")
    without = estate(plain, catalog, rules).plan_server("mbx.c.example")

    assert [s.description for s in with_esu.steps if s.kind == "install"] == [
        "Install Exchange Server 2019 CU15 Aug26SU (ESU-only update) on MBX"
    ]
    assert (
        "Aug26SU is an ESU-only update: the organisation is enrolled until 2027-04-14 [esu.2016_2019]" in with_esu.notes
    )
    assert [s.description for s in without.steps if s.kind == "install"] == [
        "Install Exchange Server 2019 CU15 Oct25SU on MBX"
    ]
    assert any(note.startswith("newer ESU-only updates exist for CU15 (up to Aug26SU)") for note in without.notes)


def test_road_to_se_a_2019_dag_upgrades_in_place_one_member_at_a_time(catalog, rules):
    servers = dag("DAG19", "15.2.1544.9", ("a", "b"))
    plan = estate(servers, catalog, rules).plan_group(estate(servers, catalog, rules).group_named("DAG19"), target="SE")

    installs = [
        (s.server.split(".")[0], s.kb, s.command.split(" ")[0], s.segment) for s in plan.steps if s.kind == "install"
    ]
    assert installs == [("dag19-b", "KB5047155", "Setup.exe", 1), ("dag19-b", "KB5121573", "Run", 1),
                        ("dag19-a", "KB5047155", "Setup.exe", 2), ("dag19-a", "KB5121573", "Run", 2)]  # fmt: skip
    offline = [s.server.split(".")[0] for s in plan.steps if "ServerWideOffline -State Inactive" in (s.command or "")]
    assert offline == ["dag19-b", "dag19-a"]
    assert [s.command for s in plan.steps if s.kind == "ad_preparation"] == [
        "Setup.exe /PrepareAD /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF"  # CU14 16762 → SE 16763
    ]
    assert [m.target["product"] for m in plan.members] == ["Exchange Server Subscription Edition"] * 2


def test_road_to_se_2016_is_a_swing_new_server_moves_decommission(catalog, rules):
    servers = [node("mbx16.c.example", "15.1.2507.37", organisation="c.example", site="Dublin")]
    plan = estate(servers, catalog, rules).plan_server("mbx16.c.example", target="SE")

    assert [(s.kind, s.scope, (s.command or "").split(" ")[0]) for s in plan.steps] == [
        ("ad_preparation", "organisation", "Setup.exe"),  # schema 15334 → 17003
        ("ad_preparation", "organisation", "Setup.exe"),
        ("verify", "organisation", '([ADSI]("LDAP://CN=ms-Exch-Schema-Version-Pt,"'),
        ("install", "site", "Setup.exe"),  # the new SE server in Dublin
        ("install", "site", "Run"),  # its latest SU
        ("pre_step", "site", "Get-ExchangeCertificate"),
        ("failover", "site", ""),  # the namespaces
        ("pre_step", "node", "Get-Mailbox"),  # system mailboxes first
        ("pre_step", "node", "Get-Mailbox"),
        ("gate", "node", "Get-MoveRequest"),
        ("post_step", "node", "Get-SendConnector"),
        ("post_step", "node", "Setup.exe"),  # uninstall
    ]
    assert plan.steps[3].description.startswith(
        "Install a new Exchange SE Mailbox server in Dublin, the AD site of MBX16"
    )
    assert plan.steps[-1].command == "Setup.exe /Mode:Uninstall /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF"


def test_road_to_se_is_refused_while_exchange_2013_remains(catalog, rules):
    servers = [node("mbx16.c.example", "15.1.2507.37", organisation="c.example"),
               node("mbx13.c.example", "15.0.1497.48", organisation="c.example", dotnet="4.8")]  # fmt: skip

    with pytest.raises(
        PlanError,
        match=r"Exchange Server Subscription Edition cannot join organisation c\.example while Exchange Server 2013 remains \(mbx13\.c\.example\)",
    ):
        estate(servers, catalog, rules).plan_server("mbx16.c.example", target="SE")


def test_a_later_se_cu_that_refuses_2016_and_2019_is_a_gate(catalog, rules):
    # Invented SE CU1 and CU2 rows (labelled invented): the bundled catalog has SE RTM only.
    invented = [
        CatalogEntry("SE", "CU1", Kind.CU, _build("15.2.2600.1"), kb="KB9990001", release_date=date(2026, 1, 10)),
        CatalogEntry("SE", "CU2", Kind.CU, _build("15.2.2700.1"), kb="KB9990002", release_date=date(2026, 9, 1)),
    ]
    extended = Catalog([*catalog.entries, *invented], support=SUPPORT)
    data = json.loads((ROOT / "kb" / "data" / "rules.json").read_text())["rules"]
    for rule in data:
        if rule["key"] == "dotnet.se":  # invented .NET rows for the invented CUs
            rule["data"]["levels"] |= {"CU1": ["4.8.1"], "CU2": ["4.8.1"]}
    rules = Rules.from_dicts(data)
    servers = [node("se.c.example", "15.2.2562.46", prerequisites=ALL_2019, dotnet="4.8.1", organisation="c.example"),
               node("ex16.c.example", "15.1.2507.61", organisation="c.example")]  # fmt: skip
    planned = Estate(servers, extended, rules, today=NOW)

    default = planned.plan_server("se.c.example")
    with pytest.raises(PlanError) as error:
        planned.plan_server("se.c.example", target="CU2")

    assert default.target["level"] == "CU1"  # the newest level whose setup accepts 2016 beside it
    assert (
        "Exchange Server Subscription Edition CU2 setup refuses to run while Exchange Server 2016 remains in organisation c.example (ex16.c.example)"
        in str(error.value)
    )
    assert "[coexistence.se_cu2 (Upgrade to Exchange Server SE)]" in str(error.value)


def _build(text):
    from kb.engine.builds import parse_build

    return parse_build(text)


# -- rollout: whole 2007 clusters, DAG members one per wave -----------------------------------------------------


def test_rollout_keeps_a_ccr_in_one_window_and_a_dag_one_member_per_wave(catalog, rules):
    servers = [
        *ccr(build="8.3.192.1"),
        *dag("DAG10", "14.3.174.1", ("a", "b"), prerequisites=FILTER_PACK, organisation="fabrikam.example"),
    ]
    rollout = rollout_plan(servers, catalog, rules, today=NOW, start=START)

    waves = [[(item.cluster, item.servers) for item in wave.servers] for wave in rollout.waves]
    assert waves == [
        [
            ("CCR-FAB", ("ccr-fab-a.fabrikam.example", "ccr-fab-b.fabrikam.example")),
            ("DAG10", ("dag10-b.fabrikam.example",)),
        ],
        [("DAG10", ("dag10-a.fabrikam.example",))],
    ]
    ccr_waves = [
        index for index, wave in enumerate(rollout.waves) for item in wave.servers if item.cluster == "CCR-FAB"
    ]
    dag_waves = [index for index, wave in enumerate(rollout.waves) for item in wave.servers if item.cluster == "DAG10"]
    assert len(ccr_waves) == 1 and len(dag_waves) == 2 and dag_waves[0] < dag_waves[1]
    first_dag = next(item for item in rollout.waves[dag_waves[0]].servers if item.cluster == "DAG10")
    last_dag = next(item for item in rollout.waves[dag_waves[1]].servers if item.cluster == "DAG10")
    assert first_dag.fqdn == "dag10-b.fabrikam.example" and last_dag.fqdn == "dag10-a.fabrikam.example"
    assert "RedistributeActiveDatabases.ps1" in last_dag.plan.steps[-1].command
    whole = next(item for item in rollout.waves[ccr_waves[0]].servers if item.cluster == "CCR-FAB")
    assert whole.servers == ("ccr-fab-a.fabrikam.example", "ccr-fab-b.fabrikam.example")
    assert "Move-ClusteredMailboxServer" in " ".join(commands(whole.plan.steps))


# -- operators change runbooks without code ------------------------------------------------------------------------


def test_an_edited_runbook_changes_the_plan(catalog, rules):
    data = json.loads((ROOT / "kb" / "data" / "rules.json").read_text())["rules"]
    for rule in data:
        if rule["key"] == "runbook.2010.dag":
            rule["data"]["steps"].insert(0, {"id": "backup", "kind": "gate", "scope": "node", "when": "before",
                                             "description": "A full backup of {server} exists",
                                             "command": "Get-MailboxDatabase -Server {server} -Status | Format-Table Name,LastFullBackup"})  # fmt: skip
    edited = Rules.from_dicts(data)
    servers = dag("DAG10", "14.3.174.1", ("a",), prerequisites=FILTER_PACK)

    plan = Estate(servers, catalog, edited, today=NOW).plan_group(
        Estate(servers, catalog, edited, today=NOW).group_named("DAG10")
    )

    assert plan.steps[0].command == "Get-MailboxDatabase -Server DAG10-A -Status | Format-Table Name,LastFullBackup"
    assert plan.steps[0].rule == "runbook.2010.dag (Exchange 2010 Help: installing update rollups on DAG members)"


def test_a_runbook_with_an_unknown_placeholder_is_refused_naming_the_rule(rules):
    bad = {"key": "runbook.bad", "kind": "runbook", "products": ["2019"], "source": {"title": "invented"},
           "data": {"cluster_kind": "DAG", "steps": [{"id": "x", "kind": "gate", "scope": "node", "when": "before",
                                                      "description": "check {servr}", "command": None}]}}  # fmt: skip

    with pytest.raises(RuleError, match=r"rule runbook\.bad: steps\[0\]: unknown placeholder\(s\) servr"):
        Rules.from_dicts([bad])


def test_road_to_se_a_2016_dag_member_leaves_its_dag_before_it_is_uninstalled(catalog, rules):
    servers = dag("DAG16", "15.1.2507.37", ("a", "b"), organisation="c.example")
    plan = estate(servers, catalog, rules).plan_server("dag16-b.c.example", target="SE")

    tail = [s.command for s in plan.steps][-2:]
    assert tail == [
        "Get-MailboxDatabaseCopyStatus -Server DAG16-B | Remove-MailboxDatabaseCopy; "
        "Remove-DatabaseAvailabilityGroupServer -Identity DAG16 -MailboxServer DAG16-B",
        "Setup.exe /Mode:Uninstall /IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF",
    ]


def test_an_ended_esu_enrolment_is_said_as_such(catalog, rules):
    ended = [node("mbx.c.example", "15.2.1748.10", prerequisites=ALL_2019, dotnet="4.8", esu_until=date(2026, 4, 14))]

    plan = estate(ended, catalog, rules).plan_server("mbx.c.example")

    assert plan.target["update"] == "Oct25SU"
    assert any("and its enrolment ended on 2026-04-14;" in note for note in plan.notes)


def test_a_server_already_on_an_esu_only_update_has_nothing_to_install_and_is_told_to_mark_the_enrolment(
    catalog, rules
):
    servers = [node("mbx.c.example", "15.2.1748.49", prerequisites=ALL_2019, dotnet="4.8")]  # CU15 Aug26SU

    plan = estate(servers, catalog, rules).plan_server("mbx.c.example")

    assert plan.is_empty
    assert plan.notes[-1] == (
        "already runs Exchange Server 2019 CU15 Aug26SU, beyond Exchange Server 2019 CU15 Oct25SU: nothing to install "
        "(it runs an ESU-only update: mark the organisation's enrolment with organisation_esu)"
    )
    assert rollout_plan(servers, catalog, rules, today=NOW, start=START).up_to_date == ("mbx.c.example",)
