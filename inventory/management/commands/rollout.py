"""The estate's rollout order: waves that obey Exchange's rules, placed in maintenance windows."""

from django.core.management.base import BaseCommand, CommandError

from inventory.formats import FORMATS, render_rollout
from inventory.models import Site
from inventory.planning import plan_rollout


class Command(BaseCommand):
    help = "Rollout waves for a site or the whole estate (Internet-facing first, role order, one DAG member per wave)."

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--site", metavar="NAME")
        scope.add_argument("--all", action="store_true")
        parser.add_argument("--format", default="text", choices=FORMATS)

    def handle(self, *args, site=None, **options):
        if site and not Site.objects.filter(name=site).exists():
            raise CommandError(f"--site: {site!r} is not a site in the inventory")
        self.stdout.write(render_rollout(plan_rollout(site=site), options["format"]))
