"""Mark an organisation as enrolled in Microsoft's Extended Security Update program for Exchange 2016/2019."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from inventory.services import organisation_esu_set


class Command(BaseCommand):
    help = (
        "Record an organisation's ESU enrolment (--until YYYY-MM-DD) or remove it (--clear). Enrolled organisations "
        "get ESU-only updates in their verdicts and plans; the product stays end of life. Scan again afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("organisation", metavar="ORGANISATION")
        enrolment = parser.add_mutually_exclusive_group(required=True)
        enrolment.add_argument("--until", metavar="YYYY-MM-DD", help="the last day the enrolment covers")
        enrolment.add_argument("--clear", action="store_true", help="not enrolled")

    def handle(self, *args, organisation, until=None, clear=False, **options):
        try:
            end = None if clear else date.fromisoformat(until)
        except ValueError:
            raise CommandError(f"--until: {until!r} is not a date (YYYY-MM-DD)") from None
        try:
            found = organisation_esu_set(organisation=organisation, until=end)
        except LookupError as error:
            raise CommandError(f"organisation: {error.args[0]}") from None
        state = (
            f"enrolled in Extended Security Updates until {end.isoformat()}"
            if end
            else "not enrolled in Extended Security Updates"
        )
        self.stdout.write(f"{found.name}: {state}; run `scan` to refresh the verdicts")
