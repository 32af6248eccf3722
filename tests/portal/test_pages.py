"""The portal's pages against the real database and the invented demo estate (scanned as of June 2024)."""

import csv
import io
import json
import re

import pytest
from django.core.management import call_command
from django.utils.html import escape

from inventory.models import Change, ScanRun, Server, Waiver
from inventory.selectors import compliance_summary, fix_status
from kb.models import CatalogConflict, CatalogSource, Fix, Update
from tests.conftest import portal_reader_create
from tests.portal.conftest import invented_estate

pytestmark = pytest.mark.django_db
# The demo estate (invented, inventory/demo.py) scanned as of 2024-06-01: 24 servers in four organisations.
DEMO_STATES = {"current": 1, "end_of_life": 10, "excepted": 1, "rollup_unknown": 2, "security_update_missing": 3,
               "unknown_build": 1, "unsupported_level": 2, "update_available": 4}  # fmt: skip


def rows_of(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def fqdns_listed(response) -> list[str]:
    return re.findall(r'<tr data-fqdn="([^"]+)"', response.content.decode())


# -- access ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/servers/", "/servers/mbx-ex19-01.contoso.example/", "/who-lacks/?kb=KB5036386", "/rollout/",
     "/coexistence/", "/catalog/", "/catalog/updates/KB5036386/", "/catalog/fixes/", "/catalog/conflicts/",
     "/catalog/sources/", "/servers/?_export=csv"],
)  # fmt: skip
def test_anonymous_visitors_are_sent_to_the_login_page(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_login_lands_on_the_dashboard(client, db):
    portal_reader_create("operator", "invented-password-1")

    wrong = client.post("/login/", {"username": "operator", "password": "wrong"})
    right = client.post("/login/", {"username": "operator", "password": "invented-password-1"})

    assert wrong.status_code == 200 and "do not match an account" in wrong.content.decode()
    assert (right.status_code, right["Location"]) == (302, "/")


@pytest.mark.parametrize("path", ["/", "/servers/", "/servers/mbx-ex19-01.contoso.example/", "/who-lacks/?kb=KB5037224",
                                  "/rollout/", "/coexistence/", "/catalog/", "/catalog/sources/"])  # fmt: skip
def test_an_account_without_view_permissions_gets_a_403_page_not_the_data(client, django_user_model, demo, path):
    user = django_user_model.objects.create_user("someone", password="invented-password-2")
    client.force_login(user)

    response = client.get(path)

    html = response.content.decode()
    assert response.status_code == 403
    assert "ask an administrator for the view permissions" in html
    assert "mbx-ex19-01.contoso.example" not in html.split("<main", 1)[-1]  # nothing of the estate is shown


# -- dashboard -------------------------------------------------------------------------------------


def test_dashboard_counts_are_the_api_summary(portal, demo):
    response = portal.get("/")
    html = response.content.decode()

    shown = {
        state: int(count)
        for state, count in re.findall(r'data-state="(\w+)">\s*<div class="count" data-count="(\d+)"', html)
    }
    assert {state: count for state, count in shown.items() if count} == DEMO_STATES == compliance_summary()["by_state"]
    assert 'data-count="24"' in html and "8.3 %" in html  # current + excepted = 2 of 24
    assert [row["label"] for row in response.context["levels"]][:2] == [
        "Exchange Server 2007 SP2",
        "Exchange Server 2007 SP3",
    ]


def test_dashboard_panels_link_to_the_servers_behind_them(portal, demo):
    context = portal.get("/").context

    needed = context["needed"][0]
    # 2007 SP3 RU23: the next install of the eight SP3 servers; missing on seven, unknown on the one whose AD form
    # of the build cannot tell its rollup (ccr-ex07, "Version 8.3 (Build 83.6)")
    assert (needed["kb"], needed["install_count"], needed["server_count"]) == ("KB4011325", 8, 7)
    assert (needed["url"], needed["install_url"]) == ("/servers/?needs=KB4011325", "/servers/?installs=KB4011325")
    assert len(fqdns_listed(portal.get(needed["install_url"]))) == 8
    assert "ccr-ex07.fabrikam.example" not in fqdns_listed(portal.get(needed["url"]))
    rollup = next(
        row for row in context["needed"] if row["kb"] == "KB2602324"
    )  # 2007 SP3 RU5: superseded, not to install
    assert (rollup["install_count"], rollup["server_count"]) == (0, 7)
    assert len(fqdns_listed(portal.get(needed["url"]))) == 7
    level = next(row for row in context["levels"] if row["label"] == "Exchange Server 2019 CU14")
    assert (level["count"], level["url"]) == (5, "/servers/?product=2019&level=CU14")
    assert sorted(fqdns_listed(portal.get(level["url"]))) == [
        "cas-ex19-01.contoso.example", "edge-ex19-01.contoso.example", "mbx-ex19-01.contoso.example",
        "mbx-ex19-a.northwind.example", "mbx-ex19-b.northwind.example",
    ]  # fmt: skip
    assert [result.server.fqdn for result in context["overdue"]][:2] == [
        "hub-ex07-01.fabrikam.example",
        "ccr-ex07-a.fabrikam.example",
    ]
    overdue = portal.get(context["overdue_url"])
    assert len(fqdns_listed(overdue)) == compliance_summary()["overdue"]["count"] == 18


def test_dashboard_without_a_scan_says_what_to_do(portal, loaded_catalog):
    html = portal.get("/").content.decode()

    assert "No scan has succeeded yet" in html
    assert "never succeeded" in html  # the job panel


def test_dashboard_shows_the_trend_and_the_newly_noncompliant(portal, demo):
    server = Server.objects.get(fqdn="cas-ex19-01.contoso.example")
    server.reported_build, server.build_number, server.build_revision = "15.2.1544.4", 1544, 4
    server.save()
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())

    context = portal.get("/").context

    assert [r.server.fqdn for r in context["newly"]] == ["cas-ex19-01.contoso.example"]
    assert context["charts"]["trend"]["labels"] == ["2024-06-01", "2024-06-01"]
    current = next(s for s in context["charts"]["trend"]["states"] if s["state"] == "current")
    assert current["counts"] == [1, 0]
    assert fqdns_listed(portal.get(context["newly_url"])) == ["cas-ex19-01.contoso.example"]


