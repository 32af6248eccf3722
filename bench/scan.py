"""Scan benchmark: N servers (default 100,000) over 300 distinct builds; target < 10 s on PostgreSQL.

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
    options = parser.parse_args()
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
