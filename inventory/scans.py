"""Scans in chunks: planned once, chunks claimed by any number of workers, finished once (design: docs/jobs.md).

A scan goes pending → running → succeeded or failed:
- `scan_start` takes the scope lock (a partial unique index: one running scan per scope), fixes the baseline the
  deltas compare with, computes one verdict per distinct set of facts and splits the servers into id ranges.
- `scan_chunk_run` claims one pending chunk with SELECT … FOR UPDATE SKIP LOCKED and writes its results, its
  change-feed rows and `done` in that one transaction: a worker that dies mid-chunk leaves the chunk pending (the
  database rolls the transaction back and releases the lock), and a chunk is never written twice.
- `scan_finish` runs once, when no chunk is left: aggregates, counts, carry-forward for a recompute.
- `scans_watch` (the watchdog, every minute) resumes a running scan whose heartbeat is older than the lease, and fails
  with the reason one that was resumed too often or never started, so nothing stays running or pending for ever.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time as clock
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from inventory.bulk import rows_insert
from inventory.changes import FEED_LOCK, changes_record_prepared
from inventory.choices import ChunkStatus, Delta, ScanStatus, ScanTrigger
from inventory.models import (
    Change,
    Organisation,
    ScanChunk,
    ScanRun,
    ScanTally,
    ScanVerdict,
    Server,
    ServerResult,
    VerdictGap,
    Waiver,
)
from inventory.selectors import WaiverIndex, facts_key, server_facts_by_raw, server_rows, waivers_active
from kb.engine.compliance import COMPLIANT_STATES, EXCEPTED, ServerFacts, Verdict, evaluate, has_fix
from kb.selectors import catalog_get, fix_carriers, rules_get, today

logger = logging.getLogger(__name__)
SCOPE_ESTATE = "estate"
ANY_LEVEL = "*"  # in `levels`: every level of the product (a new CU or SP moves the support window)


class ScanBusyError(Exception):
    """Another scan of the same scope is running."""

    def __init__(self, scan_id: int | None, scope: str):
        self.scan_id, self.scope = scan_id, scope
        super().__init__(f"scan {scan_id} of scope {scope!r} is running")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- request, start --------------------------------------------------------------------------------


def scan_active(*, scope: str = SCOPE_ESTATE) -> ScanRun | None:
    """The pending or running scan of the scope, if any."""
    return (
        ScanRun.objects.filter(scope=scope, status__in=(ScanStatus.PENDING, ScanStatus.RUNNING)).order_by("pk").first()
    )


def scan_request(
    *, trigger: str, levels: list | tuple = (), scope: str = SCOPE_ESTATE, as_of: date | None = None
) -> ScanRun:
    """A pending scan: the outbox row a task picks up. The caller dispatches it on commit."""
    return ScanRun.objects.create(scope=scope, trigger=trigger, levels=[list(pair) for pair in levels], as_of=as_of)


def scan_start(*, scan_id: int, as_of: date | None = None) -> ScanRun:
    """pending → running: take the scope lock, fix the baseline, compute the verdicts, plan the chunks.

    A scan that is not pending is returned as it is (a redelivered message). Raises ScanBusyError when another scan
    of the scope is running; the scan then stays pending.
    """
    with transaction.atomic():
        scan = ScanRun.objects.select_for_update().get(pk=scan_id)
        if scan.status != ScanStatus.PENDING:
            return scan
        now = timezone.now()
        scan.as_of = as_of or scan.as_of or today()
        try:
            with transaction.atomic():
                ScanRun.objects.filter(pk=scan.pk).update(
                    status=ScanStatus.RUNNING, started_at=now, heartbeat_at=now, as_of=scan.as_of,
                    attempts=F("attempts") + 1,
                )  # fmt: skip
        except IntegrityError:
            running = ScanRun.objects.filter(scope=scan.scope, status=ScanStatus.RUNNING).values_list("pk", flat=True)
            raise ScanBusyError(running.first(), scan.scope) from None
        scan.baseline_id = (
            ScanRun.objects.filter(scope=scan.scope, status=ScanStatus.SUCCEEDED, pk__lt=scan.pk)
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
        if scan.levels and (
            scan.baseline_id is None or ScanVerdict.objects.filter(scan_id=scan.baseline_id, facts_key="").exists()
        ):
            scan.levels = []  # nothing to carry forward from: evaluate every server
        _verdicts_plan(scan)
        chunks = _chunks_plan(scan)
        ScanRun.objects.filter(pk=scan.pk).update(
            baseline_id=scan.baseline_id, levels=scan.levels, chunk_count=len(chunks)
        )
    scan.refresh_from_db()
    return scan


def _verdicts_plan(scan: ScanRun) -> None:
    """One verdict per distinct set of facts, computed once for the whole scan; chunks only look them up. The raw
    keys read for it are kept for this process's chunks (`_context`), which would otherwise read them again."""
    by_raw = server_facts_by_raw()
    _planned.clear()
    _planned[scan.pk] = by_raw
    if by_raw:
        verdicts_ensure(scan, list(set(by_raw.values())), catalog_get(), rules_get(), is_fresh=True)


_planned: dict[int, dict] = {}  # scan id → raw key → facts, as its planning read them in this process


