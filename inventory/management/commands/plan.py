"""An ordered upgrade plan for one server."""

from django.core.management.base import BaseCommand, CommandError

from inventory.formats import FORMATS, render_plan
from inventory.planning import UnknownServerError, plan_server
from kb.engine.catalog import InvalidKBError
from kb.engine.planning import PlanError


class Command(BaseCommand):
    help = "Plan one server's upgrade: prerequisites, pre-steps, installs, post-steps and verification."

    def add_arguments(self, parser):
        parser.add_argument("--server", required=True, metavar="FQDN")
        parser.add_argument(
            "--target", help="default: the latest update of its level; or an update, a KB, a level (CU15) or SE"
        )
        parser.add_argument("--format", default="text", choices=FORMATS)

    def handle(self, *args, server, target=None, **options):
        try:
            plan = plan_server(server, target=target)
        except (UnknownServerError, PlanError, InvalidKBError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(render_plan(plan, options["format"]))
