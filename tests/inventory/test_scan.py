"""Scans against the bundled catalog: per-server states, shared verdicts, a fixed number of queries, history, waivers.

Every server, site and organisation name below is invented (.example domains); the builds are real Exchange builds
and the verdicts come from the real catalog and rules loaded by the `loaded_catalog` fixture.
"""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import ScanRun, ScanVerdict, Server, ServerResult, Site, Waiver
from inventory.records import server_record_from_mapping
from inventory.selectors import results_latest
from inventory.services import scan_run_execute, server_upsert_many

AS_OF = date(2024, 6, 1)
# Invented prerequisites of a fully prepared Exchange 2019 Mailbox server.
FULL_2019 = {"ucma": "4.0", "vcredist_2012": "2012", "vcredist_2013": "2013", "url_rewrite": "2.1"}


def upsert(*items: dict) -> dict[str, int]:
    records = []
    for item in items:
        record, errors = server_record_from_mapping(item)
        assert errors == {}, item
        records.append(record)
    return {result.fqdn: result.server_id for result in server_upsert_many(records, source="test")}


def server(fqdn: str, build: str, **extra) -> dict:
    """An invented Mailbox server in contoso.example, site Amsterdam unless stated."""
    return {
        "fqdn": fqdn, "organisation": "contoso.example", "site": "Amsterdam", "roles": "Mailbox", "build": build,
        "dotnet_version": "4.8", "prerequisites": FULL_2019,
    } | extra  # fmt: skip


def states(scan: ScanRun) -> dict[str, str]:
    return dict(ServerResult.objects.filter(scan=scan).values_list("server__fqdn", "state"))


# (invented fqdn, real build, build source, expected state as of 2024-06-01)
ESTATE = [
    ("cur-a.contoso.example", "15.2.1544.11", "exsetup", "current"),  # 2019 CU14 Apr24HU
    ("cur-b.contoso.example", "15.2.1544.11", "exsetup", "current"),  # same facts as cur-a: one shared verdict
    ("upd.contoso.example", "15.2.1544.9", "exsetup", "update_available"),  # CU14 Mar24SU; Apr24HU is not security
    ("sec.contoso.example", "15.2.1258.28", "exsetup", "security_update_missing"),  # CU13 Nov23SU; misses Mar24SU
    ("old.contoso.example", "15.2.1118.7", "exsetup", "unsupported_level"),  # CU12 RTM
    ("e07.contoso.example", "8.3.192.1", "exsetup", "end_of_life"),  # 2007 SP3 RU4
    ("e10.contoso.example", "Version 14.3 (Build 123.4)", "admin_display", "rollup_unknown"),  # 2010 SP3, RU unseen
    ("lab.contoso.example", "16.0.1.1", "manual", "unknown_build"),  # no such Exchange version
]


@pytest.mark.django_db
def test_scan_gives_each_server_its_state_and_shares_verdicts(loaded_catalog):
    ids = upsert(*(server(fqdn, build, build_source=source) for fqdn, build, source, _ in ESTATE))

    scan = scan_run_execute(as_of=AS_OF)

    assert states(scan) == {fqdn: state for fqdn, _, _, state in ESTATE}
    assert (scan.status, scan.as_of, scan.server_count, scan.distinct_count, scan.newly_noncompliant) == (
        "succeeded",
        AS_OF,
        8,
        7,
        0,
    )
    assert scan.counts == {
        "current": 2,
        "end_of_life": 1,
        "rollup_unknown": 1,
        "security_update_missing": 1,
        "unknown_build": 1,
        "unsupported_level": 1,
        "update_available": 1,
    }
    assert ScanVerdict.objects.filter(scan=scan).count() == 7
    results = {r.server.fqdn: r for r in ServerResult.objects.filter(scan=scan).select_related("server", "verdict")}
    assert results["cur-a.contoso.example"].verdict_id == results["cur-b.contoso.example"].verdict_id
    assert results["upd.contoso.example"].verdict.install == {
        "name": "Apr24HU",
        "title": results["upd.contoso.example"].verdict.install["title"],
        "kb": "KB5037224",
        "build": "15.2.1544.11",
        "esu_only": False,
    }
    assert results["sec.contoso.example"].verdict.missing_updates == ["KB5036386", "KB5037224"]
    assert results["sec.contoso.example"].verdict.security_updates == ["KB5036386"]
    assert results["e07.contoso.example"].verdict.current == {
        "build": "8.3.192.1",
        "product": "Exchange Server 2007",
        "level": "SP3",
        "update": "Update Rollup 4",
        "kb": "KB2509911",
    }
    assert results["lab.contoso.example"].verdict.reasons == ["16.0 is not a known Exchange version"]
    assert all(r.waiver_id is None and not r.is_newly_noncompliant for r in results.values())
    latest = {r.server.fqdn: r.state for r in results_latest()}
    assert latest == {fqdn: state for fqdn, _, _, state in ESTATE}
    assert set(ids) == set(Server.objects.values_list("fqdn", flat=True))


