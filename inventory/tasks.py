"""Celery tasks: thin wrappers that take ids and call one service."""

from celery import shared_task

from inventory.models import ScanRun
from inventory.services import scan_run_execute


@shared_task(name="inventory.scan_run", time_limit=3600, soft_time_limit=3500)
def scan_run_task(scan_id: int) -> int:
    """Run a scan that was created (pending) by the API or the scheduler; idempotent for a finished scan."""
    scan = ScanRun.objects.get(pk=scan_id)
    if scan.status in ("succeeded", "running"):
        return scan.pk
    return scan_run_execute(scan_id=scan_id).pk
