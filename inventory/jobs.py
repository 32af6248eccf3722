"""Job bookkeeping and job health: job runs, worker heartbeats, the schedules, and what jobs_status, /healthz and the
portal read about them (jobs_overview, scan_trend)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Max
from django.utils import timezone

from inventory.choices import JobOutcome, ScanStatus
from inventory.models import JobRun, ScanRun, WorkerHeartbeat
from kb.models import CatalogSource
from kb.selectors import catalog_staleness

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 15
WORKER_ALIVE_SECONDS = 60  # "a worker answered in the last minute"


# -- job runs --------------------------------------------------------------------------------------


@dataclass(slots=True)
class JobRecord:
    """What a running job tells its record: a detail line, or that it skipped its work."""

    detail: str = ""
    outcome: str = JobOutcome.SUCCEEDED


@contextmanager
def job_run(job: str, *, task_id: str = "") -> Iterator[JobRecord]:
    """Record one run of a job: started, then succeeded / skipped with a detail, or failed with the error."""
    run = JobRun.objects.create(
        job=job, task_id=task_id or "", worker=f"{socket.gethostname()}:{os.getpid()}", started_at=timezone.now()
    )
    record = JobRecord()
    try:
        yield record
    except Exception as error:
        JobRun.objects.filter(pk=run.pk).update(
            outcome=JobOutcome.FAILED, finished_at=timezone.now(), detail=f"{type(error).__name__}: {error}"[:4000]
        )
        raise
    JobRun.objects.filter(pk=run.pk).update(outcome=record.outcome, finished_at=timezone.now(), detail=record.detail)


def job_last_success(job: str) -> datetime | None:
    return (
        JobRun.objects.filter(job=job, outcome=JobOutcome.SUCCEEDED)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )


# -- worker heartbeat ------------------------------------------------------------------------------


def worker_heartbeat_record(*, hostname: str, started_at: datetime) -> None:
    """Called by each worker every HEARTBEAT_SECONDS (exchangepatch/celery.py)."""
    close_old_connections()
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"pid": os.getpid(), "started_at": started_at, "last_seen": now}
    )


def worker_heartbeat_forget(*, hostname: str) -> None:
    """A worker shutting down cleanly says so, so health does not count it for the next minute."""
    close_old_connections()
    WorkerHeartbeat.objects.filter(hostname=hostname).delete()


def workers_alive(*, within: int = WORKER_ALIVE_SECONDS) -> list[WorkerHeartbeat]:
    return list(WorkerHeartbeat.objects.filter(last_seen__gte=timezone.now() - timedelta(seconds=within)))


# -- schedules -------------------------------------------------------------------------------------


def schedules_install(**_kwargs) -> int:
    """Write the schedules declared in settings.EXCHANGEPATCH_SCHEDULES into django-celery-beat's tables when they are
    missing (post_migrate). Existing rows are left alone: what an admin changed or disabled stays."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    if PeriodicTask._meta.db_table not in connection.introspection.table_names():
        return 0  # a partial `migrate <app> <migration>` that has not reached django-celery-beat yet
    created = 0
    with transaction.atomic():
        existing = set(PeriodicTask.objects.values_list("name", flat=True))
        for name, spec in settings.EXCHANGEPATCH_SCHEDULES.items():
            if name in existing:
                continue
            if "crontab" in spec:
                fields = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
                fields |= spec["crontab"]
                schedule, _ = CrontabSchedule.objects.get_or_create(**fields, timezone=settings.TIME_ZONE)
                kind = {"crontab": schedule}
            else:
                schedule, _ = IntervalSchedule.objects.get_or_create(
                    every=spec["every_seconds"], period=IntervalSchedule.SECONDS
                )
                kind = {"interval": schedule}
            PeriodicTask.objects.create(name=name, task=spec["task"], description=spec.get("description", ""), **kind)
            created += 1
    return created


# -- reads: jobs_status, /healthz, the portal ------------------------------------------------------


@dataclass(slots=True)
class JobStatus:
    job: str
    task: str
    schedule: str
    is_enabled: bool | None  # None: not a scheduled job
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_outcome: str = "never run"
    last_detail: str = ""

    @property
    def duration(self) -> float | None:
        if self.last_started and self.last_finished:
            return (self.last_finished - self.last_started).total_seconds()
        return None


