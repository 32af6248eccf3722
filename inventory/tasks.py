"""Celery tasks: explicit names, ids or primitives as arguments, time limits; each calls one service.

Tasks that may run twice without harm (every one here: scans claim chunks in the database, deliveries check their
status first) are acknowledged late and rejected back to the queue when their worker dies, so a crash never loses
one. Everything is dispatched with transaction.on_commit: a task never looks for a row that is not committed yet.
"""

from __future__ import annotations

import logging
import os

import kombu.exceptions
import redis.exceptions
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inventory.choices import ScanStatus, ScanTrigger
from inventory.jobs import job_last_success, job_run
from inventory.models import ScanRun
from inventory.notifications import (
    delivery_backoff,
    notification_deliver,
    notifications_digest,
    notifications_for_scan,
    notifications_for_waivers,
)
from inventory.retention import retention_apply
from inventory.scans import ScanBusyError, scan_active, scan_fail, scan_request, scan_start, scan_work, scans_watch
from inventory.selectors import waivers_expired_since

logger = logging.getLogger(__name__)
IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True}
# What publishing raises when the broker cannot be reached.
BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, OSError)
WORK_BUDGET = 600  # seconds a scan_work task claims chunks before handing over to a fresh message


def _eager() -> bool:
    from exchangepatch.celery import app

    return bool(app.conf.task_always_eager)


# -- dispatch (always on commit) -------------------------------------------------------------------


def scan_dispatch(scan_id: int) -> None:
    """Queue the start of a pending scan once the transaction that created it commits. If publishing fails (broker
    down), the exception propagates from the commit: the API turns it into a 503 and fails the scan with the reason."""
    transaction.on_commit(lambda: scan_run_task.apply_async(args=[scan_id]))


class BrokerUnavailableError(Exception):
    """The broker could not be reached, so the scan was not started (it is failed with the reason)."""


def scan_launch(*, trigger: str) -> ScanRun:
    """Request a scan of the estate and queue it: what the API and the admin's Rescan both do.

    Raises ScanBusyError when a scan of the estate is pending or running (two never overlap), and
    BrokerUnavailableError when publishing fails; that scan is then marked failed with the reason, never left pending.
    """
    active = scan_active()
    if active is not None:
        raise ScanBusyError(active.pk, active.scope)
    scan = None
    try:
        with transaction.atomic():
            scan = scan_request(trigger=trigger)
            scan_dispatch(scan.pk)  # publishes on commit: a broker error surfaces here
    except BROKER_ERRORS as error:
        reason = f"not started: the task broker is unavailable ({type(error).__name__}: {error})"
        if scan is not None:
            scan_fail(scan_id=scan.pk, reason=reason)
        raise BrokerUnavailableError(reason) from error
    scan.refresh_from_db()
    return scan


def _workers_dispatch(scan_id: int, chunk_count: int) -> None:
    fanout = 1 if _eager() else max(1, min(chunk_count, settings.EXCHANGEPATCH_SCAN_FANOUT))
    for _ in range(fanout):
        transaction.on_commit(lambda: scan_work_task.apply_async(args=[scan_id]))


def _notifications_dispatch(ids: list[int]) -> None:
    for notification_id in ids:
        transaction.on_commit(lambda pk=notification_id: notification_deliver_task.apply_async(args=[pk]))


def _scan_finished(scan_id: int) -> None:
    transaction.on_commit(lambda: scan_notify_task.apply_async(args=[scan_id]))


# -- scans -----------------------------------------------------------------------------------------


@shared_task(name="inventory.scan_run", bind=True, time_limit=900, soft_time_limit=840, max_retries=60, **IDEMPOTENT)
def scan_run_task(self, scan_id: int) -> int:
    """Start a pending scan (plan its chunks) and ask workers to share them. A redelivered message for a running scan
    dispatches the workers again (harmless: surplus workers find nothing to claim)."""
    try:
        scan = scan_start(scan_id=scan_id)
    except ScanBusyError as busy:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            scan_fail(scan_id=scan_id, reason=f"not started: {busy}")
            return scan_id
        raise self.retry(countdown=60) from None
    except Exception as error:
        scan_fail(scan_id=scan_id, reason=f"not started: {type(error).__name__}: {error}")
        raise
    if scan.status == ScanStatus.RUNNING:
        _workers_dispatch(scan.pk, scan.chunk_count)
    return scan.pk


