"""The admin saves and deletes through the inventory services, as the API and servers_import do: FQDNs lower-cased,
build columns computed, the change feed written, tombstones for a deleted server's waivers. Names are invented."""

import pytest
from django.contrib.auth import get_user_model

from inventory.models import Change, Organisation, Server, Site, Waiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("admin", password="invented-Pa55"))
    return client


@pytest.fixture
def contoso():
    organisation = Organisation.objects.create(name="contoso.example")
    return organisation, Site.objects.create(organisation=organisation, name="Amsterdam")


def form(organisation, site, **fields) -> dict:
    data = {"fqdn": "EX01.CONTOSO.EXAMPLE", "name": "EX01", "organisation": organisation.pk, "site": site.pk,
            "roles": "Mailbox", "edition": "Standard", "reported_build": "15.02.1544.009", "build_source": "exsetup",
            "os_name": "", "dotnet_version": "4.8", "prerequisites": "{}", "environment": "", "owner": "",
            "last_reported_0": "", "last_reported_1": ""}  # fmt: skip
    return data | fields


def test_adding_a_server_stores_the_fqdn_lower_case_with_build_columns_and_a_feed_row(admin_client, contoso):
    response = admin_client.post("/admin/inventory/server/add/", form(*contoso))

    assert response.status_code == 302, response.content[:2000]
    server = Server.objects.get()
    assert server.fqdn == "ex01.contoso.example"
    assert (server.build_major, server.build_minor, server.build_number, server.build_revision) == (15, 2, 1544, 9)
    assert server.sync_source == "admin:admin"
    change = Change.objects.get()
    assert (change.kind, change.key, change.action) == ("server", "ex01.contoso.example", "created")
    assert change.data["values"]["build"] == "15.02.1544.009"
    assert admin_client.get("/api/v1/servers/ex01.contoso.example/").status_code == 200


def test_changing_the_build_recomputes_the_columns_and_records_the_change(admin_client, contoso):
    admin_client.post("/admin/inventory/server/add/", form(*contoso))
    server = Server.objects.get()

    response = admin_client.post(
        f"/admin/inventory/server/{server.pk}/change/", form(*contoso, reported_build="15.2.1748.10")
    )

    assert response.status_code == 302, response.content[:2000]
    server.refresh_from_db()
    assert (server.reported_build, server.build_number, server.build_revision) == ("15.2.1748.10", 1748, 10)
    change = Change.objects.order_by("seq").last()
    assert (change.action, change.data["changed"], change.data["values"]) == (
        "updated",
        ["build"],
        {"build": "15.2.1748.10", "build_source": "exsetup", "build_short": "15.2.1748.10"},
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"reported_build": "15.2"}, "reported_build", "'15.2' is not a build number"),
        ({"fqdn": "ex01"}, "fqdn", "'ex01' is not a fully qualified domain name"),
        ({"roles": "Janitor"}, "roles", "'Janitor' is not an Exchange role"),
        ({"owner": "o" * 201}, "owner", "200 characters"),
    ],
)
def test_invalid_values_are_form_errors_and_nothing_is_written(admin_client, contoso, fields, field, message):
    response = admin_client.post("/admin/inventory/server/add/", form(*contoso, **fields))

    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors[field])
    assert not Server.objects.exists() and not Change.objects.exists()


def test_a_site_of_another_organisation_is_refused(admin_client, contoso):
    other = Organisation.objects.create(name="fabrikam.example")

    response = admin_client.post("/admin/inventory/server/add/", form(other, contoso[1]))

    assert response.context["adminform"].form.errors["site"] == [
        "Amsterdam is a site of contoso.example, not of fabrikam.example"
    ]
    assert not Server.objects.exists()


def test_deleting_a_server_writes_tombstones_for_it_and_its_waivers(admin_client, contoso):
    admin_client.post("/admin/inventory/server/add/", form(*contoso))
    server = Server.objects.get()
    waiver = Waiver.objects.create(server=server, target_kind="update", target_kb="KB5036386", reason="invented",
                                   approver="CAB", expires_at="2030-01-01T00:00:00Z")  # fmt: skip

    response = admin_client.post(f"/admin/inventory/server/{server.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Server.objects.exists() and not Waiver.objects.exists()
    tombstones = list(Change.objects.filter(action="deleted").values_list("kind", "key", "data"))
    assert tombstones == [("waiver", str(waiver.pk), None), ("server", "ex01.contoso.example", None)]


def test_waivers_saved_in_the_admin_are_in_the_feed_with_the_kb_normalised(admin_client, contoso):
    response = admin_client.post("/admin/inventory/waiver/add/", {
        "target_kind": "update", "target_kb": "kb5036386", "reason": "invented", "approver": "CAB", "ticket": "",
        "expires_at_0": "2030-01-01", "expires_at_1": "00:00:00", "site": contoso[1].pk,
    })  # fmt: skip

    assert response.status_code == 302, response.content[:2000]
    waiver = Waiver.objects.get()
    assert waiver.target_kb == "KB5036386"
    assert list(Change.objects.values_list("kind", "key", "action")) == [("waiver", str(waiver.pk), "created")]
