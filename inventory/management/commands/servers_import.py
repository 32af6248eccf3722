"""Import servers from Get-ExchangeServer | Export-Csv output or a plain CSV; upsert by FQDN, all or nothing.

The file is read as a stream, BATCH rows at a time: each batch is validated and upserted inside one transaction that
spans the file, so memory stays flat with the file's size and a bad row anywhere still means nothing is written.
Once a row fails, the rest of the file is only validated (every error is reported by line and field) and the
transaction is rolled back.
"""

from itertools import islice
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from inventory.bulk import fewer_collections
from inventory.importers import ServerFileError, open_server_file
from inventory.records import records_from_items
from inventory.services import server_upsert_many

BATCH = 5000


class Command(BaseCommand):
    help = "Upsert servers by FQDN from a CSV; any row error is reported by line and field and nothing is written."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")

    def handle(self, *args, file: Path, dry_run: bool, **options):
        try:
            stream = file.open("rb")
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except OSError as error:
            raise CommandError(f"{file}: cannot be read ({error.strerror or error})") from None
        with stream:
            try:
                parsed = open_server_file(stream, name=str(file))
            except ServerFileError as error:
                raise CommandError(str(error)) from None
            if options["verbosity"] > 1:
                self.stderr.write(f"{file}: read as {parsed.description}")
            if parsed.ignored:
                self.stderr.write(f"warning: ignored column(s): {', '.join(parsed.ignored)}")
            try:
                with fewer_collections(), transaction.atomic():
                    counts, lines = self._import(parsed, file=file, verbose=options["verbosity"] > 1)
                    if dry_run:
                        transaction.set_rollback(True)
            except ServerFileError as error:
                raise CommandError(str(error)) from None
        prefix = "dry run, nothing written: " if dry_run else ""
        self.stdout.write(
            f"{prefix}{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged"
        )
        for line in lines:
            self.stdout.write(line)

    def _import(self, parsed, *, file: Path, verbose: bool) -> tuple[dict[str, int], list[str]]:
        """Validate and upsert the rows batch by batch; CommandError (the caller's transaction rolls back) if any
        row is bad or there is none."""
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        problems: dict[int, dict[str, str]] = {}  # line → field → reason; "" for a row that is not one
        first_seen: dict[str, int] = {}
        lines, records_seen = [], 0
        rows = iter(parsed.rows)
        while batch := list(islice(rows, BATCH)):
            broken = {line: item["__error__"] for line, item in batch if "__error__" in item}
            for line, reason in broken.items():
                problems[line] = {"": reason}
            valid, found = records_from_items(
                ((line, item) for line, item in batch if line not in broken),
                where=lambda line: f"on line {line}",
                typed=False,
                first_seen=first_seen,
            )
            for line, reasons in found.items():
                problems.setdefault(line, {}).update(reasons)
            records_seen += len(valid)
            if problems or not valid:
                continue  # nothing more is written: the rest is only validated
            results = server_upsert_many([record for _, record in valid], source=f"csv:{file.name}", copy_new=True)
            for result in results:
                counts[result.action] += 1
                if verbose:
                    lines.append(f"  {result.fqdn}: {result.action} {', '.join(result.changed)}".rstrip())
        if problems:
            for line in sorted(problems):
                reasons = problems[line]
                text = reasons[""] if "" in reasons else "; ".join(f"{k}: {v}" for k, v in reasons.items())
                self.stderr.write(f"line {line}: {text}")
            raise CommandError(f"{file}: {len(problems)} row(s) with errors; nothing was written")
        if not records_seen:
            raise CommandError(f"{file}: no server rows")
        for warning in parsed.warnings:
            self.stderr.write(f"warning: {warning}")
        return counts, lines
