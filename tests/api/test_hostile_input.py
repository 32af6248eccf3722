"""Every hostile input of issue 10 gets a 400 (or 404) in the API's error shape naming the field, never a 500, and
nothing is written; servers_import names the line and the field. Server names are invented (.example)."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from inventory.models import Change, Organisation, Server

pytestmark = pytest.mark.django_db

FQDN = "mbx01.contoso.example"
LONG_DOMAIN = ".".join(
    ["d" * 63, "e" * 63, "f" * 63, "g" * 9, "example"]
)  # 209 characters: longer than an organisation name
NUL_CURSOR = "'\\u0000' is not a cursor (a non-negative integer from next_cursor)"


def post_raw(api, path: str, text: str, method: str = "post"):
    """Send `text` as the body exactly (a lone surrogate can only be written as a JSON escape)."""
    return getattr(api, method)(path, text, content_type="application/json")


def nothing_written() -> bool:
    return not Server.objects.exists() and not Change.objects.exists() and not Organisation.objects.exists()


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/api/v1/changes/?after=%C2%B2", 400, {"detail": "invalid input", "errors": {"after": ["'²' is not a cursor (a non-negative integer from next_cursor)"]}}),
        ("/api/v1/changes/?limit=%D9%A3", 400, {"detail": "invalid input", "errors": {"limit": ["'٣' is not between 1 and 1000"]}}),
        ("/api/v1/changes/?after=99999999999999999999", 400, {"detail": "invalid input", "errors": {"after": ["'99999999999999999999' is not a cursor (a non-negative integer from next_cursor)"]}}),
        ("/api/v1/servers/%C2%B2/", 404, {"detail": "server ² is not in the inventory"}),
        ("/api/v1/servers/99999999999999999999/", 404, {"detail": "server 99999999999999999999 is not in the inventory"}),
        ("/api/v1/servers/?limit=null", 400, {"detail": "invalid input", "errors": {"limit": ["'null' is not a number from 1 to 1000"]}}),
        ("/api/v1/servers/?limit=%C2%B2", 400, {"detail": "invalid input", "errors": {"limit": ["'²' is not a number from 1 to 1000"]}}),
        ("/api/v1/sites/?limit=0", 400, {"detail": "invalid input", "errors": {"limit": ["'0' is not a number from 1 to 1000"]}}),
        ("/api/v1/servers/?site=a%00b", 400, {"detail": "invalid input", "errors": {"site": ["contains a NUL character (\\u0000), which no field accepts"]}}),
        ("/api/v1/no-such-endpoint/", 404, {"detail": "/api/v1/no-such-endpoint/ is not an API endpoint"}),
        ("/api/v1/servers/1/compliance/extra/", 404, {"detail": "/api/v1/servers/1/compliance/extra/ is not an API endpoint"}),
    ],
)  # fmt: skip
def test_hostile_query_and_path_values(api, path, status, body):
    response = api.get(path)

    assert (response.status_code, response["Content-Type"], response.json()) == (status, "application/json", body)


SURROGATE = "contains a lone surrogate (\\ud800), which is not text"
SURROGATE_NAME = "the name contains a lone surrogate (\\ud800), which is not text"


@pytest.mark.parametrize(
    ("path", "text", "errors"),
    [
        ("/api/v1/servers/sync/", '{"source": "cmdb", "items": [{"fqdn": "mbx01.contoso.example", "owner": "\\ud800"}]}',
         {"items": {"0": {"owner": [SURROGATE]}}}),
        ("/api/v1/servers/sync/", '{"source": "cmdb", "items": [{"fqdn": "mbx01.contoso.example", "\\ud800": "x"}]}',
         {"items": {"0": {"\\ud800": [SURROGATE_NAME]}}}),
        ("/api/v1/servers/sync/", '{"source": "cmdb", "items": [{"fqdn": "mbx01.contoso.example", "tags": ["eu", "\\udfff"]}]}',
         {"items": {"0": {"tags": {"1": ["contains a lone surrogate (\\udfff), which is not text"]}}}}),
        ("/api/v1/servers/sync/", '{"source": "cmdb", "items": [{"fqdn": "mbx01.contoso.example", "owner": "a\\u0000b"}]}',
         {"items": {"0": {"owner": ["contains a NUL character (\\u0000), which no field accepts"]}}}),
        ("/api/v1/servers/", '{"fqdn": "mbx01.contoso.example", "owner": "\\ud800"}', {"owner": [SURROGATE]}),
        ("/api/v1/servers/", '{"fqdn": "mbx01.contoso.example", "\\ud800x": 1}', {"\\ud800x": [SURROGATE_NAME]}),
        ("/api/v1/sites/", '{"organisation": "contoso.example", "name": "\\ud800"}', {"name": [SURROGATE]}),
        ("/api/v1/waivers/", '{"server": "\\ud800", "target_kind": "update", "target_kb": "KB5036386", "reason": "r", '
                             '"approver": "a", "expires_at": "2030-01-01T00:00:00Z"}', {"server": [SURROGATE]}),
    ],
)  # fmt: skip
def test_lone_surrogates_and_nul_in_bodies_name_the_field(api, path, text, errors):
    response = post_raw(api, path, text)

    assert (response.status_code, response.json()) == (400, {"detail": "invalid input", "errors": errors})
    assert nothing_written()


def test_a_lone_surrogate_in_a_patch_names_the_field(api):
    api.post("/api/v1/servers/", {"fqdn": FQDN, "owner": "Messaging"}, format="json")
    changes = Change.objects.count()

    response = post_raw(api, f"/api/v1/servers/{FQDN}/", '{"owner": "\\ud800"}', method="patch")

    assert (response.status_code, response.json()) == (
        400,
        {"detail": "invalid input", "errors": {"owner": [SURROGATE]}},
    )
    assert Server.objects.get().owner == "Messaging" and Change.objects.count() == changes


@pytest.mark.parametrize(
    ("_case", "item", "errors"),
    [
        ("domain part longer than the organisation column", {"fqdn": f"ex01.{LONG_DOMAIN}"},
         {"fqdn": "the domain part is longer than an organisation name (200 characters); state the organisation"}),
        ("build padded with spaces past its column", {"fqdn": FQDN, "build": "Version 15.2" + " " * 120 + "(Build 1544.4)"},
         {"build": "longer than 100 characters"}),
        ("organisation longer than its column", {"fqdn": FQDN, "organisation": "o" * 201},
         {"organisation": "longer than 200 characters"}),
        ("owner longer than its column once stripped", {"fqdn": FQDN, "owner": " " + "o" * 201 + " "},
         {"owner": "longer than 200 characters"}),
        ("tag longer than its column", {"fqdn": FQDN, "tags": ["t" * 65]}, {"tags": "a tag is longer than 64 characters"}),
        ("prerequisite version too long", {"fqdn": FQDN, "prerequisites": {"ucma": "4" * 33}},
         {"prerequisites": "ucma: longer than 32 characters"}),
        ("boolean as a number", {"fqdn": FQDN, "is_forefront_installed": 0},
         {"is_forefront_installed": "expected true or false, got 0"}),
        ("a value nested instead of text", {"fqdn": FQDN, "owner": [[["deep"]]]}, {"owner": "expected text, got list"}),
    ],
)  # fmt: skip
def test_values_past_a_column_or_of_the_wrong_kind_name_the_field(api, _case, item, errors):
    response = api.post("/api/v1/servers/sync/", {"source": "cmdb", "items": [item]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "1 item(s) invalid; nothing was written", "errors": {"items": {"0": errors}}}
    assert nothing_written()


def test_the_domain_part_may_be_long_when_the_organisation_is_stated(api):
    response = api.post(
        "/api/v1/servers/sync/",
        {"source": "cmdb", "items": [{"fqdn": f"ex01.{LONG_DOMAIN}", "organisation": "Contoso"}]},
        format="json",
    )

    assert response.json()["counts"]["created"] == 1
    assert Server.objects.get().organisation.name == "Contoso"


def test_json_nested_100000_deep_is_a_400(api):
    response = post_raw(api, "/api/v1/servers/sync/", "[" * 100_000 + "]" * 100_000)

    assert (response.status_code, response.json()) == (
        400,
        {"detail": "JSON parse error - nested deeper than 32 levels"},
    )
    assert nothing_written()


def test_json_nested_past_the_limit_inside_a_field_names_the_path(api):
    deep = {"source": "cmdb", "items": [{"fqdn": FQDN, "prerequisites": json.loads("[" * 40 + "]" * 40)}]}

    response = api.post("/api/v1/servers/sync/", deep, format="json")

    path = response.json()["errors"]["items"]["0"]["prerequisites"]
    while isinstance(path, dict):
        assert list(path) == ["0"]
        path = path["0"]
    assert (response.status_code, path) == (400, ["nested deeper than 32 levels"])
    assert nothing_written()


# -- servers_import --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "text", "line"),
    [
        ("NUL inside a field", "fqdn,owner\nmbx01.contoso.example,Mess\x00aging\n",
         "line 2: owner: contains a NUL character (\\u0000), which no field accepts"),
        ("over-long organisation from the site path", '"Name","Fqdn","Site","ServerRole","Edition","AdminDisplayVersion"\n'
         f'"MBX01","mbx01.contoso.example","{"o" * 201}/Configuration/Sites/Amsterdam","Mailbox","Standard","Version 15.2 (Build 1544.4)"\n',
         "line 2: organisation: longer than 200 characters"),
        ("over-long build", "fqdn,build\nmbx01.contoso.example,15.2.1544." + "0" * 120 + "4\n",
         "line 2: build: longer than 100 characters"),
        ("domain part longer than an organisation", f"fqdn\nex01.{LONG_DOMAIN}\n",
         "line 2: fqdn: the domain part is longer than an organisation name (200 characters); state the organisation"),
    ],
)  # fmt: skip
def test_servers_import_names_the_line_and_field_and_writes_nothing(tmp_path, _case, text, line):
    path = tmp_path / "servers.csv"
    path.write_text(text, encoding="utf-8", newline="")
    err = io.StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("servers_import", str(path), stdout=io.StringIO(), stderr=err)

    assert err.getvalue().splitlines() == [line]
    assert str(raised.value) == f"{path}: 1 row(s) with errors; nothing was written"
    assert nothing_written()


# -- schema conformance: what the schema does not allow is refused ----------------------------------

WAIVER = {"target_kind": "update", "target_kb": "KB5036386", "reason": "invented", "approver": "CAB",
          "expires_at": "2030-01-01T00:00:00Z"}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "errors"),
    [
        ("/api/v1/sites/", {"organisation": "contoso.example", "name": "Lyon", "is_internet_facing": 0},
         {"is_internet_facing": ["Must be a valid boolean."]}),
        ("/api/v1/sites/", {"organisation": "contoso.example", "name": 5}, {"name": ["Not a valid string."]}),
        ("/api/v1/sites/", {"organisation": "", "name": "Lyon"},
         {"organisation": ["may not be empty: give a value, or null where null is allowed"]}),
        ("/api/v1/waivers/", {**WAIVER, "server": ""},
         {"server": ["may not be empty: give a value, or null where null is allowed"]}),
        ("/api/v1/waivers/", {**WAIVER, "site": "1"},
         {"site": ["Incorrect type. Expected pk value, received str."]}),
        ("/api/v1/servers/", {"fqdn": FQDN, "is_forefront_installed": "true"},
         {"is_forefront_installed": ["expected true or false, got 'true'"]}),
        ("/api/v1/servers/", {"fqdn": FQDN, "cluster": "DAG-1", "cluster_kind": "dag"},
         {"cluster_kind": ["'dag' is not one of CCR, SCR, SCC, DAG"]}),
        ("/api/v1/servers/", {"fqdn": FQDN, "last_reported": "20241101T080000Z"},
         {"last_reported": ["'20241101T080000Z' is not an ISO 8601 date and time"]}),
    ],
)  # fmt: skip
def test_values_the_schema_does_not_allow_are_refused(api, path, body, errors):
    from inventory.models import Organisation, Site, Waiver

    Organisation.objects.create(name="contoso.example")
    response = api.post(path, body, format="json")

    assert (response.status_code, response.json()) == (400, {"detail": "invalid input", "errors": errors})
    assert not Site.objects.exists() and not Waiver.objects.exists() and not Server.objects.exists()


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("/api/v1/sites/?is_internet_facing=null", {"is_internet_facing": ["expected true or false"]}),
        ("/api/v1/sites/?is_internet_facing=1", {"is_internet_facing": ["expected true or false"]}),
        ("/api/v1/levels/?kind=", {"kind": ["give a value, or leave the parameter out"]}),
        ("/api/v1/waivers/?expires_at__lte=", {"expires_at__lte": ["give a value, or leave the parameter out"]}),
    ],
)
def test_filter_values_that_would_be_ignored_are_refused(api, query, errors):
    response = api.get(query)

    assert (response.status_code, response.json()) == (400, {"detail": "invalid input", "errors": errors})
