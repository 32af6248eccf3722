"""Jobs benchmark: a 100,000-server scan written by 1 and by 2 Celery worker processes (and the ratio), and a
notification run for 10,000 newly non-compliant servers.

The worker scans need PostgreSQL (chunks are claimed with SELECT … FOR UPDATE SKIP LOCKED) and Redis; on SQLite only
the in-process scan and the notification run are measured. Workers get their own queue on the broker, so the run
does not disturb anything else on the same Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exchangepatch_bench \\
    EXCHANGEPATCH_REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/jobs.py [--servers N]
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import ROOT, django_setup, estate_create

QUEUE = f"bench-{os.getpid()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--notify", type=int, default=10_000, help="newly non-compliant servers to notify about")
    parser.add_argument("--chunk-size", type=int, default=5000)
    options = parser.parse_args()
    broker = os.environ.get("EXCHANGEPATCH_REDIS_URL") or os.environ.get("CELERY_BROKER_URL", "")
    on_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    if on_postgres and broker:
        os.environ.update(CELERY_BROKER_URL=broker, CELERY_TASK_DEFAULT_QUEUE=QUEUE)
    os.environ["EXCHANGEPATCH_SCAN_CHUNK_SIZE"] = str(options.chunk_size)
    django_setup()
    from django.db import connection

    from inventory.scans import scan_run_execute
    from kb.services import catalog_load_snapshot

    catalog_load_snapshot()
    start = time.perf_counter()
    estate_create(options.servers)
    print(f"set-up: {options.servers:,} invented servers in {time.perf_counter() - start:.1f} s; {connection.vendor}")
    start = time.perf_counter()
    first = scan_run_execute()
    print(f"in-process first scan (writes every result and change-feed row): {time.perf_counter() - start:.2f} s, "
          f"{first.chunk_count} chunks of {options.chunk_size:,}")  # fmt: skip
    if on_postgres and broker:
        one = _scan_on_workers(1, connection.settings_dict, broker)
        two = _scan_on_workers(2, connection.settings_dict, broker)
        print(f"scan of {options.servers:,} servers by 1 worker process:  {one:.2f} s")
        print(f"scan of {options.servers:,} servers by 2 worker processes: {two:.2f} s")
        print(f"ratio 1 worker / 2 workers: {one / two:.2f}x  (on {os.cpu_count()} cores shared with PostgreSQL)")
    else:
        print("worker scans skipped: they need PostgreSQL (DATABASE_URL) and Redis (EXCHANGEPATCH_REDIS_URL)")
    _notifications(options.notify)


def _scan_on_workers(count: int, database: dict, broker: str) -> float:
    """Time from dispatch to `succeeded` of one later scan (same work as the other: a baseline, no state changes)."""
    from django.db import transaction

    from inventory.models import ScanRun
    from inventory.scans import scan_request
    from inventory.tasks import scan_dispatch

    url = f"postgres://{database['USER'] or 'postgres'}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
    env = os.environ | {"DATABASE_URL": f"{url}/{database['NAME']}", "CELERY_BROKER_URL": broker,
                        "CELERY_TASK_DEFAULT_QUEUE": QUEUE, "DJANGO_SECRET_KEY": "bench-only"}  # fmt: skip
    logs = Path(tempfile.mkdtemp(prefix="exchangepatch-bench-"))
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "exchangepatch",
                "worker",
                "-l",
                "warning",
                "-c",
                "1",
                "-n",
                f"bench{n}-{os.getpid()}@%h",
                "-Q",
                QUEUE,
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=(logs / f"w{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for n in range(count)
    ]
    try:
        _wait_workers(count)
        with transaction.atomic():
            scan = scan_request(trigger="api")
            scan_dispatch(scan.pk)
        start = time.perf_counter()
        while True:
            scan.refresh_from_db()
            if scan.status in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        if scan.status != "succeeded":
            raise SystemExit(f"scan failed: {scan.error}")
        chunks = ScanRun.objects.get(pk=scan.pk).chunks.values_list("worker", flat=True)
        print(f"  {count} worker(s): chunks per worker {_per_worker(chunks)}")
        return elapsed
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(30)


def _wait_workers(count: int) -> None:
    from django.utils import timezone

    from inventory.models import WorkerHeartbeat

    started = timezone.now()
    deadline = time.monotonic() + 60
    while WorkerHeartbeat.objects.filter(hostname__startswith="bench", started_at__gte=started).count() < count:
        if time.monotonic() > deadline:
            raise SystemExit("the bench workers did not start within 60 s")
        time.sleep(0.2)
    time.sleep(1)  # from heartbeat to consuming


def _per_worker(workers) -> dict[str, int]:
    counts: dict[str, int] = {}
    for worker in workers:
        name = worker.split("@")[0]
        counts[name] = counts.get(name, 0) + 1
    return counts


def _notifications(count: int) -> None:
    """10,000 invented servers go from current to behind; one scan; messages to a webhook on 127.0.0.1 and to an
    e-mail list (Django's in-memory backend), built and delivered in this process."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from django.conf import settings
    from django.core import mail

    from inventory.models import Organisation, Server, Subscription
    from inventory.notifications import notification_deliver, notifications_for_scan, subscription_save
    from inventory.scans import scan_run_execute

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(len(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        organisation = Organisation.objects.create(name="notify.example")
        current, older = "15.2.2562.46", "15.2.2562.43"  # SE Aug26SU, SE Jun26SU (real builds)
        Server.objects.bulk_create(
            [Server(fqdn=f"n{index:06d}.notify.example", name=f"N{index:06d}", organisation=organisation,
                    roles="Mailbox", reported_build=current, build_major=15, build_minor=2, build_number=2562,
                    build_revision=46) for index in range(count)],
            batch_size=5000,
        )  # fmt: skip
        scan_run_execute()
        Server.objects.filter(organisation=organisation).update(reported_build=older, build_revision=43)
        scan = scan_run_execute()
        subscription_save(Subscription(name="bench webhook", channel="webhook",
                                       target=f"http://127.0.0.1:{httpd.server_address[1]}/hook"))  # fmt: skip
        Subscription.objects.create(name="bench e-mail", channel="email", target="ops@bench.example")
        start = time.perf_counter()
        ids = notifications_for_scan(scan_id=scan.pk)
        built = time.perf_counter() - start
        outcomes = [notification_deliver(notification_id=pk) for pk in ids]
        total = time.perf_counter() - start
    finally:
        httpd.shutdown()
        httpd.server_close()
    print(f"notification run for {scan.newly_noncompliant:,} newly non-compliant servers: {total:.2f} s "
          f"({built:.2f} s to build {len(ids)} messages, the rest to deliver them: {outcomes}); webhook body "
          f"{received[0] / 1e6:.1f} MB, e-mail body {len(mail.outbox[0].body) / 1e3:.1f} kB")  # fmt: skip


if __name__ == "__main__":
    main()
