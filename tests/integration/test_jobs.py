"""Jobs with real parts: `celery -A exchangepatch worker` processes on Redis and PostgreSQL (run by .ci/run's second
pass). Scans shared by two workers, workers killed mid-scan, the broker stopped, the catalog refresh from a local HTTP
server, signed webhooks with retries, beat schedules.

Every port is picked by the OS at run time, every process is stopped by its fixture. The test database is committed
(transactional tests), so the worker processes, which connect to it through DATABASE_URL, see the rows.
Server names are invented (.example); builds, catalog and documents are real.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from tests.conftest import ROOT, SHARED_DATA, LocalHttpServer

REDIS_URL = os.environ.get("EXCHANGEPATCH_REDIS_URL", "")
REQUIRED = os.environ.get("EXCHANGEPATCH_REQUIRE_SERVICES") == "1"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not REDIS_URL and not REQUIRED,
        reason="needs EXCHANGEPATCH_REDIS_URL and PostgreSQL: .ci/run's second pass runs it",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, *, timeout: float, what, interval: float = 0.2):
    """Poll until `condition()` is true; `what` (text, or a callable for details read at the end) names it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what() if callable(what) else what}")


def database_url() -> str:
    """The test database (not the configured one) as a URL for the worker processes."""
    params = connection.settings_dict
    user, password = params["USER"] or "postgres", params["PASSWORD"]
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{auth}{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


class Workers:
    """Celery worker processes, each in its own process group (a SIGKILL of the group is a machine dying)."""

    def __init__(self, broker: str, env: dict[str, str]):
        self.broker, self.env, self.processes, self.logs = broker, env, {}, {}
        self.directory = Path(tempfile.mkdtemp(prefix="exchangepatch-workers-"))

    def start(self, name: str, *, wait: bool = True, **env) -> subprocess.Popen:
        log = self.directory / f"{name}.log"
        self.logs[name] = log
        environment = os.environ | self.env | env | {"CELERY_BROKER_URL": env.get("CELERY_BROKER_URL", self.broker)}
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "exchangepatch", "worker", "-l", "info", "-n", f"{name}@%h",
             "-c", "1", "-P", "prefork", "--without-gossip", "--without-mingle", "-O", "fair"],
            cwd=ROOT, env=environment, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes[name] = process
        if wait:
            self.wait_ready(name)
        return process

    def wait_ready(self, name: str) -> None:
        from inventory.models import WorkerHeartbeat

        # The worker writes its heartbeat as it starts (exchangepatch/celery.py), then consumes.
        wait_for(
            lambda: WorkerHeartbeat.objects.filter(hostname__startswith=f"{name}@").exists()
            and "ready." in self.logs[name].read_text(errors="replace"),
            timeout=60, what=lambda: f"worker {name} to start\n{self.tail(name)}",
        )  # fmt: skip

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def pool_child(self, name: str) -> int:
        pid = self.processes[name].pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def tail(self, name: str) -> str:
        log = self.logs.get(name)
        return log.read_text(errors="replace")[-3000:] if log and log.exists() else ""

    def stop_all(self) -> None:
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.processes.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def app_on(broker: str):
    """Make this test process publish to `broker` (not eager), then put the app back."""
    from django.conf import settings

    from exchangepatch.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    saved_setting = settings.CELERY_BROKER_URL
    app.conf.update(broker_url=broker, task_always_eager=False)
    settings.CELERY_BROKER_URL = broker
    _forget_pools(app)
    try:
        yield app
    finally:
        app.conf.update(saved)
        settings.CELERY_BROKER_URL = saved_setting
        _forget_pools(app)


def _forget_pools(app) -> None:
    app._local.__dict__.pop("backend", None)
    from kombu import pools

    pools.reset()  # kombu keeps pools per broker URL process-wide: closing one in place poisons the next user
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def services(transactional_db):
    if connection.vendor != "postgresql":
        pytest.fail("the worker tests need PostgreSQL (DATABASE_URL): worker processes share the test database")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # this pass's own Redis database: no message from an earlier test
    return REDIS_URL


@pytest.fixture
def workers(services):
    pool = Workers(services, {"DATABASE_URL": database_url(), "DJANGO_SECRET_KEY": "integration-tests-only"})
    yield pool
    pool.stop_all()


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    from tests.api.conftest import token_for

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('cmdb')}")
    return client


