"""Print the latest verdicts: per server state, what to install, what it supersedes, and why."""

import json

from django.core.management.base import BaseCommand, CommandError

from inventory.formats import level_text
from inventory.selectors import result_as_dict, results_latest, scan_latest
from kb.engine.compliance import STATES


class Command(BaseCommand):
    help = "The latest scan's verdicts, optionally for one server or one state; --json for machines."

    def add_arguments(self, parser):
        parser.add_argument("--server", metavar="FQDN")
        parser.add_argument("--state", choices=STATES)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, server=None, state=None, **options):
        if scan_latest() is None:
            raise CommandError("no scan yet: run `python manage.py scan` first")
        results = [result_as_dict(r) for r in results_latest(state=state, fqdn=server)]
        if server and not results:
            raise CommandError(f"--server: {server} is not in the inventory (or was added after the last scan)")
        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2))
            return
        for item in results:
            current = item["current"]
            level = level_text(current)
            install = item["install"]
            self.stdout.write(f"{item['fqdn']}: {item['state']} — {current['build']} {level}".rstrip())
            if install:
                self.stdout.write(f"  install {install['name']} ({install['kb'] or 'no KB'}) → {install['build']}")
            if item["missing_prerequisites"]:
                self.stdout.write("  prerequisites missing: " + "; ".join(item["missing_prerequisites"]))
            if item["days_behind"]:
                self.stdout.write(f"  {item['days_behind']} days behind")
            latest = item["latest_security_update"]
            if latest:
                has = {True: "yes", False: "no", None: "cannot tell"}[item["has_latest_security_update"]]
                esu = ", ESU-only update" if latest["esu_only"] else ""
                self.stdout.write(
                    f"  latest security update installed: {has} ({latest['name']} {latest['kb'] or ''}{esu})".replace(
                        " )", ")"
                    )
                )
            for reason in item["reasons"]:
                self.stdout.write(f"  - {reason}")
