"""Celery tasks of the catalog: the daily refresh, which then recomputes the servers its changes touch."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from inventory.choices import ScanTrigger
from inventory.jobs import job_run
from inventory.scans import scan_request
from inventory.tasks import IDEMPOTENT, scan_dispatch
from kb.models import CatalogRefresh
from kb.refresh import catalog_refresh


@shared_task(name="kb.catalog_refresh", time_limit=1800, soft_time_limit=1700, **IDEMPOTENT)
def catalog_refresh_task() -> int:
    """Fetch and import the configured sources; when updates were added or changed, queue a recompute of only the
    servers on the (product, level) pairs they touch. Idempotent: an unchanged document is not imported again."""
    with job_run("catalog_refresh") as record:
        refresh = catalog_refresh()
        sources = [
            f"{source['url']}: {source['status']}" + (f" ({source['detail']})" if source["status"] == "failed" else "")
            for source in refresh.sources
        ]
        record.detail = f"{refresh.outcome}: {refresh.created_count} created, {refresh.updated_count} updated; " + (
            "; ".join(sources)
        )
        if refresh.outcome == "failed":
            record.outcome = "failed"
        if refresh.affected_levels:
            with transaction.atomic():
                scan = scan_request(trigger=ScanTrigger.CATALOG, levels=refresh.affected_levels)
                CatalogRefresh.objects.filter(pk=refresh.pk).update(scan_id=scan.pk)
                scan_dispatch(scan.pk)
            record.detail += f"; recompute scan {scan.pk} queued"
        return refresh.pk
