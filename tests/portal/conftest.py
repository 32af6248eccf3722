"""Portal fixtures: the invented demo estate scanned as of its date, a signed-in user, and invented estates of any
size for the query-count tests (real catalog builds; names, sites, clusters and tags made up)."""

import io

import pytest
from django.core.management import call_command

from tests.conftest import portal_reader_create


@pytest.fixture
def demo(loaded_catalog):
    call_command("demo_load", stdout=io.StringIO())
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())


@pytest.fixture
def portal(client, db):
    """A signed-in portal user who is not staff, with the view permissions the portal asks for (the admin is for
    staff)."""
    user = portal_reader_create("operator", "invented-password-1")
    client.force_login(user)
    return client


def invented_estate(count: int, *, offset: int = 0, variety: int = 1) -> None:
    """`count` invented servers over real catalog builds, with sites, DAGs and tags (more of each as variety grows),
    written through the sync service as the CMDB would."""
    from inventory.records import server_record_from_mapping
    from inventory.services import server_upsert_many
    from kb.models import Update

    every = list(Update.objects.order_by("pk").values_list("build", flat=True))
    builds = every[:: max(1, len(every) // (40 * variety))]  # spread over every product and level
    records = []
    for index in range(offset, offset + count):
        item = {
            "fqdn": f"ex{index:05d}.invented.example", "site": f"site-{index % (3 * variety)}",
            "roles": ["Mailbox"] if index % 4 else ["EdgeTransport"], "build": builds[index % len(builds)],
            "dotnet_version": "4.8", "tags": [f"tag-{index % (2 * variety)}", "invented"],
        }  # fmt: skip
        if index % 4:
            item |= {"cluster": f"DAG-{index % (5 * variety)}", "cluster_kind": "DAG",
                     "cluster_role": "active" if index % 3 == 0 else "passive"}  # fmt: skip
        record, problems = server_record_from_mapping(item)
        assert not problems, problems
        records.append(record)
    server_upsert_many(records, source="invented test estate")
