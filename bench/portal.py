"""Portal benchmark: the dashboard and the server list for N servers (default 100,000); target < 1 s each on
PostgreSQL, with a fixed number of queries.

Renders the pages through Django's test client (template rendering included, no network), signed in. The server list
is timed on its first page, on a page deep into the estate (reached through the keyset links), sorted by days
behind and by FQDN, filtered, and searched by KB.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exchangepatch .venv/bin/python bench/portal.py
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import django_setup


def estate(count: int) -> None:
    """Invented servers over every catalog build, in 200 sites and count/8 DAGs, with tags; then a scan."""
    from inventory.models import Cluster, ClusterMember, Organisation, Server, Site, Tag
    from inventory.services import scan_run_execute
    from kb.models import Update

    rng = random.Random(12)
    builds = list(Update.objects.order_by("pk"))
    organisation = Organisation.objects.create(name="portal-bench.example")
    sites = Site.objects.bulk_create([Site(organisation=organisation, name=f"site-{i:03d}") for i in range(200)])
    roles = ["Mailbox", "Mailbox,ClientAccess", "HubTransport,ClientAccess", "EdgeTransport"]
    servers = []
    for index in range(count):
        update = builds[rng.randrange(len(builds))]
        servers.append(Server(
            fqdn=f"mbx{index:07d}.portal-bench.example", name=f"MBX{index:07d}", organisation=organisation,
            site=sites[index % len(sites)], roles=rng.choice(roles), reported_build=update.build, build_source="exsetup",
            build_major=update.build_major, build_minor=update.build_minor, build_number=update.build_number,
            build_revision=update.build_revision, dotnet_version="4.8",
        ))  # fmt: skip
    Server.objects.bulk_create(servers, batch_size=5000)
    ids = list(Server.objects.filter(organisation=organisation).order_by("pk").values_list("pk", flat=True))
    dags = Cluster.objects.bulk_create(
        [Cluster(organisation=organisation, name=f"DAG-{i:05d}", kind="DAG") for i in range(max(1, count // 8))]
    )
    members = [ClusterMember(cluster=dags[i // 4 % len(dags)], server_id=pk, is_active=i % 4 == 0)
               for i, pk in enumerate(ids) if i % 2]  # fmt: skip
    ClusterMember.objects.bulk_create(members, batch_size=5000)
    tags = Tag.objects.bulk_create([Tag(name=name) for name in ("production", "dmz", "legacy")])
    through = Server.tags.through
    through.objects.bulk_create([through(server_id=pk, tag_id=tags[i % 3].pk) for i, pk in enumerate(ids)],
                                batch_size=5000)  # fmt: skip
    scan_run_execute()


def measure(client, path: str, repeat: int) -> tuple[float, float, int, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(timings), max(timings), len(queries), response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from kb.services import catalog_load_snapshot

    setup_test_environment()  # responses carry their template context: the keyset links are read from it
    catalog_load_snapshot()
    start = time.perf_counter()
    estate(options.servers)
    print(f"set-up: {options.servers:,} invented servers, scanned, in {time.perf_counter() - start:.1f} s "
          f"(database: {connection.vendor})")  # fmt: skip
    client = Client()
    client.force_login(get_user_model().objects.create_user("bench"))

    # The link to the page in the middle of the estate, as the page before it would make it (found once by OFFSET).
    paginator = measure(client, "/servers/?sort=fqdn", 1)[3].context["table"].paginator
    middle = options.servers // 2
    token = paginator.token("n", paginator.queryset[middle - 1])
    pages = [
        ("dashboard", "/"),
        ("servers, by days behind (first page)", "/servers/"),
        ("servers, by FQDN (first page)", "/servers/?sort=fqdn"),
        (f"servers, by FQDN (from server {middle + 1:,})", f"/servers/?sort=fqdn&page={token}"),
        ("servers, one state in one site", "/servers/?state=security_update_missing&site=site-007"),
        ("servers, product and level", "/servers/?product=2019&level=CU14"),
        ("servers, searched by KB", "/servers/?q=KB5036386"),
    ]
    print(f"{'page':42} {'median':>8} {'max':>8} {'queries':>8}   (target < 1 s on PostgreSQL)")
    for label, path in pages:
        median, worst, queries, _ = measure(client, path, options.repeat)
        print(f"{label:42} {median * 1000:7.0f}ms {worst * 1000:7.0f}ms {queries:8d}")


if __name__ == "__main__":
    main()
