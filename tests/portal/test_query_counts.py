"""The dashboard and the server list read in a fixed number of queries, whatever the estate's size and variety."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.portal.conftest import invented_estate

pytestmark = pytest.mark.django_db
PAGES = [
    "/",
    "/servers/",
    "/servers/?sort=fqdn",
    "/servers/?state=security_update_missing&site=site-1",
    "/servers/?product=2010&level=SP3",
    "/servers/?q=KB5036386",
    "/servers/?tag=invented&role=Mailbox",
]


def queries_for(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


def scan() -> None:
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())


def test_query_counts_do_not_grow_with_the_estate(portal, loaded_catalog, settings):
    settings.EXCHANGEPATCH_PAGE_SIZE = 10
    invented_estate(20)
    scan()
    invented_estate(10, offset=20)  # newly non-compliant in the second scan
    scan()
    small = {path: queries_for(portal, path) for path in PAGES}
    # Six times the servers, more builds, sites, DAGs and tags, and a second scan (trend, newly non-compliant).
    invented_estate(150, offset=30, variety=3)
    scan()

    large = {path: queries_for(portal, path) for path in PAGES}

    assert large == small
    # Each page also reads the account's permissions (its user and group permissions: two queries).
    assert small["/"] <= 22 and small["/servers/"] <= 10


def test_a_deep_page_costs_what_the_first_page_costs(portal, loaded_catalog, settings):
    settings.EXCHANGEPATCH_PAGE_SIZE = 10
    invented_estate(60)
    scan()
    response = portal.get("/servers/")
    for _ in range(4):
        response = portal.get("/servers/", {"page": response.context["table"].page.next_page_number()})
    token = response.context["table"].page.next_page_number()

    assert queries_for(portal, "/servers/") == queries_for(portal, f"/servers/?page={token}")
