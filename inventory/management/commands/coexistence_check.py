"""What blocks introducing a newer (or older) Exchange version, what already runs side by side against Microsoft's
rules, and the plans that clear each blocker."""

from django.core.management.base import BaseCommand, CommandError

from inventory.formats import render_coexistence
from inventory.models import Organisation, Site
from inventory.planning import check_coexistence
from kb.engine.planning import PlanError


class Command(BaseCommand):
    help = (
        "Coexistence blockers for introducing Exchange 2010, 2013, 2016, 2019 or SE, and unsupported mixes already "
        "present (without --introduce: those only); organisation-wide and per-AD-site rules from kb/data/rules.json."
    )

    def add_arguments(self, parser):
        parser.add_argument("--introduce", metavar="PRODUCT", help="2010, 2013, 2016, 2019 or SE")
        parser.add_argument("--site", metavar="NAME", help="the AD site that gets the new servers")
        parser.add_argument("--organisation", metavar="NAME", help="default: every organisation, each on its own")
        parser.add_argument("--format", default="text", choices=("text", "json"))

    def handle(self, *args, introduce=None, site=None, organisation=None, **options):
        if introduce is not None:
            introduce = introduce.upper().removeprefix("EXCHANGE").strip().removeprefix("SERVER").strip()
        if site and not Site.objects.filter(name=site).exists():
            raise CommandError(f"--site: {site!r} is not a site in the inventory")
        if organisation and not Organisation.objects.filter(name=organisation).exists():
            raise CommandError(f"--organisation: {organisation!r} is not an organisation in the inventory")
        try:
            report = check_coexistence(introduce, site=site, organisation=organisation)
        except PlanError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(render_coexistence(report, options["format"]))
