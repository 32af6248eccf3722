"""Writes to the inventory: upsert servers by FQDN, run scans (inventory/scans.py); each one transaction."""

from __future__ import annotations

import functools
import logging
import operator
from dataclasses import dataclass, field
from datetime import date

from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.utils import timezone

from inventory.bulk import json_text, rows_insert, rows_insert_copied, rows_insert_new, rows_update
from inventory.changes import changes_record
from inventory.models import (
    Cluster,
    ClusterMember,
    Organisation,
    Server,
    Site,
    Tag,
    Waiver,
)
from inventory.records import ServerRecord
from inventory.scans import scan_run_execute as scan_run_execute

logger = logging.getLogger(__name__)
BATCH = 2000
# A sync that collides with a concurrent writer (a deadlock, or a row created or deleted under it) is run again
# from the start; its earlier attempt left nothing behind.
ATTEMPTS = 3

# Server attributes a record may state, compared to decide created / updated / unchanged.
SIMPLE_FIELDS = (
    "name", "roles", "edition", "reported_build", "build_source", "os_name", "dotnet_version", "prerequisites",
    "is_forefront_installed", "environment", "owner", "last_reported", "is_clustered_mailbox_server",
)  # fmt: skip
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
# Feed values that change with a changed field, so that replaying the feed rebuilds them too.
FEED_WITH = {"build": ("build_source", "build_short")}
_RETRY_SQLSTATES = {"40P01", "40001", "23505", "23503"}  # deadlock, serialization, unique and foreign-key violations


@dataclass(slots=True)
class UpsertResult:
    index: int
    fqdn: str
    action: str  # "created", "updated" or "unchanged"
    changed: list[str] = field(default_factory=list)
    server_id: int | None = None


class UpsertConflict(Exception):
    """Concurrent writers kept changing these servers under the sync; nothing was written (the API answers 409)."""

    def __init__(self, fqdns: list[str], reason: str) -> None:
        self.fqdns = fqdns
        super().__init__(f"{len(fqdns)} server(s) were being changed by another writer ({reason}); send them again")


class _Collided(Exception):
    """A server read at the start was deleted before it could be locked: run the sync again."""


def server_upsert_many(
    records: list[ServerRecord], *, source: str, dry_run: bool = False, copy_new: bool = False
) -> list[UpsertResult]:
    """Upsert servers by FQDN (case-insensitive); the writes are one transaction; a dry run rolls everything back.

    Fields a record does not state are left as stored, and a server is written only where its values change, and
    then only the columns that change, so two syncs setting different fields of the same servers keep both. What is
    stored is read and compared first, without a transaction or a lock; then one short transaction creates what is
    missing, inserts the new servers (ON CONFLICT DO NOTHING: a server created meanwhile by another writer is then
    compared like a stored one), locks the servers that differed (in primary-key order), reads them again, compares
    again and writes the columns that still differ, and the change feed from those locked rows, so it records what
    is stored. An attempt that collides with another writer is rolled back and run again; after ATTEMPTS,
    UpsertConflict.

    `copy_new` (servers_import): new servers are COPYed into the table rather than inserted ON CONFLICT DO NOTHING;
    one created meanwhile by another writer then fails the attempt, which is run again (rolled back to its savepoint).
    """
    last_error: Exception | None = None
    for _ in range(ATTEMPTS):
        try:
            seen = _Seen.read(records)
            if not seen.needs_write(records):
                return [UpsertResult(index, r.fqdn, "unchanged", [], seen.rows[r.fqdn]["id"])
                        for index, r in enumerate(records)]  # fmt: skip
            with transaction.atomic():
                results = _servers_upsert(records, seen, source=source, copy_new=copy_new)
                if dry_run:
                    transaction.set_rollback(True)
            return results
        except (_Collided, IntegrityError, OperationalError) as error:
            if not _is_collision(error):
                raise
            logger.info("sync from %s collided with another writer (%s); trying again", source, error)
            last_error = error
    raise UpsertConflict([record.fqdn for record in records], str(last_error).splitlines()[0])


