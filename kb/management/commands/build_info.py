"""Resolve builds against the catalog: product, level, update, KB, support."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from kb.engine.lookup import FIELD_LABELS, build_info
from kb.selectors import catalog_get, catalog_staleness, today


class Command(BaseCommand):
    help = (
        "Describe Exchange builds (short, long/ExSetup, AdminDisplayVersion 'Version 15.2 (Build 1544.4)' or the AD "
        "serialNumber 'Version 15.2 (Build 31544.4)'); '-' reads stdin."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "builds", nargs="+", metavar="BUILD", help="a build, or '-' to read one build a line from stdin"
        )
        parser.add_argument("--json", action="store_true", help="print a JSON list, one object per input, in order")

    def handle(self, *args, builds, **options):
        inputs = []
        for item in builds:
            if item == "-":
                inputs.extend(line.strip() for line in sys.stdin if line.strip())
            else:
                inputs.append(item)
        catalog = catalog_get()
        if not catalog.entries:
            raise CommandError("the catalog is empty: run `python manage.py catalog_load` first")
        on = today()
        for warning in catalog_staleness():  # on stderr: the table and the JSON keep their shape
            self.stderr.write(f"warning: {warning}; verdicts may miss newer updates")
        results = [build_info(text, catalog, today=on) for text in inputs]
        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2))
        else:
            self._table(results)
        if any(result["error"] for result in results):
            raise CommandError("; ".join(result["error"] for result in results if result["error"]))

    def _table(self, results):
        header = ("INPUT", "PRODUCT", "LEVEL", "UPDATE", "KB", "RELEASED", "EXACT", "SUPPORTED", "LATEST")
        rows = [
            (
                r["input"], r["product"] or "-", r["level"] or "-", r["update"] or "-", r["kb"] or "-",
                r["release_date"] or "-", _yes(r["exact"]), _yes(r["is_supported"]), _yes(r["is_latest"]),
            )
            for r in results
        ]  # fmt: skip
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write(
                "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )
        # A note every input shares (the catalog's age) is said once, after the others.
        described = [r for r in results if not r["error"]]
        shared = set.intersection(*(set(r["notes"]) for r in described)) if len(described) > 1 else set()
        for r in results:
            if r["form"] in FORM_NAMES:
                self.stdout.write(f"  {r['input']}: form: {FORM_NAMES[r['form']]}")
            if r["sources"]:
                self.stdout.write(f"  {r['input']}: {_sources_text(r['sources'])}")
            for note in r["notes"]:
                if note not in shared:
                    self.stdout.write(f"  {r['input']}: {note}")
            if r["error"]:
                self.stdout.write(f"  error: {r['error']}")
        for note in described[0]["notes"] if shared else ():
            if note in shared:
                self.stdout.write(f"  all: {note}")


# The forms worth naming in the text output (the short and long forms speak for themselves).
FORM_NAMES = {
    "admin_display": "AdminDisplayVersion (Get-ExchangeServer): the level only",
    "ad_serial_number": "Active Directory serialNumber: the level only",
}


def _sources_text(sources: dict[str, str]) -> str:
    """ "build and release date from ExchangeBuildNumbers.csv; KB from build-numbers-and-release-dates.md"."""
    by_source: dict[str, list[str]] = {}
    for name, source in sources.items():
        by_source.setdefault(source, []).append(FIELD_LABELS[name])
    parts = []
    for source, labels in by_source.items():
        fields = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
        parts.append(f"{fields} from {source}")
    return "; ".join(parts)


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"
