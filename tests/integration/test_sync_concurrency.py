"""Concurrent CMDB syncs on PostgreSQL: real threads, each with its own connection and transactions, through the API.

Reproduces the two faults of issue 10: two syncs setting different fields of the same 1,000 servers (the later one
used to write back the earlier one's fields from a stale read), and three syncs creating the same 1,000 new servers
in a new organisation (two of them used to fail with UniqueViolation, a 500). Servers are invented (.example).
"""

import os
import threading
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from inventory.api.serializers import ServerSerializer
from inventory.api.views import server_queryset
from inventory.models import Change, Cluster, Organisation, Server, Site, Tag
from tests.api.conftest import token_for

IS_POSTGRESQL = "postgresql" in settings.DATABASES["default"]["ENGINE"]
REQUIRED = os.environ.get("EXCHANGEPATCH_REQUIRE_SERVICES") == "1"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not IS_POSTGRESQL and not REQUIRED, reason="needs PostgreSQL: .ci/run's second pass runs it"),
]
COUNT = 1000
FEED_FIELDS = ("name", "organisation", "site", "roles", "edition", "build", "build_source", "build_short", "os_name",
               "dotnet_version", "prerequisites", "is_forefront_installed", "environment", "tags", "owner",
               "last_reported", "cluster")  # fmt: skip


@pytest.fixture
def key(transactional_db):
    if not IS_POSTGRESQL:
        pytest.fail("the concurrency tests need PostgreSQL (DATABASE_URL): SQLite runs one writer at a time")
    return token_for("cmdb")


def run_at_once(key: str, bodies: list[dict]) -> list:
    """POST each body to /servers/sync/ from its own thread, all released together; (status, JSON) or the error."""
    barrier = threading.Barrier(len(bodies))
    answers: list = [None] * len(bodies)

    def post(index: int) -> None:
        client = APIClient(raise_request_exception=False)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        try:
            barrier.wait(timeout=30)
            response = client.post("/api/v1/servers/sync/", bodies[index], format="json")
            is_json = response["Content-Type"].startswith("application/json")
            answers[index] = (response.status_code, response.json() if is_json else response.content[:300])
        except Exception as error:  # reported by the assertion below, with the thread's error
            answers[index] = (None, repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return answers


def feed_replayed() -> dict[str, dict]:
    """The servers as a consumer of /changes/ rebuilds them: every server change applied in seq order."""
    servers: dict[str, dict] = {}
    for change in Change.objects.filter(kind="server").order_by("seq"):
        if change.action == "deleted":
            servers.pop(change.key, None)
        else:
            servers.setdefault(change.key, {}).update(change.data["values"])
    return servers


def stored() -> dict[str, dict]:
    return {
        server["fqdn"]: {name: server[name] for name in FEED_FIELDS}
        for server in ServerSerializer(server_queryset(), many=True).data
    }


def items(start: int = 0, **fields) -> list[dict]:
    return [{"fqdn": f"ex{index:04d}.contoso.example", **fields} for index in range(start, start + COUNT)]


def test_two_syncs_setting_different_fields_of_the_same_servers_keep_both(key):
    created = run_at_once(key, [{"source": "cmdb", "items": items(build="15.2.1544.4", roles=["Mailbox"])}])
    assert created[0][0] == 200, created

    answers = run_at_once(
        key,
        [
            {"source": "asset-register", "items": items(owner="Messaging team")},
            {"source": "licensing", "items": items(edition="Enterprise", build="Version 15.2 (Build 1748.10)")},
        ],
    )

    assert [status for status, _ in answers] == [200, 200], answers
    assert [body["counts"] for _, body in answers] == [
        {"created": 0, "updated": COUNT, "unchanged": 0, "invalid": 0}
    ] * 2
    assert Counter(Server.objects.values_list("owner", "edition", "build_source", "build_number")) == {
        ("Messaging team", "Enterprise", "admin_display", 1748): COUNT
    }
    assert feed_replayed() == stored()


def test_three_syncs_creating_the_same_new_servers_all_succeed_as_upserts(key):
    payload = items(
        organisation="newco.example", site="Lyon", site_is_internet_facing=False, tags=["eu", "new"],
        build="15.2.1544.4", cluster="DAG-LYON", cluster_kind="DAG", cluster_role="passive",
    )  # fmt: skip

    answers = run_at_once(key, [{"source": f"cmdb-{n}", "items": payload} for n in range(3)])

    assert [status for status, _ in answers] == [200, 200, 200], answers
    actions = Counter(result["action"] for _, body in answers for result in body["results"])
    assert actions == {"created": COUNT, "unchanged": 2 * COUNT}
    assert Server.objects.count() == COUNT
    assert list(Organisation.objects.values_list("name", flat=True)) == ["newco.example"]
    assert list(Site.objects.values_list("name", flat=True)) == ["Lyon"]
    assert list(Cluster.objects.values_list("name", flat=True)) == ["DAG-LYON"]
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["eu", "new"]
    assert Change.objects.filter(kind="server", action="created").count() == COUNT
    assert feed_replayed() == stored()


def test_concurrent_syncs_changing_overlapping_servers_in_opposite_orders_do_not_deadlock(key):
    """Each sync lists the servers in the other's reverse order and also creates servers the other creates."""
    run_at_once(key, [{"source": "cmdb", "items": items()}])
    forward = items(owner="forward", tags=["a", "b"]) + items(start=COUNT, owner="forward")
    backward = list(reversed(items(environment="production", tags=["b", "c"]) + items(start=COUNT, environment="dr")))

    answers = run_at_once(key, [{"source": "one", "items": forward}, {"source": "two", "items": backward}])

    assert [status for status, _ in answers] == [200, 200], answers
    assert Server.objects.count() == 2 * COUNT
    assert Counter(Server.objects.filter(fqdn__lt="ex1000").values_list("owner", "environment")) == {
        ("forward", "production"): COUNT
    }
    assert feed_replayed() == stored()
