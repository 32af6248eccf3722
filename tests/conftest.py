"""Shared fixtures: the real catalog (bundled snapshot of Microsoft's data) as an engine object and in the database."""

import json
from datetime import date
from pathlib import Path

import pytest

from kb.engine.catalog import Catalog, ProductSupport, entry_from_dict

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SNAPSHOT = ROOT / "kb" / "data" / "catalog.json"
needs_shared = pytest.mark.skipif(
    not SHARED_DATA.exists(), reason="../shared/data is not beside the project (fresh clone); CI has it"
)

# Support facts as the bundled rules state them (domain.md §2); tests pass them explicitly.
SUPPORT = {
    "2007": ProductSupport(date(2017, 4, 11), 1),
    "2010": ProductSupport(date(2020, 10, 13), 1),
    "2013": ProductSupport(date(2023, 4, 11), 2),
    "2016": ProductSupport(date(2025, 10, 14), 2),
    "2019": ProductSupport(date(2025, 10, 14), 2),
    "SE": ProductSupport(None, 2),
}


@pytest.fixture(autouse=True)
def _throttle_counters_cleared():
    """The API's throttles count in the cache (local memory in tests): each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session")
def snapshot() -> dict:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def catalog(snapshot) -> Catalog:
    return Catalog([entry_from_dict(item) for item in snapshot["entries"]], support=SUPPORT)


@pytest.fixture
def loaded_catalog(db):
    """The bundled snapshot and rules loaded into the test database."""
    from kb.services import catalog_load_snapshot

    return catalog_load_snapshot()
