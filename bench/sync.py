"""CMDB sync benchmark: POST 10,000 invented servers to /api/v1/servers/sync/; target < 5 s on PostgreSQL, and the
same payload again (all unchanged) < 2 s. Also times a raw Server.objects.bulk_create of the same rows into an empty
table as the floor, and prints the ratios.

The request goes through DRF's test client with a real API token, so the figures include authentication, JSON
parsing, validation of every item, the upsert (servers, sites, tags, DAG memberships, change feed) and rendering the
10,000 results; not the network. --profile prints where the time of each sync goes (cProfile).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exchangepatch_bench .venv/bin/python bench/sync.py
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

TARGET_FIRST, TARGET_AGAIN = 5.0, 2.0
ORGANISATIONS = ("contoso.example", "fabrikam.example")
ROLE_SETS = (["Mailbox"], ["Mailbox"], ["Mailbox", "ClientAccess"], ["HubTransport", "ClientAccess"], ["EdgeTransport"])
TAGS = ("production", "test", "eu", "us", "apac", "legacy", "edge", "pci", "tier-1", "tier-2")
PREREQUISITES = ({}, {"ucma": "4.0"}, {"ucma": "4.0", "vcredist_2012": "2012", "vcredist_2013": "2013"})
DAG_MEMBERS = 8


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--dag-share", type=float, default=0.4, help="share of servers in a DAG (8 per DAG)")
    parser.add_argument("--profile", action="store_true", help="cProfile each sync and print the top functions")
    options = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at")  # WhiteNoise: no collectstatic in a benchmark
    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.test import APIClient

    from inventory.models import ApiToken, Change, ClusterMember, Organisation, Server, Site
    from kb.models import Update
    from kb.services import catalog_load_snapshot

    catalog_load_snapshot()
    builds = sorted(set(Update.objects.filter(build_major__gte=14).values_list("build", flat=True)))
    payload = {"source": "bench-cmdb", "items": invented_items(options, builds)}
    body_size = len(json.dumps(payload).encode())
    dag_count = sum(1 for item in payload["items"] if item.get("cluster"))
    print(f"database: {connection.vendor}")
    print(f"payload: {len(payload['items']):,} invented servers, {body_size / 1e6:.1f} MB of JSON, "
          f"{len(builds)} real builds, {options.sites} sites, {dag_count:,} in DAGs of {DAG_MEMBERS}")  # fmt: skip

    user = get_user_model().objects.create_user(username="bench-cmdb")
    _token, key = ApiToken.objects.create(user=user, name="bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    def sync(label: str) -> tuple[float, dict, int]:
        profiler = cProfile.Profile() if options.profile else None
        queries = QueryCounter()
        with connection.execute_wrapper(queries):
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            response = client.post("/api/v1/servers/sync/", payload, format="json")
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
        return elapsed, response.json()["counts"], queries.count

    n = len(payload["items"])
    comparable = connection.vendor == "postgresql" and n == 10_000
    first, counts, first_queries = sync("the first sync")
    assert counts == {"created": n, "updated": 0, "unchanged": 0, "invalid": 0}, counts
    assert Server.objects.count() == n and ClusterMember.objects.count() == dag_count
    assert Change.objects.filter(kind="server", action="created").count() == n
    note = verdict(first, TARGET_FIRST, comparable=comparable)
    print(f"first sync (all created): {first:.2f} s, {first_queries:,} queries  {note}")

    last_updated = dict(Server.objects.values_list("pk", "last_updated"))
    changes_before = Change.objects.count()
    again, counts, again_queries = sync("the second sync")
    assert counts == {"created": 0, "updated": 0, "unchanged": n, "invalid": 0}, counts
    assert dict(Server.objects.values_list("pk", "last_updated")) == last_updated, "an unchanged sync wrote a row"
    assert Change.objects.count() == changes_before, "an unchanged sync recorded changes"
    note = verdict(again, TARGET_AGAIN, comparable=comparable)
    print(f"same payload again (all unchanged): {again:.2f} s, {again_queries:,} queries  {note}")

    # The floor: the same rows, built in Python beforehand, inserted into an empty table in one call.
    rows = baseline_rows(payload["items"], Organisation, Site, Server)
    Server.objects.all().delete()
    start = time.perf_counter()
    Server.objects.bulk_create(rows)
    baseline = time.perf_counter() - start
    assert Server.objects.count() == n
    print(f"baseline Server.objects.bulk_create of the same {n:,} rows into an empty table: {baseline:.2f} s")
    print(f"ratio first sync / bulk_create: {first / baseline:.1f}x;  unchanged sync / bulk_create: "
          f"{again / baseline:.1f}x;  first / unchanged: {first / again:.1f}x")  # fmt: skip


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
            "os_name": rng.choice(["Windows Server 2019", "Windows Server 2022", "Windows Server 2016"]),
            "dotnet_version": rng.choice(["4.8", "4.8.1", "4.7.2"]),
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
