"""compliance_report, missing_fix, and the demo estate (demo_load, then scan) against the bundled catalog.

Server, site and organisation names are invented (.example domains); builds, KBs and fixes are real, from the catalog
loaded by the `loaded_catalog` fixture.
"""

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from inventory.models import (
    Cluster,
    ClusterMember,
    MaintenanceWindow,
    Organisation,
    ScanRun,
    Server,
    ServerResult,
    Site,
    Tag,
    Waiver,
)
from inventory.records import server_record_from_mapping
from inventory.services import server_upsert_many
from kb.engine.compliance import STATES


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def upsert(*items: dict) -> dict[str, int]:
    records = []
    for item in items:
        record, errors = server_record_from_mapping(item)
        assert errors == {}, item
        records.append(record)
    return {result.fqdn: result.server_id for result in server_upsert_many(records, source="test")}


# -- compliance_report ------------------------------------------------------------------------------

# Exchange 2007 SP3 Update Rollup 4 (8.3.192.1) as of 2017-03-25, before 2007's end of extended support: the
# latest rollup then was Update Rollup 23 (KB4011325), which includes Update Rollup 5 to 22.
RU4_AS_OF_2017 = {
    "fqdn": "ex07-ru4.fabrikam.example",
    "state": "update_available",
    "current": {
        "build": "8.3.192.1",
        "product": "Exchange Server 2007",
        "level": "SP3",
        "update": "Update Rollup 4",
        "kb": "KB2509911",
    },
    "install": {"name": "Update Rollup 23", "kb": "KB4011325", "build": "8.3.517.0", "esu_only": False},
    "supersedes": [
        "KB2602324",
        "KB2608656",
        "KB2655203",
        "KB2734232",
        "KB2756497",
        "KB2778154",
        "KB2746157",
        "KB2788321",
        "KB2873746",
        "KB2903911",
        "KB2917522",
        "KB2936861",
        "KB2996150",
        "KB3030086",
        "KB3056710",
        "KB3078672",
        "KB3141352",
        "KB3151086",
        "KB3184711",
        "KB3184712",
    ],
    "missing_prerequisites": [],
    "days_behind": 2012,
    "is_supported": True,
    "latest_security_update": None,  # the sources do not say which 2007 rollups carry security fixes
    "has_latest_security_update": None,
    "reasons": [
        "install Update Rollup 23 (KB4011325), build 8.3.517.0; it includes Update Rollup 5 to Update Rollup 22"
    ],
}


@pytest.fixture
def estate_2017(loaded_catalog):
    """Invented servers scanned as of 2017-03-25."""
    upsert(
        {"fqdn": "ex07-ru4.fabrikam.example", "roles": "Mailbox", "build": "8.3.192.1"},
        {"fqdn": "ex07-ru23.fabrikam.example", "roles": "Mailbox", "build": "8.3.517.0"},
        {"fqdn": "ex10-sp3.fabrikam.example", "roles": "Mailbox", "build": "Version 14.3 (Build 123.4)"},
    )
    run("scan", "--as-of", "2017-03-25")


@pytest.mark.django_db
def test_compliance_report_json_has_the_exact_shape(estate_2017):
    results = json.loads(run("compliance_report", "--json"))

    assert [item["fqdn"] for item in results] == [
        "ex07-ru23.fabrikam.example",
        "ex07-ru4.fabrikam.example",
        "ex10-sp3.fabrikam.example",
    ]
    assert results[1] == RU4_AS_OF_2017
    assert "KB2608656" in results[1]["supersedes"]  # 2007 SP3 Update Rollup 6
    assert [list(item) for item in results] == [list(RU4_AS_OF_2017)] * 3
    assert [list(item["current"]) for item in results] == [["build", "product", "level", "update", "kb"]] * 3
    assert (results[0]["state"], results[0]["install"], results[0]["days_behind"]) == ("current", None, 0)
    assert results[2]["state"] == "rollup_unknown"
    assert list(results[2]["install"]) == ["name", "kb", "build", "esu_only"]