def _is_collision(error: Exception) -> bool:
    if isinstance(error, _Collided):
        return True
    state = getattr(error.__cause__, "sqlstate", None)
    if state is not None:
        return state in _RETRY_SQLSTATES
    text = str(error)  # SQLite names the constraint or the lock in the message
    return "UNIQUE constraint failed" in text or "FOREIGN KEY constraint failed" in text or "locked" in text


@dataclass(slots=True)
class _Seen:
    """What is stored for the records, read without a transaction or a lock, and which records differ from it."""

    rows: dict[str, dict]  # stored servers by FQDN
    tags: dict[int, list[str]]
    memberships: dict[int, tuple[str, str, bool]]
    org_names: dict[int, str]
    organisations: dict[str, Organisation]  # the ones that exist, by name
    sites: dict[tuple[str, str], Site]  # the ones that exist, by (organisation name, site name)
    differ: set[str]  # FQDNs of stored servers whose record states something else
    wanted_sites: dict[tuple[str, str], bool | None]  # _sites_wanted of the records, computed once

    @classmethod
    def read(cls, records: list[ServerRecord]) -> _Seen:
        rows = _server_rows([r.fqdn for r in records])
        ids = [row["id"] for row in rows.values()]
        tags, memberships = _server_links(ids, records)
        org_names = dict(Organisation.objects.filter(pk__any={row["organisation_id"] for row in rows.values()})
                         .values_list("pk", "name"))  # fmt: skip
        names = {_organisation_name(r, rows.get(r.fqdn), org_names) for r in records}
        organisations = {org.name: org for org in Organisation.objects.filter(name__any=names)}
        org_names |= {org.pk: name for name, org in organisations.items()}
        wanted_sites = _sites_wanted(records, rows, org_names)
        sites = _sites_read(wanted_sites, organisations, org_names)
        seen = cls(rows, tags, memberships, org_names, organisations, sites, set(), wanted_sites)
        for record in records:
            row = rows.get(record.fqdn)
            if row is not None and seen.differs(row, record):
                seen.differ.add(record.fqdn)
        return seen

    def differs(self, row: dict, record: ServerRecord) -> bool:
        try:
            if _changes(row, record, self.organisations, self.sites, self.org_names):
                return True
        except KeyError:  # an organisation or a site that does not exist yet
            return True
        if "tags" in record.provided and record.values.get("tags") != self.tags.get(row["id"], []):
            return True
        return "cluster" in record.provided and _cluster_differs(self.memberships.get(row["id"]), record)

    def needs_write(self, records: list[ServerRecord]) -> bool:
        """Whether anything is to be written: a new or differing server, a missing organisation or site, a site
        whose Internet-facing flag changes. Otherwise the sync takes no transaction at all."""
        if self.differ or len(self.rows) < len(records):
            return True
        wanted = self.wanted_sites
        return any(key not in self.sites or (flag is not None and self.sites[key].is_internet_facing != flag)
                   for key, flag in wanted.items())  # fmt: skip


