"""Import a build-number document (Microsoft's page as HTML or Markdown, or the Get-ExchangeBuildNumber CSV)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kb.importers.build_page import BuildTableError
from kb.importers.documents import DocumentError, read_document
from kb.services import CatalogImportError, catalog_import_document, document_date_parse


class Command(BaseCommand):
    help = "Import builds from a path, file:// or http(s):// URL; prints created / updated / unchanged / conflicts."

    def add_arguments(self, parser):
        parser.add_argument("location", metavar="PATH_OR_URL")
        parser.add_argument("--format", default="auto", choices=("auto", "html", "markdown", "csv"))
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
        parser.add_argument("--document-date", help="the document's own date (YYYY-MM-DD) for provenance")
        parser.add_argument(
            "--timeout",
            type=float,
            default=settings.EXCHANGEPATCH_FETCH_TIMEOUT,
            help="seconds to wait for a URL (EXCHANGEPATCH_FETCH_TIMEOUT)",
        )

    def handle(self, *args, location, **options):
        try:
            document_date = document_date_parse(options["document_date"])
            document = read_document(location, timeout=options["timeout"])
            report = catalog_import_document(
                document=document, fmt=options["format"], dry_run=options["dry_run"], document_date=document_date
            )
        except (DocumentError, BuildTableError, CatalogImportError) as error:
            raise CommandError(str(error)) from None
        counts = report.counts
        prefix = "dry run, nothing written: " if report.dry_run else ""
        self.stdout.write(
            f"{prefix}{report.source} ({report.format}): {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['conflicts']} conflicts, {len(report.skipped)} skipped"
        )
        for conflict in report.conflicts:
            self.stdout.write(
                f"  conflict: {conflict.title} {conflict.field}: kept {conflict.kept_value or '-'} "
                f"({conflict.kept_source or '-'}), {conflict.other_source} says {conflict.other_value}"
                + (f" [{conflict.note}]" if conflict.note else "")
            )
        for line in report.warnings:
            self.stdout.write(f"  warning: {line}")
        if options["verbosity"] > 1:
            for line in report.skipped:
                self.stdout.write(f"  skipped: {line}")