@pytest.mark.django_db
def test_servers_with_the_same_build_but_other_facts_get_their_own_verdict(loaded_catalog):
    # Invented: the same real build, once with .NET 4.8 and once without a reported .NET version.
    upsert(
        server("a.contoso.example", "15.2.1544.9"),
        server("b.contoso.example", "15.2.1544.9"),
        server("c.contoso.example", "15.2.1544.9", dotnet_version=""),
    )

    scan = scan_run_execute(as_of=AS_OF)

    assert (scan.server_count, scan.distinct_count) == (3, 2)
    verdicts = dict(ServerResult.objects.filter(scan=scan).values_list("server__fqdn", "verdict_id"))
    assert verdicts["a.contoso.example"] == verdicts["b.contoso.example"] != verdicts["c.contoso.example"]
    missing = dict(ServerResult.objects.filter(scan=scan).values_list("server__fqdn", "verdict__missing_prerequisites"))
    assert missing["a.contoso.example"] == []
    assert missing["c.contoso.example"] == [
        ".NET Framework 4.8.1 (CU14 supports 4.8, 4.8.1; .NET version not reported)"
    ]


# A handful of real builds, cycled over the invented servers of the query-count test.
BUILDS = ["15.2.1544.11", "15.2.1544.9", "15.2.1258.28", "15.2.1118.7", "8.3.192.1", "15.1.2507.39"]


def scan_queries(count: int) -> tuple[int, ScanRun]:
    """(queries, the scan) of one scan of `count` invented servers."""
    upsert(*(server(f"srv{n:04d}.contoso.example", BUILDS[n % len(BUILDS)]) for n in range(count)))
    with CaptureQueriesContext(connection) as queries:
        scan = scan_run_execute(as_of=AS_OF)
    return len(queries.captured_queries), scan


@pytest.mark.django_db
def test_a_scan_takes_the_same_number_of_queries_for_10_and_for_200_servers(loaded_catalog):
    # Invented: one active global waiver, so the waiver path runs too.
    Waiver.objects.create(
        target_kind="update", target_kb="KB5036386", reason="invented", approver="invented",
        expires_at=datetime(2024, 7, 1, tzinfo=UTC),
    )  # fmt: skip
    small, small_scan = scan_queries(10)
    ScanRun.objects.all().delete()  # both measured scans are first scans
    large, large_scan = scan_queries(200)

    assert (small_scan.server_count, small_scan.distinct_count) == (10, 6)
    assert (large_scan.server_count, large_scan.distinct_count) == (200, 6)
    assert ServerResult.objects.filter(scan=large_scan).count() == 200
    assert small == large


@pytest.mark.django_db
def test_a_later_scan_keeps_the_earlier_results_and_flags_newly_noncompliant_servers(loaded_catalog):
    upsert(
        server("was-current.contoso.example", "15.2.1544.11"),
        server("still-current.contoso.example", "15.2.1544.11"),
        server("still-behind.contoso.example", "15.2.1258.28"),
        server("catches-up.contoso.example", "15.2.1544.9"),
    )
    first = scan_run_execute(as_of=AS_OF)
    # Invented change: one server is rolled back to an older build, another is patched.
    upsert(
        {"fqdn": "was-current.contoso.example", "build": "15.2.1544.9"},
        {"fqdn": "catches-up.contoso.example", "build": "15.2.1544.11"},
    )

    second = scan_run_execute(as_of=AS_OF)

    assert states(first) == {
        "was-current.contoso.example": "current",
        "still-current.contoso.example": "current",
        "still-behind.contoso.example": "security_update_missing",
        "catches-up.contoso.example": "update_available",
    }
    assert states(second) == {
        "was-current.contoso.example": "update_available",
        "still-current.contoso.example": "current",
        "still-behind.contoso.example": "security_update_missing",
        "catches-up.contoso.example": "current",
    }
    assert dict(ServerResult.objects.filter(scan=second).values_list("server__fqdn", "is_newly_noncompliant")) == {
        "was-current.contoso.example": True,
        "still-current.contoso.example": False,
        "still-behind.contoso.example": False,
        "catches-up.contoso.example": False,
    }
    assert not ServerResult.objects.filter(scan=first, is_newly_noncompliant=True).exists()
    assert (first.newly_noncompliant, second.newly_noncompliant) == (0, 1)
    assert ScanVerdict.objects.filter(scan=first).count() == 3
    assert ServerResult.objects.count() == 8
    assert {r.server.fqdn: r.state for r in results_latest()} == states(second)