def verdicts_ensure(
    scan: ScanRun, facts: list[ServerFacts], catalog, rules, *, is_fresh: bool = False
) -> dict[str, int]:
    """Write the scan's verdicts (and what each misses) for these facts where missing; facts key → verdict id.

    `is_fresh` (planning: the scan has no verdict yet, and nobody else writes them) takes the bulk path (COPY);
    otherwise rows another chunk wrote meanwhile are skipped."""
    keys = {f: facts_key(f) for f in facts}
    found: dict[str, int] = {}
    if not is_fresh:
        existing = ScanVerdict.objects.filter(scan=scan, facts_key__in=keys.values())
        found = dict(existing.values_list("facts_key", "pk"))
    todo = sorted((f for f in facts if keys[f] not in found), key=keys.get)
    if not todo:
        return found
    cache: dict = {}
    computed = {keys[f]: (f, evaluate(f, catalog, rules, today=scan.as_of, cache=cache)) for f in todo}
    rows = [_verdict_values(scan.pk, key, verdict) for key, (_, verdict) in computed.items()]
    _insert(ScanVerdict, VERDICT_COLUMNS, rows, is_fresh=is_fresh)
    created = dict(ScanVerdict.objects.filter(scan=scan, facts_key__in=computed.keys()).values_list("facts_key", "pk"))
    carriers, by_build = fix_carriers(), {}
    gaps = []
    for key, (f, verdict) in computed.items():
        # What is missing depends on the build (and whether ESU updates are obtainable) alone: shared by every
        # verdict of the build.
        build = (f.build_text, f.build_source, f.esu_until)
        if build not in by_build:
            by_build[build] = _gaps(verdict, carriers, catalog)
        gaps += [(scan.pk, created[key], *gap) for gap in by_build[build]]
    _insert(VerdictGap, GAP_COLUMNS, gaps, is_fresh=is_fresh)
    return found | created


VERDICT_COLUMNS = (
    "scan_id", "facts_key", "state", "current", "install", "supersedes", "security_updates", "missing_updates",
    "missing_prerequisites", "days_behind", "reasons", "product", "level", "is_supported", "latest_security_update",
    "has_latest_security_update",
)  # fmt: skip
GAP_COLUMNS = ("scan_id", "verdict_id", "kind", "kb", "is_security", "is_install_target", "is_known")


def _insert(model, columns: tuple[str, ...], rows: list[tuple], *, is_fresh: bool) -> None:
    if is_fresh:
        rows_insert(model, columns, rows)
    else:
        model.objects.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in _decoded(model, columns, rows)],
            batch_size=2000, ignore_conflicts=True,
        )  # fmt: skip


def _decoded(model, columns: tuple[str, ...], rows: list[tuple]):
    """Rows as model values: JSON columns back from their text."""
    json_at = [i for i, name in enumerate(columns) if name in _JSON_COLUMNS.get(model, ())]
    for row in rows:
        values = list(row)
        for i in json_at:
            values[i] = json.loads(values[i]) if values[i] is not None else None
        yield tuple(values)


_JSON_COLUMNS = {
    ScanVerdict: ("current", "install", "supersedes", "security_updates", "missing_updates", "missing_prerequisites",
                  "reasons", "latest_security_update"),
}  # fmt: skip


def _gaps(verdict: Verdict, carriers: dict, catalog) -> list[tuple]:
    """What a verdict misses, as (kind, kb, is_security, is_install_target, is_known): every missing update, and every
    fix whose carrying updates it lacks (is_known false: its build cannot tell)."""
    security = {ref.kb or ref.name for ref in verdict.security_updates}
    install = (verdict.install.kb or verdict.install.name) if verdict.install else None
    updates = dict.fromkeys(key for key in (ref.kb or ref.name for ref in verdict.missing) if key)
    gaps = [("update", key, key in security, key == install, True) for key in updates]
    resolution = verdict.resolution
    product = resolution.product.key if resolution is not None and resolution.product is not None else None
    if product is None:
        return gaps
    for kb, entries in carriers.items():
        if not any(entry.product == product for entry in entries):
            continue  # not applicable to this product
        present = has_fix(resolution, entries, catalog)
        if present is not True:
            gaps.append(("fix", kb, False, False, present is not None))
    return gaps


def _verdict_values(scan_id: int, key: str, verdict: Verdict) -> tuple:
    level = verdict.resolution.level if verdict.resolution is not None else None
    install = verdict.install.as_dict() | {"title": verdict.install.title} if verdict.install else None
    return (
        scan_id,
        key,
        verdict.state,
        json.dumps(dict(verdict.current)),
        json.dumps(install) if install is not None else None,
        json.dumps([ref.kb or ref.name for ref in verdict.supersedes]),
        json.dumps([ref.kb or ref.name for ref in verdict.security_updates]),
        json.dumps([ref.kb or ref.name for ref in verdict.missing]),
        json.dumps(list(verdict.missing_prerequisites)),
        verdict.days_behind,
        json.dumps(list(verdict.reasons)),
        level.product if level else "",
        level.name if level else "",
        verdict.is_supported,
        json.dumps(verdict.latest_security_update.as_dict()) if verdict.latest_security_update else None,
        verdict.has_latest_security_update,
    )


