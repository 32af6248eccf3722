"""The set-based chunk writer (PostgreSQL: servers joined to their verdicts in one statement) against the row writer
(every server evaluated in Python, the path SQLite takes): the same results, deltas, waivers, change-feed rows and
counts, for a first scan, a later scan with deltas, a recompute and a server whose facts appeared mid-scan.

Every server, site, organisation and waiver below is invented (.example domains); the builds are real and the verdicts
come from the bundled catalog.
"""

from datetime import UTC, date, datetime

import pytest
from django.conf import settings

from inventory import scans
from inventory.models import Change, Organisation, ScanRun, ScanTally, Server, ServerResult, Site, Waiver
from inventory.scans import scan_request, scan_run_execute, scan_start, scan_work
from tests.inventory.test_scan import AS_OF, ESTATE, FULL_2019, server, upsert

pytestmark = pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="the set-based writer is PostgreSQL's; on SQLite every chunk takes the row writer, which the other scan "
    "tests cover (the PostgreSQL run of the suite runs this file)",
)
LATER = date(2024, 9, 1)


@pytest.fixture
def estate(loaded_catalog, settings):
    """Invented: two organisations (one enrolled in ESU), three sites, the scan tests' builds with other roles,
    .NET versions and prerequisites, and waivers of every scope, including an expired one and one for a fix."""
    settings.EXCHANGEPATCH_SCAN_CHUNK_SIZE = 4
    items = [server(fqdn, build, build_source=source) for fqdn, build, source, _ in ESTATE]
    items += [
        server("dub-sec.contoso.example", "15.2.1258.28", site="Dublin"),
        server("osl-sec.contoso.example", "15.2.1258.28", site="Oslo"),
        server("osl-upd.contoso.example", "15.2.1544.9", site="Oslo", roles="Mailbox,ClientAccess"),
        server("net.contoso.example", "15.2.1258.28", dotnet_version="4.7.2"),
        server("pre.contoso.example", "15.2.1258.28", prerequisites={"ucma": "4.0"}),
        server("esu-a.adatum.example", "15.2.1258.28", organisation="adatum.example"),
        server("esu-b.adatum.example", "15.1.2507.39", organisation="adatum.example"),
        server("e16.adatum.example", "15.1.2507.39", organisation="adatum.example", site="Oslo"),
        # Look-alikes of the facts above: no site (a site waiver cannot reach it), no roles, the prerequisites of
        # another server in another order, the build in its AdminDisplayVersion form.
        server("nosite.contoso.example", "15.2.1258.28", site=""),
        server("noroles.contoso.example", "15.2.1258.28", roles=""),
        server("order.contoso.example", "15.2.1258.28", prerequisites=dict(reversed(list(FULL_2019.items())))),
        server("admin.contoso.example", "Version 15.2 (Build 1258.28)"),
    ]
    ids = upsert(*items)
    Organisation.objects.filter(name="adatum.example").update(esu_enrolled_until=date(2026, 10, 13))
    sites = dict(Site.objects.values_list("name", "pk"))
    expires = datetime(2025, 1, 1, tzinfo=UTC)
    waiver = {"reason": "invented", "approver": "invented CAB", "expires_at": expires}
    Waiver.objects.bulk_create(
        [
            Waiver(target_kind="update", target_kb="KB5037224", **waiver),  # everyone: 2019 CU14's Apr24HU
            Waiver(server_id=ids["sec.contoso.example"], target_kind="update", target_kb="KB5036386", **waiver),
            Waiver(site_id=sites["Dublin"], target_kind="update", target_kb="KB5036386", **waiver),
            Waiver(target_kind="fix", target_kb="KB5036386", **waiver),  # a fix waiver never excepts an update
            Waiver(server_id=ids["osl-sec.contoso.example"], target_kind="update", target_kb="KB5036386",
                   reason="invented", approver="invented CAB", expires_at=datetime(2024, 1, 1, tzinfo=UTC)),
        ]
    )  # fmt: skip
    return ids


def outcome(scan: ScanRun, *, feed_after: int) -> dict:
    """What a scan wrote, keyed so that two scans of the same estate compare equal: its results, tallies and counts,
    and every verdict row the feed received after seq `feed_after` (whatever scan they name)."""
    scan.refresh_from_db()
    results = ServerResult.objects.filter(scan=scan).values_list(
        "server__fqdn", "state", "waiver__target_kb", "waiver__server_id", "waiver__site_id", "delta",
        "is_newly_noncompliant", "verdict__facts_key",
    )  # fmt: skip
    feed = Change.objects.filter(kind="verdict", seq__gt=feed_after).values_list("object_id", "key", "action", "data")
    tallies = ScanTally.objects.filter(scan=scan).values_list("verdict__facts_key", "state", "delta", "server_count")
    return {
        "results": sorted(results),
        "feed": sorted((pk, key, action, {k: v for k, v in data.items() if k != "scan"}) for pk, key, action, data in feed),
        "scans named by the feed": {data["scan"] for *_, data in feed} <= {scan.pk},
        "tallies": sorted(tallies),
        "scan": (scan.status, scan.server_count, scan.counts, scan.carried_count, scan.newly_noncompliant,
                 scan.newly_compliant, scan.newly_excepted),
    }  # fmt: skip


# The servers that a live server- or site-scoped waiver names (sec: its own; dub-sec: its site's): the set-based
# writer leaves them to the row writer. osl-sec's own waiver expired, so the statement decides it.
WAIVED = {"sec.contoso.example", "dub-sec.contoso.example"}


