"""Import servers from Get-ExchangeServer | Export-Csv output or a plain CSV; upsert by FQDN, all or nothing."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inventory.importers import ServerFileError, read_server_file
from inventory.records import records_from_items
from inventory.services import server_upsert_many


class Command(BaseCommand):
    help = "Upsert servers by FQDN from a CSV; any row error is reported by line and field and nothing is written."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")

    def handle(self, *args, file: Path, dry_run: bool, **options):
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except OSError as error:
            raise CommandError(f"{file}: cannot be read ({error.strerror or error})") from None
        try:
            parsed = read_server_file(data, name=str(file))
        except ServerFileError as error:
            raise CommandError(str(error)) from None
        if options["verbosity"] > 1:
            self.stderr.write(f"{file}: read as {parsed.description}")
        if parsed.ignored:
            self.stderr.write(f"warning: ignored column(s): {', '.join(parsed.ignored)}")
        rows = parsed.rows
        broken = {line: item["__error__"] for line, item in rows if "__error__" in item}
        valid, problems = records_from_items(
            ((line, item) for line, item in rows if line not in broken),
            where=lambda line: f"on line {line}",
            typed=False,
        )
        messages = {line: reason for line, reason in broken.items()}
        messages |= {
            line: "; ".join(f"{name}: {reason}" for name, reason in found.items()) for line, found in problems.items()
        }
        errors = [f"line {line}: {messages[line]}" for line in sorted(messages)]
        records = [record for _, record in valid]
        if errors:
            for error in errors:
                self.stderr.write(error)
            raise CommandError(f"{file}: {len(errors)} row(s) with errors; nothing was written")
        if not records:
            raise CommandError(f"{file}: no server rows")
        for warning in parsed.warnings:
            self.stderr.write(f"warning: {warning}")
        results = server_upsert_many(records, source=f"csv:{file.name}", dry_run=dry_run)
        counts = {action: sum(r.action == action for r in results) for action in ("created", "updated", "unchanged")}
        prefix = "dry run, nothing written: " if dry_run else ""
        self.stdout.write(
            f"{prefix}{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged"
        )
        if options["verbosity"] > 1:
            for result in results:
                self.stdout.write(f"  {result.fqdn}: {result.action} {', '.join(result.changed)}".rstrip())
