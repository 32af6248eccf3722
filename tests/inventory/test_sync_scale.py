"""server_upsert_many at scale (issue 13): a fixed number of queries whatever the estate, reads and comparisons
outside the transaction, and a compare-and-set under the lock that sees what other writers did meanwhile.

Every server, organisation and site below is invented (.example domains); the builds are real.
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory import services
from inventory.models import Change, Organisation, Server, Site
from inventory.records import server_record_from_mapping
from inventory.services import server_upsert_many


def records(items: list[dict]):
    built = [server_record_from_mapping(item, typed=True) for item in items]
    assert all(not errors for _, errors in built), built
    return [record for record, _ in built]


def items(count: int, **changes) -> list[dict]:
    return [
        {"fqdn": f"ex{index:04d}.contoso.example", "organisation": "contoso.example", "site": f"site-{index % 5}",
         "roles": ["Mailbox"], "build": "15.02.1544.009", "owner": "team-a", "tags": ["production"],
         "cluster": f"DAG-{index // 4}", "cluster_kind": "DAG",
         "cluster_role": "active" if index % 4 == 0 else "passive"} | changes
        for index in range(count)
    ]  # fmt: skip


def estate(count: int) -> None:
    """`count` other servers (fabrikam.example) that the sync never names."""
    organisation = Organisation.objects.create(name="fabrikam.example")
    site = Site.objects.create(organisation=organisation, name="elsewhere")
    Server.objects.bulk_create(
        [Server(fqdn=f"other{index:05d}.fabrikam.example", name=f"OTHER{index:05d}", organisation=organisation,
                site=site, roles="Mailbox") for index in range(count)]
    )  # fmt: skip


def queries_of(batch) -> int:
    with CaptureQueriesContext(connection) as captured:
        server_upsert_many(records(batch), source="cmdb")
    return len(captured.captured_queries)


def counts_in(estate_size: int) -> dict[str, int]:
    estate(estate_size)
    return {
        "new": queries_of(items(100)),
        "unchanged": queries_of(items(100)),
        "one field": queries_of(items(100, owner="team-b")),
        "every field": queries_of(items(100, owner="team-c", roles=["EdgeTransport"], site="moved",
                                        build="15.02.1748.010", tags=["test"], cluster_role="passive")),
    }  # fmt: skip


@pytest.mark.django_db
def test_the_queries_of_a_sync_of_100_servers_do_not_depend_on_the_estate():
    small = counts_in(10)
    Server.objects.all().delete()
    Organisation.objects.all().delete()
    large = counts_in(500)

    assert Server.objects.count() == 600
    assert small == large
    assert small["unchanged"] < small["one field"]  # something that could fail: an unchanged sync writes nothing


LOCKING = re.compile(r"\bFOR (NO KEY )?UPDATE\b|\bFOR (KEY )?SHARE\b", re.IGNORECASE)


@pytest.mark.django_db
def test_an_unchanged_sync_only_reads():
    server_upsert_many(records(items(20)), source="cmdb")
    changes = Change.objects.count()

    with CaptureQueriesContext(connection) as captured:
        results = server_upsert_many(records(items(20)), source="cmdb")

    statements = [query["sql"].split()[0].upper() for query in captured.captured_queries]
    assert {result.action for result in results} == {"unchanged"}
    assert set(statements) == {"SELECT"}, statements  # no write, no transaction (a savepoint would show)
    locks = [query["sql"] for query in captured.captured_queries if LOCKING.search(query["sql"])]
    assert locks == []  # a SELECT … FOR NO KEY UPDATE is a SELECT too (PostgreSQL; SQLite drops the clause)
    assert Change.objects.count() == changes


@pytest.mark.django_db
def test_a_change_writes_only_that_column_and_feeds_only_that_field():
    server_upsert_many(records(items(3)), source="cmdb")
    before = dict(Server.objects.values_list("fqdn", "roles"))

    with CaptureQueriesContext(connection) as captured:
        results = server_upsert_many(records(items(3, owner="team-b")), source="cmdb")

    updates = [query["sql"] for query in captured.captured_queries if "UPDATE inventory_server " in query["sql"]]
    assert [result.changed for result in results] == [["owner"]] * 3
    assert len(updates) == 1 and '"owner"' in updates[0] and '"roles"' not in updates[0]
    assert set(Server.objects.values_list("owner", flat=True)) == {"team-b"}
    assert dict(Server.objects.values_list("fqdn", "roles")) == before
    feed = list(Change.objects.filter(action="updated").values_list("key", "data"))
    assert sorted(key for key, _ in feed) == [f"ex{index:04d}.contoso.example" for index in range(3)]
    assert all(data["changed"] == ["owner"] and data["values"] == {"owner": "team-b"} for _, data in feed)


def another_writer_between_read_and_write(monkeypatch, write) -> None:
    """Run `write` after the sync's unlocked read and before its transaction: what a concurrent writer can do."""
    read = services._Seen.read

    def read_then_write(batch):
        seen = read(batch)
        write()
        return seen

    monkeypatch.setattr(services._Seen, "read", staticmethod(read_then_write))


@pytest.mark.django_db
def test_a_field_another_writer_changed_after_the_read_is_kept(monkeypatch):
    server_upsert_many(records(items(2)), source="cmdb")
    another_writer_between_read_and_write(
        monkeypatch, lambda: Server.objects.filter(fqdn="ex0000.contoso.example").update(environment="test")
    )

    results = server_upsert_many(records(items(2, owner="team-b")), source="cmdb")

    assert [result.action for result in results] == ["updated", "updated"]
    server = Server.objects.get(fqdn="ex0000.contoso.example")
    assert (server.owner, server.environment) == ("team-b", "test")


@pytest.mark.django_db
def test_a_change_another_writer_already_made_is_compared_again_under_the_lock(monkeypatch):
    """The unlocked read saw the old owner; the locked re-read sees the new one, so the server is unchanged and the
    feed records nothing twice."""
    server_upsert_many(records(items(2)), source="cmdb")
    another_writer_between_read_and_write(monkeypatch, lambda: Server.objects.update(owner="team-b"))
    changes = Change.objects.count()

    results = server_upsert_many(records(items(2, owner="team-b")), source="cmdb")

    assert [result.action for result in results] == ["unchanged", "unchanged"]
    assert Change.objects.count() == changes


@pytest.mark.django_db
def test_a_server_deleted_after_the_read_is_created_again_on_the_retry(monkeypatch):
    server_upsert_many(records(items(2)), source="cmdb")
    deleted = []

    def delete_once():
        if not deleted:
            deleted.append(True)
            services.server_delete_many(list(Server.objects.filter(fqdn="ex0001.contoso.example").values_list("pk", flat=True)))  # fmt: skip

    another_writer_between_read_and_write(monkeypatch, delete_once)

    results = server_upsert_many(records(items(2, owner="team-b")), source="cmdb")

    assert [result.action for result in results] == ["updated", "created"]
    assert set(Server.objects.values_list("owner", flat=True)) == {"team-b"}
