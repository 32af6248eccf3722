"""Which servers lack a fix (KB), computed from their builds and the updates that carry it."""

import json

from django.core.management.base import BaseCommand, CommandError

from inventory.selectors import fix_status
from kb.engine.catalog import InvalidKBError, normalize_kb


class Command(BaseCommand):
    help = "List servers lacking fix KB N (present when the server runs a carrying update or a later level)."

    def add_arguments(self, parser):
        parser.add_argument("kb", metavar="KB")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, kb, **options):
        try:
            kb = normalize_kb(kb)
        except InvalidKBError as error:
            raise CommandError(f"KB: {error}") from None
        status = fix_status(kb)
        if status is None:
            raise CommandError(f"KB: {kb} is not a fix in the catalog (import its update's fix list with fixes_import)")
        if options["json"]:
            payload = status.as_dict()
            self.stdout.write(json.dumps(payload, indent=2))
            return
        self.stdout.write(f"{status.kb} {status.title}")
        self.stdout.write(f"  carried by: {'; '.join(status.carriers)}")
        self.stdout.write(
            f"  {len(status.lacking)} lacking, {status.present} have it, {len(status.unknown)} cannot tell, {len(status.excepted)} excepted, {status.not_applicable} run another product"
        )
        for fqdn in status.lacking:
            self.stdout.write(f"  lacking: {fqdn}")
        for fqdn in status.unknown:
            self.stdout.write(f"  cannot tell (rollup level unknown or unknown build): {fqdn}")
        for fqdn in status.excepted:
            self.stdout.write(f"  excepted by a waiver: {fqdn}")
