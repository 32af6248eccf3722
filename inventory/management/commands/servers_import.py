"""Import servers from Get-ExchangeServer | Export-Csv output or a plain CSV; upsert by FQDN, all or nothing."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inventory.importers import ServerFileError, parse_server_csv
from inventory.records import server_record_from_mapping
from inventory.services import server_upsert_many


class Command(BaseCommand):
    help = "Upsert servers by FQDN from a CSV; any row error is reported by line and field and nothing is written."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")

    def handle(self, *args, file: Path, dry_run: bool, **options):
        try:
            text = file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: cannot be read ({error})") from None
        try:
            rows = parse_server_csv(text, name=str(file))
        except ServerFileError as error:
            raise CommandError(str(error)) from None
        records, errors, seen = [], [], {}
        for line, item in rows:
            if "__error__" in item:
                errors.append(f"line {line}: {item['__error__']}")
                continue
            record, problems = server_record_from_mapping(item)
            if record is not None and record.fqdn in seen:
                problems = {"fqdn": f"{record.fqdn} is also on line {seen[record.fqdn]}"}
            if problems:
                errors.append(f"line {line}: " + "; ".join(f"{name}: {reason}" for name, reason in problems.items()))
                continue
            seen[record.fqdn] = line
            records.append(record)
        if errors:
            for error in errors:
                self.stderr.write(error)
            raise CommandError(f"{file}: {len(errors)} row(s) with errors; nothing was written")
        if not records:
            raise CommandError(f"{file}: no server rows")
        results = server_upsert_many(records, source=f"csv:{file.name}", dry_run=dry_run)
        counts = {action: sum(r.action == action for r in results) for action in ("created", "updated", "unchanged")}
        prefix = "dry run, nothing written: " if dry_run else ""
        self.stdout.write(
            f"{prefix}{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged"
        )
        if options["verbosity"] > 1:
            for result in results:
                self.stdout.write(f"  {result.fqdn}: {result.action} {', '.join(result.changed)}".rstrip())