def _servers_upsert(
    records: list[ServerRecord], seen: _Seen, *, source: str, copy_new: bool = False
) -> list[UpsertResult]:
    now = timezone.now()
    stored, org_names = seen.rows, dict(seen.org_names)
    # The rows servers refer to, each kind created with ON CONFLICT DO NOTHING in key order, before any server is
    # locked: every writer takes its locks in the same order (organisations, sites, tags, clusters, new servers,
    # stored servers by primary key, the feed), so concurrent syncs wait for each other but never deadlock.
    organisations = _organisations_ensure(records, stored, org_names)
    org_names |= {org.pk: name for name, org in organisations.items()}
    sites = _sites_ensure(records, stored, organisations, org_names, wanted=seen.wanted_sites)
    new = [record for record in records if record.fqdn not in stored]
    maybe = [record for record in records if record.fqdn in seen.differ]
    tag_ids = _tags_ensure([*new, *maybe])
    clusters = _clusters_ensure([*new, *maybe], stored, organisations, org_names)
    # New servers; those another writer created meanwhile are compared as stored ones below.
    created = _servers_insert(new, organisations, sites, org_names, source=source, now=now, copy=copy_new)
    # Lock and read again the servers that may change: the comparison above may be stale.
    locked = _server_rows([r.fqdn for r in [*maybe, *new] if r.fqdn not in created], lock=True)
    if len(locked) < len(maybe) + len(new) - len(created):
        raise _Collided("a server was deleted while the sync ran")
    to_lock = [r for r in [*maybe, *new] if r.fqdn in locked]
    fresh_tags, fresh_memberships = _server_links([row["id"] for row in locked.values()], to_lock)
    org_names |= _organisation_names_missing(locked.values(), org_names)
    sites |= _sites_ensure(to_lock, locked, organisations, org_names)
    clusters |= _clusters_ensure(to_lock, locked, organisations, org_names)
    site_names = {site.pk: site.name for site in sites.values()}

    results, updates, tag_writes, member_writes, feed = [], {}, [], [], []
    for index, record in enumerate(records):
        if record.fqdn in created:
            row, server_tags, membership = created[record.fqdn], [], None
            changed, action = sorted(record.provided), "created"
        elif record.fqdn in locked:
            row, server_tags = locked[record.fqdn], fresh_tags.get(locked[record.fqdn]["id"], [])
            membership = fresh_memberships.get(row["id"])
            changes = _changes(row, record, organisations, sites, org_names)
            changed = sorted({PUBLIC_NAMES.get(name, name) for name in changes})
            if "tags" in record.provided and record.values.get("tags") != server_tags:
                changed.append("tags")
            if "cluster" in record.provided and _cluster_differs(membership, record):
                changed.append("cluster")
            action = "updated" if changed else "unchanged"
            if changes:
                row = row | changes
                updates.setdefault(tuple(sorted(changes)), []).append(row)
        else:
            results.append(UpsertResult(index, record.fqdn, "unchanged", [], stored[record.fqdn]["id"]))
            continue
        if "tags" in record.provided and (action == "created" or "tags" in changed):
            server_tags = record.values.get("tags")
            tag_writes.append((row["id"], [tag_ids[name] for name in server_tags]))
        if "cluster" in record.provided and (action == "created" or "cluster" in changed):
            membership = _membership_wanted(record)
            cluster_id = clusters[(row["organisation_id"], membership[0])].pk if membership else None
            member_writes.append((row["id"], cluster_id, bool(membership and membership[2])))
        results.append(UpsertResult(index, record.fqdn, action, changed, row["id"]))
        if action != "unchanged":
            values = _public_values(row, server_tags, membership, org_names, site_names)
            if action == "updated":
                values = {name: values[name] for name in changed for name in (name, *FEED_WITH.get(name, ()))}
            feed.append(("server", row["id"], record.fqdn, action, {"changed": changed, "values": values,
                                                                   "source": source}))  # fmt: skip
    # Write what changed: per set of changed columns, those columns only.
    for columns, rows in updates.items():
        names = (*columns, "sync_source", "last_updated")
        stamped = [row | {"sync_source": source, "last_updated": now} for row in rows]
        rows_update(Server, names, [_db_row(row, ("id", *names)) for row in stamped])
    _tags_write(tag_writes)
    _memberships_write(member_writes)
    changes_record(feed)
    return results


def _server_rows(fqdns: list[str], *, lock: bool = False) -> dict[str, dict]:
    """Stored servers as plain rows by FQDN; locked (FOR NO KEY UPDATE, in primary-key order) when asked.

    NO KEY: a lock that still lets other transactions insert rows referring to the server (results, memberships).
    """
    if not fqdns:
        return {}
    queryset = Server.objects.filter(fqdn__any=fqdns)
    if lock:
        queryset = queryset.order_by("pk").select_for_update(no_key=True)
    return {row["fqdn"]: row for row in queryset.values(*STORED_FIELDS)}