def _chunks_plan(scan: ScanRun) -> list[ScanChunk]:
    """Id ranges of `EXCHANGEPATCH_SCAN_CHUNK_SIZE` servers each, numbered from 1, computed by the database: the ids
    themselves never come to Python (a million of them took half a second to iterate)."""
    size = max(1, settings.EXCHANGEPATCH_SCAN_CHUNK_SIZE)
    server = Server._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT n + 1, min(id), max(id) FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / %s AS n "
            f"FROM {server}) numbered GROUP BY n ORDER BY n",
            [size],
        )
        ranges = cursor.fetchall()
    chunks = [
        ScanChunk(scan=scan, number=number, first_server_id=first, last_server_id=last)
        for number, first, last in ranges
    ]
    ScanChunk.objects.bulk_create(chunks)
    return chunks


# -- chunks ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _VerdictInfo:
    id: int
    state: str
    kbs: tuple[str, ...]  # missing updates and the install target: what a waiver may name
    install: str | None
    is_affected: bool
    waivable: tuple[str, ...] = ()  # of `kbs`, those an active waiver names: most verdicts have none


@dataclass(slots=True)
class _Context:
    """What every chunk of one scan reads, loaded once per worker process per scan."""

    scan: ScanRun
    moment: datetime
    waivers: WaiverIndex
    verdicts: dict[str, _VerdictInfo]
    facts: dict  # raw server columns → shared ServerFacts
    keys: dict  # ServerFacts → facts key
    # id(ServerFacts) → its verdict: the facts are shared objects kept alive by `facts`, and an int hashes in a
    # fraction of the time a dataclass of tuples takes, once per server.
    by_facts: dict = field(default_factory=dict)
    # (verdict id, state, was) → the change-feed entry's JSON text, made once per scan instead of once per chunk.
    feed: dict = field(default_factory=dict)
    facts_marker: tuple = ()  # (database session, raw keys) that the facts table was written for

    def facts_table_ensure(self) -> None:
        """The temporary tables of this database session that `_chunk_write_sql` joins the servers to: every raw key
        this worker knows with its verdict (`_FACTS_TABLE`; the state and waiver are those of a server that no server-
        or site-scoped waiver names: a waiver for everyone may except it), the ids of the servers and sites that such
        waivers name, and the feed's stage. Written again only in a new session or once a chunk met new raw keys;
        outside the chunk's transaction where there is none, so that a chunk rolled back does not take them away."""
        connection.ensure_connection()
        marker = (connection.connection.info.backend_pid, len(self.facts))
        if self.facts_marker == marker:
            return
        rows = []
        for raw, facts in self.facts.items():
            verdict = self.verdicts.get(self.keys.get(facts))
            if verdict is None:
                continue  # not evaluated yet: its servers come back to the caller
            state, waiver = verdict.state, None
            if verdict.waivable and state not in COMPLIANT_STATES:
                waiver = self.waivers.everyone(verdict.waivable)
                state = EXCEPTED if waiver is not None else state
            rows.append((*raw, verdict.id, state, waiver.pk if waiver else None, verdict.is_affected, verdict.install))
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{_FACTS_TABLE}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_FACTS_TABLE} (build text, source text, roles text, dotnet text, prereq text, "
                "esu date, verdict_id bigint, state text, waiver_id bigint, affected boolean, install text)"
            )
            with cursor.cursor.copy(f"COPY {_FACTS_TABLE} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            for table, ids in ((_WAIVED_SERVERS, self.waivers.server_ids()), (_WAIVED_SITES, self.waivers.site_ids())):
                cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")
                cursor.execute(f"CREATE TEMPORARY TABLE {table} (id bigint PRIMARY KEY)")
                with cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    for pk in ids:
                        copy.write_row((pk,))
            cursor.execute(f"ANALYZE {_FACTS_TABLE}, {_WAIVED_SERVERS}, {_WAIVED_SITES}")
            cursor.execute(
                f"DROP TABLE IF EXISTS pg_temp.{_FEED_STAGE}; CREATE TEMPORARY TABLE {_FEED_STAGE} "
                "(scan_id bigint, object_id bigint, key varchar(255), data jsonb) ON COMMIT DELETE ROWS"
            )
        if connection.in_atomic_block:  # a rollback would take the tables away again
            transaction.on_commit(lambda: setattr(self, "facts_marker", marker))
        else:
            self.facts_marker = marker


_contexts: dict[tuple, _Context] = {}


def _context(scan: ScanRun) -> _Context:
    context = _contexts.get((scan.pk, scan.started_at))
    if context is None:
        _contexts.clear()  # one scan at a time per process is enough; do not keep old catalogs alive
        on = scan.as_of
        # Waivers as of the scan's date, so a scan for an earlier date sees the waivers valid then.
        moment = timezone.now() if on == today() else timezone.make_aware(datetime.combine(on, time(12)))
        waivers = WaiverIndex(waivers_active(target_kind="update", now=moment))
        by_raw = _planned.pop(scan.pk, None)
        if by_raw is None:
            by_raw = server_facts_by_raw()
        keys = {facts: facts_key(facts) for facts in set(by_raw.values())}
        context = _contexts[(scan.pk, scan.started_at)] = _Context(
            scan, moment, waivers, {}, by_raw, keys
        )  # fmt: skip
        _verdicts_load(context)
        unknown = [facts for facts, key in keys.items() if key not in context.verdicts]
        if unknown:  # servers synced since planning (another worker's) brought new facts
            verdicts_ensure(scan, unknown, catalog_get(), rules_get())
            _verdicts_load(context)
    return context


def _verdicts_load(context: _Context) -> None:
    levels = {tuple(pair) for pair in context.scan.levels}
    rows = ScanVerdict.objects.filter(scan=context.scan).values_list(
        "pk", "facts_key", "state", "missing_updates", "install", "product", "level"
    )
    for pk, key, state, missing, install, product, level in rows:
        target = install.get("kb") if install else None
        kbs = tuple(missing) + ((target,) if target else ())
        context.verdicts[key] = _VerdictInfo(
            pk, state, kbs, target, bool(levels) and ((product, level) in levels or (product, ANY_LEVEL) in levels),
            tuple(kb for kb in kbs if kb in context.waivers),
        )  # fmt: skip


def scan_chunk_run(*, scan_id: int, worker: str = "") -> int | None:
    """Claim one pending chunk and write its results in one transaction; the chunk's number, or None when no chunk
    is left to claim (all done, or the rest are being written by other workers)."""
    scan = ScanRun.objects.filter(pk=scan_id, status=ScanStatus.RUNNING).first()
    if scan is None:
        return None
    context = _context(scan)
    if connection.vendor == "postgresql" and SCAN_IN_SQL:
        context.facts_table_ensure()
    # Each statement outside the chunk's transaction is a commit of its own, a WAL flush: 200 chunks of a
    # 1,000,000-server scan made 400 of them. The heartbeat goes with the chunk (below); here only when the last one
    # is getting old, so that a slow chunk still shows a live worker to the watchdog.
    now = timezone.now()
    if scan.heartbeat_at is None or now - scan.heartbeat_at > timedelta(
        seconds=settings.EXCHANGEPATCH_SCAN_LEASE_SECONDS / 4
    ):
        ScanRun.objects.filter(pk=scan_id).update(heartbeat_at=now)
    with transaction.atomic():
        chunk = (
            ScanChunk.objects.select_for_update(skip_locked=True)
            .filter(scan_id=scan_id, status=ChunkStatus.PENDING)
            .order_by("number")
            .first()
        )
        if chunk is None:
            return None
        if settings.EXCHANGEPATCH_SCAN_CHUNK_PAUSE:
            clock.sleep(settings.EXCHANGEPATCH_SCAN_CHUNK_PAUSE)
        count = _chunk_write(context, chunk)
        ScanChunk.objects.filter(pk=chunk.pk).update(
            status=ChunkStatus.DONE, server_count=count, worker=worker or worker_name(), finished_at=timezone.now()
        )
        # In the chunk's transaction, after the feed lock that _chunk_write took (every worker locks in that order):
        # counted after the commit, a worker finishing the scan in between would see every chunk done, then one more.
        ScanRun.objects.filter(pk=scan_id).update(heartbeat_at=timezone.now(), chunks_done=F("chunks_done") + 1)
    return chunk.number


def _chunk_write(context: _Context, chunk: ScanChunk) -> int:
    """Write one chunk's results and change-feed rows; the number of results.

    On PostgreSQL the servers are joined to the scan's verdicts in the database (`_chunk_write_sql`): no server row
    passes through Python. What that statement cannot decide — servers that a server- or site-scoped waiver names,
    and servers whose facts appeared after this worker loaded the scan — goes through the same evaluation in Python
    (`_rows_evaluate`), which is also the whole path on SQLite."""
    first, last = chunk.first_server_id, chunk.last_server_id
    in_sql = connection.vendor == "postgresql" and SCAN_IN_SQL
    written, rest = _chunk_write_sql(context, first, last) if in_sql else (0, None)
    results, changed = [], []
    if rest is None or rest:  # every server (SQLite), or those the statement left out
        servers = Server.objects.filter(pk__gte=first, pk__lte=last)
        results, changed = _rows_evaluate(context, servers if rest is None else servers.filter(pk__any=rest))
        rows_insert(ServerResult, RESULT_COLUMNS, results)
    if in_sql:
        _feed_stage_copy(context.scan.pk, first, last)
    changes_record_prepared(changed)  # last: it holds the feed lock until this transaction commits
    return written + len(results)


def _feed_stage_copy(scan_id: int, first: int, last: int) -> None:
    """The chunk's staged change-feed rows into the feed, under the feed lock (seq values are drawn while it is held,
    until the commit). The stage is emptied at commit (ON COMMIT DELETE ROWS: a truncation; rows deleted one by one
    stay in a temporary table, which is never vacuumed, and slowed every later chunk: 6.7 s at 1,000,000 servers, and
    0.6 s even with the truncation). Within one longer transaction (a test's) it still holds earlier chunks' and
    earlier scans' rows: the scan and the chunk's id range pick this chunk's."""
    feed = connection.ops.quote_name(Change._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FEED_LOCK])
        cursor.execute(
            f"INSERT INTO {feed} (kind, object_id, key, action, data, created) "
            f"SELECT 'verdict', object_id, key, 'updated', data, %s FROM {_FEED_STAGE} "
            "WHERE scan_id = %s AND object_id BETWEEN %s AND %s ORDER BY object_id",
            [timezone.now(), scan_id, first, last],
        )