# Both invented servers run 2019 CU13 Nov23SU (15.2.1258.28) and so miss Mar24SU (KB5036386) and Apr24HU
# (KB5037224); the waiver names one of the KBs it misses.
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "scope", "excepted"),
    [
        ("server scope", "server", {"ams.contoso.example"}),
        ("site scope", "site", {"ams.contoso.example"}),
        ("global scope", "global", {"ams.contoso.example", "dub.contoso.example"}),
    ],
)
def test_an_active_waiver_for_a_missing_kb_makes_the_server_excepted(loaded_catalog, _case, scope, excepted):
    ids = upsert(
        server("ams.contoso.example", "15.2.1258.28", site="Amsterdam"),
        server("dub.contoso.example", "15.2.1258.28", site="Dublin"),
    )
    # Invented waiver; it expires after the scan's date (it may be in the past today: as_of decides).
    waiver = Waiver.objects.create(
        server_id=ids["ams.contoso.example"] if scope == "server" else None,
        site=Site.objects.get(name="Amsterdam") if scope == "site" else None,
        target_kind="update", target_kb="KB5036386", reason="invented: vendor agent not certified",
        approver="invented CAB", expires_at=datetime(2024, 7, 1, tzinfo=UTC),
    )  # fmt: skip

    scan = scan_run_execute(as_of=AS_OF)

    results = {r.server.fqdn: r for r in ServerResult.objects.filter(scan=scan).select_related("server", "verdict")}
    assert {fqdn for fqdn, r in results.items() if r.state == "excepted"} == excepted
    for fqdn, result in results.items():
        assert result.waiver_id == (waiver.pk if fqdn in excepted else None)
        # The verdict still shows what to install and its own state.
        assert result.verdict.state == "security_update_missing"
        assert {key: result.verdict.install[key] for key in ("name", "kb", "build")} == {
            "name": "Apr24HU",
            "kb": "KB5037224",
            "build": "15.2.1258.34",
        }
    assert scan.counts == {"excepted": len(excepted)} | (
        {} if len(excepted) == 2 else {"security_update_missing": 2 - len(excepted)}
    )
    assert results_latest(fqdn="ams.contoso.example").get().state == "excepted"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "target_kb", "expires_at"),
    [
        ("expired before the scan's date", "KB5036386", datetime(2024, 5, 31, tzinfo=UTC)),
        ("for a KB the server already has (Nov23SU)", "KB5032146", datetime(2024, 7, 1, tzinfo=UTC)),
        ("for a KB of another product (2007 SP3 RU23)", "KB4011325", datetime(2024, 7, 1, tzinfo=UTC)),
    ],
)
def test_a_waiver_that_does_not_apply_leaves_the_state(loaded_catalog, _case, target_kb, expires_at):
    ids = upsert(server("ams.contoso.example", "15.2.1258.28"))
    # Invented waiver for the server itself.
    Waiver.objects.create(
        server_id=ids["ams.contoso.example"], target_kind="update", target_kb=target_kb, reason="invented",
        approver="invented CAB", expires_at=expires_at,
    )  # fmt: skip

    scan = scan_run_execute(as_of=AS_OF)

    result = ServerResult.objects.get(scan=scan)
    assert (result.state, result.waiver_id) == ("security_update_missing", None)
    assert scan.counts == {"security_update_missing": 1}


@pytest.mark.django_db
def test_a_fix_waiver_does_not_except_an_update(loaded_catalog):
    ids = upsert(server("ams.contoso.example", "15.2.1258.28"))
    # Invented waiver of kind "fix" naming the KB of a missing update.
    Waiver.objects.create(
        server_id=ids["ams.contoso.example"], target_kind="fix", target_kb="KB5036386", reason="invented",
        approver="invented CAB", expires_at=datetime(2024, 7, 1, tzinfo=UTC),
    )  # fmt: skip

    scan = scan_run_execute(as_of=AS_OF)

    assert states(scan) == {"ams.contoso.example": "security_update_missing"}


@pytest.mark.django_db
def test_a_current_server_is_not_flagged_by_a_waiver(loaded_catalog):
    ids = upsert(server("cur.contoso.example", "15.2.1544.11"))
    # Invented waiver for the latest update, which the server runs.
    Waiver.objects.create(
        server_id=ids["cur.contoso.example"], target_kind="update", target_kb="KB5037224", reason="invented",
        approver="invented CAB", expires_at=datetime(2024, 7, 1, tzinfo=UTC),
    )  # fmt: skip

    scan = scan_run_execute(as_of=AS_OF)

    assert ServerResult.objects.filter(scan=scan).values_list("state", "waiver").get() == ("current", None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "values", "field"),
    [
        ("unknown zone", {"time_zone": "Mars/Olympus"}, "time_zone"),
        ("weekday 7", {"weekdays": [7]}, "weekdays"),
        ("no weekdays", {"weekdays": []}, "weekdays"),
        ("week 6", {"week_of_month": 6}, "week_of_month"),
    ],
)
def test_maintenance_windows_the_scheduler_cannot_place_are_refused(_case, values, field):
    from datetime import time as clock

    from django.core.exceptions import ValidationError

    from inventory.models import MaintenanceWindow

    # Invented window.
    window = MaintenanceWindow(
        **{"name": "w", "time_zone": "UTC", "weekdays": [6], "start_time": clock(1), "duration_minutes": 60} | values
    )

    with pytest.raises(ValidationError) as error:
        window.full_clean()

    assert list(error.value.message_dict) == [field]
