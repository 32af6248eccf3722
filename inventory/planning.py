"""Planning over the inventory: load servers as planning values (fixed number of queries) and run the engine."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.utils import timezone

from inventory.models import ClusterMember, MaintenanceWindow, Organisation, Server
from inventory.records import fqdn_normalised
from kb.engine.coexistence import CoexistenceReport, coexistence_check
from kb.engine.compliance import ServerFacts
from kb.engine.estate import Estate, EstateServer, Rollout, WindowSpec, rollout_plan
from kb.engine.planning import GroupPlan, Plan, PlanServer
from kb.selectors import catalog_get, rules_get, today


class UnknownServerError(LookupError):
    pass


def estate_servers(*, organisation: str | None = None) -> list[EstateServer]:
    """Servers with their site, cluster role, ESU enrolment and maintenance windows (five queries, whatever the
    count). Plans need the whole organisation: the other members of a cluster, the versions beside it, the Active
    Directory preparation its servers imply."""
    servers = Server.objects.select_related("site", "organisation").order_by("fqdn")
    if organisation:
        servers = servers.filter(organisation__name=organisation)
    servers = list(servers)
    ids = [server.pk for server in servers]
    members = {m.server_id: m for m in ClusterMember.objects.filter(server_id__in=ids).select_related("cluster")}
    windows_by_server: dict[int, list[WindowSpec]] = defaultdict(list)
    windows_by_site: dict[int, list[WindowSpec]] = defaultdict(list)
    specs = {
        window.pk: WindowSpec(
            window.name,
            window.time_zone,
            tuple(window.weekdays),
            window.start_time,
            window.duration_minutes,
            window.week_of_month,
        )
        for window in MaintenanceWindow.objects.all()
    }
    # The link tables as id pairs: a prefetch would build a model for every linked server of the estate.
    for window_id, server_id in MaintenanceWindow.servers.through.objects.values_list(
        "maintenancewindow_id", "server_id"
    ):
        windows_by_server[server_id].append(specs[window_id])
    for window_id, site_id in MaintenanceWindow.sites.through.objects.values_list("maintenancewindow_id", "site_id"):
        windows_by_site[site_id].append(specs[window_id])
    result = []
    for server in servers:
        member = members.get(server.pk)
        plan_server = PlanServer(
            fqdn=server.fqdn,
            facts=ServerFacts(
                server.reported_build, server.build_source, tuple(server.role_list), server.dotnet_version or None,
                tuple(sorted((server.prerequisites or {}).items())), server.organisation.esu_enrolled_until,
            ),
            is_forefront_installed=server.is_forefront_installed,
            cluster=member.cluster.name if member else None,
            cluster_kind=member.cluster.kind if member else None,
            is_active=bool(member and member.is_active),
            is_clustered_mailbox_server=server.is_clustered_mailbox_server,
        )  # fmt: skip
        windows = windows_by_server.get(server.pk) or windows_by_site.get(server.site_id, [])
        result.append(
            EstateServer(
                plan_server,
                server.site.name if server.site else "",
                bool(server.site and server.site.is_internet_facing),
                tuple(windows),
                server.organisation.name,
            )
        )
    return result


def _estate(organisation: str | None = None) -> Estate:
    return Estate(estate_servers(organisation=organisation), catalog_get(), rules_get(), today=today())


def plan_server(fqdn: str, *, target: str | None = None) -> Plan:
    """One server's plan: its view of its cluster's plan when it is a member (the organisation is loaded whole)."""
    organisation = (
        Server.objects.filter(fqdn=fqdn_normalised(fqdn)).values_list("organisation__name", flat=True).first()
    )
    if organisation is None:
        raise UnknownServerError(f"--server: {fqdn} is not in the inventory")
    return _estate(organisation).plan_server(fqdn_normalised(fqdn), target=target)


def plan_cluster(name: str, *, organisation: str | None = None, target: str | None = None) -> GroupPlan:
    """The whole plan of a cluster or DAG (or of the cluster of a clustered mailbox server named by its name)."""
    if organisation and not Organisation.objects.filter(name=organisation).exists():
        raise UnknownServerError(f"--organisation: {organisation!r} is not an organisation in the inventory")
    estate = _estate(organisation)
    return estate.plan_group(estate.group_named(name, organisation), target=target)


def plan_rollout(*, site: str | None = None, start: datetime | None = None) -> Rollout:
    return rollout_plan(
        estate_servers(), catalog_get(), rules_get(), today=today(), start=start or timezone.now(), site=site
    )


def check_coexistence(
    introduce: str | None, *, site: str | None = None, organisation: str | None = None
) -> CoexistenceReport:
    return coexistence_check(
        introduce, estate_servers(), catalog_get(), rules_get(), today=today(), site=site, organisation=organisation
    )