# The PostgreSQL path (`_chunk_write_sql`); off, every chunk takes the path SQLite takes (tests compare the two).
SCAN_IN_SQL = True
_FEED_STAGE = "_scan_feed_stage"
_FACTS_TABLE = "_scan_facts"
# The ids of the servers and sites that server- and site-scoped waivers name (a few thousand at most): a join, where
# an array parameter compared with `= ANY` costs every server a pass over the array.
_WAIVED_SERVERS, _WAIVED_SITES = "_scan_waived_servers", "_scan_waived_sites"


def _chunk_write_sql(context: _Context, first: int, last: int) -> tuple[int, list[int]]:
    """Results and staged feed rows of the chunk's servers in one statement: each server joined by its raw facts
    columns to the verdict those facts have (the session's facts table, a few thousand rows), to its baseline result
    for the delta, skipped when a recompute carries it forward. The servers a server- or site-scoped waiver names are
    left out, and so are servers whose raw facts this worker does not know: their ids come back, read in the same
    snapshot, for the caller to evaluate. The feed rows go to a temporary table, so that the feed lock is taken only
    for their copy into the feed, not for the whole statement. Returns (results written, ids left out)."""
    server, organisation = Server._meta.db_table, Organisation._meta.db_table
    result = ServerResult._meta.db_table
    scan = context.scan
    params = {
        "scan": scan.pk, "baseline": scan.baseline_id or 0, "has_baseline": bool(scan.baseline_id),
        "recompute": bool(scan.levels), "first": first, "last": last,
        "compliant": sorted(COMPLIANT_STATES), "excepted": EXCEPTED, "none": Delta.NONE.value,
        "nc": Delta.NEWLY_NONCOMPLIANT.value, "c": Delta.NEWLY_COMPLIANT.value, "e": Delta.NEWLY_EXCEPTED.value,
    }  # fmt: skip
    with connection.cursor() as cursor:
        # Servers to facts on six columns: PostgreSQL's estimate prefers sorting both sides and merging, which takes
        # twice the time of hashing the few thousand facts (measured per chunk of 5,000: 15 ms against 5 ms).
        cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(
            f"""
            WITH chunk AS MATERIALIZED (
                SELECT s.id, s.fqdn, f.verdict_id, f.state, f.waiver_id, f.affected, f.install, b.state AS was,
                       ws.id IS NOT NULL OR wt.id IS NOT NULL AS is_waived
                FROM {server} s
                JOIN {organisation} o ON o.id = s.organisation_id
                LEFT JOIN {_FACTS_TABLE} f
                  ON f.build = s.reported_build AND f.source = s.build_source AND f.roles = s.roles
                 AND f.dotnet = s.dotnet_version AND f.prereq = s.prerequisites::text
                 AND coalesce(f.esu, '-infinity'::date) = coalesce(o.esu_enrolled_until, '-infinity'::date)
                LEFT JOIN {result} b ON b.scan_id = %(baseline)s AND b.server_id = s.id
                LEFT JOIN {_WAIVED_SERVERS} ws ON ws.id = s.id
                LEFT JOIN {_WAIVED_SITES} wt ON wt.id = s.site_id
                WHERE s.id BETWEEN %(first)s AND %(last)s
            ),
            kept AS MATERIALIZED (
                SELECT id, fqdn, verdict_id, state, waiver_id, install, was,
                       CASE WHEN NOT %(has_baseline)s OR state = was THEN %(none)s
                            WHEN state = %(excepted)s THEN %(e)s
                            WHEN state = ANY(%(compliant)s::text[]) THEN
                                 CASE WHEN was IS NULL THEN %(none)s ELSE %(c)s END
                            WHEN was IS NULL OR was = ANY(%(compliant)s::text[]) THEN %(nc)s
                            ELSE %(none)s END AS delta
                FROM chunk
                WHERE verdict_id IS NOT NULL AND NOT is_waived AND NOT (%(recompute)s AND was IS NOT NULL AND NOT affected)
            ),
            written AS (
                INSERT INTO {result} (scan_id, server_id, verdict_id, state, waiver_id, is_newly_noncompliant, delta)
                SELECT %(scan)s, id, verdict_id, state, waiver_id, delta = %(nc)s, delta FROM kept
            ),
            staged AS (
                INSERT INTO {_FEED_STAGE} (scan_id, object_id, key, data)
                SELECT %(scan)s, id, fqdn, jsonb_build_object(
                    'state', state, 'was', was, 'scan', %(scan)s::bigint, 'install', install
                ) FROM kept WHERE state IS DISTINCT FROM was
            )
            SELECT (SELECT count(*) FROM kept),
                   (SELECT coalesce(array_agg(id), '{{}}') FROM chunk WHERE verdict_id IS NULL OR is_waived)
            """,
            params,
        )
        written, rest = cursor.fetchone()
    return written, list(rest)


