"""Scans in chunks on the embedded database: chunk planning, one result per server whatever happens to a chunk, the
scope lock, the watchdog, deltas, per-verdict gaps and per-scan tallies, recomputes and retention.

Server names are invented (.example domains); builds are real, verdicts come from the bundled catalog. The same
behaviour with real worker processes on PostgreSQL and Redis is in tests/integration/test_jobs.py.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from inventory.models import ScanChunk, ScanRun, ScanTally, ScanVerdict, Server, ServerResult, VerdictGap, Waiver
from inventory.retention import retention_apply
from inventory.scans import (
    ScanBusyError,
    scan_chunk_run,
    scan_request,
    scan_run_execute,
    scan_start,
    scan_work,
    scans_watch,
)
from tests.inventory.test_scan import AS_OF, ESTATE, server, states, upsert


@pytest.fixture
def estate(loaded_catalog, settings):
    settings.EXCHANGEPATCH_SCAN_CHUNK_SIZE = 3
    return upsert(*(server(fqdn, build, build_source=source) for fqdn, build, source, _ in ESTATE))


def results_per_server(scan: ScanRun) -> dict[str, int]:
    rows = ServerResult.objects.filter(scan=scan).values_list("server__fqdn", flat=True)
    counts: dict[str, int] = {}
    for fqdn in rows:
        counts[fqdn] = counts.get(fqdn, 0) + 1
    return counts


@pytest.mark.django_db
def test_a_scan_in_chunks_gives_the_same_states_as_the_estate_expects(estate):
    scan = scan_run_execute(as_of=AS_OF)

    assert states(scan) == {fqdn: state for fqdn, _, _, state in ESTATE}
    assert (scan.chunk_count, scan.chunks_done, scan.server_count, scan.distinct_count) == (3, 3, 8, 7)
    assert list(ScanChunk.objects.filter(scan=scan).values_list("number", "server_count", "status")) == [
        (1, 3, "done"),
        (2, 3, "done"),
        (3, 2, "done"),
    ]
    tallies = ScanTally.objects.filter(scan=scan)
    assert sum(t.server_count for t in tallies) == 8
    assert {t.state for t in tallies} == set(scan.counts)


@pytest.mark.django_db
def test_a_chunk_whose_worker_fails_mid_write_leaves_nothing_and_is_written_once_later(estate):
    scan = scan_request(trigger="command")
    scan_start(scan_id=scan.pk, as_of=AS_OF)
    # A worker claims chunk 1 and writes it, and dies before its transaction commits.
    with pytest.raises(RuntimeError), transaction.atomic():
        assert scan_chunk_run(scan_id=scan.pk) == 1
        assert ServerResult.objects.filter(scan=scan).count() == 3
        raise RuntimeError("the worker died before its transaction committed")

    assert ServerResult.objects.filter(scan=scan).count() == 0
    assert ScanChunk.objects.filter(scan=scan, status="pending").count() == 3

    assert scan_work(scan_id=scan.pk) == "finished"
    scan.refresh_from_db()
    assert scan.status == "succeeded"
    assert results_per_server(scan) == {fqdn: 1 for fqdn, *_ in ESTATE}


@pytest.mark.django_db
def test_two_scans_of_one_scope_never_run_at_once(estate):
    first = scan_request(trigger="command")
    scan_start(scan_id=first.pk, as_of=AS_OF)
    second = scan_request(trigger="command")

    with pytest.raises(ScanBusyError) as busy:
        scan_start(scan_id=second.pk, as_of=AS_OF)

    assert busy.value.scan_id == first.pk
    second.refresh_from_db()
    assert (second.status, ServerResult.objects.filter(scan=second).count()) == ("pending", 0)
    scan_work(scan_id=first.pk)
    assert scan_start(scan_id=second.pk, as_of=AS_OF).status == "running"  # the lock is free once it finished


@pytest.mark.django_db
def test_the_watchdog_resumes_a_quiet_scan_then_fails_it_with_the_reason_and_asks_for_a_rerun(estate, settings):
    settings.EXCHANGEPATCH_SCAN_MAX_ATTEMPTS = 2
    scan = scan_request(trigger="schedule")
    scan_start(scan_id=scan.pk, as_of=AS_OF)
    scan_chunk_run(scan_id=scan.pk)  # one chunk done, then the worker went silent
    quiet = timezone.now() - timedelta(seconds=settings.EXCHANGEPATCH_SCAN_LEASE_SECONDS + 5)
    ScanRun.objects.filter(pk=scan.pk).update(heartbeat_at=quiet)

    resumed = scans_watch()
    ScanRun.objects.filter(pk=scan.pk).update(heartbeat_at=quiet)
    failed = scans_watch()

    assert [(a.scan_id, a.action) for a in resumed] == [(scan.pk, "resumed")]
    assert [a.action for a in failed] == ["failed", "rerun"]
    scan.refresh_from_db()
    assert scan.status == "failed"
    assert scan.error.startswith("lease expired: no worker finished a chunk for ")
    assert scan.error.endswith("2 of 3 chunks left after 2 attempts")
    rerun = ScanRun.objects.get(pk=failed[1].scan_id)
    assert (rerun.status, rerun.trigger) == ("pending", "watchdog")


@pytest.mark.django_db
def test_the_watchdog_leaves_a_live_scan_alone_and_finishes_one_whose_finisher_died(estate):
    live = scan_request(trigger="command")
    scan_start(scan_id=live.pk, as_of=AS_OF)
    assert scans_watch() == []

    while scan_chunk_run(scan_id=live.pk) is not None:
        pass  # every chunk written; the worker died before finishing the scan
    ScanRun.objects.filter(pk=live.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    assert [(a.scan_id, a.action) for a in scans_watch()] == [(live.pk, "finished")]
    live.refresh_from_db()
    assert (live.status, live.server_count) == ("succeeded", 8)


@pytest.mark.django_db
def test_a_pending_scan_nobody_takes_is_dispatched_again_then_failed_with_the_reason(estate, settings):
    scan = scan_request(trigger="api")
    old = timezone.now() - timedelta(seconds=settings.EXCHANGEPATCH_SCAN_LEASE_SECONDS + 5)
    ScanRun.objects.filter(pk=scan.pk).update(created=old)

    assert [a.action for a in scans_watch()] == ["redispatched"]
    assert scans_watch() == []  # dispatched a moment ago: not again yet
    ScanRun.objects.filter(pk=scan.pk).update(
        created=timezone.now() - timedelta(seconds=settings.EXCHANGEPATCH_SCAN_PENDING_TIMEOUT + 1), heartbeat_at=old
    )
    assert [a.action for a in scans_watch()] == ["failed"]
    scan.refresh_from_db()
    assert scan.status == "failed" and scan.error.startswith("never started: no worker took it within ")


@pytest.mark.django_db
def test_deltas_newly_noncompliant_compliant_and_excepted(loaded_catalog):
    upsert(
        server("falls.contoso.example", "15.2.1544.11"),  # current → update available
        server("patched.contoso.example", "15.2.1544.9"),  # update available → current
        server("waived.contoso.example", "15.2.1258.28"),  # security update missing → excepted
        server("same.contoso.example", "15.2.1258.28"),  # stays behind: no delta
    )
    first = scan_run_execute(as_of=AS_OF)
    upsert(
        {"fqdn": "falls.contoso.example", "build": "15.2.1544.9"},
        {"fqdn": "patched.contoso.example", "build": "15.2.1544.11"},
        server("new.contoso.example", "15.2.1118.7"),  # new since the first scan, unsupported level
    )
    # Invented waiver.
    Waiver.objects.create(
        server_id=ServerResult.objects.get(scan=first, server__fqdn="waived.contoso.example").server_id,
        target_kind="update", target_kb="KB5036386", reason="invented", approver="invented CAB",
        expires_at=datetime(2024, 7, 1, tzinfo=UTC),
    )  # fmt: skip

    second = scan_run_execute(as_of=AS_OF)

    deltas = dict(ServerResult.objects.filter(scan=second).values_list("server__fqdn", "delta"))
    assert deltas == {
        "falls.contoso.example": "newly_noncompliant",
        "patched.contoso.example": "newly_compliant",
        "waived.contoso.example": "newly_excepted",
        "same.contoso.example": "",
        "new.contoso.example": "newly_noncompliant",
    }
    assert (second.newly_noncompliant, second.newly_compliant, second.newly_excepted) == (2, 1, 1)
    assert (first.newly_noncompliant, first.newly_compliant, first.newly_excepted) == (0, 0, 0)
    assert second.baseline_id == first.pk


@pytest.mark.django_db
def test_gaps_list_every_missing_update_and_fix_of_a_verdict(loaded_catalog):
    # 2010 SP1 RU3 lacks RU4's fixes (e.g. KB2537099); 2010 SP1 RU4 carries them; 2019 is another product.
    upsert(
        server("ru3.contoso.example", "14.1.289.7", roles="Mailbox", prerequisites={}),
        server("ru4.contoso.example", "14.1.323.6", roles="Mailbox", prerequisites={}),
        server("e19.contoso.example", "15.2.1258.28"),
    )

    scan = scan_run_execute(as_of=AS_OF)

    def gaps(fqdn: str, kind: str) -> set[str]:
        verdict = ServerResult.objects.get(scan=scan, server__fqdn=fqdn).verdict_id
        return set(VerdictGap.objects.filter(verdict_id=verdict, kind=kind).values_list("kb", flat=True))

    e19 = ScanVerdict.objects.get(results__scan=scan, results__server__fqdn="e19.contoso.example")
    assert gaps("e19.contoso.example", "update") == set(e19.missing_updates) == {"KB5036386", "KB5037224"}
    assert VerdictGap.objects.get(verdict=e19, kb="KB5036386").is_security
    assert VerdictGap.objects.get(verdict=e19, kb="KB5037224").is_install_target
    assert gaps("e19.contoso.example", "fix") == set()  # no fix list of 2019 is in the catalog
    assert "KB2537099" in gaps("ru3.contoso.example", "fix")
    assert "KB2537099" not in gaps("ru4.contoso.example", "fix")
    assert (e19.product, e19.level) == ("2019", "CU13")


@pytest.mark.django_db
def test_a_recompute_evaluates_only_the_levels_it_names_and_carries_the_rest(loaded_catalog):
    upsert(
        server("cu14.contoso.example", "15.2.1544.11"),
        server("cu13.contoso.example", "15.2.1258.28"),
        server("e07.contoso.example", "8.3.192.1"),
    )
    baseline = scan_run_execute(as_of=AS_OF)
    upsert({"fqdn": "cu13.contoso.example", "build": "15.2.1258.32"})  # patched, but not on a recomputed level

    recompute = scan_request(trigger="catalog", levels=[["2019", "CU14"]], as_of=AS_OF)
    recompute = scan_run_execute(scan_id=recompute.pk, as_of=AS_OF)

    assert (recompute.status, recompute.server_count, recompute.carried_count) == ("succeeded", 3, 2)
    assert states(recompute) == states(baseline)  # cu13 keeps its carried result until the next full scan
    carried = ServerResult.objects.get(scan=recompute, server__fqdn="e07.contoso.example")
    assert carried.verdict.scan_id == recompute.pk  # verdicts are copied into the recompute, not shared
    assert (
        VerdictGap.objects.filter(verdict=carried.verdict).count()
        == VerdictGap.objects.filter(
            verdict=ServerResult.objects.get(scan=baseline, server__fqdn="e07.contoso.example").verdict
        ).count()
    )
    assert sum(ScanTally.objects.filter(scan=recompute).values_list("server_count", flat=True)) == 3


@pytest.mark.django_db
def test_retention_keeps_per_scan_counts_for_ever_and_per_server_rows_for_the_newest_scans(estate):
    scans = [scan_run_execute(as_of=AS_OF) for _ in range(3)]
    failed = scan_request(trigger="command")
    ScanRun.objects.filter(pk=failed.pk).update(status="failed")

    report = retention_apply(keep_scans=1)

    assert (report.scans_pruned, report.results_deleted) == (2, 16)
    assert set(ServerResult.objects.values_list("scan_id", flat=True)) == {scans[-1].pk}
    assert not VerdictGap.objects.filter(scan__in=scans[:2]).exists()
    for scan in scans:
        assert sum(ScanTally.objects.filter(scan=scan).values_list("server_count", flat=True)) == 8
        assert ScanRun.objects.get(pk=scan.pk).counts == scans[-1].counts
    assert retention_apply(keep_scans=1).results_deleted == 0  # a second run finds nothing more


@pytest.mark.django_db
def test_deleting_a_server_or_a_scan_still_deletes_its_results(estate):
    """ServerResult has no foreign-key constraints in the database (the scan writer keeps the ids): Django's collector
    still cascades."""
    scan = scan_run_execute(as_of=AS_OF)
    gone = Server.objects.get(fqdn="upd.contoso.example")
    assert ServerResult.objects.filter(server=gone).count() == 1

    gone.delete()

    assert not ServerResult.objects.filter(server_id=gone.pk).exists()
    assert ServerResult.objects.filter(scan=scan).count() == len(ESTATE) - 1
    ScanRun.objects.filter(pk=scan.pk).delete()
    assert not ServerResult.objects.filter(scan_id=scan.pk).exists()
    assert not ScanVerdict.objects.filter(scan_id=scan.pk).exists()


@pytest.mark.django_db
def test_a_server_deleted_while_its_chunk_was_written_leaves_no_result_once_the_scan_finishes(estate):
    scan = scan_request(trigger="command")
    scan_start(scan_id=scan.pk, as_of=AS_OF)
    assert scan_chunk_run(scan_id=scan.pk) == 1
    first = ServerResult.objects.filter(scan=scan).order_by("server_id").first()
    # The race the database's foreign-key check used to refuse: the server's row goes after its result was written
    # by a chunk that read it (done here in SQL, past the collector that would have deleted the result too).
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Server._meta.db_table} WHERE id = %s", [first.server_id])
    assert ServerResult.objects.filter(scan=scan, server_id=first.server_id).exists()

    assert scan_work(scan_id=scan.pk) == "finished"

    scan.refresh_from_db()
    assert not ServerResult.objects.filter(server_id=first.server_id).exists()
    assert scan.server_count == ServerResult.objects.filter(scan=scan).count() == len(ESTATE) - 1


@pytest.mark.django_db
def test_a_waiver_deleted_while_the_scan_runs_is_cleared_from_its_results_and_one_deleted_later_too(estate):
    sec = Server.objects.get(fqdn="sec.contoso.example")
    # Invented waiver.
    waiver = Waiver.objects.create(
        server=sec, target_kind="update", target_kb="KB5036386", reason="invented", approver="invented CAB",
        expires_at=datetime(2024, 7, 1, tzinfo=UTC),
    )  # fmt: skip
    scan = scan_request(trigger="command")
    scan_start(scan_id=scan.pk, as_of=AS_OF)
    while not ServerResult.objects.filter(scan=scan, server=sec).exists():
        assert scan_chunk_run(scan_id=scan.pk) is not None
    assert ServerResult.objects.get(scan=scan, server=sec).waiver_id == waiver.pk
    with connection.cursor() as cursor:  # past the collector, as a concurrent delete before the chunk's commit
        cursor.execute(f"DELETE FROM {Waiver._meta.db_table} WHERE id = %s", [waiver.pk])

    assert scan_work(scan_id=scan.pk) == "finished"

    assert ServerResult.objects.get(scan=scan, server=sec).waiver_id is None
    # A waiver deleted after the scan: Django's collector sets its results' waiver to null.
    later = Waiver.objects.create(
        server=sec, target_kind="update", target_kb="KB5036386", reason="invented", approver="invented CAB",
        expires_at=datetime(2024, 7, 1, tzinfo=UTC),
    )  # fmt: skip
    second = scan_run_execute(as_of=AS_OF)
    assert ServerResult.objects.get(scan=second, server=sec).waiver_id == later.pk
    later.delete()
    assert ServerResult.objects.get(scan=second, server=sec).waiver_id is None