@pytest.mark.django_db
def test_compliance_report_filters_by_state_and_by_server(estate_2017):
    by_state = json.loads(run("compliance_report", "--json", "--state", "update_available"))
    by_server = json.loads(run("compliance_report", "--json", "--server", "EX07-RU4.Fabrikam.Example"))
    none = json.loads(run("compliance_report", "--json", "--state", "unknown_build"))

    assert by_state == [RU4_AS_OF_2017]
    assert by_server == [RU4_AS_OF_2017]
    assert none == []


@pytest.mark.django_db
def test_compliance_report_text_for_one_server(estate_2017):
    output = run("compliance_report", "--server", "ex07-ru4.fabrikam.example")

    assert output.splitlines() == [
        "ex07-ru4.fabrikam.example: update_available — 8.3.192.1 Exchange Server 2007 SP3 Update Rollup 4",
        "  install Update Rollup 23 (KB4011325) → 8.3.517.0",
        "  2012 days behind",
        "  - install Update Rollup 23 (KB4011325), build 8.3.517.0; it includes Update Rollup 5 to Update Rollup 22",
    ]


@pytest.mark.django_db
def test_compliance_report_shows_the_waiver_of_an_excepted_server(loaded_catalog):
    ids = upsert({"fqdn": "ex07-ru4.fabrikam.example", "roles": "Mailbox", "build": "8.3.192.1"})
    # Invented waiver for Update Rollup 23.
    Waiver.objects.create(
        server_id=ids["ex07-ru4.fabrikam.example"], target_kind="update", target_kb="KB4011325",
        reason="invented: third-party archiving", approver="invented CAB", ticket="CHG-0001",
        expires_at=datetime(2017, 4, 30, tzinfo=UTC),
    )  # fmt: skip
    run("scan", "--as-of", "2017-03-25")

    [item] = json.loads(run("compliance_report", "--json"))

    assert item == RU4_AS_OF_2017 | {
        "state": "excepted",
        "reasons": [
            *RU4_AS_OF_2017["reasons"],
            "excepted: KB4011325 waived until 2017-04-30 by invented CAB (CHG-0001): invented: third-party archiving",
        ],
    }


@pytest.mark.django_db
def test_compliance_report_names_an_unknown_server(estate_2017):
    with pytest.raises(CommandError) as error:
        run("compliance_report", "--server", "absent.fabrikam.example")

    assert str(error.value) == (
        "--server: absent.fabrikam.example is not in the inventory (or was added after the last scan)"
    )


@pytest.mark.django_db
def test_compliance_report_rejects_an_unknown_state(estate_2017):
    with pytest.raises(CommandError) as error:
        run("compliance_report", "--state", "patched")

    # argparse quotes the choices or not depending on the Python version; the start and the choices are stable.
    assert str(error.value).startswith("Error: argument --state: invalid choice: 'patched' (choose from ")
    assert all(state in str(error.value) for state in STATES)


@pytest.mark.django_db
def test_compliance_report_names_a_server_added_after_the_last_scan(estate_2017):
    upsert({"fqdn": "new.fabrikam.example", "build": "8.3.517.0"})

    with pytest.raises(CommandError) as error:
        run("compliance_report", "--server", "new.fabrikam.example")

    assert str(error.value) == (
        "--server: new.fabrikam.example is not in the inventory (or was added after the last scan)"
    )


@pytest.mark.django_db
def test_compliance_report_before_any_scan_says_what_to_do(loaded_catalog):
    upsert({"fqdn": "ex07-ru4.fabrikam.example", "build": "8.3.192.1"})

    with pytest.raises(CommandError) as error:
        run("compliance_report")

    assert str(error.value) == "no scan yet: run `python manage.py scan` first"
    assert not ScanRun.objects.exists()


# -- missing_fix ------------------------------------------------------------------------------------

