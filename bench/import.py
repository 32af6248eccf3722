"""servers_import benchmark: an invented Get-ExchangeServer | Export-Csv file of 100,000 servers (ExSetupVersion
included), imported by `manage.py servers_import` in a subprocess; targets on PostgreSQL < 8 s and < 300 MB peak.

Prints the command's time and the peak resident memory of its process (resource.getrusage ru_maxrss), for a first
import (all created) and the same file again (all unchanged); beside them, as baselines measured in the same run,
the peak of a process that only starts Django, and a plain Server.objects.bulk_create of the same rows (built
beforehand, batches of 5,000) into the same table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exchangepatch_bench .venv/bin/python bench/import.py
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import ROOT, django_setup

TARGET_SECONDS, TARGET_MB = 8.0, 300
ROLES = ("Mailbox", "Mailbox, ClientAccess", "Mailbox, ClientAccess, HubTransport", "HubTransport", "Edge")

# Runs in the subprocess: the command alone is timed; ru_maxrss (KiB on Linux) is the peak of the whole process.
CHILD = """
import json, os, resource, sys, time, warnings
warnings.filterwarnings("ignore", message="No directory at")
import django
django.setup()
from django.core.management import call_command
start = time.perf_counter()
if sys.argv[1] != "-":
    call_command("servers_import", sys.argv[1], stdout=sys.stderr)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    options = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at")
    django_setup()
    from django.db import connection

    from kb.models import Update
    from kb.services import catalog_load_snapshot

    catalog_load_snapshot()
    updates = list(Update.objects.filter(build_major__gte=15).order_by("pk"))
    path = Path(tempfile.mkdtemp()) / "servers.csv"
    size = export_write(path, options.rows, updates)
    print(f"database: {connection.vendor}; file: {options.rows:,} invented servers, {size / 1e6:.1f} MB "
          f"(Get-ExchangeServer | Export-Csv with ExSetupVersion, {len(updates)} real builds)")  # fmt: skip

    environment = dict(os.environ)
    if connection.vendor == "postgresql":  # the benchmark's throw-away test_ database, not the one named
        environment["DATABASE_URL"] = (
            environment["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
        )
    connection.close()

    def child(argument: str) -> dict:
        done = subprocess.run([sys.executable, "-c", CHILD, argument], cwd=ROOT, env=environment,
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode:
            raise SystemExit(f"servers_import failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1]) | {"output": done.stderr.strip().splitlines()[-1:]}

    floor = child("-")
    first = child(str(path))
    again = child(str(path))
    shutil.rmtree(path.parent)
    from inventory.models import Server

    assert Server.objects.count() == options.rows, Server.objects.count()
    print(f"  first import: {first['output']}; again: {again['output']}")
    baseline = bulk_create_baseline(path, Server)
    comparable = connection.vendor == "postgresql" and options.rows == 100_000
    print(f"baselines: a process that only starts Django peaks at {floor['peak_mb']:.0f} MB; Server.objects."
          f"bulk_create(batch_size=5000) of the same {options.rows:,} rows: {baseline:.2f} s")  # fmt: skip
    for label, run in (("first import (all created)", first), ("same file again (unchanged)", again)):
        note = ""
        if comparable:
            met = run["seconds"] < TARGET_SECONDS and run["peak_mb"] < TARGET_MB
            note = f"  (target < {TARGET_SECONDS:g} s and < {TARGET_MB} MB: {'met' if met else 'MISSED'})"
        print(f"{label}: {run['seconds']:.2f} s, {run['seconds'] / baseline:.1f}x bulk_create; peak "
              f"{run['peak_mb']:.0f} MB ({run['peak_mb'] - floor['peak_mb']:+.0f} MB over Django alone){note}")  # fmt: skip


def export_write(path: Path, rows: int, updates: list) -> int:
    """Invented servers in 20 organisations and 400 sites, as Windows PowerShell's Export-Csv writes them."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.ExchangeServer\r\n")
        out.write('"Name","Fqdn","Site","ServerRole","Edition","AdminDisplayVersion","ExSetupVersion"\r\n')
        for index in range(rows):
            update = updates[index % len(updates)]
            organisation = f"org{index % 20:02d}.example"
            site = f"{organisation}/Configuration/Sites/Site-{index % 400:03d}"
            admin = f"Version {update.build_major}.{update.build_minor} (Build {update.build_number}.{update.build_revision})"  # fmt: skip
            out.write(f'"EX{index:06d}","ex{index:06d}.{organisation}","{site}","{ROLES[index % len(ROLES)]}",'
                      f'"{"Enterprise" if index % 3 else "Standard"}","{admin}","{update.build}"\r\n')  # fmt: skip
    return path.stat().st_size


def bulk_create_baseline(path: Path, Server) -> float:
    """Seconds to bulk_create the rows the import stored (read back, deleted, then inserted again)."""
    from django.db import transaction

    fields = [f.attname for f in Server._meta.concrete_fields if not f.primary_key]
    rows = [Server(**values) for values in Server.objects.values(*fields)]
    Server.objects.all()._raw_delete(Server.objects.db)  # nothing refers to them: no cascade to collect
    start = time.perf_counter()
    with transaction.atomic():
        Server.objects.bulk_create(rows, batch_size=5000)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
