"""An ordered upgrade plan for one server, or for a whole cluster or DAG."""

from django.core.management.base import BaseCommand, CommandError

from inventory.formats import FORMATS, render_group_plan, render_plan
from inventory.planning import UnknownServerError, plan_cluster, plan_server
from kb.engine.catalog import InvalidKBError
from kb.engine.planning import PlanError


class Command(BaseCommand):
    help = (
        "Plan one server's upgrade (a cluster member: its view of the cluster plan), or a whole cluster or DAG: "
        "AD preparation, prerequisites, gates, maintenance and failover steps, installs, verification."
    )

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--server", metavar="FQDN")
        scope.add_argument(
            "--cluster", metavar="NAME", help="a DAG, a 2007 CCR/SCC/SCR cluster or its clustered mailbox server"
        )
        parser.add_argument("--organisation", metavar="NAME", help="with --cluster, when the name exists in several")
        parser.add_argument(
            "--target", help="default: the latest update of its level; or an update, a KB, a level (CU15) or SE"
        )
        parser.add_argument("--format", default="text", choices=FORMATS)

    def handle(self, *args, server=None, cluster=None, organisation=None, target=None, **options):
        try:
            if cluster:
                output = render_group_plan(
                    plan_cluster(cluster, organisation=organisation, target=target), options["format"]
                )
            else:
                output = render_plan(plan_server(server, target=target), options["format"])
        except (UnknownServerError, PlanError, InvalidKBError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(output)