# -- servers list ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state": "excepted"}, ["mbx-ex19-02.contoso.example"]),
        ({"state": "rollup_unknown"}, ["ccr-ex07.fabrikam.example", "mbx-ex10-01.contoso.example"]),  # AD forms
        ({"product": "2007", "level": "SP3"}, ["ccr-ex07-a.fabrikam.example", "ccr-ex07-b.fabrikam.example", "ccr-ex07.fabrikam.example",
                                              "edge-ex07-01.fabrikam.example", "mbx-ex07-02.fabrikam.example", "scc-ex07-a.fabrikam.example",
                                              "scc-ex07-b.fabrikam.example", "scr-ex07-dr.fabrikam.example"]),
        ({"product": "2016"}, ["mbx-ex16-01.contoso.example", "mbx-ex16-nw.northwind.example"]),
        ({"site": "perimeter"}, ["cas-ex19-01.contoso.example", "edge-ex19-01.contoso.example", "edge-ex19-02.contoso.example"]),
        ({"role": "EdgeTransport"}, ["edge-ex07-01.fabrikam.example", "edge-ex19-01.contoso.example", "edge-ex19-02.contoso.example"]),
        ({"cluster": "dag-eu"}, ["cas-ex19-01.contoso.example", "mbx-ex19-01.contoso.example", "mbx-ex19-02.contoso.example"]),
        ({"tag": "legacy"}, ["mbx-ex10-01.contoso.example", "mbx-ex13-01.contoso.example", "mbx-ex16-01.contoso.example",
                             "mbx-ex16-nw.northwind.example"]),
        ({"q": "ex19-0"}, ["cas-ex19-01.contoso.example", "edge-ex19-01.contoso.example", "edge-ex19-02.contoso.example",
                           "mbx-ex19-01.contoso.example", "mbx-ex19-02.contoso.example", "mbx-ex19-03.contoso.example"]),
        ({"q": "15.02.1258.016"}, ["edge-ex19-02.contoso.example"]),  # the long form finds the short form too
        ({"q": "Version 14.3 (Build 123.4)"}, ["mbx-ex10-01.contoso.example"]),
        ({"q": "kb5036386"}, ["edge-ex19-01.contoso.example", "edge-ex19-02.contoso.example", "mbx-ex19-02.contoso.example"]),
        ({"needs": "KB5036386", "state": "excepted"}, ["mbx-ex19-02.contoso.example"]),
    ],
)  # fmt: skip
def test_server_list_filters_and_search(portal, demo, query, expected):
    response = portal.get("/servers/", query)

    assert response.status_code == 200
    assert sorted(fqdns_listed(response)) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"q": "KB12"}, "&#x27;KB12&#x27; is not a KB number (expected KB followed by 6 to 8 digits)"),
        ({"q": "15.2.1544"}, "&#x27;15.2.1544&#x27; is not a build number"),
        ({"q": "15.2.1544.99999999"}, "&#x27;15.2.1544.99999999&#x27; is not a build number"),
        ({"needs": "rollup"}, "&#x27;rollup&#x27; is not a KB number"),
        ({"state": "happy"}, "Select a valid choice. happy is not one of the available choices."),
    ],
)
def test_an_invalid_search_shows_a_message_and_no_servers(portal, demo, query, message):
    response = portal.get("/servers/", query)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert fqdns_listed(response) == []