BUILDS = ["15.2.2562.45", "15.2.2562.43", "15.1.2507.71", "15.2.1544.44", "14.3.513.0", "8.3.517.0"]


def estate(count: int) -> None:
    from tests.inventory.test_scan import server, upsert

    call_command("catalog_load", stdout=io.StringIO())
    upsert(*(server(f"srv{n:05d}.contoso.example", BUILDS[n % len(BUILDS)]) for n in range(count)))


def scan_done(scan_id: int, timeout: float = 120):
    from inventory.models import ScanRun

    return wait_for(
        lambda: ScanRun.objects.filter(pk=scan_id, status__in=("succeeded", "failed")).first(),
        timeout=timeout, what=f"scan {scan_id} to finish",
    )  # fmt: skip


def one_result_per_server(scan) -> None:
    from inventory.models import Server, ServerResult

    servers = Server.objects.count()
    rows = ServerResult.objects.filter(scan=scan)
    assert rows.count() == servers
    assert rows.values("server_id").distinct().count() == servers
    assert scan.server_count == servers


# -- scans -----------------------------------------------------------------------------------------


def test_a_scan_started_through_the_api_is_completed_by_two_worker_processes_sharing_its_chunks(workers, api):
    from inventory.models import ScanChunk

    estate(600)
    env = {"EXCHANGEPATCH_SCAN_CHUNK_SIZE": "50", "EXCHANGEPATCH_SCAN_CHUNK_PAUSE": "0.2"}
    workers.start("w1", wait=False, **env)
    workers.start("w2", wait=False, **env)
    workers.wait_ready("w1")
    workers.wait_ready("w2")

    with app_on(workers.broker):
        response = api.post("/api/v1/scans/")
    assert response.status_code == 202, response.content

    scan = scan_done(response.json()["id"])
    assert scan.status == "succeeded", (scan.error, workers.tail("w1"), workers.tail("w2"))
    assert (scan.chunk_count, scan.chunks_done) == (12, 12)
    by = {worker.split("@")[0] for worker in ScanChunk.objects.filter(scan=scan).values_list("worker", flat=True)}
    assert by == {"w1", "w2"}
    one_result_per_server(scan)
    assert api.get(f"/api/v1/scans/{scan.pk}/").json()["status"] == "succeeded"


@pytest.mark.parametrize("killed", ["the whole worker", "only the pool child"])
def test_a_worker_killed_mid_scan_leaves_every_server_exactly_one_result(workers, killed):
    from inventory.models import ScanChunk, ScanRun
    from inventory.scans import scan_request
    from inventory.tasks import scan_dispatch

    estate(300)
    env = {"EXCHANGEPATCH_SCAN_CHUNK_SIZE": "30", "EXCHANGEPATCH_SCAN_CHUNK_PAUSE": "0.6",
           "EXCHANGEPATCH_SCAN_LEASE_SECONDS": "3", "CELERY_VISIBILITY_TIMEOUT": "5"}  # fmt: skip
    workers.start("w1", **env)
    with app_on(workers.broker), transaction.atomic():
        scan = scan_request(trigger="api")
        scan_dispatch(scan.pk)

    def in_flight() -> bool:
        """A chunk is held by the worker (locked by its open transaction) after at least one was written."""
        pending = ScanChunk.objects.filter(scan=scan, status="pending")
        if not ScanChunk.objects.filter(scan=scan, status="done").exists():
            return False
        with transaction.atomic():
            claimable = list(pending.select_for_update(skip_locked=True).values_list("pk", flat=True))
            return len(claimable) < pending.count()

    wait_for(in_flight, timeout=60, what=lambda: f"a chunk in flight\n{workers.tail('w1')}", interval=0.05)
    if killed == "the whole worker":
        workers.kill("w1")
        assert ScanRun.objects.get(pk=scan.pk).status == "running"
        workers.start("w1", **env)  # a restarted worker resumes what the dead one left
    else:
        os.kill(workers.pool_child("w1"), signal.SIGKILL)  # the parent requeues the lost task, a new child runs it

    scan = scan_done(scan.pk)
    assert scan.status == "succeeded", (scan.error, workers.tail("w1"))
    one_result_per_server(scan)
    chunks = ScanChunk.objects.filter(scan=scan)
    assert chunks.filter(status="done").count() == 10
    # Chunks written before the kill, and the rest by the process that took over (redelivery or watchdog).
    assert len(set(chunks.values_list("worker", flat=True))) >= 2


