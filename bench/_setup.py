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