def _server_links(ids: list[int], records: list[ServerRecord]):
    """Tags (sorted names) and cluster membership (name, kind, is_active) of the servers whose ids are given; each
    read only if a record states it."""
    tags: dict[int, list[str]] = {}
    memberships: dict[int, tuple[str, str, bool]] = {}
    if not ids:
        return tags, memberships
    if any("tags" in record.provided for record in records):
        links = Server.tags.through.objects.filter(server_id__any=ids)
        for server_id, name in links.values_list("server_id", "tag__name").order_by("server_id", "tag__name"):
            tags.setdefault(server_id, []).append(name)
    if any("cluster" in record.provided for record in records):
        memberships = {
            server_id: (name, kind, is_active)
            for server_id, name, kind, is_active in ClusterMember.objects.filter(server_id__any=ids).values_list(
                "server_id", "cluster__name", "cluster__kind", "is_active"
            )
        }
    return tags, memberships


def _organisation_names_missing(rows, org_names: dict[int, str]) -> dict[int, str]:
    """Names of organisations that locked rows refer to and the first read did not see (moved meanwhile)."""
    missing = {row["organisation_id"] for row in rows} - org_names.keys()
    return dict(Organisation.objects.filter(pk__in=missing).values_list("pk", "name")) if missing else {}


def _servers_insert(
    records, organisations, sites, org_names, *, source: str, now, copy: bool = False
) -> dict[str, dict]:
    """Insert the new servers (ON CONFLICT DO NOTHING, in FQDN order; `copy`: COPYed, a conflict fails the attempt):
    {fqdn: row (every column)} of those this call created."""
    if not records:
        return {}
    fields = [column for column in Server._meta.concrete_fields if not column.primary_key]
    defaults = {column.attname: column.get_default() for column in fields}
    names = [column.attname for column in fields]
    rows, servers = [], {}
    for record in sorted(records, key=lambda r: r.fqdn):
        organisation = organisations[_organisation_name(record, None, org_names)]
        server = defaults | {"fqdn": record.fqdn, "name": record.fqdn.split(".")[0], "build_source": "manual",
                             "organisation_id": organisation.pk, "sync_source": source, "created": now,
                             "last_updated": now, "prerequisites": {}}  # fmt: skip
        server |= _changes(server, record, organisations, sites, org_names)
        servers[record.fqdn] = server
        rows.append(_db_row(server, names))
    insert = rows_insert_copied if copy else rows_insert_new
    ids = insert(Server, [column.column for column in fields], rows, key="fqdn")
    for fqdn, pk in ids.items():
        servers[fqdn]["id"] = pk  # every column, a superset of STORED_FIELDS
    return {fqdn: servers[fqdn] for fqdn in ids}


def _db_row(values: dict, names) -> tuple:
    """Values as the database driver takes them (JSON as text, datetimes adapted for SQLite)."""
    return _row_maker(tuple(names))(values)


@functools.cache
def _row_maker(names: tuple[str, ...]):
    """A function making the driver's tuple of Server `names` from a row: JSON columns dumped, datetimes adapted
    where the backend wants it (SQLite); decided once per set of columns, not per value."""
    by_name = {column.attname: column for column in Server._meta.concrete_fields}
    adapt = connection.ops.adapt_datetimefield_value
    convert = []
    for name in names:
        column = by_name[name]
        if isinstance(column, models.JSONField):
            convert.append(json_text)
        elif isinstance(column, models.DateTimeField) and connection.vendor != "postgresql":
            convert.append(adapt)
        else:
            convert.append(None)
    getter = operator.itemgetter(*names)
    if len(names) == 1:
        convert_one = convert[0]
        return lambda row: (row[names[0]] if convert_one is None or row[names[0]] is None else convert_one(row[names[0]]),)  # fmt: skip
    positions = [(index, fn) for index, fn in enumerate(convert) if fn is not None]
    if not positions:
        return getter

    def make(row: dict) -> tuple:
        values = list(getter(row))
        for index, fn in positions:
            if values[index] is not None:
                values[index] = fn(values[index])
        return tuple(values)

    return make


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
        site = sites[(org_names[organisation_id], str(values["site"]))] if values["site"] else None
        if row["site_id"] != (site.pk if site else None):
            changes["site_id"] = site.pk if site else None
    return changes


