"""Refresh the catalog from its configured sources now (what the daily job does), and queue the recompute."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from inventory.choices import ScanTrigger
from inventory.scans import scan_request
from inventory.tasks import scan_dispatch
from kb.models import CatalogRefresh
from kb.refresh import catalog_refresh


class Command(BaseCommand):
    help = (
        "Fetch and import every configured catalog source (EXCHANGEPATCH_CATALOG_SOURCES) or the URLs given; print "
        "what each source answered and what changed; then recompute the servers the changes touch."
    )

    def add_arguments(self, parser):
        parser.add_argument("urls", nargs="*", metavar="URL", help="file://, http(s):// URLs or paths instead")
        parser.add_argument("--no-recompute", action="store_true", help="import only; do not rescan")

    def handle(self, *args, urls, **options):
        refresh = catalog_refresh(urls=urls or None)
        if not refresh.sources:
            raise CommandError("no catalog source configured: set EXCHANGEPATCH_CATALOG_SOURCES or give URLs")
        for source in refresh.sources:
            counts = source.get("counts")
            extra = f": {counts['created']} created, {counts['updated']} updated" if counts else ""
            self.stdout.write(f"{source['url']}: {source['status']}{extra} ({source['detail']})")
        for change in refresh.changes.all():
            self.stdout.write(f"  {change.action}: {change.title} {change.kb} {change.build} [{change.source_name}]")
        if refresh.affected_levels and not options["no_recompute"]:
            with transaction.atomic():
                scan = scan_request(trigger=ScanTrigger.CATALOG, levels=refresh.affected_levels)
                CatalogRefresh.objects.filter(pk=refresh.pk).update(scan_id=scan.pk)
                scan_dispatch(scan.pk)
            levels = ", ".join(f"{product} {level}" for product, level in refresh.affected_levels)
            self.stdout.write(f"recompute of {levels}: scan {scan.pk}")
        if refresh.outcome in ("failed", "partial"):
            raise CommandError(f"catalog refresh {refresh.outcome}: see the sources above")
