"""Shared set-up for benchmarks: Django on a throw-away database (SQLite by default, DATABASE_URL if set)."""

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchangepatch.settings")
    if "DATABASE_URL" not in os.environ:
        os.environ["EXCHANGEPATCH_SQLITE_PATH"] = str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    import django
    from django.core.management import call_command

    django.setup()
    if "DATABASE_URL" in os.environ:
        from django.test.utils import setup_databases

        setup_databases(verbosity=0, interactive=False)  # a test_ database, never the real one
    else:
        call_command("migrate", verbosity=0)


@contextmanager
def timed(label: str, results: dict):
    start = time.perf_counter()
    yield
    results[label] = time.perf_counter() - start


def estate_create(count: int, *, builds: int = 300, seed: int = 42) -> int:
    """`count` invented servers (bench.example) over `builds` real builds of the loaded catalog, in 50 sites; the
    number of distinct builds used."""
    import random

    from inventory.models import Organisation, Server, Site
    from kb.models import Update

    rng = random.Random(seed)
    updates = list(Update.objects.order_by("pk"))
    chosen = rng.sample(updates, min(builds, len(updates)))
    organisation, _ = Organisation.objects.get_or_create(name="bench.example")
    sites = Site.objects.bulk_create([Site(organisation=organisation, name=f"site-{i:02d}") for i in range(50)])
    roles = ["Mailbox", "Mailbox,ClientAccess", "HubTransport,ClientAccess", "EdgeTransport"]
    servers = []
    for index in range(count):
        update = chosen[index % len(chosen)]
        servers.append(
            Server(
                fqdn=f"ex{index:06d}.bench.example", name=f"EX{index:06d}", organisation=organisation,
                site=sites[index % len(sites)], roles=rng.choice(roles), reported_build=update.build,
                build_source="exsetup", build_major=update.build_major, build_minor=update.build_minor,
                build_number=update.build_number, build_revision=update.build_revision,
                dotnet_version=rng.choice(["4.8", "4.7.2", ""]),
            )
        )  # fmt: skip
    Server.objects.bulk_create(servers, batch_size=5000)
    return len(chosen)