@dataclass(slots=True)
class JobsOverview:
    jobs: list[JobStatus]
    workers: list[WorkerHeartbeat]
    queue_length: int | None  # None: no broker configured, or it could not be asked
    queue_error: str
    catalog_imported_at: datetime | None
    catalog_age_days: float | None
    catalog_warnings: list[str] = field(default_factory=list)


JOB_FOR_TASK = {
    "inventory.scan_scheduled": "scan",
    "kb.catalog_refresh": "catalog_refresh",
    "inventory.waivers_expire": "waiver_expiry",
    "inventory.digest_send": "digest",
    "inventory.retention_apply": "retention",
    "inventory.scan_watchdog": "scan_watchdog",
}


def jobs_overview(*, with_queue: bool = True) -> JobsOverview:
    """Last run, duration and outcome of each job, workers seen in the last minute, queue length, catalog age."""
    from django_celery_beat.models import PeriodicTask

    periodic = {task.task: task for task in PeriodicTask.objects.select_related("crontab", "interval")}
    jobs = []
    for name, spec in settings.EXCHANGEPATCH_SCHEDULES.items():
        task = periodic.get(spec["task"])
        schedule = str(task.crontab or task.interval) if task is not None else "not installed"
        jobs.append(JobStatus(JOB_FOR_TASK.get(spec["task"], name), spec["task"], schedule,
                              task.enabled if task is not None else False))  # fmt: skip
    latest = {}
    for run in JobRun.objects.filter(pk__in=_latest_run_ids()):
        latest[run.job] = run
    for status in jobs:
        run = latest.get(status.job)
        if status.job == "scan":
            scan = ScanRun.objects.exclude(status=ScanStatus.PENDING).order_by("-pk").first()
            if scan is not None:
                status.last_started, status.last_finished = scan.started_at, scan.finished_at
                status.last_outcome = scan.status
                status.last_detail = scan.error or f"scan {scan.pk}: {scan.server_count} servers ({scan.trigger})"
            continue
        if run is not None:
            status.last_started, status.last_finished = run.started_at, run.finished_at
            status.last_outcome, status.last_detail = run.outcome, run.detail
    length, error = queue_length() if with_queue else (None, "not asked")
    imported = CatalogSource.objects.aggregate(latest=Max("imported_at"))["latest"]
    age = (timezone.now() - imported).total_seconds() / 86400 if imported else None
    return JobsOverview(jobs, workers_alive(), length, error, imported, age, catalog_staleness())


def _latest_run_ids() -> list[int]:
    return [
        pk
        for pk in JobRun.objects.values("job").annotate(latest=Max("pk")).values_list("latest", flat=True)
        if pk is not None
    ]


def queue_length() -> tuple[int | None, str]:
    """Messages waiting in the default queue (Redis list length), or (None, why not)."""
    if not settings.CELERY_BROKER_URL:
        return None, "no broker configured (tasks run in-process)"
    from exchangepatch.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT)
            with connection.channel() as channel:
                _name, count, _consumers = channel.queue_declare(app.conf.task_default_queue)
                return count, ""
    except Exception as error:  # an unreachable broker is a status to show, not a crash
        return None, f"{type(error).__name__}: {error}"[:300]


@dataclass(frozen=True, slots=True)
class ScanPoint:
    scan: int
    as_of: object
    finished_at: datetime | None
    counts: dict
    newly_noncompliant: int
    newly_compliant: int
    newly_excepted: int


def scan_trend(*, limit: int = 90) -> list[ScanPoint]:
    """Per-scan counts of the last `limit` succeeded scans, oldest first (kept for ever, whatever the retention)."""
    rows = ScanRun.objects.filter(status=ScanStatus.SUCCEEDED).order_by("-pk")[:limit]
    return [
        ScanPoint(s.pk, s.as_of, s.finished_at, s.counts, s.newly_noncompliant, s.newly_compliant, s.newly_excepted)
        for s in reversed(list(rows))
    ]