# KB2537099 is a real fix carried by Exchange 2010 SP1 Update Rollup 4 (June 2011).
FIX_TITLE = (
    "\u201c80040154\u201d error message when you try to configure external Client Access namespaces on an "
    "Exchange Server 2010 server"
)


@pytest.fixture
def fix_estate(loaded_catalog):
    """Invented servers around the fix: one lacks it, two have it, one runs another product, one is waived."""
    ids = upsert(
        {"fqdn": "sp1-ru3.contoso.example", "build": "14.1.289.7"},  # 2010 SP1 Update Rollup 3 v3: lacks it
        {"fqdn": "sp1-ru3-waived.contoso.example", "build": "14.1.289.7"},  # the same, under a fix waiver
        {"fqdn": "sp1-ru4v2.contoso.example", "build": "14.1.323.6"},  # 2010 SP1 Update Rollup 4 v2: has it
        {"fqdn": "sp2.contoso.example", "build": "14.2.247.5"},  # 2010 SP2, released after SP1 RU4: has it
        {"fqdn": "ex19.contoso.example", "build": "15.2.1544.11"},  # Exchange 2019: another product
    )
    # Invented waiver; fix waivers are judged against the current time, so it expires in the future.
    Waiver.objects.create(
        server_id=ids["sp1-ru3-waived.contoso.example"], target_kind="fix", target_kb="KB2537099",
        reason="invented: no external namespace", approver="invented CAB",
        expires_at=timezone.now() + timedelta(days=30),
    )  # fmt: skip
    return ids


@pytest.mark.django_db
def test_missing_fix_json(fix_estate):
    assert json.loads(run("missing_fix", "KB2537099", "--json")) == {
        "kb": "KB2537099",
        "title": FIX_TITLE,
        "carried_by": ["Exchange Server 2010 SP1 Update Rollup 4"],
        "lacking": ["sp1-ru3.contoso.example"],
        "unknown": [],
        "excepted": ["sp1-ru3-waived.contoso.example"],
        "present_count": 2,
        "not_applicable_count": 1,
    }


@pytest.mark.django_db
def test_missing_fix_text_accepts_a_bare_kb_number(fix_estate):
    assert run("missing_fix", "2537099").splitlines() == [
        f"KB2537099 {FIX_TITLE}",
        "  carried by: Exchange Server 2010 SP1 Update Rollup 4",
        "  1 lacking, 2 have it, 0 cannot tell, 1 excepted, 1 run another product",
        "  lacking: sp1-ru3.contoso.example",
        "  excepted by a waiver: sp1-ru3-waived.contoso.example",
    ]


@pytest.mark.django_db
def test_missing_fix_cannot_tell_for_an_admin_display_build_of_the_carrier_level(loaded_catalog):
    # Invented: AdminDisplayVersion of 2010 SP1 shows no rollup, so whether RU4 is there is unknown.
    upsert({"fqdn": "sp1.contoso.example", "build": "Version 14.1 (Build 218.15)"})

    payload = json.loads(run("missing_fix", "KB2537099", "--json"))

    assert (payload["lacking"], payload["unknown"], payload["present_count"]) == ([], ["sp1.contoso.example"], 0)


@pytest.mark.django_db
def test_an_expired_fix_waiver_does_not_except(loaded_catalog):
    ids = upsert({"fqdn": "sp1-ru3.contoso.example", "build": "14.1.289.7"})
    # Invented waiver that has expired.
    Waiver.objects.create(
        server_id=ids["sp1-ru3.contoso.example"], target_kind="fix", target_kb="KB2537099", reason="invented",
        approver="invented CAB", expires_at=timezone.now() - timedelta(days=1),
    )  # fmt: skip

    payload = json.loads(run("missing_fix", "KB2537099", "--json"))

    assert (payload["lacking"], payload["excepted"]) == (["sp1-ru3.contoso.example"], [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "kb", "message"),
    [
        ("malformed KB", "KB12x", "KB: 'KB12x' is not a KB number (expected KB followed by 6 to 8 digits)"),
        ("unknown KB", "KB9999999", "KB: KB9999999 is not a fix in the catalog (import its update's fix list with fixes_import)"),
        ("an update's KB, not a fix", "KB2509910", "KB: KB2509910 is not a fix in the catalog (import its update's fix list with fixes_import)"),
    ],
)  # fmt: skip
def test_missing_fix_errors(fix_estate, _case, kb, message):
    with pytest.raises(CommandError) as error:
        run("missing_fix", kb)

    assert str(error.value) == message