def test_with_the_broker_stopped_reads_work_a_scan_gets_503_and_nothing_is_stuck_when_it_returns(
    services, workers, api
):
    from inventory.models import ScanRun

    estate(30)
    port = free_port()
    own = f"redis://127.0.0.1:{port}/0"
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def broker_start() -> subprocess.Popen:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(lambda: _redis_answers(own), timeout=20, what="the test's redis-server")
        return process

    broker = broker_start()
    try:
        workers.start("w1", CELERY_BROKER_URL=own)
        with app_on(own):
            first = api.post("/api/v1/scans/")
            assert first.status_code == 202
            assert scan_done(first.json()["id"]).status == "succeeded"

            broker.terminate()
            broker.wait(10)
            down = api.post("/api/v1/scans/")
            reads = [
                api.get(path).status_code
                for path in ("/api/v1/servers/", "/api/v1/scans/", "/api/v1/compliance/summary/")
            ]

            broker = broker_start()
            again = api.post("/api/v1/scans/")
            assert again.status_code == 202, again.content
            assert scan_done(again.json()["id"], timeout=90).status == "succeeded", workers.tail("w1")
    finally:
        broker.terminate()
        broker.wait(10)

    assert down.status_code == 503
    assert down.json() == {"detail": "the task broker is unavailable, so the scan was not started; try again later"}
    assert reads == [200, 200, 200]
    failed = ScanRun.objects.get(pk=ScanRun.objects.filter(status="failed").values_list("pk", flat=True).get())
    assert failed.error.startswith("not started: the task broker is unavailable (")
    assert not ScanRun.objects.filter(status__in=("pending", "running")).exists()


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.exceptions.ConnectionError:
        return False


# -- catalog refresh -------------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not beside the project (fresh clone)")
def test_the_catalog_refresh_job_imports_from_a_local_http_server_and_flags_exactly_the_affected_servers(workers):
    from inventory.models import JobRun, ScanRun, ServerResult
    from inventory.scans import scan_run_execute
    from kb.models import CatalogRefresh, Update
    from tests.inventory.test_scan import server, upsert

    call_command("catalog_load", stdout=io.StringIO())
    Update.objects.filter(identity_key="SE|RTM|SU|Aug26SU|1").delete()  # as if loaded before its release
    upsert(
        server("se-jul.contoso.example", "15.2.2562.45"),  # SE Jul26SU: current until Aug26SU
        server("se-jun.contoso.example", "15.2.2562.43"),  # SE Jun26SU: already behind
        server("e16.contoso.example", "15.1.2507.71"),  # another product
    )
    baseline = scan_run_execute()
    http = LocalHttpServer()
    try:
        catalog = SHARED_DATA / "catalog"
        http.routes["/ExchangeBuildNumbers.csv"] = (
            200,
            (catalog / "ExchangeBuildNumbers.csv").read_bytes(),
            "text/csv",
        )
        http.routes["/build-numbers-and-release-dates.md"] = (
            200, (catalog / "build-numbers-and-release-dates.md").read_bytes(), "text/markdown",
        )  # fmt: skip
        http.routes["/broken.csv"] = (500, b"Internal Server Error", "text/plain")
        sources = ",".join(f"{http.url}/{name}" for name in
                           ("ExchangeBuildNumbers.csv", "build-numbers-and-release-dates.md", "broken.csv"))  # fmt: skip
        workers.start("w1", EXCHANGEPATCH_CATALOG_SOURCES=sources, EXCHANGEPATCH_TODAY="2026-08-20")
        with app_on(workers.broker) as app:
            app.send_task("kb.catalog_refresh")
            refresh = wait_for(
                lambda: CatalogRefresh.objects.filter(scan_id__isnull=False).first(), timeout=90,
                what=lambda: f"the refresh\n{workers.tail('w1')}",
            )  # fmt: skip
            recompute = scan_done(refresh.scan_id)
    finally:
        http.close()

    assert [(s["url"].rsplit("/", 1)[1], s["status"]) for s in refresh.sources] == [
        ("ExchangeBuildNumbers.csv", "imported"),
        ("build-numbers-and-release-dates.md", "imported"),
        ("broken.csv", "failed"),
    ]
    assert refresh.sources[2]["detail"].endswith("/broken.csv: HTTP 500 Internal Server Error")
    assert refresh.outcome == "partial"
    assert [(c.action, c.kb) for c in refresh.changes.all()] == [("created", "KB5121573")]
    assert recompute.status == "succeeded" and recompute.trigger == "catalog"
    flagged = set(
        ServerResult.objects.filter(scan=recompute, delta="newly_noncompliant").values_list("server__fqdn", flat=True)
    )
    assert flagged == {"se-jul.contoso.example"}
    assert recompute.baseline_id == baseline.pk
    job = JobRun.objects.get(job="catalog_refresh")
    assert job.outcome == "succeeded" and "broken.csv: failed (" in job.detail
    assert ScanRun.objects.filter(status__in=("pending", "running")).count() == 0


