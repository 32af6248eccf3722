"""Load the bundled catalog snapshot and rules (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from kb.services import CatalogImportError, catalog_load_snapshot


class Command(BaseCommand):
    help = "Load the bundled catalog snapshot (kb/data/catalog.json) and rules (kb/data/rules.json); safe to re-run."

    def handle(self, *args, **options):
        try:
            report = catalog_load_snapshot()
        except CatalogImportError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"catalog: {report.entries_created} created, {report.entries_updated} updated; "
            f"conflicts: {report.conflicts_created} new; fixes: {report.fixes_created} new, {report.links_created} links; "
            f"rules: {report.rules.created} created, {report.rules.updated} updated, {report.rules.unchanged} unchanged"
            + (f", {report.rules.removed} removed (no longer bundled)" if report.rules.removed else "")
        )