def _rows_evaluate(context: _Context, servers: QuerySet[Server]) -> tuple[list, list]:
    """The results and change-feed rows of these servers (of one chunk), evaluated in Python."""
    scan = context.scan
    rows = server_rows(servers, shared=context.facts)
    if not rows:
        return [], []
    previous = {}
    if scan.baseline_id:
        ids = [row.id for row in rows]
        baseline = ServerResult.objects.filter(scan_id=scan.baseline_id, server_id__any=ids)
        previous = dict(baseline.values_list("server_id", "state"))
    by_facts = context.by_facts
    new = {id(row.facts): row.facts for row in rows if id(row.facts) not in by_facts}
    if new:
        for facts in new.values():
            if facts not in context.keys:
                context.keys[facts] = facts_key(facts)
        unknown = [facts for facts in new.values() if context.keys[facts] not in context.verdicts]
        if unknown:  # a server synced after planning brought new facts
            verdicts_ensure(scan, unknown, catalog_get(), rules_get())
            _verdicts_load(context)
        for ident, facts in new.items():
            by_facts[ident] = context.verdicts[context.keys[facts]]
    recompute = bool(scan.levels)
    results, changed, feed_data, now = [], [], context.feed, timezone.now()
    for row in rows:
        verdict = by_facts[id(row.facts)]
        was = previous.get(row.id)
        if recompute and was is not None and not verdict.is_affected:
            continue  # carried forward from the baseline by scan_finish
        state, waiver = verdict.state, None
        if verdict.waivable and state not in COMPLIANT_STATES:
            waiver = context.waivers.covering(server_id=row.id, site_id=row.site_id, kbs=verdict.waivable)
            if waiver is not None:
                state = EXCEPTED
        delta = _delta(state, was, has_baseline=scan.baseline_id is not None)
        results.append(
            (scan.pk, row.id, verdict.id, state, waiver.pk if waiver else None,
             delta == Delta.NEWLY_NONCOMPLIANT, delta)
        )  # fmt: skip
        if state != was:
            # The change's data as JSON text, made once per (verdict, state, was): not once per server.
            data = feed_data.get((verdict.id, state, was))
            if data is None:
                data = feed_data[(verdict.id, state, was)] = json.dumps(
                    {"state": state, "was": was, "scan": scan.pk, "install": verdict.install}
                )
            changed.append(("verdict", row.id, row.fqdn, "updated", data, now))
    return results, changed