# -- the demo estate --------------------------------------------------------------------------------


def inventory_counts() -> dict[str, int]:
    models = (Organisation, Site, Server, Tag, Cluster, ClusterMember, MaintenanceWindow, Waiver)
    return {model.__name__: model.objects.count() for model in models} | {
        "server tags": Server.tags.through.objects.count(),
        "window sites": MaintenanceWindow.sites.through.objects.count(),
    }


@pytest.mark.django_db
def test_demo_estate_scanned_as_of_june_2024_shows_every_state(loaded_catalog):
    run("demo_load")

    output = run("scan", "--as-of", "2024-06-01")

    scan = ScanRun.objects.get()
    assert output.splitlines()[0] == (
        f"scan {scan.pk} as of 2024-06-01: 24 servers, {scan.distinct_count} distinct builds/facts, 0 newly non-compliant"
    )
    # Every state but legacy: the demo has no Exchange 2003 server (test_servers_import covers one).
    shown = [state for state in STATES if state != "legacy"]
    assert {state: scan.counts.get(state, 0) >= 1 for state in shown} == dict.fromkeys(shown, True)
    assert sum(scan.counts.values()) == 24
    assert output.splitlines()[1:] == [f"  {state:<24} {scan.counts.get(state, 0)}" for state in STATES]
    assert dict(ServerResult.objects.filter(scan=scan, state="excepted").values_list("server__fqdn", "waiver__target_kb")) == {
        "mbx-ex19-02.contoso.example": "KB5036386"
    }  # fmt: skip


@pytest.mark.django_db
def test_demo_load_twice_creates_no_duplicates(loaded_catalog):
    first = run("demo_load")
    counts = inventory_counts()
    stamps = dict(Server.objects.values_list("fqdn", "last_updated"))

    second = run("demo_load")

    assert "24 servers (24 created, 0 updated, 0 unchanged)" in first
    assert "24 servers (0 created, 0 updated, 24 unchanged)" in second
    assert inventory_counts() == counts
    assert counts == {
        "Organisation": 4, "Site": 9, "Server": 24, "Tag": 7, "Cluster": 6, "ClusterMember": 13,
        "MaintenanceWindow": 4, "Waiver": 1, "server tags": 51, "window sites": 9,
    }  # fmt: skip
    assert dict(Server.objects.values_list("fqdn", "last_updated")) == stamps


@pytest.mark.django_db
def test_servers_lacking_kb960775_from_the_bundled_catalog(loaded_catalog):
    # domain.md §3: 2007 SP1 Update Rollup 8 (KB968012) carries KB960775. Invented servers, real builds.
    from inventory.records import server_record_from_mapping
    from inventory.services import server_upsert_many

    items = [
        {"fqdn": "sp1-ru7.fabrikam.example", "build": "8.1.359.2"},
        {"fqdn": "sp1-ru8.fabrikam.example", "build": "8.1.375.2"},
        {"fqdn": "sp2.fabrikam.example", "build": "8.2.176.2"},
    ]
    server_upsert_many([server_record_from_mapping(item)[0] for item in items], source="test")

    payload = json.loads(run("missing_fix", "kb960775", "--json"))

    assert payload["carried_by"] == ["Exchange Server 2007 SP1 Update Rollup 8"]
    assert (payload["lacking"], payload["present_count"]) == (["sp1-ru7.fabrikam.example"], 2)