def test_server_list_sorts_by_days_behind_most_first(portal, demo):
    days = [row.days_behind for row in portal.get("/servers/").context["table"].page.object_list.data]

    assert days[:13] == [5108, *[4637] * 7, 3091, 3091, 963, 753, 298]  # 2007 SP2, the 2007 SP3 servers, 2010 SP3…
    assert days[-1] is None  # never behind-known (unknown build, rollup unknown) last


@pytest.mark.parametrize("sort", ["-days_behind", "days_behind", "fqdn", "-fqdn", "state", "-site"])
def test_keyset_pages_walk_every_server_once_in_order_both_ways(portal, demo, settings, sort):
    full = fqdns_listed(portal.get("/servers/", {"sort": sort}))
    settings.EXCHANGEPATCH_PAGE_SIZE = 5
    pages, response = [], portal.get("/servers/", {"sort": sort})
    while True:
        pages.append(fqdns_listed(response))
        table = response.context["table"]
        if not table.page.has_next():
            break
        response = portal.get("/servers/", {"sort": sort, "page": table.page.next_page_number()})
    back = portal.get("/servers/", {"sort": sort, "page": response.context["table"].page.previous_page_number()})

    assert len(full) == Server.objects.count() == 24
    assert [fqdn for page in pages for fqdn in page] == full
    assert [len(page) for page in pages] == [5, 5, 5, 5, 4]
    assert fqdns_listed(back) == pages[-2]


def test_a_page_link_that_is_not_ours_gives_the_first_page_and_says_so(portal, demo, settings):
    settings.EXCHANGEPATCH_PAGE_SIZE = 4
    first = fqdns_listed(portal.get("/servers/"))

    response = portal.get("/servers/", {"page": "not-a-token"})

    assert fqdns_listed(response) == first
    assert "That page link is not one this list made" in response.content.decode()


def test_server_list_exports_every_matching_server_as_csv(portal, demo, settings):
    settings.EXCHANGEPATCH_PAGE_SIZE = 4
    response = portal.get("/servers/", {"tag": "production", "_export": "csv"})
    rows = rows_of(response)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert len(rows) == Server.objects.filter(tags__name="production").count() == 15
    excepted = next(row for row in rows if row["FQDN"] == "mbx-ex19-02.contoso.example")
    assert excepted == {"FQDN": "mbx-ex19-02.contoso.example", "Site": "Amsterdam", "Roles": "Mailbox",
                        "Build": "15.2.1258.28", "Runs": "Exchange Server 2019 CU13 Nov23SU",
                        "State": "Excepted (waiver)", "Days behind": "81", "Install next": "Apr24HU (KB5037224)",
                        "Cluster": "DAG-EU", "Tags": "demo, eu, production"}  # fmt: skip


def test_servers_not_scanned_yet_are_listed_as_such(portal, demo):
    invented_estate(2)

    response = portal.get("/servers/", {"state": "not_scanned"})

    assert sorted(fqdns_listed(response)) == ["ex00000.invented.example", "ex00001.invented.example"]
    assert "Not scanned yet" in response.content.decode()


# -- server page -----------------------------------------------------------------------------------