def _public_values(row: dict, tags: list[str], membership, org_names: dict[int, str], site_names: dict[int, str]):
    """The server's fields as the API shows them, for the change feed: replaying the feed gives what is stored."""
    parts = [row[name] for name in BUILD_PARTS]
    last_reported = row["last_reported"]
    return {
        "name": row["name"],
        "organisation": org_names[row["organisation_id"]],
        "site": site_names.get(row["site_id"]) if row["site_id"] else None,
        "roles": [role for role in row["roles"].split(",") if role],
        "edition": row["edition"],
        "build": row["reported_build"],
        "build_source": row["build_source"],
        "build_short": ".".join(map(str, parts)) if None not in parts else None,
        "os_name": row["os_name"],
        "dotnet_version": row["dotnet_version"],
        "prerequisites": row["prerequisites"],
        "is_forefront_installed": row["is_forefront_installed"],
        "environment": row["environment"],
        "tags": list(tags),
        "owner": row["owner"],
        "last_reported": last_reported.isoformat().replace("+00:00", "Z") if last_reported else None,
        "cluster": {"name": membership[0], "kind": membership[1], "role": "active" if membership[2] else "passive"}
        if membership
        else None,
    }


def _organisation_name(record: ServerRecord, row: dict | None, org_names: dict[int, str]) -> str:
    if record.values.get("organisation"):
        return str(record.values.get("organisation"))
    if row is not None and row["organisation_id"]:
        return org_names[row["organisation_id"]]
    return record.fqdn.split(".", 1)[1] if "." in record.fqdn else record.fqdn


def _organisations_ensure(
    records: list[ServerRecord], stored: dict[str, dict], org_names: dict[int, str]
) -> dict[str, Organisation]:
    names = {_organisation_name(r, stored.get(r.fqdn), org_names) for r in records}
    found = {org.name: org for org in Organisation.objects.filter(name__any=names)}
    missing = sorted(names - found.keys())
    if missing:
        Organisation.objects.bulk_create([Organisation(name=name) for name in missing], ignore_conflicts=True)
        found |= {org.name: org for org in Organisation.objects.filter(name__any=missing)}
    return found


def _sites_wanted(records: list[ServerRecord], stored: dict[str, dict], org_names: dict[int, str]):
    """{(organisation name, site name): Internet-facing flag stated, or None} of the sites the records name."""
    wanted: dict[tuple[str, str], bool | None] = {}
    for record in records:
        if record.values.get("site"):
            key = (_organisation_name(record, stored.get(record.fqdn), org_names), str(record.values.get("site")))
            flag = (
                record.values.get("site_is_internet_facing") if "site_is_internet_facing" in record.provided else None
            )
            wanted[key] = flag if flag is not None else wanted.get(key)
    return wanted


def _sites_read(wanted, organisations: dict[str, Organisation], org_names: dict[int, str]):
    """The wanted sites that exist, by (organisation name, site name)."""
    organisation_ids = {organisations[org].pk for org, _ in wanted if org in organisations}
    if not organisation_ids:
        return {}
    queryset = Site.objects.filter(organisation_id__any=organisation_ids, name__any={n for _, n in wanted})
    return {(org_names[site.organisation_id], site.name): site for site in queryset}


