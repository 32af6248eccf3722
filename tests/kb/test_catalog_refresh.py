"""Catalog refresh from real documents (../shared/data) over file:// and a local HTTP server: what changed is recorded
with provenance, only the affected servers are recomputed and flagged, a failing or garbage source changes nothing
and is reported, and a source failing for days makes the catalog stale (build_info, the API).

The servers are invented (.example); the catalog, the builds and the documents are real. The "new" update is SE RTM
Aug26SU (KB5121573, 15.2.2562.46), removed from the database before the baseline scan as if the catalog had been
loaded before it was released, then brought back by the refresh from Microsoft's own CSV.
"""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from inventory.models import ScanRun, ServerResult
from inventory.scans import scan_run_execute
from kb.models import CatalogFeed, CatalogRefresh, CatalogSource, Update
from kb.refresh import catalog_refresh
from kb.tasks import catalog_refresh_task
from tests.api.conftest import token_for
from tests.conftest import SHARED_DATA, needs_shared
from tests.inventory.test_scan import server, upsert

CSV = SHARED_DATA / "catalog" / "ExchangeBuildNumbers.csv"
NEW_UPDATE = "SE|RTM|SU|Aug26SU|1"
TODAY = "2026-08-20"


@pytest.fixture
def before_aug26(loaded_catalog, settings):
    """The bundled catalog without SE Aug26SU, a scanned estate, and "today" after its release."""
    settings.EXCHANGEPATCH_TODAY = TODAY
    Update.objects.filter(identity_key=NEW_UPDATE).delete()
    upsert(
        server("se-jul.contoso.example", "15.2.2562.45", site="Amsterdam"),  # SE Jul26SU: current until Aug26SU
        server("se-jul-2.contoso.example", "15.2.2562.45", site="Dublin"),
        server("se-jun.contoso.example", "15.2.2562.43", site="Dublin"),  # SE Jun26SU: already behind
        server("e16.contoso.example", "15.1.2507.71", site="Dublin"),  # 2016 CU23: another product
    )
    return scan_run_execute()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('auditor', read_only=True)}")
    return client


def results(scan: ScanRun) -> dict[str, tuple[str, str]]:
    return {
        fqdn: (state, delta)
        for fqdn, state, delta in ServerResult.objects.filter(scan=scan).values_list("server__fqdn", "state", "delta")
    }


@needs_shared
@pytest.mark.django_db
def test_a_new_update_in_the_source_flags_exactly_the_servers_it_affects(
    before_aug26, settings, django_capture_on_commit_callbacks
):
    settings.EXCHANGEPATCH_CATALOG_SOURCES = [CSV.as_uri()]
    baseline = results(before_aug26)
    assert baseline["se-jul.contoso.example"][0] == "current"

    with django_capture_on_commit_callbacks(execute=True):
        refresh_id = catalog_refresh_task.delay().get()

    refresh = CatalogRefresh.objects.get(pk=refresh_id)
    assert (refresh.outcome, refresh.created_count, refresh.updated_count) == ("changed", 1, 0)
    assert refresh.affected_levels == [["SE", "RTM"]]
    change = refresh.changes.get()
    assert (change.action, change.kb, change.build, change.source_name) == (
        "created", "KB5121573", "15.2.2562.46", "ExchangeBuildNumbers.csv",
    )  # fmt: skip
    assert change.source_location == CSV.as_uri() and len(change.source_sha256) == 64
    recompute = ScanRun.objects.get(pk=refresh.scan_id)
    assert (recompute.status, recompute.trigger, recompute.carried_count) == ("succeeded", "catalog", 1)
    after = results(recompute)
    assert after == {
        "se-jul.contoso.example": ("security_update_missing", "newly_noncompliant"),
        "se-jul-2.contoso.example": ("security_update_missing", "newly_noncompliant"),
        "se-jun.contoso.example": (baseline["se-jun.contoso.example"][0], ""),
        "e16.contoso.example": (baseline["e16.contoso.example"][0], ""),
    }
    assert recompute.newly_noncompliant == 2


@needs_shared
@pytest.mark.django_db
def test_the_same_document_again_changes_nothing(before_aug26):
    first = catalog_refresh(urls=[CSV.as_uri()])
    second = catalog_refresh(urls=[CSV.as_uri()])

    assert (first.outcome, second.outcome) == ("changed", "unchanged")
    assert second.sources == [
        {"url": CSV.as_uri(), "status": "unchanged", "detail": "same document as last time",
         "sha256": first.sources[0]["sha256"]}
    ]  # fmt: skip
    assert not second.changes.exists()


@needs_shared
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "route", "detail"),
    [
        ("server error", (500, b"Internal Server Error", "text/plain"), "{url}: HTTP 500 Internal Server Error"),
        ("garbage", (200, b"<html><body>Maintenance</body></html>", "text/html"), None),
        ("empty CSV", (200, b"", "text/csv"), None),
    ],
)
def test_a_source_answering_an_error_or_garbage_changes_nothing_and_is_reported(
    before_aug26, http_server, _case, route, detail
):
    http_server.routes["/bad.csv"] = route
    http_server.routes["/good.csv"] = (200, CSV.read_bytes(), "text/csv")
    bad, good = f"{http_server.url}/bad.csv", f"{http_server.url}/good.csv"
    updates_before = Update.objects.count()
    sources_before = list(CatalogSource.objects.order_by("pk").values_list("name", "sha256", "imported_at"))

    refresh = catalog_refresh(urls=[bad])

    assert refresh.outcome == "failed"
    (report,) = refresh.sources
    assert (report["url"], report["status"]) == (bad, "failed")
    if detail:
        assert report["detail"] == detail.format(url=bad)
    assert Update.objects.count() == updates_before
    assert list(CatalogSource.objects.order_by("pk").values_list("name", "sha256", "imported_at")) == sources_before
    feed = CatalogFeed.objects.get(url=bad)
    assert (feed.consecutive_failures, feed.last_error) == (1, report["detail"])
    # The other sources of the same run are imported all the same.
    both = catalog_refresh(urls=[bad, good])
    assert [s["status"] for s in both.sources] == ["failed", "imported"]
    assert (both.outcome, both.created_count) == ("partial", 1)


@pytest.mark.django_db
def test_a_source_failing_for_longer_than_the_limit_makes_the_catalog_stale(api_client, loaded_catalog, settings):
    url = "file:///nonexistent/ExchangeBuildNumbers.csv"
    settings.EXCHANGEPATCH_CATALOG_SOURCES = [url]
    settings.EXCHANGEPATCH_CATALOG_STALE_DAYS = 7
    catalog_refresh()
    fresh = api_client.get("/api/v1/catalog/status/").json()
    CatalogFeed.objects.filter(url=url).update(failing_since=timezone.now() - timedelta(days=8))
    err = io.StringIO()

    call_command("build_info", "15.2.1544.11", stdout=io.StringIO(), stderr=err)
    stale = api_client.get("/api/v1/catalog/status/").json()

    assert fresh["warnings"] == []
    assert fresh["sources"][0]["last_error"] == f"{url}: no such file"
    warning = f"catalog source {url} could not be fetched for 8 days (never fetched; last error: {url}: no such file)"
    assert stale["warnings"] == [warning]
    assert err.getvalue() == f"warning: {warning}; verdicts may miss newer updates\n"
