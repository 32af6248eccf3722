"""What blocks introducing a newer Exchange version into the organisation or a site, and the plan to clear it."""

from django.core.management.base import BaseCommand, CommandError

from inventory.formats import render_blockers
from inventory.models import Organisation, Site
from inventory.planning import check_coexistence
from kb.engine.planning import PlanError


class Command(BaseCommand):
    help = "List coexistence blockers for introducing Exchange 2010, 2013, 2016, 2019 or SE (rules from kb/data/rules.json)."

    def add_arguments(self, parser):
        parser.add_argument("--introduce", required=True, metavar="PRODUCT", help="2010, 2013, 2016, 2019 or SE")
        parser.add_argument("--site", metavar="NAME")
        parser.add_argument("--organisation", metavar="NAME", help="default: every organisation, each on its own")
        parser.add_argument("--format", default="text", choices=("text", "json"))

    def handle(self, *args, introduce, site=None, organisation=None, **options):
        introduce = introduce.upper().removeprefix("EXCHANGE").strip()
        if site and not Site.objects.filter(name=site).exists():
            raise CommandError(f"--site: {site!r} is not a site in the inventory")
        if organisation and not Organisation.objects.filter(name=organisation).exists():
            raise CommandError(f"--organisation: {organisation!r} is not an organisation in the inventory")
        try:
            blockers = check_coexistence(introduce, site=site, organisation=organisation)
        except PlanError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(render_blockers(introduce, blockers, options["format"]))