def test_server_page_shows_build_verdict_plan_cluster_waivers_and_history(portal, demo):
    response = portal.get("/servers/MBX-EX19-02.contoso.example/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "15.2.1258.28" in html and "ExSetup.exe file version" in html and "short form" in html
    assert "Exchange Server 2019 CU13 Nov23SU" in html
    assert "excepted: KB5036386 waived until 2024-07-01 by Change advisory board (invented) (CHG-0042)" in html
    detail = response.context["detail"]
    assert [item["kb"] for item in detail.missing_updates] == ["KB5036386", "KB5037224"]
    assert [m.server.fqdn for m in detail.cluster_members] == [
        "mbx-ex19-01.contoso.example", "cas-ex19-01.contoso.example", "mbx-ex19-02.contoso.example",
    ]  # fmt: skip
    assert [w.target_kb for w in detail.waivers] == ["KB5036386"]
    assert [(h.scan_id, h.state) for h in detail.history] == [(ScanRun.objects.get().pk, "excepted")]
    plan = response.context["plan"]
    assert "Get-MailboxDatabaseCopyStatus -Server MBX-EX19-02" in html  # the DAG pre-step, copyable
    assert "Suspend-ClusterNode -Name MBX-EX19-02" in html  # a DAG member is drained before it is patched
    own = [step.kind for step in plan.steps if step.server == "mbx-ex19-02.contoso.example"]
    assert "install" in own and own.index("install") < len(own) - 1 and own[-1] in ("verify", "gate")
    assert plan.steps[-1].scope == "cluster" and "RedistributeActiveDatabases.ps1" in plan.steps[-1].command
    # plans are for today (the demo scan is as of June 2024): the last public SU of CU15, as the organisation is not
    # enrolled in the ESU programme that carries the later ones (said in a note, shown on the page)
    assert plan.target["update"] == "Oct25SU"
    assert any("ESU-only updates exist for CU15 (up to Aug26SU)" in note for note in plan.notes)
    assert "Extended Security Update program" in html


def test_an_unknown_server_is_a_404_in_the_portal_layout(portal, demo):
    response = portal.get("/servers/nowhere.contoso.example/")
    html = response.content.decode()

    assert response.status_code == 404
    assert "server nowhere.contoso.example is not in the inventory" in html
    assert 'class="navbar' in html  # the portal's layout, not a bare error page


def test_an_unknown_page_is_a_404_in_the_portal_layout(portal):
    response = portal.get("/no-such-page/")

    assert response.status_code == 404
    assert 'class="navbar' in response.content.decode()


def test_plan_target_and_exports(portal, demo):
    wrong = portal.get("/servers/mbx-ex16-01.contoso.example/", {"target": "2019"})
    markdown = portal.get("/servers/mbx-ex19-03.contoso.example/", {"target": "CU14", "export": "markdown"})
    unknown = portal.get("/servers/lab-unknown-01.contoso.example/")

    assert wrong.status_code == 400
    assert "no in-place upgrade from Exchange Server 2016 to Exchange Server 2019" in wrong.content.decode()
    assert markdown["Content-Type"] == "text/markdown; charset=utf-8"
    assert markdown.content.decode().startswith("### mbx-ex19-03.contoso.example: Exchange Server 2019 CU12")
    assert unknown.status_code == 200  # a server that cannot be planned is shown with the reason
    assert "build 16.0.100.1 is not a known Exchange 2007 or later build" in unknown.content.decode()


# -- who lacks -------------------------------------------------------------------------------------


def test_who_lacks_an_update(portal, demo):
    response = portal.get("/who-lacks/", {"kb": "5036386"})
    tables = dict(response.context["update_tables"])

    assert [row.record.server.fqdn for row in tables["Lacking the update"].rows] == [
        "edge-ex19-01.contoso.example", "edge-ex19-02.contoso.example",
    ]  # fmt: skip
    assert [row.record.server.fqdn for row in tables["Lacking, but excepted by a waiver"].rows] == [
        "mbx-ex19-02.contoso.example"
    ]
    assert [row.record.server.fqdn for row in tables["Cannot be told"].rows] == ["lab-unknown-01.contoso.example"]
    assert 'data-state="excepted"' in response.content.decode()  # the state's own colour, not the label's
    assert "Lacking the update (2)" in response.content.decode()
    exported = portal.get("/who-lacks/", {"kb": "KB5036386", "_export": "csv", "_table": "update-lacking-"})
    assert [row["FQDN"] for row in rows_of(exported)] == [
        "edge-ex19-01.contoso.example",
        "edge-ex19-02.contoso.example",
    ]


def test_who_lacks_a_fix_says_who_and_why(portal, demo):
    # An invented 2010 SP1 RU3 server lacks the fixes of SP1 RU4 (KB2509910).
    _add_server("old-ex10.invented.example", "14.1.289.7")
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())
    fix = Fix.objects.filter(updates__kb="KB2509910").order_by("kb").first()

    response = portal.get("/who-lacks/", {"kb": fix.kb})
    tables = dict(response.context["fix_tables"])
    lacking = list(tables["Lacking the fix"].rows)

    assert [row.record.server.fqdn for row in lacking] == fix_status(fix.kb).lacking == ["old-ex10.invented.example"]
    assert (
        lacking[0].get_cell("why")
        == "not carried by what it runs; carried by: Exchange Server 2010 SP1 Update Rollup 4"
    )
    assert [row.record.server.fqdn for row in tables["Cannot be told"].rows] == ["lab-unknown-01.contoso.example"]
    assert "<strong>1</strong> lacking" in response.content.decode()


