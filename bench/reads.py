"""Reads benchmark: who needs an update, who lacks a fix, and the compliance summary at N servers (default 100,000);
targets on PostgreSQL: needed-by and fixes/{kb}/missing under 200 ms with memory that does not grow with the estate,
a deep cursor page costing what the first does, and the summary at 200 requests/s or more at concurrency 8.

Baselines, measured in the same run on the same data: the Python walks the endpoints used before (every result of
every verdict loaded and filtered by KB; every server's build resolved), and the summary grouped from the per-server
results. With --load, the summary is load-tested over HTTP with ApacheBench (ab, apache2-utils) against gunicorn with
two workers, once as it is and once as it was (bench/_baseline_wsgi.py puts the per-server grouping back).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exchangepatch .venv/bin/python bench/reads.py --load
"""

import argparse
import base64
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import ROOT, django_setup, estate_create


def timed(call, repeat: int) -> tuple[float, object]:
    """Median seconds of `repeat` calls (after one warm-up call), and the last result."""
    result = call()
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), result


def peak(call) -> float:
    """Peak Python memory allocated during one call, in MB (tracemalloc)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def queries(call) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


def cursor_at(position: str) -> str:
    """The cursor of the page that starts after this position (an FQDN, an id), as DRF's CursorPagination writes it
    in a next link."""
    return base64.b64encode(urlencode({"p": position}).encode("ascii")).decode("ascii")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--load", action="store_true", help="load-test the summary with ab against gunicorn")
    parser.add_argument("--requests", type=int, default=3000, help="ab requests per run")
    options = parser.parse_args()
    django_setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from rest_framework.test import APIClient

    from inventory.models import Server, VerdictGap
    from inventory.needs import fix_need, update_need
    from inventory.selectors import compliance_summary, fix_status, scan_latest, updates_needed
    from inventory.services import scan_run_execute
    from kb.services import catalog_load_snapshot
    from tests.api.conftest import token_for

    catalog_load_snapshot()
    start = time.perf_counter()
    builds = estate_create(options.servers)
    scan = scan_run_execute()
    print(f"set-up: {options.servers:,} invented servers over {builds} real builds, scanned ({scan.distinct_count:,} "
          f"verdicts), in {time.perf_counter() - start:.1f} s; database: {connection.vendor}")  # fmt: skip
    scan = scan_latest()
    # The update the most servers miss, and the fix the most servers lack: the largest answers.
    widest = VerdictGap.objects.filter(scan=scan).values_list("kb", flat=True).annotate(n=Count("pk")).order_by("-n")
    update_kb = widest.filter(kind="update", kb__startswith="KB")[0]
    fix_kb = widest.filter(kind="fix", is_known=True)[0]
    need = update_need(scan, kb=update_kb)
    fix = fix_need(fix_kb, scan=scan)
    print(f"asked: update {update_kb} (missed by {need.server_count:,} servers), fix {fix_kb} ({fix.lacking_count:,} "
          f"lacking, {fix.unknown_count:,} cannot be told)")  # fmt: skip

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for('bench')}")
    middle_update = need.servers.values_list("fqdn", flat=True)[need.server_count // 2]
    middle_fix = fix.results.values_list("fqdn", flat=True)[(fix.lacking_count + fix.unknown_count) // 2]
    needed_by = f"/api/v1/updates/{update_kb}/needed-by/"
    missing = f"/api/v1/fixes/{fix_kb}/missing/"

    def get(path, **params):
        response = api.get(path, params)
        assert response.status_code == 200, (path, response.status_code, response.content[:200])
        return response

    middle_server = Server.objects.order_by("pk").values_list("pk", flat=True)[options.servers // 2]
    rows = [
        ("servers, first page", lambda: get("/api/v1/servers/")),
        ("servers, page from the middle", lambda: get("/api/v1/servers/", cursor=cursor_at(str(middle_server)))),
        ("needed-by, first page", lambda: get(needed_by)),
        ("needed-by, page from the middle", lambda: get(needed_by, cursor=cursor_at(middle_update))),
        ("needed-by, old walk: updates_needed()", lambda: updates_needed(scan, kb=update_kb)),
        ("fixes/missing, first page", lambda: get(missing)),
        ("fixes/missing, page from the middle", lambda: get(missing, cursor=cursor_at(middle_fix))),
        ("fixes/missing, old walk: fix_status()", lambda: fix_status(fix_kb, as_of=scan.as_of)),
    ]
    print(f"{'read':42} {'median':>9} {'peak MB':>8} {'queries':>8}   (target < 200 ms on PostgreSQL)")
    figures = {}
    for label, call in rows:
        seconds, _ = timed(call, options.repeat if "old" not in label else max(1, options.repeat // 2))
        figures[label] = seconds
        print(f"{label:42} {seconds * 1000:7.0f}ms {peak(call):8.1f} {queries(call):8d}")
    for what in ("needed-by", "fixes/missing"):
        old = figures[next(label for label in figures if label.startswith(what) and "old" in label)]
        new = figures[f"{what}, first page"]
        print(f"ratio old walk / SQL first page ({what}): {old / new:.0f}x")
    for what in ("servers", "needed-by", "fixes/missing"):
        deep = figures[f"{what}, page from the middle"] / figures[f"{what}, first page"]
        print(f"deep page / first page ({what}): {deep:.2f}")

    portal = Client()
    portal.force_login(get_user_model().objects.create_superuser("bench-portal"))
    seconds, _ = timed(lambda: portal.get("/who-lacks/", {"kb": fix_kb}), options.repeat)
    print(f"{'portal /who-lacks/ (the fix), first pages':42} {seconds * 1000:7.0f}ms")

    # The summary in-process: from the tallies (cache emptied each time), cached, and the old per-server grouping.
    def fresh():
        cache.clear()
        return compliance_summary(scan_latest())

    def grouped():
        cache.clear()
        latest = scan_latest()
        latest.status = "running"  # servers_per_verdict then groups the per-server results, as it used to
        return compliance_summary(latest)

    assert fresh()["by_state"] == grouped()["by_state"]
    summary_rows = [
        ("summary from ScanTally (uncached)", fresh),
        ("summary cached for the scan", lambda: compliance_summary(scan_latest())),
        ("summary grouped from results (old)", grouped),
    ]
    for label, call in summary_rows:
        seconds, _ = timed(call, options.repeat)
        figures[label] = seconds
        print(f"{label:42} {seconds * 1000:7.1f}ms")
    if options.load:
        load_test(options.requests)


def load_test(requests: int) -> None:
    """ab -c 8 against gunicorn (2 sync workers) serving this database: the summary as it is, then as it was."""
    from django.conf import settings

    if shutil.which("ab") is None:
        print("load test skipped: ab (ApacheBench, apt install apache2-utils) is not installed")
        return
    from tests.api.conftest import token_for

    token = token_for("bench-load")
    database = settings.DATABASES["default"]
    env = os.environ | {
        "EXCHANGEPATCH_THROTTLE_USER": "100000000/minute",
        "DATABASE_CONN_MAX_AGE": "60",  # persistent connections, as a production deployment keeps them
        "DJANGO_SETTINGS_MODULE": "exchangepatch.settings",
        "PYTHONPATH": str(ROOT),
    }
    if database["ENGINE"].endswith("sqlite3"):
        env["EXCHANGEPATCH_SQLITE_PATH"] = str(database["NAME"])
    else:  # the bench's own test_ database
        env["DATABASE_URL"] = (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/"
            f"{database['NAME']}"
        )
    print("load test: ab -c 8 -k, GET /api/v1/compliance/summary/ with a token, gunicorn --workers 2 (sync)")
    for label, app in (("now", "exchangepatch.wsgi"), ("baseline (grouped per request)", "bench._baseline_wsgi")):
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", app, "--workers", "2", "--bind", f"127.0.0.1:{port}",
             "--log-level", "warning"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/api/v1/compliance/summary/"
            _wait_for(url, token)
            count = requests if label == "now" else max(200, requests // 10)
            subprocess.run(
                ["ab", "-q", "-k", "-c", "8", "-n", "200", "-H", f"Authorization: Token {token}", url],
                capture_output=True,
                check=True,
            )  # fmt: skip  (warm-up: both workers)
            out = subprocess.run(
                ["ab", "-k", "-c", "8", "-n", str(count), "-H", f"Authorization: Token {token}", url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            print(f"-- {label}: ab figures")
            for line in out.splitlines():
                if line.startswith(("Complete requests", "Failed requests", "Non-2xx", "Requests per second",
                                    "Time per request", "Time taken")) or line.strip().startswith(("50%", "99%")):  # fmt: skip
                    print(f"   {line}")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, token: str) -> None:
    import urllib.request

    for _ in range(100):
        try:
            request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {url}")


if __name__ == "__main__":
    main()