def _sites_ensure(
    records: list[ServerRecord], stored: dict[str, dict], organisations: dict[str, Organisation],
    org_names: dict[int, str], wanted: dict[tuple[str, str], bool | None] | None = None,
) -> dict[tuple[str, str], Site]:  # fmt: skip
    """Sites by (organisation name, site name), created where missing; Internet-facing flags stated are set.
    `wanted`: _sites_wanted of the same arguments, when the caller has it."""
    wanted = _sites_wanted(records, stored, org_names) if wanted is None else wanted
    if not wanted:
        return {}
    found = _sites_read(wanted, organisations, org_names)
    missing = sorted(key for key in wanted if key not in found)
    if missing:
        Site.objects.bulk_create(
            [Site(organisation_id=organisations[org].pk, name=name, is_internet_facing=bool(wanted[(org, name)]))
             for org, name in missing], ignore_conflicts=True,
        )  # fmt: skip
        found = _sites_read(wanted, organisations, org_names)
    stale = {key: flag for key, flag in wanted.items() if flag is not None and found[key].is_internet_facing != flag}
    for flag in (True, False):
        ids = [found[key].pk for key, wanted_flag in stale.items() if wanted_flag is flag]
        if ids:
            list(Site.objects.filter(pk__in=ids).order_by("pk").select_for_update(no_key=True).values_list("pk"))
            Site.objects.filter(pk__in=ids).update(is_internet_facing=flag)
            for key, wanted_flag in stale.items():
                if wanted_flag is flag:
                    found[key].is_internet_facing = flag
    return {key: found[key] for key in wanted}


def _tags_ensure(records: list[ServerRecord]) -> dict[str, int]:
    names = sorted({name for record in records if "tags" in record.provided for name in record.values.get("tags")})
    if not names:
        return {}
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    return dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))


def _membership_wanted(record: ServerRecord) -> tuple[str, str, bool] | None:
    name = record.values.get("cluster") or ""
    return (name, record.values.get("cluster_kind"), record.values.get("cluster_role") == "active") if name else None


def _cluster_differs(membership: tuple | None, record: ServerRecord) -> bool:
    """membership: (cluster name, kind, is_active) as stored, or None."""
    return membership != _membership_wanted(record)


def _clusters_ensure(
    records: list[ServerRecord], stored: dict[str, dict], organisations: dict[str, Organisation],
    org_names: dict[int, str],
) -> dict[tuple[int, str], Cluster]:  # fmt: skip
    """Clusters by (organisation id, name) that the records name, created where missing, with the kind stated; and
    the cluster named after each 2007 clustered mailbox server, of the kind its export states (CCR or SCC), which
    its nodes join when they are imported."""
    wanted = {}
    for record in records:
        row = stored.get(record.fqdn)
        if "cluster" in record.provided and record.values.get("cluster"):
            organisation = organisations.get(_organisation_name(record, row, org_names))
            if organisation is None:  # a stored server whose organisation moved meanwhile: the locked pass has it
                continue
            wanted[(organisation.pk, record.values.get("cluster"))] = record.values.get("cluster_kind")
        if record.values.get("is_clustered_mailbox_server") and record.values.get("cluster_kind"):
            organisation = organisations.get(_organisation_name(record, row, org_names))
            if organisation is not None:
                name = record.values.get("name") or (row["name"] if row else "") or record.fqdn.split(".")[0]
                wanted[(organisation.pk, str(name).upper())] = record.values.get("cluster_kind")
    if not wanted:
        return {}

    def read() -> dict[tuple[int, str], Cluster]:
        queryset = Cluster.objects.filter(
            organisation_id__any={org for org, _ in wanted}, name__any={name for _, name in wanted}
        )
        return {(cluster.organisation_id, cluster.name): cluster for cluster in queryset}

    found = read()
    missing = sorted(key for key in wanted if key not in found)
    if missing:
        Cluster.objects.bulk_create(
            [Cluster(organisation_id=org, name=name, kind=wanted[(org, name)]) for org, name in missing],
            ignore_conflicts=True,
        )
        found = read()
    stale = sorted((found[key].pk, kind) for key, kind in wanted.items() if found[key].kind != kind)
    if stale:
        list(Cluster.objects.filter(pk__in=[pk for pk, _ in stale]).order_by("pk").select_for_update(no_key=True).values_list("pk"))  # fmt: skip
        for kind in {kind for _, kind in stale}:
            Cluster.objects.filter(pk__in=[pk for pk, k in stale if k == kind]).update(kind=kind)
        for key, kind in wanted.items():
            found[key].kind = kind
    return {key: found[key] for key in wanted}


