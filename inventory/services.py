"""Writes to the inventory: upsert servers by FQDN, run scans (inventory/scans.py); each one transaction."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from django.db import connection, models, transaction
from django.utils import timezone

from inventory.bulk import rows_insert
from inventory.changes import changes_record
from inventory.models import (
    Cluster,
    ClusterMember,
    Organisation,
    Server,
    Site,
    Tag,
)
from inventory.records import ServerRecord
from inventory.scans import scan_run_execute as scan_run_execute

logger = logging.getLogger(__name__)
BATCH = 2000

# Server attributes a record may state, compared to decide created / updated / unchanged.
SIMPLE_FIELDS = (
    "name", "roles", "edition", "reported_build", "build_source", "os_name", "dotnet_version", "prerequisites",
    "is_forefront_installed", "environment", "owner", "last_reported",
)  # fmt: skip


@dataclass(slots=True)
class UpsertResult:
    index: int
    fqdn: str
    action: str  # "created", "updated" or "unchanged"
    changed: list[str] = field(default_factory=list)
    server_id: int | None = None


def server_upsert_many(records: list[ServerRecord], *, source: str, dry_run: bool = False) -> list[UpsertResult]:
    """Upsert servers by FQDN (case-insensitive) in one transaction; a dry run rolls everything back.

    Fields a record does not state are left as stored; only rows whose values change are written, so sending the
    same payload twice changes no `last_updated`. Stored servers are compared as plain rows: a model instance is
    built only for a server that changes.
    """
    now = timezone.now()
    with transaction.atomic():
        matching = Server.objects.filter(fqdn__in=[r.fqdn for r in records])
        stored = {row["fqdn"]: row for row in matching.values(*STORED_FIELDS)}
        ids = matching.values("pk")  # a subquery: the FQDNs are sent once
        org_names = dict(Organisation.objects.filter(servers__in=ids).distinct().values_list("pk", "name"))
        memberships = {
            server_id: (name, kind, is_active)
            for server_id, name, kind, is_active in ClusterMember.objects.filter(server_id__in=ids).values_list(
                "server_id", "cluster__name", "cluster__kind", "is_active"
            )
        }
        current_tags: dict[int, list[str]] = {}
        links = Server.tags.through.objects.filter(server_id__in=ids)
        for server_id, name in links.values_list("server_id", "tag__name").order_by("server_id", "tag__name"):
            current_tags.setdefault(server_id, []).append(name)
        organisations = _organisations_ensure(records, stored, org_names)
        org_names |= {org.pk: name for name, org in organisations.items()}
        sites = _sites_ensure(records, stored, organisations, org_names)
        results, to_create, to_update, tag_changes, cluster_changes = [], [], [], [], []
        servers: dict[str, Server] = {}
        for index, record in enumerate(records):
            row = stored.get(record.fqdn)
            if row is None:
                organisation = organisations[_organisation_name(record, None, org_names)]
                server = Server(fqdn=record.fqdn, name=record.fqdn.split(".")[0], build_source="manual",
                                organisation_id=organisation.pk)  # fmt: skip
                row = {name: getattr(server, name) for name in STORED_FIELDS}
            else:
                server = None
            changes = _changes(row, record, organisations, sites, org_names)
            changed = sorted({PUBLIC_NAMES.get(name, name) for name in changes})
            if "tags" in record.provided and record.get("tags") != current_tags.get(row["id"], []):
                changed.append("tags")
            if "cluster" in record.provided and _cluster_differs(memberships.get(row["id"]), record):
                changed.append("cluster")
            if server is None and changed:
                server = Server(**row)
            if server is not None:
                for name, value in changes.items():
                    setattr(server, name, value)
                server.sync_source, server.last_updated = source, now
                servers[record.fqdn] = server
            if "tags" in changed:
                tag_changes.append((record.fqdn, record.get("tags")))
            if "cluster" in changed:
                cluster_changes.append((record.fqdn, record))
            if row["id"] is None:
                to_create.append(server)
                results.append(UpsertResult(index, record.fqdn, "created", sorted(record.provided)))
            elif changed:
                to_update.append(server)
                results.append(UpsertResult(index, record.fqdn, "updated", changed, row["id"]))
            else:
                results.append(UpsertResult(index, record.fqdn, "unchanged", [], row["id"]))
        _servers_insert(to_create, now)
        Server.objects.bulk_update(
            to_update,
            [*SIMPLE_FIELDS, "organisation", "site", "build_major", "build_minor", "build_number", "build_revision",
             "sync_source", "last_updated"],
            batch_size=BATCH,
        )  # fmt: skip
        for result in results:
            if result.server_id is None:
                result.server_id = servers[result.fqdn].pk
        _tags_write([(servers[fqdn], tags) for fqdn, tags in tag_changes])
        _clusters_write([(servers[fqdn], record) for fqdn, record in cluster_changes])
        changes_record(
            ("server", r.server_id, r.fqdn, r.action, {"changed": r.changed, "source": source})
            for r in results
            if r.action != "unchanged"
        )
        if dry_run:
            transaction.set_rollback(True)
    return results


def _servers_insert(servers: list[Server], now) -> None:
    """Insert new servers through the database's bulk path (COPY on PostgreSQL), then read their ids back by FQDN:
    bulk_create spent most of a 10,000-item sync preparing values field by field."""
    if not servers:
        return
    fields = [column for column in Server._meta.concrete_fields if not column.primary_key]
    rows = []
    for server in servers:
        server.created = now
        row = []
        for column in fields:
            value = getattr(server, column.attname)
            if isinstance(column, models.JSONField):
                value = json.dumps(value)
            elif isinstance(column, models.DateTimeField):
                value = connection.ops.adapt_datetimefield_value(value)
            row.append(value)
        rows.append(tuple(row))
    rows_insert(Server, [column.column for column in fields], rows)
    ids = dict(Server.objects.filter(fqdn__in=[server.fqdn for server in servers]).values_list("fqdn", "pk"))
    for server in servers:
        server.pk = ids[server.fqdn]
        server._state.adding = False


BUILD_PARTS = ("build_major", "build_minor", "build_number", "build_revision")
STORED_FIELDS = ("id", "fqdn", "organisation_id", "site_id", *SIMPLE_FIELDS, *BUILD_PARTS)
# Column names as a caller knows them in `changed`.
PUBLIC_NAMES = {
    "organisation_id": "organisation",
    "site_id": "site",
    "reported_build": "build",
    "build_source": "build",
}
PUBLIC_NAMES |= dict.fromkeys(BUILD_PARTS, "build")


def _changes(row: dict, record: ServerRecord, organisations, sites, org_names: dict[int, str]) -> dict[str, object]:
    """Column → new value for what the record states differently from the stored row."""
    values = record.values
    changes = {name: values[name] for name in SIMPLE_FIELDS if name in values and row[name] != values[name]}
    if "build" in values:
        build = values["build"]
        parts = (build.major, build.minor, build.build, build.revision) if build else (None, None, None, None)
        changes |= {name: part for name, part in zip(BUILD_PARTS, parts, strict=True) if row[name] != part}
    organisation_id = row["organisation_id"]
    if values.get("organisation"):
        organisation_id = organisations[str(values["organisation"])].pk
        if organisation_id != row["organisation_id"]:
            changes["organisation_id"] = organisation_id
    if "site" in values:
        site = sites.get((org_names[organisation_id], str(values["site"]))) if values["site"] else None
        if row["site_id"] != (site.pk if site else None):
            changes["site_id"] = site.pk if site else None
    return changes


def _organisation_name(record: ServerRecord, row: dict | None, org_names: dict[int, str]) -> str:
    if record.get("organisation"):
        return str(record.get("organisation"))
    if row is not None and row["organisation_id"]:
        return org_names[row["organisation_id"]]
    return record.fqdn.split(".", 1)[1] if "." in record.fqdn else record.fqdn


def _organisations_ensure(
    records: list[ServerRecord], stored: dict[str, dict], org_names: dict[int, str]
) -> dict[str, Organisation]:
    names = {_organisation_name(r, stored.get(r.fqdn), org_names) for r in records}
    found = {org.name: org for org in Organisation.objects.filter(name__in=names)}
    missing = [Organisation(name=name) for name in sorted(names - found.keys())]
    Organisation.objects.bulk_create(missing)
    return found | {org.name: org for org in Organisation.objects.filter(name__in=[o.name for o in missing])}


def _sites_ensure(
    records: list[ServerRecord], stored: dict[str, dict], organisations: dict[str, Organisation],
    org_names: dict[int, str],
) -> dict[tuple[str, str], Site]:  # fmt: skip
    wanted: dict[tuple[str, str], bool | None] = {}
    for record in records:
        if record.get("site"):
            key = (_organisation_name(record, stored.get(record.fqdn), org_names), str(record.get("site")))
            flag = record.get("site_is_internet_facing") if "site_is_internet_facing" in record.provided else None
            wanted[key] = flag if flag is not None else wanted.get(key)
    if not wanted:
        return {}
    org_ids = {organisations[org].pk for org, _ in wanted}
    found = {
        (site.organisation.name, site.name): site
        for site in Site.objects.filter(
            organisation_id__in=org_ids, name__in=[name for _, name in wanted]
        ).select_related("organisation")
    }
    to_create = [
        Site(organisation=organisations[org], name=name, is_internet_facing=bool(flag))
        for (org, name), flag in wanted.items()
        if (org, name) not in found
    ]
    Site.objects.bulk_create(to_create)
    to_update = []
    for key, flag in wanted.items():
        site = found.get(key)
        if site is not None and flag is not None and site.is_internet_facing != flag:
            site.is_internet_facing = flag
            to_update.append(site)
    Site.objects.bulk_update(to_update, ["is_internet_facing"])
    if to_create:
        found |= {
            (site.organisation.name, site.name): site
            for site in Site.objects.filter(pk__in=[s.pk for s in to_create]).select_related("organisation")
        }
    return found


def _cluster_differs(membership: tuple | None, record: ServerRecord) -> bool:
    """membership: (cluster name, kind, is_active) as stored, or None."""
    wanted = record.get("cluster") or ""
    if not wanted:
        return membership is not None
    return membership != (wanted, record.get("cluster_kind"), record.get("cluster_role") == "active")


def _tags_write(changes: list[tuple[Server, list[str]]]) -> None:
    if not changes:
        return
    names = {name for _, tags in changes for name in tags}
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    tags = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
    through = Server.tags.through
    through.objects.filter(server_id__in=[server.pk for server, _ in changes]).delete()
    rows_insert(
        through, ("server_id", "tag_id"), [(server.pk, tags[name]) for server, wanted in changes for name in wanted]
    )


def _clusters_write(changes: list[tuple[Server, ServerRecord]]) -> None:
    """Memberships of the changed servers, in a fixed number of queries whatever their count."""
    if not changes:
        return
    ClusterMember.objects.filter(server_id__in=[server.pk for server, _ in changes]).delete()
    wanted = {
        (server.organisation_id, record.get("cluster")): record.get("cluster_kind")
        for server, record in changes
        if record.get("cluster")
    }
    if not wanted:
        return
    found = {
        (cluster.organisation_id, cluster.name): cluster
        for cluster in Cluster.objects.filter(
            organisation_id__in={org for org, _ in wanted}, name__in={name for _, name in wanted}
        )
    }
    Cluster.objects.bulk_create(
        [
            Cluster(organisation_id=org, name=name, kind=kind)
            for (org, name), kind in wanted.items()
            if (org, name) not in found
        ]
    )
    stale = [c for key, c in found.items() if c.kind != wanted.get(key, c.kind)]
    for cluster in stale:
        cluster.kind = wanted[(cluster.organisation_id, cluster.name)]
    Cluster.objects.bulk_update(stale, ["kind"])
    ids = dict(
        ((org, name), pk)
        for org, name, pk in Cluster.objects.filter(
            organisation_id__in={org for org, _ in wanted}, name__in={name for _, name in wanted}
        ).values_list("organisation_id", "name", "pk")
    )
    rows_insert(
        ClusterMember,
        ("cluster_id", "server_id", "is_active"),
        [
            (ids[(server.organisation_id, record.get("cluster"))], server.pk, record.get("cluster_role") == "active")
            for server, record in changes
            if record.get("cluster")
        ],
    )


# -- scans -----------------------------------------------------------------------------------------
# Scans run in chunks that several workers share; the code lives in inventory/scans.py (scan_run_execute, imported
# above, stays importable from here).


# -- single-object writes (API) ---------------------------------------------------------------------


def server_delete(server: Server) -> None:
    with transaction.atomic():
        changes_record([("server", server.pk, server.fqdn, "deleted", None)])
        server.delete()


def waiver_save(waiver, *, is_new: bool) -> None:
    with transaction.atomic():
        waiver.save()
        data = {"target_kb": waiver.target_kb, "expires_at": waiver.expires_at.isoformat()}
        changes_record([("waiver", waiver.pk, str(waiver.pk), "created" if is_new else "updated", data)])


def waiver_delete(waiver) -> None:
    with transaction.atomic():
        changes_record([("waiver", waiver.pk, str(waiver.pk), "deleted", None)])
        waiver.delete()