def test_who_lacks_a_fix_lists_what_is_there_after_a_server_is_deleted(portal, demo):
    # Two invented 2010 SP1 RU3 servers lack KB2509910's fixes; one is deleted after the scan (its results go, the
    # scan's tallies stay): the table's rows and its count follow what is stored.
    _add_server("old-ex10.invented.example", "14.1.289.7")
    _add_server("gone-ex10.invented.example", "14.1.289.7")
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())
    Server.objects.get(fqdn="gone-ex10.invented.example").delete()
    fix = Fix.objects.filter(updates__kb="KB2509910").order_by("kb").first()

    table = dict(portal.get("/who-lacks/", {"kb": fix.kb}).context["fix_tables"])["Lacking the fix"]

    assert [row.record.server.fqdn for row in table.rows] == ["old-ex10.invented.example"]
    assert len(table.rows) == table.paginator.count == 1


def _add_server(fqdn: str, build: str) -> None:
    from inventory.records import server_record_from_mapping
    from inventory.services import server_upsert_many

    record, problems = server_record_from_mapping({"fqdn": fqdn, "build": build, "roles": ["Mailbox"]})
    assert not problems
    server_upsert_many([record], source="invented")


@pytest.mark.parametrize(
    ("kb", "status", "message"),
    [
        ("KB12x", 400, "kb: &#x27;KB12x&#x27; is not a KB number (expected KB followed by 6 to 8 digits)"),
        ("KB1234567", 404, "KB1234567 is neither a fix nor an update in the catalog"),
    ],
)
def test_who_lacks_a_bad_kb_says_why_on_the_page(portal, demo, kb, status, message):
    response = portal.get("/who-lacks/", {"kb": kb})

    assert response.status_code == status
    assert message in response.content.decode()


# -- rollout and coexistence -----------------------------------------------------------------------


def test_rollout_page_and_its_exports_match_the_command(portal, demo):
    page = portal.get("/rollout/", {"site": "Perimeter"})
    exported = portal.get("/rollout/", {"site": "Perimeter", "export": "csv"})
    markdown = portal.get("/rollout/", {"export": "markdown"})
    command = io.StringIO()
    call_command("rollout", "--site", "Perimeter", "--format", "csv", stdout=command)

    assert [wave.number for wave in page.context["rollout"].waves] == [1, 2]
    assert exported.content.decode() == command.getvalue()
    markdown_command = io.StringIO()
    call_command("rollout", "--all", "--format", "markdown", stdout=markdown_command)
    assert markdown.content.decode() == markdown_command.getvalue()
    assert (
        "\n### Before wave 1 — Active Directory preparation for contoso.example (once)\n" in markdown.content.decode()
    )
    assert "\n### Wave 1 — " in markdown.content.decode()
    html = portal.get("/rollout/").content.decode()
    assert "Active Directory preparation for contoso.example" in html
    assert all(f'data-fqdn="{item.fqdn}"' in html for wave in page.context["rollout"].waves for item in wave.servers)
    assert '<a href="/servers/?cluster=SCC-EX07">SCC-EX07</a>' in html  # a whole 2007 cluster: its members, no 404
    assert portal.get("/servers/", {"cluster": "SCC-EX07"}).status_code == 200
    assert exported["Content-Disposition"] == 'attachment; filename="rollout-Perimeter.csv"'


