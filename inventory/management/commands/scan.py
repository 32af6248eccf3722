"""Compute every server's compliance verdict and print the counts per state."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from inventory.scans import ScanBusyError, scan_run_execute
from kb.engine.compliance import STATES
from kb.models import Update


class Command(BaseCommand):
    help = "Run a compliance scan of all servers (set-based) and print servers per state."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="compute verdicts for this date (YYYY-MM-DD) instead of today")

    def handle(self, *args, as_of=None, **options):
        try:
            on = date.fromisoformat(as_of) if as_of else None
        except ValueError:
            raise CommandError(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)") from None
        if not Update.objects.exists():
            raise CommandError("the catalog is empty: run `python manage.py catalog_load` first")
        try:
            scan = scan_run_execute(as_of=on)
        except ScanBusyError as busy:
            raise CommandError(f"{busy}: wait for it to finish (two scans of one scope never overlap)") from None
        self.stdout.write(
            f"scan {scan.pk} as of {scan.as_of}: {scan.server_count} servers, {scan.distinct_count} distinct builds/facts, "
            f"{scan.newly_noncompliant} newly non-compliant"
        )
        for state in STATES:
            self.stdout.write(f"  {state:<24} {scan.counts.get(state, 0)}")
