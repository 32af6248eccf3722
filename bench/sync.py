"""CMDB sync benchmark: POST invented servers to /api/v1/servers/sync/ (10,000 by default) as new, unchanged, changed in
one field and changed in every field, in a database already holding `--estate` servers; prints each time with the
ratio to a plain Django write of the same rows measured in the same run (bulk_create for new servers, bulk_update of
the changed columns for the others). Targets on PostgreSQL: 10,000 items < 5 s each, whatever the estate, and the
same ratios at an estate of 10,000 and 300,000 (the sync is linear in the items sent, not in the estate).

The request goes through DRF's test client with a real API token, so the figures include authentication, JSON
parsing, validation of every item, the upsert (servers, sites, tags, DAG memberships, change feed) and rendering the
results; not the network. --profile prints where the time of each sync goes (cProfile).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exchangepatch_bench .venv/bin/python bench/sync.py --estate 300000
"""

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import django_setup

TARGET = 5.0  # seconds for 10,000 items on PostgreSQL, in each case
ORGANISATIONS = ("contoso.example", "fabrikam.example")
ROLE_SETS = (["Mailbox"], ["Mailbox"], ["Mailbox", "ClientAccess"], ["HubTransport", "ClientAccess"], ["EdgeTransport"])
TAGS = ("production", "test", "eu", "us", "apac", "legacy", "edge", "pci", "tier-1", "tier-2")
PREREQUISITES = ({}, {"ucma": "4.0"}, {"ucma": "4.0", "vcredist_2012": "2012", "vcredist_2013": "2013"})
OS_NAMES = ("Windows Server 2019", "Windows Server 2022", "Windows Server 2016")
DOTNET = ("4.8", "4.8.1", "4.7.2")
DAG_MEMBERS = 8
# The Server columns an "every field" change rewrites (organisation and FQDN stay: the FQDN is the key).
EVERY_COLUMNS = (
    "name", "site", "roles", "edition", "reported_build", "build_major", "build_minor", "build_number",
    "build_revision", "os_name", "dotnet_version", "prerequisites", "is_forefront_installed", "environment", "owner",
    "last_reported",
)  # fmt: skip
BULK_UPDATE_BATCH = 100  # bulk_update writes one CASE arm per row and column: larger batches are quadratic


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--estate", type=int, default=0, help="servers in the database when the items are synced "
                        "(at least --items; the others are invented and bulk-created first)")  # fmt: skip
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--dag-share", type=float, default=0.4, help="share of servers in a DAG (8 per DAG)")
    parser.add_argument("--no-analyze", action="store_true", help="skip ANALYZE after filling: stale statistics")
    parser.add_argument("--profile", action="store_true", help="cProfile each sync and print the top functions")
    options = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at")  # WhiteNoise: no collectstatic in a benchmark
    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from rest_framework.test import APIClient

    from inventory.models import ApiToken, Change, ClusterMember, Organisation, Server, Site
    from kb.models import Update
    from kb.services import catalog_load_snapshot

    catalog_load_snapshot()
    builds = sorted(set(Update.objects.filter(build_major__gte=14).values_list("build", flat=True)))
    n = options.items
    estate = max(options.estate, n)
    start = time.perf_counter()
    estate_fill(estate - n, builds, Organisation, Site, Server)
    if connection.vendor == "postgresql" and not options.no_analyze:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would have done in a database that holds these servers
    filled = time.perf_counter() - start
    items = invented_items(options, builds)
    body_size = len(json.dumps({"source": "bench-cmdb", "items": items}).encode())
    dag_count = sum(1 for item in items if item.get("cluster"))
    print(f"database: {connection.vendor}; estate: {estate:,} servers when the items are synced "
          f"({estate - n:,} others bulk-created in {filled:.1f} s)")  # fmt: skip
    print(f"payload: {n:,} invented servers, {body_size / 1e6:.1f} MB of JSON, "
          f"{len(builds)} real builds, {options.sites} sites, {dag_count:,} in DAGs of {DAG_MEMBERS}")  # fmt: skip

    user = get_user_model().objects.create_user(username="bench-cmdb")
    _token, key = ApiToken.objects.create(user=user, name="bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    locks = LockClock(connection)

    def sync(label: str, payload_items: list[dict]) -> tuple[float, dict, int]:
        profiler = cProfile.Profile() if options.profile else None
        queries = QueryCounter()
        locks.reset()
        with connection.execute_wrapper(queries):
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            response = client.post("/api/v1/servers/sync/", {"source": "bench-cmdb", "items": payload_items},
                                   format="json")  # fmt: skip
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - start
        assert response.status_code == 200, (response.status_code, response.content[:2000])
        if profiler:
            stats = io.StringIO()
            profile = pstats.Stats(profiler, stream=stats)
            print(f"-- profile of {label}: the project's functions by cumulative time, then everything by own time")
            profile.sort_stats("cumulative").print_stats(r"/(inventory|exchangepatch|kb)/", 25)
            profile.sort_stats("tottime").print_stats(20)
            print(stats.getvalue())
        body = response.json()
        held[label] = (locks.transaction, locks.locked)
        return elapsed, body, queries.count

    held: dict[str, tuple[float, float]] = {}

    comparable = connection.vendor == "postgresql" and n == 10_000
    figures = {}

    # 1. All new.
    first, body, first_queries = sync("the first sync (new)", items)
    assert body["counts"] == {"created": n, "updated": 0, "unchanged": 0, "invalid": 0}, body["counts"]
    assert Server.objects.count() == estate and ClusterMember.objects.count() == dag_count
    assert Change.objects.filter(kind="server", action="created").count() == n
    figures["new"] = (first, first_queries)

    # 2. The same payload again: all unchanged, nothing written.
    fqdns = [item["fqdn"] for item in items]
    ours = Server.objects.filter(fqdn__in=fqdns)
    last_updated = dict(ours.values_list("pk", "last_updated"))
    changes_before = Change.objects.count()
    again, body, again_queries = sync("the second sync (unchanged)", items)
    assert body["counts"] == {"created": 0, "updated": 0, "unchanged": n, "invalid": 0}, body["counts"]
    assert dict(ours.values_list("pk", "last_updated")) == last_updated, "an unchanged sync wrote a row"
    assert Change.objects.count() == changes_before, "an unchanged sync recorded changes"
    figures["unchanged"] = (again, again_queries)

    # 3. One field changed on every server (the owner), then every field.
    one_field = [item | {"owner": f"new-{item['owner']}"} for item in items]
    elapsed, body, queries = sync("the sync changing one field", one_field)
    assert body["counts"] == {"created": 0, "updated": n, "unchanged": 0, "invalid": 0}, body["counts"]
    assert all(result["changed"] == ["owner"] for result in body["results"]), body["results"][:3]
    assert Change.objects.count() == changes_before + n
    figures["one field"] = (elapsed, queries)
    baseline_one = bulk_update_baseline(Server, ours, ["owner"], lambda server: f"plain-{server.owner}", transaction)

    every = [every_field_changed(index, item, builds) for index, item in enumerate(one_field)]
    elapsed, body, queries = sync("the sync changing every field", every)
    assert body["counts"] == {"created": 0, "updated": n, "unchanged": 0, "invalid": 0}, body["counts"]
    expected = {"build", "cluster", "edition", "environment", "is_forefront_installed", "last_reported", "name",
                "os_name", "owner", "prerequisites", "roles", "site", "tags", "dotnet_version"}  # fmt: skip
    wrong = [result for result in body["results"] if set(result["changed"]) - {"cluster"} != expected - {"cluster"}]
    assert not wrong, wrong[:2]
    figures["every field"] = (elapsed, queries)
    baseline_every = bulk_update_baseline(Server, ours, EVERY_COLUMNS, None, transaction)

    # The floor for new servers: the same rows, built beforehand, bulk-created in one call into the same table.
    rows = baseline_rows(items, Organisation, Site, Server)
    Server.objects.filter(fqdn__in=fqdns).delete()
    start = time.perf_counter()
    Server.objects.bulk_create(rows)
    baseline_new = time.perf_counter() - start
    assert Server.objects.count() == estate

    baselines = {"new": ("bulk_create", baseline_new), "unchanged": ("bulk_update of 1 column", baseline_one),
                 "one field": ("bulk_update of 1 column", baseline_one),
                 "every field": (f"bulk_update of {len(EVERY_COLUMNS)} columns", baseline_every)}  # fmt: skip
    print(f"baselines: Server.objects.bulk_create of the {n:,} rows {baseline_new:.2f} s; bulk_update(batch_size="
          f"{BULK_UPDATE_BATCH}) of them, 1 column {baseline_one:.2f} s, {len(EVERY_COLUMNS)} columns "
          f"{baseline_every:.2f} s")  # fmt: skip
    for (case, (elapsed, queries)), (in_transaction, locked) in zip(figures.items(), held.values(), strict=True):
        name, baseline = baselines[case]
        note = verdict(elapsed, TARGET, comparable=comparable)
        print(f"sync of {n:,} items, {case:>11}: {elapsed:6.2f} s, {queries:4,} queries, "
              f"{elapsed / baseline:5.1f}x {name}  {note}; in the transaction {in_transaction:.2f} s, server rows "
              f"locked {locked:.2f} s")  # fmt: skip


def estate_fill(count: int, builds: list[str], Organisation, Site, Server) -> None:
    """`count` invented servers (estate.example) beside the ones synced, bulk-created in chunks."""
    if count <= 0:
        return
    from kb.engine.builds import parse_reported_build

    organisation = Organisation.objects.create(name="estate.example")
    sites = Site.objects.bulk_create([Site(organisation=organisation, name=f"estate-{i:02d}") for i in range(50)])
    parsed = [(build, parse_reported_build(build).build) for build in builds]
    for offset in range(0, count, 10_000):
        chunk = []
        for index in range(offset, min(count, offset + 10_000)):
            text, build = parsed[index % len(parsed)]
            chunk.append(
                Server(
                    fqdn=f"ex{index:07d}.estate.example", name=f"EX{index:07d}", organisation=organisation,
                    site=sites[index % len(sites)], roles="Mailbox", reported_build=text, build_source="exsetup",
                    build_major=build.major, build_minor=build.minor, build_number=build.build,
                    build_revision=build.revision, dotnet_version="4.8", owner=f"team-{index % 20:02d}@estate.example",
                )
            )  # fmt: skip
        Server.objects.bulk_create(chunk)


def bulk_update_baseline(Server, queryset, columns, value, transaction) -> float:
    """Seconds for Server.objects.bulk_update of `columns` of the rows (read beforehand, not timed)."""
    servers = list(queryset.order_by("pk"))
    for server in servers:
        if value is not None:
            setattr(server, columns[0], value(server))
    start = time.perf_counter()
    with transaction.atomic():
        Server.objects.bulk_update(servers, list(columns), batch_size=BULK_UPDATE_BATCH)
    return time.perf_counter() - start


def every_field_changed(index: int, item: dict, builds: list[str]) -> dict:
    """The item with every field it states changed (not the organisation, nor the FQDN: the key)."""
    site = int(item["site"].split("-")[1])
    moved = (site + 1) % 50
    changed = item | {
        "name": f"EXN{index:05d}",
        "site": f"site-{moved:02d}",
        "site_is_internet_facing": moved < 3,
        "roles": ROLE_SETS[(ROLE_SETS.index(item["roles"]) + 2) % len(ROLE_SETS)],
        "edition": "Enterprise",
        "build": builds[(builds.index(item["build"]) + 1) % len(builds)],
        "os_name": OS_NAMES[(OS_NAMES.index(item["os_name"]) + 1) % len(OS_NAMES)],
        "dotnet_version": DOTNET[(DOTNET.index(item["dotnet_version"]) + 1) % len(DOTNET)],
        "prerequisites": PREREQUISITES[(PREREQUISITES.index(item["prerequisites"]) + 1) % len(PREREQUISITES)],
        "is_forefront_installed": not item["is_forefront_installed"],
        "environment": "staging",
        "tags": [f"moved-{tag}" for tag in item["tags"]],
        "owner": f"other-{item['owner']}",
        "last_reported": item["last_reported"].replace("2026-11-", "2026-12-"),
    }
    if "cluster" in item:  # the active member of each DAG moves to the next server
        changed["cluster_role"] = "active" if index % DAG_MEMBERS == 1 else "passive"
    return changed


class LockClock:
    """How long a sync spends in its transaction (from its first statement to the end of COMMIT) and holds server
    row locks (from the SELECT … FOR NO KEY UPDATE to the end of COMMIT): the brief of issue 13 wants them short."""

    def __init__(self, connection) -> None:
        from inventory import services

        self.transaction = self.locked = 0.0
        self._began = self._locked_at = None
        upsert, rows, commit = services._servers_upsert, services._server_rows, connection.commit

        def timed_upsert(*args, **kwargs):
            self._began = time.perf_counter()
            return upsert(*args, **kwargs)

        def timed_rows(fqdns, *, lock=False):
            if lock and fqdns:
                self._locked_at = time.perf_counter()
            return rows(fqdns, lock=lock)

        def timed_commit():
            commit()
            now = time.perf_counter()
            if self._began is not None:
                self.transaction += now - self._began
            if self._locked_at is not None:
                self.locked += now - self._locked_at
            self._began = self._locked_at = None

        services._servers_upsert, services._server_rows, connection.commit = timed_upsert, timed_rows, timed_commit

    def reset(self) -> None:
        self.transaction = self.locked = 0.0


class QueryCounter:
    """Counts statements (an executemany or a COPY is one); unlike CaptureQueriesContext, no cap of 9,000."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def verdict(elapsed: float, target: float, *, comparable: bool) -> str:
    if not comparable:
        return f"(the target, < {target:g} s, is for 10,000 items on PostgreSQL)"
    return f"(target < {target:g} s: {'met' if elapsed < target else 'MISSED'})"


def invented_items(options, builds: list[str]) -> list[dict]:
    """Invented servers (.example names), real catalog builds; some in DAGs of 8 with one active member."""
    rng = random.Random(7)
    in_dags = int(options.items * options.dag_share) // DAG_MEMBERS * DAG_MEMBERS
    reported = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    items = []
    for index in range(options.items):
        organisation = ORGANISATIONS[index % len(ORGANISATIONS)]
        site = index % options.sites
        item = {
            "fqdn": f"ex{index:05d}.{organisation}",
            "organisation": organisation,
            "site": f"site-{site:02d}",
            "site_is_internet_facing": site < 3,
            "roles": rng.choice(ROLE_SETS),
            "build": rng.choice(builds),
            "build_source": "exsetup",
            "os_name": rng.choice(OS_NAMES),
            "dotnet_version": rng.choice(DOTNET),
            "prerequisites": rng.choice(PREREQUISITES),
            "is_forefront_installed": False,
            "environment": "production" if index % 5 else "test",
            "tags": sorted(rng.sample(TAGS, rng.randint(1, 3))),
            "owner": f"team-{index % 20:02d}@{organisation}",
            "last_reported": (reported - timedelta(minutes=index)).isoformat().replace("+00:00", "Z"),
        }
        if index < in_dags:
            item |= {
                "cluster": f"DAG-{index // DAG_MEMBERS:04d}",
                "cluster_kind": "DAG",
                "cluster_role": "active" if index % DAG_MEMBERS == 0 else "passive",
            }
        items.append(item)
    return items


def baseline_rows(items: list[dict], Organisation, Site, Server) -> list:
    """Server objects with the values the sync stored (parsed builds, roles as text), ready for bulk_create."""
    from inventory.records import server_record_from_mapping

    organisations = {org.name: org for org in Organisation.objects.all()}
    sites = {(site.organisation_id, site.name): site for site in Site.objects.all()}
    rows = []
    for item in items:
        record, errors = server_record_from_mapping(item)
        assert not errors, errors
        organisation = organisations[record.get("organisation")]
        build = record.get("build")
        rows.append(
            Server(
                fqdn=record.fqdn, name=record.fqdn.split(".")[0], organisation=organisation,
                site=sites[(organisation.pk, record.get("site"))], roles=record.get("roles"),
                edition="", reported_build=record.get("reported_build"), build_source=record.get("build_source"),
                build_major=build.major, build_minor=build.minor, build_number=build.build,
                build_revision=build.revision, os_name=record.get("os_name"),
                dotnet_version=record.get("dotnet_version"), prerequisites=record.get("prerequisites"),
                is_forefront_installed=record.get("is_forefront_installed"), environment=record.get("environment"),
                owner=record.get("owner"), last_reported=record.get("last_reported"), sync_source="bench-cmdb",
            )
        )  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
