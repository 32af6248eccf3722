"""Jobs on the embedded set-up (eager Celery, SQLite): schedules after migrate, the scan API's 409 and 503, signed
webhooks and e-mail with retries and a delivery log, waiver and digest messages, jobs_status and /healthz.

Server names, subscriptions and waivers are invented; builds are real. Real worker processes on Redis and PostgreSQL
are in tests/integration/test_jobs.py.
"""

import io
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from standardwebhooks.webhooks import Webhook

from inventory.jobs import schedules_install
from inventory.models import DeliveryAttempt, JobRun, Notification, ScanRun, Subscription, Waiver, WorkerHeartbeat
from inventory.notifications import notification_deliver, notifications_digest, subscription_save
from inventory.scans import scan_request, scan_run_execute, scan_start
from inventory.tasks import scan_notify_task, waivers_expire_task
from tests.api.conftest import token_for
from tests.inventory.test_scan import AS_OF, server, upsert

SCHEDULES = {
    "scan nightly": ("inventory.scan_scheduled", "0 2 * * *"),
    "catalog refresh daily": ("kb.catalog_refresh", "30 1 * * *"),
    "waiver expiry hourly": ("inventory.waivers_expire", "5 * * * *"),
    "digest daily": ("inventory.digest_send", "0 7 * * *"),
    "retention daily": ("inventory.retention_apply", "30 3 * * *"),
    "scan watchdog": ("inventory.scan_watchdog", "every 60 seconds"),
}


