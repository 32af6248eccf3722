"""Import the fix list of an update from a KB article, announcement or blog post."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kb.engine.catalog import InvalidKBError
from kb.importers.documents import DocumentError, read_document
from kb.services import CatalogImportError, fixes_import_document


class Command(BaseCommand):
    help = "Extract every fixed issue (KB, title) from HTML, Markdown or text and link it to its update."

    def add_arguments(self, parser):
        parser.add_argument("location", metavar="PATH_OR_URL")
        parser.add_argument(
            "--update",
            metavar="KB",
            help="the update the fixes belong to: every catalog row of that KB (default: what "
            "the document's title and introduction name)",
        )
        parser.add_argument("--dry-run", action="store_true", help="parse and report; write nothing")
        parser.add_argument(
            "--json", action="store_true", help='print {"update": KB, "updates", "fixes": [{"kb", "title"}], "skipped"}'
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=settings.EXCHANGEPATCH_FETCH_TIMEOUT,
            help="seconds to wait for a URL (EXCHANGEPATCH_FETCH_TIMEOUT)",
        )

    def handle(self, *args, location, **options):
        try:
            document = read_document(location, timeout=options["timeout"])
            report = fixes_import_document(document=document, update_kb=options["update"], dry_run=options["dry_run"])
        except (DocumentError, CatalogImportError, InvalidKBError) as error:
            raise CommandError(str(error)) from None
        if options["json"]:
            payload = {
                "update": report.update_kb,
                "updates": report.updates,
                "fixes": [{"kb": kb, "title": title} for kb, title in report.fixes],
                "skipped": report.skipped,
            }
            self.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False))
            return
        prefix = "dry run, nothing written: " if report.dry_run else ""
        self.stdout.write(
            f"{prefix}{len(report.fixes)} fixes for {report.update_kb or '-'} ({'; '.join(report.updates)}): "
            f"{report.fixes_created} new fixes, {report.links_created} new links"
        )
        if report.skipped:
            self.stdout.write(f"  warning: {report.skipped}")
