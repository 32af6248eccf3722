"""Per update, how many servers miss it and which (from the latest scan)."""

import json

from django.core.management.base import BaseCommand, CommandError

from inventory.selectors import scan_latest, updates_needed
from kb.engine.catalog import InvalidKBError, normalize_kb


class Command(BaseCommand):
    help = "Updates needed by N servers (latest scan), most needed first; give a KB for one update."

    def add_arguments(self, parser):
        parser.add_argument("kb", nargs="?", metavar="KB")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, kb=None, **options):
        try:
            kb = normalize_kb(kb) if kb else None
        except InvalidKBError as error:
            raise CommandError(f"KB: {error}") from None
        scan = scan_latest()
        if scan is None:
            raise CommandError("no scan yet: run `python manage.py scan` first")
        needed = updates_needed(scan, kb=kb)
        if options["json"]:
            self.stdout.write(json.dumps(needed, indent=2))
            return
        for entry in needed:
            self.stdout.write(
                f"{entry['kb']}: needed by {entry['server_count']} server(s), the install target on {entry['install_targets']}"
            )
            for fqdn in entry["servers"]:
                self.stdout.write(f"  {fqdn}")
