"""Retention: per-scan counts and aggregates are kept for ever; per-server rows only for the newest N scans.

A 100,000-server estate scanned nightly writes 100,000 result rows a night; without this the table grows by 36
million rows a year. What is kept for every scan (ScanRun counts, ScanVerdict, ScanTally) is a few hundred rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inventory.choices import ScanStatus
from inventory.models import JobRun, Notification, ScanChunk, ScanRun, ScanTally, ServerResult, VerdictGap
from inventory.scans import tallies_write


@dataclass(slots=True)
class RetentionReport:
    scans_pruned: int = 0
    results_deleted: int = 0
    gaps_deleted: int = 0
    job_runs_deleted: int = 0
    notifications_deleted: int = 0

    def __str__(self) -> str:
        return (
            f"{self.results_deleted} per-server result(s) of {self.scans_pruned} scan(s) deleted, "
            f"{self.gaps_deleted} gap row(s), {self.job_runs_deleted} job run(s), "
            f"{self.notifications_deleted} notification(s)"
        )


def retention_apply(*, keep_scans: int | None = None, keep_days: int | None = None) -> RetentionReport:
    """Delete per-server rows of every finished scan older than the newest `keep_scans` succeeded ones (and of every
    failed scan: nobody reads them), one scan per transaction; writes a scan's aggregates first if it has none."""
    keep_scans = max(1, keep_scans or settings.EXCHANGEPATCH_RETAIN_SCANS)
    keep_days = keep_days or settings.EXCHANGEPATCH_RETAIN_JOB_DAYS
    report = RetentionReport()
    kept = list(
        ScanRun.objects.filter(status=ScanStatus.SUCCEEDED).order_by("-pk").values_list("pk", flat=True)[:keep_scans]
    )
    finished = ScanRun.objects.filter(status__in=(ScanStatus.SUCCEEDED, ScanStatus.FAILED)).exclude(pk__in=kept)
    for scan in finished.order_by("pk"):
        with transaction.atomic():
            if scan.status == ScanStatus.SUCCEEDED and not ScanTally.objects.filter(scan=scan).exists():
                tallies_write(scan)  # a scan from before tallies existed keeps its aggregates
            deleted, _ = ServerResult.objects.filter(scan=scan).delete()
            gaps, _ = VerdictGap.objects.filter(scan=scan).delete()
            ScanChunk.objects.filter(scan=scan).delete()
        if deleted or gaps:
            report.scans_pruned += 1
            report.results_deleted += deleted
            report.gaps_deleted += gaps
    cutoff = timezone.now() - timedelta(days=keep_days)
    report.job_runs_deleted, _ = JobRun.objects.filter(started_at__lt=cutoff).delete()
    _, by_model = Notification.objects.filter(created__lt=cutoff).delete()
    report.notifications_deleted = by_model.get(Notification._meta.label, 0)
    return report
