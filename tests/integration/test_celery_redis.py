"""A scan through a real Celery worker on a real Redis broker and PostgreSQL (run by .ci/run's second pass)."""

import io
import os
import time

import pytest
from django.core.management import call_command
from django.db import connection

REDIS_URL = os.environ.get("EXCHANGEPATCH_REDIS_URL", "")
REQUIRED = os.environ.get("EXCHANGEPATCH_REQUIRE_SERVICES") == "1"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not REDIS_URL and not REQUIRED,
        reason="needs EXCHANGEPATCH_REDIS_URL and PostgreSQL: .ci/run's second pass runs it",
    ),
]


@pytest.fixture
def celery_on_redis(transactional_db):
    if connection.vendor != "postgresql":
        pytest.fail("the worker test needs PostgreSQL (DATABASE_URL): the worker thread reads committed rows")
    from celery.contrib.testing.worker import start_worker

    from exchangepatch.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "result_backend", "task_always_eager")}
    app.conf.update(broker_url=REDIS_URL, result_backend=REDIS_URL, task_always_eager=False)
    _forget_backend(app)  # earlier eager tasks in this process cached "no result backend"
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield app
    finally:
        app.conf.update(saved)
        _forget_backend(app)


def _forget_backend(app) -> None:
    """Drop what Celery cached for the previous configuration: the result backend and the broker pools."""
    app._local.__dict__.pop("backend", None)
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None


def test_a_scan_runs_on_a_real_worker_over_redis(celery_on_redis):
    from inventory.models import ScanRun
    from inventory.tasks import scan_run_task

    call_command("catalog_load", stdout=io.StringIO())
    call_command("demo_load", stdout=io.StringIO())
    scan = ScanRun.objects.create()

    result = scan_run_task.delay(scan.pk)

    assert result.get(timeout=120) == scan.pk  # started; its chunks are then written by scan_work tasks
    deadline = time.monotonic() + 120
    while scan.status in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        scan.refresh_from_db()
    assert (scan.status, scan.server_count) == ("succeeded", 24)
    assert sum(scan.counts.values()) == 24
