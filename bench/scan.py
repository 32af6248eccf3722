"""Scan benchmark: N servers (default 100,000) over 300 distinct builds; target < 10 s on PostgreSQL.

Waivers: the same scan again with --waivers per-server waivers (default 5,000, invented) for the KB the most servers
miss, against the scan without them (each a first scan of the estate): target under 20 % more.

--curve: a first scan of 100,000, 300,000 and 1,000,000 servers (--curve-sizes), each in a fresh process so that its
peak memory (ru_maxrss) is the scan's own; target for 1,000,000 on PostgreSQL: under 20 s and 1.5 GB.

Also times a naive per-server ORM loop (the Patchman shape: per server, look its build up, find the newest update of
its level, write a result) on the same data and prints the ratio. The naive loop runs over a sample (default 5,000
servers) and is scaled to N, unless --naive-all is given; the output says which.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exchangepatch .venv/bin/python bench/scan.py
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import django_setup, estate_create


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--builds", type=int, default=300)
    parser.add_argument("--naive-sample", type=int, default=5_000)
    parser.add_argument("--naive-all", action="store_true")
    parser.add_argument("--waivers", type=int, default=5_000, help="per-server waivers for the waiver run; 0: none")
    parser.add_argument("--curve", action="store_true", help="then scan 100k, 300k and 1M servers")
    parser.add_argument("--curve-sizes", default="100000,300000,1000000")
    parser.add_argument("--scan-once", action="store_true", help=argparse.SUPPRESS)  # internal: the curve's child
    options = parser.parse_args()
    if options.scan_once:
        return scan_once()
    django_setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inventory.models import ScanRun, Server
    from inventory.services import scan_run_execute
    from kb.services import catalog_load_snapshot

    catalog_load_snapshot()
    start = time.perf_counter()
    used = estate_create(options.servers, builds=options.builds)
    print(
        f"set-up: {options.servers:,} invented servers over {used} real builds in {time.perf_counter() - start:.1f} s"
    )
    print(f"database: {connection.vendor}")

    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        scan = scan_run_execute()
        elapsed = time.perf_counter() - start
    print(f"scan: {elapsed:.2f} s for {scan.server_count:,} servers, {scan.distinct_count} distinct facts computed, "
          f"{len(queries)} queries  (target < 10 s on PostgreSQL)")  # fmt: skip
    print(f"  counts: {scan.counts}")

    sample = (
        Server.objects.order_by("pk") if options.naive_all else Server.objects.order_by("?")[: options.naive_sample]
    )
    ids = list(sample.values_list("pk", flat=True))
    naive_scan = ScanRun.objects.create(status="running")
    start = time.perf_counter()
    for pk in ids:
        _naive_one(pk, naive_scan)
    naive = time.perf_counter() - start
    scaled = naive * options.servers / len(ids)
    how = (
        "measured on all servers"
        if options.naive_all
        else f"measured on {len(ids):,} servers, scaled to {options.servers:,}"
    )
    print(f"naive per-server ORM loop: {scaled:.1f} s ({how})")
    print(f"ratio naive / set-based: {scaled / elapsed:.0f}x")
    if options.waivers:
        waivers_compare(options.waivers)
    if options.curve:
        curve([int(size) for size in options.curve_sizes.split(",")])


def scans_clear() -> None:
    """Forget every scan and the change feed, so that the next scan is a first scan like the one it is compared to."""
    from django.db import connection

    from inventory.models import Change, ScanRun

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE inventory_scanrun, inventory_serverresult, inventory_change CASCADE")
    else:
        ScanRun.objects.all().delete()
        Change.objects.all().delete()


def waivers_compare(count: int) -> None:
    """A first scan without waivers, then with `count` per-server waivers for the KB the most servers miss."""
    from datetime import UTC, datetime

    from django.db.models import Count

    from inventory.models import ServerResult, VerdictGap, Waiver
    from inventory.selectors import scan_latest
    from inventory.services import scan_run_execute

    scan = scan_latest()
    kb = (
        VerdictGap.objects.filter(scan=scan, kind="update").values_list("kb", flat=True)
        .annotate(n=Count("pk")).order_by("-n")[0]
    )  # fmt: skip
    needing = list(
        ServerResult.objects.filter(
            scan=scan, verdict_id__in=VerdictGap.objects.filter(scan=scan, kind="update", kb=kb).values("verdict_id")
        ).values_list("server_id", flat=True)[:count]
    )
    timings = {}
    for label in ("without waivers", f"with {len(needing):,} waivers for {kb}"):
        if label.startswith("with "):
            Waiver.objects.bulk_create(
                Waiver(server_id=pk, target_kind="update", target_kb=kb, reason="invented (bench)",
                       approver="bench", expires_at=datetime(2099, 1, 1, tzinfo=UTC))
                for pk in needing
            )  # fmt: skip
        scans_clear()
        start = time.perf_counter()
        done = scan_run_execute()
        timings[label] = time.perf_counter() - start
        print(f"scan {label}: {timings[label]:.2f} s, {done.counts.get('excepted', 0):,} servers excepted")
    Waiver.objects.filter(reason="invented (bench)").delete()
    without, with_ = timings.values()
    print(f"ratio with / without waivers: {with_ / without:.2f}  (target < 1.20; before issue 13: 12x for 5,000)")


def curve(sizes: list[int]) -> None:
    """Grow the estate to each size and run a first scan of it in a fresh process: seconds and peak memory."""
    import json
    import os
    import subprocess

    from django.conf import settings

    from inventory.models import Server

    database = settings.DATABASES["default"]
    env = dict(os.environ)
    if database["ENGINE"].endswith("sqlite3"):
        env["EXCHANGEPATCH_SQLITE_PATH"] = str(database["NAME"])
    else:  # the bench's own test_ database, as it is
        env["DATABASE_URL"] = (f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
                               f"{database['PORT'] or 5432}/{database['NAME']}")  # fmt: skip
    if database["ENGINE"].endswith("postgresql"):
        from django.db import connection

        with connection.cursor() as cursor:  # as they are: the figures hold for these, not tuned ones
            names = ("shared_buffers", "work_mem", "max_wal_size", "checkpoint_timeout", "synchronous_commit")
            cursor.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) ORDER BY name", [list(names)]
            )
            print("PostgreSQL " + ", ".join(f"{name} {value}" for name, value in cursor.fetchall()))
    print(f"{'servers':>10} {'scan':>8} {'peak MB':>8}   (a first scan in its own process; target for 1,000,000 on "
          f"PostgreSQL: < 20 s, < 1,500 MB)")  # fmt: skip
    for size in sizes:
        have = Server.objects.count()
        if size > have:
            start = time.perf_counter()
            estate_grow(have, size - have)
            print(f"   (grown to {size:,} servers in {time.perf_counter() - start:.0f} s)", flush=True)
        scans_clear()
        settle()
        out = subprocess.run(
            [sys.executable, __file__, "--scan-once"], env=env, capture_output=True, text=True, check=True
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        print(f"{figures['servers']:>10,} {figures['seconds']:7.1f}s {figures['peak_mb']:8.0f}", flush=True)


def settle() -> None:
    """PostgreSQL: VACUUM ANALYZE the servers just bulk-loaded and CHECKPOINT, so that the scan is measured on an estate
    as autovacuum would have left it (statistics, visibility and hint bits set) and does not pay for the flush of the
    bulk load's WAL and pages (a million invented servers written seconds before)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE inventory_server")
        cursor.execute("CHECKPOINT")