def test_rollout_of_an_unknown_site_is_a_404_with_the_reason(portal, demo):
    response = portal.get("/rollout/", {"site": "Atlantis"})

    assert response.status_code == 404
    assert "site &#x27;Atlantis&#x27; is not in the inventory" in response.content.decode()


def test_coexistence_page_lists_blockers_with_their_plans(portal, demo):
    response = portal.get("/coexistence/", {"introduce": "2013", "organisation": "fabrikam.example"})
    command = io.StringIO()
    call_command("coexistence_check", "--introduce", "2013", "--organisation", "fabrikam.example", "--format", "json",
                 stdout=command)  # fmt: skip
    expected = json.loads(command.getvalue())["blockers"]
    report = response.context["report"]
    html = response.content.decode()

    assert response.status_code == 200
    assert [(b.fqdn, b.kind, b.reason) for b in report.blockers] == [
        (b["fqdn"], b["kind"], b["reason"]) for b in expected
    ]
    # 2007 servers below SP3 RU10 block 2013 (fabrikam's demo servers are 2007, invented): each with a clearing plan
    assert {b.fqdn for b in report.blockers if b.kind == "level"} >= {"hub-ex07-01.fabrikam.example"}
    assert all(b.plan is not None for b in report.blockers if b.kind == "level")
    assert f"{len(expected)} blockers for introducing Exchange Server 2013" in html
    assert all(escape(b["reason"]) in html for b in expected)
    # one plan clears both CCR nodes: shown with the first, named with the second
    assert html.count("(the CCR CCR-EX07 plan)") == 1
    assert "Cleared by the CCR CCR-EX07 plan above" in html


def test_coexistence_page_without_a_newcomer_checks_what_runs_today(portal, demo):
    # Invented: an Exchange 2007 server appears in contoso.example, which runs 2013 to 2019 already.
    _add_server("old-ex07.contoso.example", "8.3.192.1")
    response = portal.get("/coexistence/", {"introduce": "none"})
    command = io.StringIO()
    call_command("coexistence_check", "--format", "json", stdout=command)
    expected = json.loads(command.getvalue())["blockers"]
    html = response.content.decode()

    assert response.status_code == 200
    assert response.context["report"].introduce is None
    assert [(b.fqdn, b.reason) for b in response.context["report"].blockers] == [
        (b["fqdn"], b["reason"]) for b in expected
    ]
    assert "old-ex07.contoso.example" in {b["fqdn"] for b in expected}
    assert "the versions already side by side" in html
    assert all(escape(b["reason"]) in html for b in expected)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"introduce": "2003"}, "introduce: &#x27;2003&#x27; is not one of 2010, 2013, 2016, 2019, SE or none"),
        ({"introduce": "2016", "site": "Atlantis"}, "site: &#x27;Atlantis&#x27; is not a site in the inventory"),
    ],
)
def test_coexistence_bad_input_says_why(portal, demo, query, message):
    response = portal.get("/coexistence/", query)

    assert response.status_code == 400
    assert message in response.content.decode()


# -- catalog ---------------------------------------------------------------------------------------


def test_catalog_updates_show_how_many_servers_need_them(portal, demo):
    response = portal.get("/catalog/", {"product": "2019", "level": "CU14"})
    html = response.content.decode()

    assert (
        response.context["table"].paginator.count
        == Update.objects.filter(product__key="2019", level__name="CU14").count()
    )
    assert '<a href="/servers/?needs=KB5036386">3 servers</a>' in html


def test_catalog_update_page_has_its_fix_list_and_needed_by(portal, demo):
    fixes = portal.get("/catalog/updates/KB2509910/")
    needed = portal.get("/catalog/updates/kb5036386/")

    assert len(fixes.context["updates"][0].fixes.all()) == Fix.objects.filter(updates__kb="KB2509910").count() == 47
    assert needed.context["needed_by"] == 3
    assert portal.get("/catalog/updates/KB1234567/").status_code == 404