# -- notifications ---------------------------------------------------------------------------------


def test_a_webhook_receiver_gets_exactly_one_signed_delivery_per_change_and_a_failing_one_is_retried(workers):
    from standardwebhooks.webhooks import Webhook

    from inventory.models import DeliveryAttempt, Notification, Subscription
    from inventory.notifications import subscription_save
    from inventory.scans import scan_request, scan_run_execute
    from inventory.tasks import scan_dispatch
    from tests.inventory.test_scan import server, upsert

    call_command("catalog_load", stdout=io.StringIO())
    upsert(server("a.contoso.example", "15.2.2562.46"), server("b.contoso.example", "15.2.2562.45"))
    scan_run_execute()
    upsert({"fqdn": "a.contoso.example", "build": "15.2.2562.43"})  # rolled back: newly non-compliant
    receiver = LocalHttpServer()
    try:
        receiver.routes["/good"] = (204, b"", "text/plain")
        receiver.routes["/flaky"] = [(500, b"down", "text/plain"), (502, b"", "text/plain"), (200, b"ok", "text/plain")]
        good = Subscription(name="invented SOC", channel="webhook", target=f"{receiver.url}/good")
        flaky = Subscription(name="invented NOC", channel="webhook", target=f"{receiver.url}/flaky")
        subscription_save(good)
        subscription_save(flaky)
        workers.start("w1", EXCHANGEPATCH_DELIVERY_BACKOFF="0.5")
        with app_on(workers.broker), transaction.atomic():
            scan = scan_request(trigger="api")
            scan_dispatch(scan.pk)
        assert scan_done(scan.pk).newly_noncompliant == 1
        wait_for(
            lambda: Notification.objects.filter(status="sent").count() == 2, timeout=60,
            what=lambda: f"both deliveries\n{workers.tail('w1')}",
        )  # fmt: skip
        time.sleep(1)  # nothing more arrives
        requests = list(receiver.requests)
    finally:
        receiver.close()

    by_path = {path: [r for r in requests if r["path"] == path] for path in ("/good", "/flaky")}
    assert len(by_path["/good"]) == 1
    body = Webhook(good.secret).verify(by_path["/good"][0]["body"], by_path["/good"][0]["headers"])
    assert [s["fqdn"] for s in body["newly_noncompliant"]] == ["a.contoso.example"]
    assert len(by_path["/flaky"]) == 3
    assert len({r["headers"]["webhook-id"] for r in by_path["/flaky"]}) == 1  # one message, three attempts
    attempts = list(
        DeliveryAttempt.objects.filter(notification__subscription=flaky)
        .order_by("number")
        .values_list("number", "status_code", "at")
    )
    assert [(n, code) for n, code, _ in attempts] == [(1, 500), (2, 502), (3, 200)]
    gaps = [(later - earlier).total_seconds() for (_, _, earlier), (_, _, later) in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0  # exponential backoff: 0.5 s, then 1 s


# -- beat ------------------------------------------------------------------------------------------


def test_beat_schedules_exist_after_migrate_and_a_due_schedule_enqueues_its_task(services):
    import redis
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from tests.inventory.test_jobs import SCHEDULES

    assert set(PeriodicTask.objects.values_list("name", flat=True)) >= set(SCHEDULES)
    PeriodicTask.objects.filter(name="waiver expiry hourly").update(last_run_at=timezone.now() - timedelta(hours=2))
    client = redis.Redis.from_url(services)
    with app_on(services) as app:
        scheduler = DatabaseScheduler(app=app)
        scheduler.tick()
    messages = [json.loads(raw) for raw in client.lrange("celery", 0, -1)]
    tasks = [message["headers"]["task"] for message in messages]
    assert "inventory.waivers_expire" in tasks
    assert "inventory.digest_send" not in tasks  # not due