@pytest.fixture
def api():
    """An API client with a read-write token (the database comes from each test's mark)."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('cmdb')}")
    return client


def cron(task: PeriodicTask) -> str:
    if task.interval:
        return f"every {task.interval.every} {task.interval.period}"
    c = task.crontab
    return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"


@pytest.mark.django_db
def test_the_schedules_exist_after_migrate_and_an_admin_change_survives_the_next_migrate():
    tasks = {t.name: (t.task, cron(t)) for t in PeriodicTask.objects.select_related("crontab", "interval")}
    assert tasks == SCHEDULES
    PeriodicTask.objects.filter(name="digest daily").update(enabled=False)

    assert schedules_install() == 0

    assert PeriodicTask.objects.get(name="digest daily").enabled is False
    assert PeriodicTask.objects.count() == len(SCHEDULES)


# -- the scan API ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_starting_a_scan_while_one_runs_answers_409_and_starts_nothing(api, loaded_catalog):
    upsert(server("a.contoso.example", "15.2.1544.11"))
    running = scan_request(trigger="command")
    scan_start(scan_id=running.pk, as_of=AS_OF)

    response = api.post("/api/v1/scans/")

    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"scan {running.pk} of the estate is running; poll ")
    assert ScanRun.objects.count() == 1


@pytest.fixture
def unreachable_broker():
    """Point the Celery app at a Redis port where nothing listens (a real refused connection), not eager."""
    from exchangepatch.celery import app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free now; nothing listens on it once closed
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=f"redis://127.0.0.1:{port}/0", task_always_eager=False)
    _forget_pools(app)
    yield
    app.conf.update(saved)
    _forget_pools(app)


def _forget_pools(app) -> None:
    from kombu import pools

    pools.reset()  # kombu keeps pools per broker URL process-wide: closing one in place poisons the next user
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_a_scan_request_answers_503_and_leaves_nothing_pending(api, unreachable_broker):
    response = api.post("/api/v1/scans/")

    assert response.status_code == 503
    assert response.json() == {"detail": "the task broker is unavailable, so the scan was not started; try again later"}
    scan = ScanRun.objects.get()
    assert scan.status == "failed"
    assert scan.error.startswith("not started: the task broker is unavailable (")
    assert api.get("/api/v1/scans/").status_code == 200  # reads do not need the broker
    assert api.get("/api/v1/servers/").status_code == 200


# -- notifications ---------------------------------------------------------------------------------


@pytest.fixture
def deltas(loaded_catalog):
    """Two invented servers in two sites; a first scan, then one falls behind and one is patched."""
    upsert(
        server("ams.contoso.example", "15.2.1544.11", site="Amsterdam"),
        server("dub.contoso.example", "15.2.1544.9", site="Dublin"),
    )
    scan_run_execute(as_of=AS_OF)
    upsert(
        {"fqdn": "ams.contoso.example", "build": "15.2.1544.9"},
        {"fqdn": "dub.contoso.example", "build": "15.2.1544.11"},
    )
    return scan_run_execute(as_of=AS_OF)


def webhook(url: str, **scope) -> Subscription:
    subscription = Subscription(name="invented SOC", channel="webhook", target=url, **scope)
    subscription_save(subscription)
    return subscription


@pytest.mark.django_db
def test_a_webhook_gets_one_signed_delivery_per_change_with_only_the_deltas(
    deltas, http_server, django_capture_on_commit_callbacks
):
    http_server.routes["/hook"] = (204, b"", "text/plain")
    subscription = webhook(f"{http_server.url}/hook")

    with django_capture_on_commit_callbacks(execute=True):
        scan_notify_task.delay(deltas.pk)
    with django_capture_on_commit_callbacks(execute=True):
        scan_notify_task.delay(deltas.pk)  # the same change again: no second message

    assert len(http_server.requests) == 1
    request = http_server.requests[0]
    body = Webhook(subscription.secret).verify(request["body"], request["headers"])
    assert request["headers"]["webhook-id"] == f"msg_{Notification.objects.get().pk}"
    assert body["counts"] == {"newly_noncompliant": 1, "newly_compliant": 1, "newly_excepted": 0}
    assert [s["fqdn"] for s in body["newly_noncompliant"]] == ["ams.contoso.example"]
    assert body["newly_noncompliant"][0] | {} == {
        "fqdn": "ams.contoso.example", "organisation": "contoso.example", "site": "Amsterdam",
        "state": "update_available", "install": "KB5037224",
    }  # fmt: skip
    assert [s["fqdn"] for s in body["newly_compliant"]] == ["dub.contoso.example"]
    assert list(DeliveryAttempt.objects.values_list("number", "status_code", "error")) == [(1, 204, "")]
    with pytest.raises(Exception, match="No matching signature"):
        Webhook("whsec_" + "A" * 43).verify(request["body"], request["headers"])


@pytest.mark.django_db
def test_a_failing_webhook_is_retried_and_the_log_shows_every_attempt(deltas, http_server, settings):
    settings.EXCHANGEPATCH_DELIVERY_ATTEMPTS = 3
    http_server.routes["/hook"] = [
        (500, b"down", "text/plain"),
        (503, b"busy", "text/plain"),
        (200, b"ok", "text/plain"),
    ]
    webhook(f"{http_server.url}/hook")
    from inventory.notifications import notifications_for_scan

    (notification_id,) = notifications_for_scan(scan_id=deltas.pk)

    outcomes = [notification_deliver(notification_id=notification_id) for _ in range(4)]

    assert outcomes == ["retry", "retry", "sent", "skipped"]
    assert list(DeliveryAttempt.objects.values_list("number", "status_code", "error")) == [
        (1, 500, "HTTP 500"),
        (2, 503, "HTTP 503"),
        (3, 200, ""),
    ]
    assert len(http_server.requests) == 3
    assert Notification.objects.get().status == "sent"


@pytest.mark.django_db
def test_a_webhook_that_never_answers_well_fails_after_its_attempts(deltas, settings):
    settings.EXCHANGEPATCH_DELIVERY_ATTEMPTS = 2
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhook(f"http://127.0.0.1:{port}/hook")  # nothing listens there
    from inventory.notifications import notifications_for_scan

    (notification_id,) = notifications_for_scan(scan_id=deltas.pk)

    assert [notification_deliver(notification_id=notification_id) for _ in range(2)] == ["retry", "failed"]
    attempts = list(DeliveryAttempt.objects.values_list("status_code", "error"))
    assert [code for code, _ in attempts] == [None, None]
    assert all("Connection refused" in error for _, error in attempts)
    assert Notification.objects.get().status == "failed"


@pytest.mark.django_db
def test_subscriptions_hear_only_about_their_site_and_e_mail_goes_through_django(
    deltas, django_capture_on_commit_callbacks
):
    from inventory.models import Site

    Subscription.objects.create(
        name="invented Dublin team", channel="email", target="dublin@contoso.example, ops@contoso.example",
        site=Site.objects.get(name="Dublin"),
    )  # fmt: skip
    Subscription.objects.create(
        name="invented Amsterdam digest only", channel="email", target="ams@contoso.example",
        site=Site.objects.get(name="Amsterdam"), wants_deltas=False,
    )  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        scan_notify_task.delay(deltas.pk)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dublin@contoso.example", "ops@contoso.example"]
    assert message.subject == f"ExchangePatch: 1 newly compliant (scan {deltas.pk}, site Dublin)"
    assert "dub.contoso.example (Dublin): current" in message.body
    assert "ams.contoso.example" not in message.body


@pytest.mark.django_db
def test_waivers_expiring_soon_are_told_once_and_expired_ones_trigger_a_rescan(
    loaded_catalog, django_capture_on_commit_callbacks, settings
):
    settings.EXCHANGEPATCH_WAIVER_WARNING_DAYS = 14
    upsert(server("ams.contoso.example", "15.2.1258.28"))
    Subscription.objects.create(name="invented CAB", channel="email", target="cab@contoso.example")
    # Invented waivers: one expires in 3 days, one in 60 days, one expired ten minutes ago.
    now = timezone.now()
    soon = Waiver.objects.create(target_kind="update", target_kb="KB5036386", reason="invented", approver="CAB",
                                 expires_at=now + timedelta(days=3))  # fmt: skip
    Waiver.objects.create(target_kind="update", target_kb="KB5037224", reason="invented", approver="CAB",
                          expires_at=now + timedelta(days=60))  # fmt: skip
    Waiver.objects.create(target_kind="fix", target_kb="KB2537099", reason="invented", approver="CAB",
                          expires_at=now - timedelta(minutes=10))  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        waivers_expire_task.delay()
    with django_capture_on_commit_callbacks(execute=True):
        waivers_expire_task.delay()

    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "ExchangePatch: 1 waiver(s) expire within 14 days (every server)"
    assert f"Waiver KB5036386 for all expires {soon.expires_at:%Y-%m-%d}" in mail.outbox[0].body
    runs = list(JobRun.objects.filter(job="waiver_expiry").order_by("pk").values_list("outcome", "detail"))
    assert runs[0][0] == "succeeded" and runs[0][1].startswith("1 notification(s); 1 waiver(s) expired; scan ")
    assert runs[1] == ("succeeded", "0 notification(s); 0 waiver(s) expired")
    assert ScanRun.objects.get().trigger == "waivers"


@pytest.mark.django_db
def test_the_daily_digest_is_one_message_per_subscription_per_day(deltas):
    Subscription.objects.create(name="invented digest", channel="email", target="ops@contoso.example")

    first, second = notifications_digest(), notifications_digest()

    assert (len(first), second) == (1, [])
    payload = Notification.objects.get().payload
    assert payload["by_state"] == {"current": 1, "update_available": 1}
    assert payload["changes_last_day"] == {"newly_compliant": 1, "newly_noncompliant": 1}


# -- health ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_jobs_status_shows_each_job_and_fails_on_a_failed_last_run(loaded_catalog):
    scan_run_execute(as_of=AS_OF)
    JobRun.objects.create(job="digest", started_at=datetime(2026, 11, 1, 7, tzinfo=UTC),
                          finished_at=datetime(2026, 11, 1, 7, 0, 2, tzinfo=UTC), outcome="failed",
                          detail="SMTPConnectError: invented")  # fmt: skip
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"^digest: last run failed$"):
        call_command("jobs_status", "--json", stdout=out)

    data = json.loads(out.getvalue())
    jobs = {job["job"]: job for job in data["jobs"]}
    assert list(jobs) == ["scan", "catalog_refresh", "waiver_expiry", "digest", "retention", "scan_watchdog"]
    assert (jobs["scan"]["outcome"], jobs["digest"]["outcome"], jobs["digest"]["duration_seconds"]) == (
        "succeeded", "failed", 2.0,
    )  # fmt: skip
    assert jobs["retention"]["outcome"] == "never run"
    assert data["queue_length"] is None and data["queue_error"].startswith("no broker configured")
    assert data["catalog_age_days"] is not None and data["problems"] == ["digest: last run failed"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("_case", "broker", "heartbeat", "catalog", "status", "failing"),
    [
        ("embedded, catalog loaded", "", False, True, 200, []),
        ("embedded, no catalog", "", False, False, 500, ["CatalogAge"]),
        ("broker configured, no worker heartbeat", "redis://127.0.0.1:1/0", False, True, 500, ["Broker", "Worker"]),
    ],
)
def test_healthz_answers_without_login_and_names_the_failing_check(
    client, settings, _case, broker, heartbeat, catalog, status, failing
):
    settings.CELERY_BROKER_URL = broker
    settings.CELERY_BROKER_CONNECTION_TIMEOUT = 1
    if catalog:
        call_command("catalog_load", stdout=io.StringIO())
    if heartbeat:
        WorkerHeartbeat.objects.create(hostname="w", pid=1, started_at=timezone.now(), last_seen=timezone.now())

    response = client.get("/healthz", HTTP_ACCEPT="application/json")

    assert response.status_code == status
    body = response.json()
    assert set(body) == {"Database(alias='default')", "Broker", "Worker", "CatalogAge"}
    assert sorted(name for name, value in body.items() if value != "OK") == failing