RESULT_COLUMNS = ("scan_id", "server_id", "verdict_id", "state", "waiver_id", "is_newly_noncompliant", "delta")


def _delta(state: str, was: str | None, *, has_baseline: bool) -> str:
    """How the state moved since the baseline. A server new since the baseline counts as newly non-compliant when it
    is not compliant; nothing is new in the very first scan. Moving between two non-compliant states is no delta."""
    if not has_baseline or state == was:
        return Delta.NONE
    if state == EXCEPTED:
        return Delta.NEWLY_EXCEPTED
    if state in COMPLIANT_STATES:
        return Delta.NEWLY_COMPLIANT if was is not None else Delta.NONE
    return Delta.NEWLY_NONCOMPLIANT if was is None or was in COMPLIANT_STATES else Delta.NONE


# -- finish, fail ----------------------------------------------------------------------------------


def scan_finish(*, scan_id: int) -> bool:
    """running → succeeded once no chunk is pending: carry forward (recompute), aggregate, count. True when this
    call finished it; whoever comes second (another worker, the watchdog) finds it finished and does nothing."""
    with transaction.atomic():
        scan = ScanRun.objects.select_for_update().filter(pk=scan_id, status=ScanStatus.RUNNING).first()
        if scan is None or ScanChunk.objects.filter(scan=scan, status=ChunkStatus.PENDING).exists():
            return False
        carried = _carry_forward(scan) if scan.levels and scan.baseline_id else 0
        statistics_refresh(ServerResult)  # the sweep joins every result of the scan: a plan for its real size
        _orphans_delete(scan)
        tallies_write(scan)
        counts, deltas, servers = Counter(), Counter(), 0
        for state, delta, count in ScanTally.objects.filter(scan=scan).values_list("state", "delta", "server_count"):
            counts[state] += count
            deltas[delta] += count
            servers += count
        ScanRun.objects.filter(pk=scan.pk).update(
            status=ScanStatus.SUCCEEDED, finished_at=timezone.now(), heartbeat_at=timezone.now(),
            server_count=servers, counts=dict(sorted(counts.items())), carried_count=carried,
            distinct_count=ScanTally.objects.filter(scan=scan).values("verdict_id").distinct().count(),
            chunks_done=ScanChunk.objects.filter(scan=scan).count(),
            newly_noncompliant=deltas[Delta.NEWLY_NONCOMPLIANT], newly_compliant=deltas[Delta.NEWLY_COMPLIANT],
            newly_excepted=deltas[Delta.NEWLY_EXCEPTED],
        )  # fmt: skip
    _contexts.clear()
    statistics_refresh(VerdictGap, ScanTally, ScanVerdict, Server)  # the results were analyzed before the sweep
    return True