@pytest.mark.parametrize(
    ("path", "count"),
    [
        ("/catalog/", lambda: Update.objects.count()),
        ("/catalog/fixes/", lambda: Fix.objects.count()),
        ("/catalog/conflicts/", lambda: CatalogConflict.objects.count()),
        ("/catalog/sources/", lambda: CatalogSource.objects.count()),
        ("/servers/", lambda: Server.objects.count()),
    ],
)
def test_every_list_exports_all_its_rows_as_csv(portal, demo, path, count):
    response = portal.get(path, {"_export": "csv"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert len(rows_of(response)) == count() > 0


# -- admin -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state": "excepted"}, ["mbx-ex19-02.contoso.example"]),
        ({"product": "2016"}, ["mbx-ex16-01.contoso.example", "mbx-ex16-nw.northwind.example"]),
        ({"level": "2007:SP2"}, ["hub-ex07-01.fabrikam.example"]),
        ({"q": "KB5036386"}, ["edge-ex19-01.contoso.example", "edge-ex19-02.contoso.example", "mbx-ex19-02.contoso.example"]),
        ({"q": "15.02.1544.009"}, ["mbx-ex19-01.contoso.example", "mbx-ex19-a.northwind.example", "mbx-ex19-b.northwind.example"]),
    ],
)  # fmt: skip
def test_admin_server_list_filters_and_searches(admin_client, demo, query, expected):
    response = admin_client.get("/admin/inventory/server/", query)

    assert sorted(server.fqdn for server in response.context["cl"].result_list) == expected
    assert "Excepted (waiver)" in admin_client.get("/admin/inventory/server/").content.decode()


def test_admin_actions_export_add_waiver_and_rescan(admin_client, demo, django_capture_on_commit_callbacks):
    ids = sorted(Server.objects.filter(tags__name="edge").values_list("pk", flat=True))
    exported = admin_client.post("/admin/inventory/server/", {"action": "export_as_csv", "_selected_action": ids})
    waiver = {"action": "add_waiver", "_selected_action": ids, "apply": "1", "target_kind": "update",
              "target_kb": "kb5037224", "reason": "invented", "approver": "CAB", "expires_at": "2099-01-01 00:00"}  # fmt: skip
    invalid = admin_client.post("/admin/inventory/server/", waiver | {"target_kb": "KB12"})
    changes = Change.objects.count()
    added = admin_client.post("/admin/inventory/server/", waiver)
    waiver_changes = Change.objects.filter(kind="waiver").count()
    scans = ScanRun.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        rescan = admin_client.post("/admin/inventory/server/", {"action": "rescan", "_selected_action": ids})

    assert [row["fqdn"] for row in rows_of(exported)] == ["edge-ex07-01.fabrikam.example", "edge-ex19-01.contoso.example",
                                                          "edge-ex19-02.contoso.example"]  # fmt: skip
    assert rows_of(exported)[1]["state (latest scan)"] == "Security update missing"
    assert invalid.status_code == 200 and "is not a KB number" in invalid.content.decode()
    assert added.status_code == 302
    assert sorted(Waiver.objects.filter(target_kb="KB5037224").values_list("server_id", flat=True)) == ids
    assert waiver_changes == 3 and Change.objects.count() >= changes + 3  # each waiver is in the change feed
    assert rescan.status_code == 302 and ScanRun.objects.count() == scans + 1
    assert ScanRun.objects.order_by("-pk").first().status == "succeeded"  # eager Celery in tests


# -- API -------------------------------------------------------------------------------------------


def test_api_root_lists_every_endpoint(portal, demo):
    body = portal.get("/api/v1/", HTTP_ACCEPT="application/json").json()

    assert {"servers", "servers-sync", "server-compliance", "server-plan", "compliance-summary", "rollout",
            "fix-missing", "update-needed-by", "builds-resolve", "changes", "schema", "docs", "redoc"} <= set(body)  # fmt: skip
    assert body["server-compliance"] == "http://testserver/api/v1/servers/{id or fqdn}/compliance/"
    filled = body["server-plan"].replace("{id or fqdn}", "mbx-ex19-01.contoso.example")
    assert portal.get(filled).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_api_docs_load_nothing_from_outside(portal, path):
    html = portal.get(path).content.decode()

    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/static/drf_spectacular_sidecar/") for source in sources)