@shared_task(
    name="inventory.scan_work", bind=True, time_limit=WORK_BUDGET + 600, soft_time_limit=WORK_BUDGET + 540, **IDEMPOTENT
)
def scan_work_task(self, scan_id: int) -> str:
    """Claim and write chunks of a running scan until none is left; the worker that writes the last one finishes the
    scan. After WORK_BUDGET seconds it hands over to a fresh message, so no task runs near its time limit."""
    worker = f"{self.request.hostname}:{os.getpid()}" if self.request.hostname else ""
    outcome = scan_work(scan_id=scan_id, budget=None if _eager() else WORK_BUDGET, worker=worker)
    if outcome == "continue":
        transaction.on_commit(lambda: scan_work_task.apply_async(args=[scan_id]))
    elif outcome == "finished":
        _scan_finished(scan_id)
    return outcome


@shared_task(name="inventory.scan_scheduled", time_limit=300)
def scan_scheduled_task() -> int | None:
    """The nightly scan; skipped (and recorded so) while another scan of the estate is pending or running."""
    with job_run("scan_scheduled") as record:
        active = scan_active()
        if active is not None:
            record.outcome, record.detail = "skipped", f"scan {active.pk} is {active.status}"
            return None
        with transaction.atomic():
            scan = scan_request(trigger=ScanTrigger.SCHEDULE)
            scan_dispatch(scan.pk)
        record.detail = f"scan {scan.pk} queued"
        return scan.pk


@shared_task(name="inventory.scan_watchdog", time_limit=300)
def scan_watchdog_task(resume_all: bool = False) -> list[str]:
    """Every minute (and when a worker starts): resume, finish or fail scans nobody is working on."""
    actions = scans_watch(resume_all=resume_all)
    for action in actions:
        scan = action.scan_id
        if action.action in ("resumed", "rerun", "redispatched"):
            if action.action == "resumed":
                _workers_dispatch(scan, settings.EXCHANGEPATCH_SCAN_FANOUT)
            else:
                scan_dispatch(scan)
        elif action.action == "finished":
            _scan_finished(scan)
    lines = [f"scan {a.scan_id} {a.action}" + (f": {a.reason}" if a.reason else "") for a in actions]
    if lines:  # a run that found nothing to do is not worth a row every minute
        with job_run("scan_watchdog") as record:
            record.detail = "; ".join(lines)
        logger.warning("scan watchdog: %s", "; ".join(lines))
    return lines


@shared_task(name="inventory.scan_notify", time_limit=600, **IDEMPOTENT)
def scan_notify_task(scan_id: int) -> int:
    """Messages about a finished scan's deltas, one per subscription (idempotent by key), then their delivery."""
    ids = notifications_for_scan(scan_id=scan_id)
    _notifications_dispatch(ids)
    return len(ids)


# -- waivers, digest, retention --------------------------------------------------------------------


@shared_task(name="inventory.waivers_expire", time_limit=600)
def waivers_expire_task() -> str:
    """Hourly: tell subscribers about waivers expiring soon, and when waivers expired since the last run, rescan so
    their servers stop counting as excepted now rather than tonight."""
    with job_run("waiver_expiry") as record:
        now = timezone.now()
        ids = notifications_for_waivers(now=now)
        _notifications_dispatch(ids)
        expired = waivers_expired_since(since=job_last_success("waiver_expiry"), now=now)
        record.detail = f"{len(ids)} notification(s); {expired} waiver(s) expired"
        if expired and scan_active() is None:
            with transaction.atomic():
                scan = scan_request(trigger=ScanTrigger.WAIVERS)
                scan_dispatch(scan.pk)
            record.detail += f"; scan {scan.pk} queued"
        return record.detail


@shared_task(name="inventory.digest_send", time_limit=600)
def digest_send_task() -> str:
    with job_run("digest") as record:
        ids = notifications_digest()
        _notifications_dispatch(ids)
        record.detail = f"{len(ids)} digest(s)"
        return record.detail


@shared_task(name="inventory.retention_apply", time_limit=3600)
def retention_apply_task() -> str:
    with job_run("retention") as record:
        report = retention_apply()
        record.detail = str(report)
        return record.detail


# -- delivery --------------------------------------------------------------------------------------


@shared_task(name="inventory.notification_deliver", bind=True, time_limit=120, max_retries=None, **IDEMPOTENT)
def notification_deliver_task(self, notification_id: int) -> str:
    """One delivery attempt; a failed one is retried after 1, 2, 4, … times the backoff until the attempts run out
    (every attempt is in the delivery log)."""
    outcome = notification_deliver(notification_id=notification_id)
    if outcome == "retry":
        raise self.retry(countdown=delivery_backoff(self.request.retries + 1))
    return outcome
