"""Reads that stay cheap in a large estate: every list endpoint of /api/v1/ in a number of queries that depends
neither on the page size nor on the estate, a deep cursor page costing what the first does, and the compliance
summary read from the scan's aggregates (ScanTally) with an ETag."""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exchangepatch.api_urls import router
from inventory.models import Server, ServerResult, Waiver
from inventory.selectors import scan_latest, updates_needed_counts
from tests.portal.conftest import invented_estate

pytestmark = pytest.mark.django_db
# Endpoints that list (a page of) rows beside the router's resources; the KBs are real catalog KBs that the invented
# estate misses (KB5036386: Exchange 2019 CU14 Mar24SU; KB2537099 a 2010 fix).
OTHER_LISTS = ["/api/v1/changes/", "/api/v1/updates/KB5036386/needed-by/", "/api/v1/fixes/KB2537099/missing/"]


def list_paths() -> list[str]:
    paths = [f"/api/v1/{prefix}/" for prefix, viewset, _ in router.registry if hasattr(viewset, "list")]
    assert len(paths) >= 10  # every resource the router knows
    return paths + OTHER_LISTS


def queries_for(api, path: str, limit: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(path, {"limit": limit})
    assert response.status_code == 200, (path, response.content[:300])
    return len(queries)


def estate(count: int, *, offset: int = 0) -> None:
    """Invented servers (sites, DAGs, tags) with an invented waiver each, then a scan."""
    invented_estate(count, offset=offset, variety=1 + offset // 10)
    Waiver.objects.bulk_create(
        Waiver(server=server, target_kind="update", target_kb="KB5036386", reason="invented", approver="invented",
               expires_at=datetime(2099, 1, 1, tzinfo=UTC))
        for server in Server.objects.filter(waivers__isnull=True)
    )  # fmt: skip
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())


def test_every_list_endpoint_costs_the_same_whatever_the_page_size_and_the_estate(api, loaded_catalog):
    estate(5)
    api.get("/api/v1/")  # the token's first use records it (a write at most every few minutes)
    paths = list_paths()
    small = {path: (queries_for(api, path, 10), queries_for(api, path, 100)) for path in paths}
    estate(45, offset=5)  # ten times the servers, more sites, DAGs, tags, waivers; a second scan
    assert Server.objects.count() == 50

    large = {path: (queries_for(api, path, 10), queries_for(api, path, 100)) for path in paths}

    assert large == small
    assert all(ten == hundred for ten, hundred in small.values()), small


def most_missed() -> str:
    """The KB the most servers of the latest scan miss (updates without a KB, e.g. service packs, are left out)."""
    rows = [row for row in updates_needed_counts(scan_latest()) if row["kb"].startswith("KB")]
    return max(rows, key=lambda row: row["server_count"])["kb"]


@pytest.mark.parametrize("path", ["/api/v1/servers/", "/api/v1/updates/{kb}/needed-by/", "/api/v1/changes/"])
def test_a_deep_cursor_page_costs_what_the_first_page_costs(api, loaded_catalog, path):
    estate(60)
    path = path.format(kb=most_missed())
    api.get("/api/v1/")
    first = queries_for(api, path, 1)
    body = api.get(path, {"limit": 1}).json()
    for _ in range(4):  # follow the links five pages deep
        assert body.get("next") or body.get("has_more"), body
        url = body["next"] if "next" in body else f"{path}?after={body['next_cursor']}&limit=1"
        body = api.get(url).json()
    url = body["next"] if "next" in body else f"{path}?after={body['next_cursor']}&limit=1"

    with CaptureQueriesContext(connection) as queries:
        deep = api.get(url)

    assert deep.status_code == 200 and len(queries) == first


def test_needed_by_pages_through_every_server_once(api, loaded_catalog):
    estate(30)
    kb = most_missed()
    needing = sorted(
        fqdn
        for fqdn, missing in ServerResult.objects.values_list("server__fqdn", "verdict__missing_updates")
        if kb in missing
    )
    assert len(needing) > 3

    seen, url = [], f"/api/v1/updates/{kb}/needed-by/?limit=2"
    while url:
        body = api.get(url).json()
        assert body["server_count"] == len(needing)
        seen += body["servers"]
        url = body["next"]

    assert seen == needing


def test_summary_comes_from_the_aggregates_and_answers_304_to_its_etag(api, loaded_catalog):
    estate(12)
    first = api.get("/api/v1/compliance/summary/")
    tag = first["ETag"]
    ServerResult.objects.all().delete()  # the per-server rows retention prunes: the summary does not need them

    again = api.get("/api/v1/compliance/summary/")
    cached = api.get("/api/v1/compliance/summary/", HTTP_IF_NONE_MATCH=tag)
    other = api.get("/api/v1/compliance/summary/", HTTP_IF_NONE_MATCH='W/"summary-0"')

    assert first.json()["servers"] == 12 and sum(first.json()["by_state"].values()) == 12
    assert again.json() == first.json() and again["ETag"] == tag
    assert (cached.status_code, cached.content) == (304, b"")
    assert other.status_code == 200
    # a list of tags, and the strong form of the weak tag (If-None-Match compares weakly), both match
    listed = api.get("/api/v1/compliance/summary/", HTTP_IF_NONE_MATCH=f'"other", {tag}')
    strong = api.get("/api/v1/compliance/summary/", HTTP_IF_NONE_MATCH=tag.removeprefix("W/"))
    assert (listed.status_code, strong.status_code) == (304, 304)
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())  # a new scan: a new ETag
    assert api.get("/api/v1/compliance/summary/", HTTP_IF_NONE_MATCH=tag).status_code == 200