def estate_grow(start: int, count: int, *, batch: int = 50_000) -> None:
    """`count` more invented servers like estate_create's (its organisation, sites and builds), a batch at a time so
    that the bench itself stays small."""
    from inventory.models import Organisation, Server, Site

    organisation = Organisation.objects.get(name="bench.example")
    sites = list(Site.objects.filter(organisation=organisation).order_by("pk"))
    template = list(
        Server.objects.filter(organisation=organisation).order_by("pk").values(
            "roles", "reported_build", "build_major", "build_minor", "build_number", "build_revision", "dotnet_version"
        )[:3000]
    )  # fmt: skip
    for first in range(start, start + count, batch):
        Server.objects.bulk_create(
            [Server(fqdn=f"ex{index:07d}.bench.example", name=f"EX{index:07d}", organisation=organisation,
                    site=sites[index % len(sites)], build_source="exsetup", **template[index % len(template)])
             for index in range(first, min(first + batch, start + count))],
            batch_size=5000,
        )  # fmt: skip


def scan_once() -> None:
    """The curve's child: one scan in this fresh process; prints its figures as JSON."""
    import json
    import os
    import resource

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchangepatch.settings")
    import django

    django.setup()
    from inventory.services import scan_run_execute

    start = time.perf_counter()
    scan = scan_run_execute()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"servers": scan.server_count, "seconds": seconds, "peak_mb": peak}))


def _naive_one(pk, scan) -> None:
    """What we do not do: per-server queries while computing, and a write per server."""
    from inventory.models import ScanVerdict, Server, ServerResult
    from kb.models import Update

    server = Server.objects.get(pk=pk)
    row = Update.objects.filter(
        build_major=server.build_major, build_minor=server.build_minor, build_number=server.build_number,
        build_revision=server.build_revision,
    ).select_related("level").first()  # fmt: skip
    if row is None:
        return
    latest = (
        Update.objects.filter(level=row.level, is_recalled=False).order_by("-build_number", "-build_revision").first()
    )
    state = "current" if latest.pk == row.pk else "update_available"
    verdict = ScanVerdict.objects.create(scan=scan, state=state, current={"build": server.reported_build})
    ServerResult.objects.create(scan=scan, server=server, verdict=verdict, state=state)


if __name__ == "__main__":
    main()