def _tags_write(changes: list[tuple[int, list[int]]]) -> None:
    """Replace the tags of servers this transaction has locked (or created)."""
    if not changes:
        return
    through = Server.tags.through
    through.objects.filter(server_id__any=[server_id for server_id, _ in changes]).delete()
    rows_insert(through, ("server_id", "tag_id"), [(server_id, tag) for server_id, tags in changes for tag in tags])


def _memberships_write(changes: list[tuple[int, int | None, bool]]) -> None:
    """(server id, cluster id or None, is active) for servers this transaction has locked (or created)."""
    if not changes:
        return
    ClusterMember.objects.filter(server_id__any=[server_id for server_id, _, _ in changes]).delete()
    rows_insert(
        ClusterMember,
        ("cluster_id", "server_id", "is_active"),
        [(cluster_id, server_id, is_active) for server_id, cluster_id, is_active in changes if cluster_id],
    )


# -- scans -----------------------------------------------------------------------------------------
# Scans run in chunks that several workers share; the code lives in inventory/scans.py (scan_run_execute, imported
# above, stays importable from here).


# -- single-object writes (API, admin) --------------------------------------------------------------


def organisation_esu_set(*, organisation: str, until: date | None) -> Organisation:
    """Mark an organisation enrolled in Microsoft's Extended Security Update program until a date (None: not)."""
    found = Organisation.objects.filter(name=organisation).first()
    if found is None:
        raise LookupError(f"{organisation!r} is not an organisation in the inventory")
    found.esu_enrolled_until = until
    found.save(update_fields=["esu_enrolled_until", "last_updated"])
    return found


class SiteInUse(Exception):
    """The site still has servers; the message names it."""


def server_delete(server: Server) -> None:
    server_delete_many([server.pk])


def server_delete_many(server_ids: list[int]) -> int:
    """Delete servers, with a tombstone in the feed for each and for each of their waivers (deleted with them)."""
    with transaction.atomic():
        servers = list(
            Server.objects.filter(pk__in=server_ids).order_by("pk").select_for_update().values_list("pk", "fqdn")
        )
        waivers = Waiver.objects.filter(server_id__in=[pk for pk, _ in servers])
        changes_record([*_waiver_tombstones(waivers), *(("server", pk, fqdn, "deleted", None) for pk, fqdn in servers)])
        Server.objects.filter(pk__in=[pk for pk, _ in servers]).delete()
    return len(servers)


def site_delete(site: Site) -> None:
    """Delete a site that has no servers (SiteInUse otherwise), with tombstones for its waivers."""
    with transaction.atomic():
        locked = Site.objects.select_for_update().get(pk=site.pk)
        if Server.objects.filter(site_id=locked.pk).exists():
            raise SiteInUse(f"{locked.name} still has servers; move or delete them first")
        changes_record(_waiver_tombstones(Waiver.objects.filter(site_id=locked.pk)))
        locked.delete()


def _waiver_tombstones(waivers) -> list[tuple]:
    return [("waiver", pk, str(pk), "deleted", None) for pk in waivers.order_by("pk").values_list("pk", flat=True)]


def waiver_save(waiver, *, is_new: bool) -> None:
    with transaction.atomic():
        waiver.save()
        data = {"target_kb": waiver.target_kb, "expires_at": waiver.expires_at.isoformat()}
        changes_record([("waiver", waiver.pk, str(waiver.pk), "created" if is_new else "updated", data)])


def waiver_delete(waiver) -> None:
    with transaction.atomic():
        changes_record([("waiver", waiver.pk, str(waiver.pk), "deleted", None)])
        waiver.delete()