def statistics_refresh(*models) -> None:
    """ANALYZE the tables a scan fills, and the servers it read (or the tables given), once it is written
    (PostgreSQL). Autovacuum would, later: until then the planner believes the new scan has no rows, and "who needs
    KB X" takes a nested loop over every result (seconds at 100,000 servers) instead of walking the servers by FQDN
    (milliseconds); and servers imported just before the scan are missing from the server table's statistics, so a
    page of "who lacks fix X" from the middle of the FQDNs hashed every result (74 ms) instead of walking the FQDN
    index (2 ms). A sample of 30,000 rows a table."""
    if connection.vendor != "postgresql":
        return
    models = models or (ServerResult, VerdictGap, ScanTally, ScanVerdict, Server)
    tables = ", ".join(model._meta.db_table for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def _orphans_delete(scan: ScanRun) -> None:
    """Remove the results of servers deleted while their chunk was being written, and clear the waivers deleted
    meanwhile. ServerResult has no foreign-key constraints in the database (see the model): a server or waiver deleted
    between a chunk's read and its commit would otherwise leave a dangling id, which the database's check used to
    refuse. One anti-join over the scan's rows; the waiver's over the few rows that have one (a partial index)."""
    result, server, waiver = ServerResult._meta.db_table, Server._meta.db_table, Waiver._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {result} WHERE scan_id = %s AND NOT EXISTS "
            f"(SELECT 1 FROM {server} s WHERE s.id = {result}.server_id)",
            [scan.pk],
        )
        cursor.execute(
            f"UPDATE {result} SET waiver_id = NULL WHERE scan_id = %s AND waiver_id IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {waiver} w WHERE w.id = {result}.waiver_id)",
            [scan.pk],
        )


def tallies_write(scan: ScanRun) -> None:
    ScanTally.objects.filter(scan=scan).delete()
    rows = (
        ServerResult.objects.filter(scan=scan)
        .values_list("verdict_id", "state", "delta")
        .annotate(n=Count("pk"))
        .order_by()
    )
    ScanTally.objects.bulk_create(
        [ScanTally(scan=scan, verdict_id=v, state=s, delta=d, server_count=n) for v, s, d, n in rows], batch_size=2000
    )