def both_writers(monkeypatch, run) -> tuple[dict, set[str]]:
    """Run the scan with the set-based writer, forget it, run it again with the row writer: both outcomes, and which
    servers the set-based run evaluated in Python."""
    outcomes, evaluated = {}, []
    monkeypatch.setattr(scans, "_rows_evaluate", spy(scans._rows_evaluate, evaluated))
    for in_sql in (True, False):
        monkeypatch.setattr(scans, "SCAN_IN_SQL", in_sql)
        feed_after = Change.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        scan = run()
        outcomes[in_sql] = outcome(scan, feed_after=feed_after)
        if in_sql:
            in_python = set(evaluated)
            Change.objects.filter(seq__gt=feed_after).delete()
            scan.delete()
    return outcomes, in_python


@pytest.mark.django_db
def test_both_writers_write_the_same_first_scan_with_waivers_of_every_scope(estate, monkeypatch):
    outcomes, in_python = both_writers(monkeypatch, lambda: scan_run_execute(as_of=AS_OF))

    assert outcomes[True] == outcomes[False]
    assert outcomes[True]["scans named by the feed"]
    assert in_python == WAIVED  # every other server was joined to its verdict in SQL
    results = {row[0]: row for row in outcomes[True]["results"]}
    assert results["sec.contoso.example"][1:5] == ("excepted", "KB5036386", estate["sec.contoso.example"], None)
    assert results["dub-sec.contoso.example"][1:3] == ("excepted", "KB5036386")  # site scope
    # Its own waiver expired: the waiver for everyone (Apr24HU, its install target too) covers it.
    assert results["osl-sec.contoso.example"][1:5] == ("excepted", "KB5037224", None, None)
    assert results["net.contoso.example"][1:3] == ("excepted", "KB5037224")
    assert results["upd.contoso.example"][1:3] == ("excepted", "KB5037224")  # the waiver for everyone
    assert len(outcomes[True]["feed"]) == len(results) == len(estate)  # a first scan: every server changed


@pytest.mark.django_db
def test_both_writers_write_the_same_deltas_in_a_later_scan(estate, monkeypatch):
    scan_run_execute(as_of=AS_OF)
    upsert(
        {"fqdn": "sec.contoso.example", "build": "15.2.1544.11"},  # patched: newly compliant
        {"fqdn": "cur-a.contoso.example", "build": "8.3.192.1"},  # reinstalled as 2007: newly non-compliant
        {"fqdn": "cur-b.contoso.example", "build": "15.2.1258.28"},  # rolled back, the waiver for everyone covers it
        server("new.contoso.example", "8.3.192.1"),  # new since the baseline
    )
    Server.objects.filter(fqdn="lab.contoso.example").delete()

    outcomes, in_python = both_writers(monkeypatch, lambda: scan_run_execute(as_of=LATER))

    assert outcomes[True] == outcomes[False]
    assert outcomes[True]["scans named by the feed"]
    assert in_python == WAIVED  # every other server was joined to its verdict in SQL
    deltas = {row[0]: row[5] for row in outcomes[True]["results"]}
    assert deltas["sec.contoso.example"] == "newly_compliant"
    assert deltas["cur-a.contoso.example"] == "newly_noncompliant"
    assert deltas["cur-b.contoso.example"] == "newly_excepted"
    assert deltas["new.contoso.example"] == "newly_noncompliant"
    assert "lab.contoso.example" not in deltas


@pytest.mark.django_db
def test_both_writers_carry_the_same_results_forward_in_a_recompute(estate, monkeypatch):
    scan_run_execute(as_of=AS_OF)

    def recompute():
        scan = scan_request(trigger="catalog", levels=[["2019", "CU14"]], as_of=AS_OF)
        return scan_run_execute(scan_id=scan.pk, as_of=AS_OF)

    outcomes, in_python = both_writers(monkeypatch, recompute)

    assert outcomes[True] == outcomes[False]
    assert outcomes[True]["scans named by the feed"]
    assert in_python == WAIVED  # every other server was joined to its verdict in SQL
    assert outcomes[True]["scan"][3] > 0  # carried forward
    assert outcomes[True]["scan"][1] == len(estate)


@pytest.mark.django_db
def test_a_server_whose_facts_appear_after_planning_is_evaluated_all_the_same(estate, monkeypatch):
    monkeypatch.setattr(scans, "SCAN_IN_SQL", True)
    evaluated = []
    monkeypatch.setattr(scans, "_rows_evaluate", spy(scans._rows_evaluate, evaluated))
    scan = scan_start(scan_id=scan_request(trigger="command", as_of=AS_OF).pk)
    # Facts no server had when the scan planned its verdicts: the set-based writer does not know them.
    upsert({"fqdn": "old.contoso.example", "build": "15.2.1258.32", "dotnet_version": "4.8.1"})
    scan_work(scan_id=scan.pk)

    assert set(evaluated) == WAIVED | {"old.contoso.example"}  # its new facts: by the row writer
    result = ServerResult.objects.select_related("verdict").get(scan=scan, server__fqdn="old.contoso.example")
    assert (result.verdict.product, result.verdict.level) == ("2019", "CU13")
    assert ServerResult.objects.filter(scan=scan).count() == len(estate)
    assert Change.objects.filter(kind="verdict", data__scan=scan.pk).count() == len(estate)


def spy(function, seen: list):
    """`_rows_evaluate` that also records the FQDNs it evaluated."""

    def evaluate(context, servers):
        seen.extend(servers.values_list("fqdn", flat=True))
        return function(context, servers)

    return evaluate