def _carry_forward(scan: ScanRun) -> int:
    """A recompute evaluated only the servers on the levels a catalog change touches; the others keep the baseline's
    result, copied in SQL with their verdicts and gaps (matched by facts key) into this scan."""
    table = {m: m._meta.db_table for m in (ScanVerdict, ServerResult, VerdictGap)}
    verdict, result, gap = table[ScanVerdict], table[ServerResult], table[VerdictGap]
    params = {"new": scan.pk, "base": scan.baseline_id}
    carried = f"""
        SELECT r.verdict_id FROM {result} r
        WHERE r.scan_id = %(base)s
          AND NOT EXISTS (SELECT 1 FROM {result} n WHERE n.scan_id = %(new)s AND n.server_id = r.server_id)"""
    columns = (
        "state, {p}current, {p}install, {p}supersedes, {p}security_updates, {p}missing_updates, "
        "{p}missing_prerequisites, {p}days_behind, {p}reasons, {p}facts_key, {p}product, {p}level"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {verdict} (scan_id, {columns.format(p="")})
                SELECT %(new)s, v.{columns.format(p="v.")} FROM {verdict} v
                WHERE v.scan_id = %(base)s AND v.id IN ({carried})
                ON CONFLICT DO NOTHING""",
            params,
        )
        cursor.execute(
            f"""INSERT INTO {gap} (scan_id, verdict_id, kind, kb, is_security, is_install_target, is_known)
                SELECT %(new)s, nv.id, g.kind, g.kb, g.is_security, g.is_install_target, g.is_known
                FROM {gap} g
                JOIN {verdict} ov ON ov.id = g.verdict_id
                JOIN {verdict} nv ON nv.scan_id = %(new)s AND nv.facts_key = ov.facts_key
                WHERE g.scan_id = %(base)s AND ov.id IN ({carried})
                ON CONFLICT DO NOTHING""",
            params,
        )
        cursor.execute(
            f"""INSERT INTO {result} (scan_id, server_id, verdict_id, state, waiver_id, is_newly_noncompliant, delta)
                SELECT %(new)s, r.server_id, nv.id, r.state, r.waiver_id, %(false)s, ''
                FROM {result} r
                JOIN {verdict} ov ON ov.id = r.verdict_id
                JOIN {verdict} nv ON nv.scan_id = %(new)s AND nv.facts_key = ov.facts_key
                WHERE r.scan_id = %(base)s
                  AND NOT EXISTS (SELECT 1 FROM {result} n WHERE n.scan_id = %(new)s AND n.server_id = r.server_id)""",
            params | {"false": False},
        )
        return cursor.rowcount


def scan_fail(*, scan_id: int, reason: str) -> bool:
    """Mark a pending or running scan failed with the reason (the scope lock is released); True if it was."""
    return bool(
        ScanRun.objects.filter(pk=scan_id, status__in=(ScanStatus.PENDING, ScanStatus.RUNNING)).update(
            status=ScanStatus.FAILED, finished_at=timezone.now(), error=reason[:2000]
        )
    )


# -- in-process run, watchdog ----------------------------------------------------------------------


def scan_work(*, scan_id: int, budget: float | None = None, worker: str = "") -> str:
    """Claim and write chunks until none is left (then finish the scan) or the time budget is spent.

    Returns "finished", "idle" (nothing left to claim: other workers hold the rest) or "continue" (budget spent).
    A failure marks the scan failed with the error and re-raises.
    """
    started = clock.monotonic()
    try:
        while scan_chunk_run(scan_id=scan_id, worker=worker) is not None:
            if budget is not None and clock.monotonic() - started > budget:
                return "continue"
    except Exception as error:
        logger.exception("scan %s failed", scan_id)
        scan_fail(scan_id=scan_id, reason=f"{type(error).__name__}: {error}")
        raise
    return "finished" if scan_finish(scan_id=scan_id) else "idle"


def scan_run_execute(
    *, scan_id: int | None = None, as_of: date | None = None, trigger: str = ScanTrigger.COMMAND
) -> ScanRun:
    """Run a scan to the end in this process: start, every chunk, finish. Raises ScanBusyError when another scan of
    the scope is running. A failure marks the scan failed with the error and keeps earlier scans."""
    scan = ScanRun.objects.get(pk=scan_id) if scan_id else scan_request(trigger=trigger, as_of=as_of)
    try:
        scan = scan_start(scan_id=scan.pk, as_of=as_of)
    except ScanBusyError:
        if scan_id is None:
            ScanRun.objects.filter(pk=scan.pk).delete()  # requested here and never started: leave no trace
        raise
    except Exception as error:
        scan_fail(scan_id=scan.pk, reason=f"{type(error).__name__}: {error}")
        raise
    if scan.status == ScanStatus.RUNNING:
        scan_work(scan_id=scan.pk)
    scan.refresh_from_db()
    return scan


@dataclass(frozen=True, slots=True)
class WatchAction:
    scan_id: int
    action: str  # "resumed", "finished", "failed", "redispatched", "rerun"
    reason: str = ""


def scans_watch(*, resume_all: bool = False) -> list[WatchAction]:
    """Find scans nobody is working on. Running past its lease: finish it if no chunk is pending, resume it
    (the caller dispatches workers again) or, after too many attempts, fail it with the reason and ask for a re-run.
    Pending too long: dispatch again, or fail with the reason. `resume_all` (a worker just started): resume every
    running scan that has a chunk left, whatever its heartbeat."""
    now = timezone.now()
    lease = timedelta(seconds=settings.EXCHANGEPATCH_SCAN_LEASE_SECONDS)
    limit = settings.EXCHANGEPATCH_SCAN_MAX_ATTEMPTS
    actions = []
    running = ScanRun.objects.filter(status=ScanStatus.RUNNING)
    if not resume_all:
        running = running.filter(Q(heartbeat_at__lt=now - lease) | Q(heartbeat_at__isnull=True))
    for scan in running.order_by("pk"):
        left = ScanChunk.objects.filter(scan=scan, status=ChunkStatus.PENDING).count()
        if left == 0:
            if scan_finish(scan_id=scan.pk):
                actions.append(WatchAction(scan.pk, "finished"))
            continue
        quiet = (now - (scan.heartbeat_at or scan.created)).total_seconds()
        if scan.attempts >= limit:
            reason = (
                f"lease expired: no worker finished a chunk for {quiet:.0f} s; {left} of {scan.chunk_count} chunks "
                f"left after {scan.attempts} attempts"
            )
            if scan_fail(scan_id=scan.pk, reason=reason):
                actions.append(WatchAction(scan.pk, "failed", reason))
                if scan.trigger != ScanTrigger.WATCHDOG:
                    rerun = scan_request(trigger=ScanTrigger.WATCHDOG, levels=scan.levels, scope=scan.scope)
                    actions.append(WatchAction(rerun.pk, "rerun", f"re-run of scan {scan.pk}"))
            continue
        ScanRun.objects.filter(pk=scan.pk).update(attempts=F("attempts") + 1, heartbeat_at=now)
        actions.append(WatchAction(scan.pk, "resumed", f"{left} chunks left, quiet for {quiet:.0f} s"))
    stale = now - timedelta(seconds=settings.EXCHANGEPATCH_SCAN_PENDING_TIMEOUT)
    busy = set(ScanRun.objects.filter(status=ScanStatus.RUNNING).values_list("scope", flat=True))
    # A pending scan's heartbeat is when it was last dispatched.
    quiet = Q(heartbeat_at__lt=now - lease) | Q(heartbeat_at__isnull=True, created__lt=now - lease)
    for scan in ScanRun.objects.filter(quiet, status=ScanStatus.PENDING).order_by("pk"):
        if scan.created < stale or scan.attempts >= limit:
            reason = f"never started: no worker took it within {(now - scan.created).total_seconds():.0f} s"
            if scan_fail(scan_id=scan.pk, reason=reason):
                actions.append(WatchAction(scan.pk, "failed", reason))
        elif scan.scope not in busy:  # behind a running scan of its scope it is waiting, not lost
            ScanRun.objects.filter(pk=scan.pk).update(attempts=F("attempts") + 1, heartbeat_at=now)
            actions.append(WatchAction(scan.pk, "redispatched"))
    return actions
