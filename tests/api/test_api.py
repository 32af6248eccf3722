"""The REST API against the real database: authentication, resources, verdicts, sync, changes, concurrency."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import ApiToken, Change, Server, Site, Waiver
from tests.api.conftest import token_for

pytestmark = pytest.mark.django_db

# Invented servers (.example); builds are real catalog builds.
ITEM = {"fqdn": "MBX01.Contoso.Example", "site": "Amsterdam", "roles": ["Mailbox"], "build": "15.02.1544.009",
        "dotnet_version": "4.8", "tags": ["eu"]}  # fmt: skip


def sync(api, items, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.post(f"/api/v1/servers/sync/?{query}", {"source": "servicenow", "items": items}, format="json")


# -- authentication --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/servers/", "/api/v1/updates/", "/api/v1/changes/", "/api/v1/compliance/summary/", "/api/v1/schema/"],
)
def test_nothing_is_readable_without_authentication(client, path):
    response = client.get(path)

    assert response.status_code == 401
    if path != "/api/v1/schema/":  # the schema view answers in its own media type
        assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_wrong_token_is_refused(client):
    response = client.get("/api/v1/servers/", HTTP_AUTHORIZATION="Token xp_not-a-real-token")

    assert (response.status_code, response.json()) == (401, {"detail": "invalid, expired or revoked token"})


def test_tokens_are_stored_hashed_and_printed_once():
    key = token_for("cmdb")

    token = ApiToken.objects.get()
    assert key.startswith("xp_") and token.token_key == key[:15]
    assert key not in token.digest and len(token.digest) == 128  # knox: SHA-512


def test_read_only_tokens_can_read_but_not_write(read_only_api):
    assert read_only_api.get("/api/v1/servers/").status_code == 200
    response = sync(read_only_api, [ITEM])

    assert (response.status_code, response.json()) == (403, {"detail": "this token is read-only"})
    assert not Server.objects.exists()


# -- sync ------------------------------------------------------------------------------------------


def test_sync_creates_then_reports_unchanged_and_touches_nothing(api, loaded_catalog):
    first = sync(
        api,
        [ITEM, {"fqdn": "edge01.contoso.example", "roles": "EdgeTransport", "build": "Version 15.2 (Build 1544.4)"}],
    )
    stamps = dict(Server.objects.values_list("fqdn", "last_updated"))
    changes = Change.objects.count()
    second = sync(
        api,
        [ITEM, {"fqdn": "EDGE01.contoso.example", "roles": "EdgeTransport", "build": "Version 15.2 (Build 1544.4)"}],
    )

    assert first.status_code == 200
    assert [(r["index"], r["fqdn"], r["action"]) for r in first.json()["results"]] == [
        (0, "mbx01.contoso.example", "created"), (1, "edge01.contoso.example", "created"),
    ]  # fmt: skip
    assert second.json()["counts"] == {"created": 0, "updated": 0, "unchanged": 2, "invalid": 0}
    assert dict(Server.objects.values_list("fqdn", "last_updated")) == stamps
    assert Change.objects.count() == changes
    edge = Server.objects.get(fqdn="edge01.contoso.example")
    assert (edge.build_source, edge.build_major, edge.build_number) == ("admin_display", 15, 1544)


def test_sync_reports_updated_fields(api):
    sync(api, [ITEM])
    response = sync(api, [{"fqdn": "mbx01.contoso.example", "build": "15.2.1544.11", "owner": "Messaging"}])

    assert response.json()["results"] == [
        {"index": 0, "fqdn": "mbx01.contoso.example", "action": "updated", "changed": ["build", "owner"]}
    ]
    assert Server.objects.get().reported_build == "15.2.1544.11"


def test_sync_dry_run_writes_nothing(api):
    response = sync(api, [ITEM], dry_run="true")

    assert response.json()["dry_run"] is True
    assert response.json()["results"][0]["action"] == "created"
    assert not Server.objects.exists() and not Change.objects.exists()


def test_sync_is_all_or_nothing_by_default_with_errors_by_index_and_field(api):
    items = [ITEM, {"fqdn": "bad", "build": "15.2"}, {"fqdn": "x.contoso.example", "colour": "red"}]
    response = sync(api, items)

    assert response.status_code == 400
    assert response.json() == {
        "detail": "2 item(s) invalid; nothing was written",
        "errors": {"items": {
            "1": {"fqdn": "'bad' is not a fully qualified domain name",
                  "build": "'15.2' is not a build number: expected four numbers separated by dots, got 2 part(s)"},
            "2": {"colour": "unknown field"},
        }},
    }  # fmt: skip
    assert not Server.objects.exists()


def test_sync_not_atomic_applies_the_good_items_and_reports_the_bad(api):
    response = sync(api, [ITEM, {"fqdn": "bad"}], atomic="false")

    assert response.status_code == 200
    assert response.json()["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "invalid": 1}
    assert response.json()["errors"] == {"1": {"fqdn": "'bad' is not a fully qualified domain name"}}
    assert list(Server.objects.values_list("fqdn", flat=True)) == ["mbx01.contoso.example"]


def test_duplicate_fqdns_name_both_items(api):
    response = sync(api, [ITEM, {"fqdn": "mbx01.CONTOSO.example"}])

    assert response.json()["errors"]["items"] == {
        "0": {"fqdn": "mbx01.contoso.example is also item 1"},
        "1": {"fqdn": "mbx01.contoso.example is also item 0"},
    }


@pytest.mark.parametrize(
    ("_case", "body", "errors"),
    [
        ("not an object", [1, 2], {"non_field_errors": ["expected a JSON object with source and items"]}),
        ("no source", {"items": []}, {"source": ["required: a text of at most 100 characters naming the CMDB"]}),
        ("items not a list", {"source": "x", "items": {}}, {"items": ["required: a list of servers"]}),
        ("unknown key", {"source": "x", "items": [], "extra": 1}, {"extra": ["unknown field"]}),
        ("too many items", {"source": "x", "items": [{}] * 10_001}, {"items": ["10001 items is more than the limit of 10000"]}),
    ],
)  # fmt: skip
def test_sync_rejects_malformed_requests(api, _case, body, errors):
    response = api.post("/api/v1/servers/sync/", body, format="json")

    assert (response.status_code, response.json()) == (400, {"detail": "invalid input", "errors": errors})


def test_malformed_json_and_bad_flags_get_400(api):
    bad_json = api.post("/api/v1/servers/sync/", "{bad", content_type="application/json")
    bad_flag = sync(api, [ITEM], dry_run="maybe")

    assert bad_json.status_code == 400 and bad_json.json()["detail"].startswith("JSON parse error")
    assert bad_flag.json() == {"detail": "invalid input", "errors": {"dry_run": ["'maybe' is not true or false"]}}


def test_an_oversized_body_gets_413_with_the_limit(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/api/v1/servers/sync/", {"source": "x", "items": [ITEM] * 20}, format="json")

    assert response.status_code == 413
    assert "larger than the limit of 1000 bytes" in response.json()["detail"]


# -- servers ---------------------------------------------------------------------------------------


def test_servers_are_addressable_by_id_and_by_fqdn_with_an_etag(api, demo):
    server = Server.objects.get(fqdn="mbx-ex19-02.contoso.example")
    by_id = api.get(f"/api/v1/servers/{server.pk}/")
    by_fqdn = api.get("/api/v1/servers/MBX-EX19-02.contoso.example/")

    assert by_id.json() == by_fqdn.json()
    assert by_id["ETag"].startswith('W/"')
    assert by_id.json()["state"] == "excepted"
    assert by_id.json()["cluster"] == {"name": "DAG-EU", "kind": "DAG", "role": "passive"}
    assert api.get("/api/v1/servers/nope.contoso.example/").json() == {
        "detail": "server nope.contoso.example is not in the inventory"
    }


def test_a_stale_if_match_gets_412_and_writes_nothing(api, demo):
    url = "/api/v1/servers/mbx-ex19-02.contoso.example/"
    etag = api.get(url)["ETag"]
    api.patch(url, {"owner": "first writer"}, format="json", HTTP_IF_MATCH=etag)
    stale = api.patch(url, {"owner": "second writer"}, format="json", HTTP_IF_MATCH=etag)

    assert stale.status_code == 412
    assert Server.objects.get(fqdn="mbx-ex19-02.contoso.example").owner == "first writer"
    fresh = api.patch(url, {"owner": "second writer"}, format="json", HTTP_IF_MATCH=api.get(url)["ETag"])
    assert (fresh.status_code, fresh.json()["owner"]) == (200, "second writer")


def test_create_conflicts_with_an_existing_fqdn_and_fqdn_cannot_change(api, demo):
    conflict = api.post("/api/v1/servers/", {"fqdn": "MBX-EX19-02.contoso.example"}, format="json")
    rename = api.patch("/api/v1/servers/mbx-ex19-02.contoso.example/", {"fqdn": "other.contoso.example"}, format="json")

    assert conflict.status_code == 409
    assert rename.json() == {
        "detail": "invalid input",
        "errors": {"fqdn": ["cannot be changed; delete and create instead"]},
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "product=2007",
            {
                "ccr-ex07-a",
                "ccr-ex07-b",
                "ccr-ex07",
                "hub-ex07-01",
                "edge-ex07-01",
                "mbx-ex07-02",
                "scr-ex07-dr",
                "scc-ex07-a",
                "scc-ex07-b",
            },
        ),
        ("product=2019&level=CU14", {"cas-ex19-01", "mbx-ex19-01", "edge-ex19-01", "mbx-ex19-a", "mbx-ex19-b"}),
        ("level=SP2", {"hub-ex07-01"}),
        ("role=EdgeTransport", {"edge-ex19-01", "edge-ex19-02", "edge-ex07-01"}),
        ("state=unsupported_level", {"mbx-ex19-03", "hub-ex07-01"}),
        ("site=Perimeter&tag=edge", {"edge-ex19-01", "edge-ex19-02"}),
        ("fqdn=MBX-EX19-01.CONTOSO.EXAMPLE", {"mbx-ex19-01"}),
        ("fqdn=Mbx-Ex19-01.contoso.example.", {"mbx-ex19-01"}),  # the root's dot, as DNS tools print it
        ("fqdn=mbx-ex19", set()),  # a whole FQDN, not a prefix
        ("last_updated__gte=2999-01-01T00:00:00Z", set()),
    ],
)
def test_server_filters(api, demo, query, expected):
    response = api.get(f"/api/v1/servers/?{query}")

    assert {item["fqdn"].split(".")[0] for item in response.json()["results"]} == expected


def test_bad_filter_values_get_400_naming_the_filter(api, demo):
    response = api.get("/api/v1/servers/?product=2003")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["product"]


@pytest.mark.parametrize("path", ["/api/v1/servers/", "/api/v1/sites/", "/api/v1/clusters/", "/api/v1/waivers/",
                                  "/api/v1/updates/", "/api/v1/fixes/", "/api/v1/scans/"])  # fmt: skip
def test_list_endpoints_use_the_same_number_of_queries_for_3_and_30_objects(api, demo, path):
    api.get(path)  # the first request of a token records its last use; count the steady state

    def count(limit):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(f"{path}?limit={limit}")
        assert response.status_code == 200
        return len(queries), len(response.json()["results"])

    small, large = count(3), count(30)

    assert small[0] == large[0]
    assert small[1] <= 3 and large[1] >= small[1]


def test_cursor_pagination_walks_every_server_once(api, demo):
    seen, url = [], "/api/v1/servers/?limit=4"
    while url:
        page = api.get(url).json()
        seen += [item["fqdn"] for item in page["results"]]
        url = page["next"]

    assert sorted(seen) == sorted(Server.objects.values_list("fqdn", flat=True))
    assert len(seen) == len(set(seen)) == 24


# -- verdicts, plans, catalog queries --------------------------------------------------------------


def test_compliance_of_one_server(api, demo):
    response = api.get("/api/v1/servers/ccr-ex07-b.fabrikam.example/compliance/")

    body = response.json()
    assert (body["state"], body["install"]) == (
        "end_of_life",
        {"name": "Update Rollup 23", "kb": "KB4011325", "build": "8.3.517.0", "esu_only": False},
    )
    assert "KB2608656" in body["supersedes"]


def test_plan_with_and_without_target(api, demo, settings):
    settings.EXCHANGEPATCH_TODAY = "2026-11-25"
    default = api.get("/api/v1/servers/mbx-ex19-01.contoso.example/plan/").json()
    to_se = api.get("/api/v1/servers/mbx-ex19-a.northwind.example/plan/?target=SE").json()
    blocked_se = api.get("/api/v1/servers/mbx-ex19-01.contoso.example/plan/?target=SE")
    wrong = api.get("/api/v1/servers/mbx-ex19-01.contoso.example/plan/?target=2016")

    assert default["target"]["update"] == "Oct25SU"  # the newest public SU: the organisation is not enrolled in ESU
    assert default["cluster"] == {"name": "DAG-EU", "kind": "DAG", "role": "member with active copies"}
    assert to_se["target"]["product"] == "Exchange Server Subscription Edition"
    # SE setup refuses an organisation that still runs Exchange 2013 (contoso.example does).
    assert (
        blocked_se.status_code == 400
        and "while Exchange Server 2010 and Exchange Server 2013 remain" in blocked_se.json()["errors"]["target"][0]
    )
    assert wrong.status_code == 400 and "no in-place upgrade" in wrong.json()["errors"]["target"][0]


def test_summary_counts(api, demo):
    body = api.get("/api/v1/compliance/summary/").json()

    assert body["servers"] == 24
    assert body["by_state"] == {"current": 1, "end_of_life": 10, "excepted": 1, "rollup_unknown": 2,
                                "security_update_missing": 3, "unknown_build": 1, "unsupported_level": 2,
                                "update_available": 4}  # fmt: skip
    assert {"product": "Exchange Server 2019", "level": "CU14", "count": 5} in body["by_product_level"]
    assert body["overdue"]["threshold_days"] == 30


def test_fix_missing_and_update_needed_by(api, demo):
    missing = api.get("/api/v1/fixes/kb2537099/missing/").json()
    needed = api.get("/api/v1/updates/KB5036386/needed-by/").json()

    assert (missing["present_count"], missing["unknown"], missing["not_applicable_count"]) == (
        3,  # the 2010 SP3 servers: SP3 came after SP1 RU4
        ["lab-unknown-01.contoso.example"],
        20,
    )
    assert needed["servers"] == [
        "edge-ex19-01.contoso.example",
        "edge-ex19-02.contoso.example",
        "mbx-ex19-02.contoso.example",
    ]
    assert needed["server_count"] == 3


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/api/v1/fixes/KB1234567/missing/", 404, {"detail": "fix KB1234567 is not in the catalog"}),
        ("/api/v1/updates/KB1234567/needed-by/", 404, {"detail": "update KB1234567 is not in the catalog"}),
        ("/api/v1/updates/rollup/needed-by/", 400, {"detail": "invalid input", "errors": {"kb": ["'rollup' is not a KB number (expected KB followed by 6 to 8 digits)"]}}),
        ("/api/v1/builds/resolve/", 400, {"detail": "invalid input", "errors": {"build": ["required"]}}),
        ("/api/v1/rollout/?site=Atlantis", 404, {"detail": "site Atlantis is not in the inventory"}),
        ("/api/v1/changes/?after=-1", 400, {"detail": "invalid input", "errors": {"after": ["'-1' is not a cursor (a non-negative integer from next_cursor)"]}}),
    ],
)  # fmt: skip
def test_unknown_keys_and_bad_parameters(api, demo, path, status, body):
    response = api.get(path)

    assert (response.status_code, response.json()) == (status, body)


def test_build_resolve_is_the_build_info_object(api, loaded_catalog, settings):
    settings.EXCHANGEPATCH_TODAY = "2024-06-01"
    body = api.get("/api/v1/builds/resolve/?build=15.02.1544.009").json()

    assert body == {
        "input": "15.02.1544.009", "build": "15.2.1544.9", "form": "long", "product": "Exchange Server 2019",
        "level": "CU14", "update": "Mar24SU", "kb": "KB5036386", "release_date": "2024-03-12", "exact": True,
        "is_supported": True, "is_latest": False,
        "sources": {"build": "ExchangeBuildNumbers.csv", "kb": "ExchangeBuildNumbers.csv", "release_date": "ExchangeBuildNumbers.csv"},
        "notes": [], "catalog_as_of": "2026-08-19", "error": None,
    }  # fmt: skip


def test_rollout_json(api, demo, settings):
    settings.EXCHANGEPATCH_TODAY = "2026-11-25"
    body = api.get("/api/v1/rollout/?site=Head-Office").json()

    assert [[s["servers"] for s in wave["servers"]] for wave in body["waves"]] == [
        [["hub-ex07-01.fabrikam.example"]],  # Client Access and Hub Transport before Mailbox
        # The 2007 clusters whole, each in one window; the SCR source waits for its standby (DR site, not listed).
        [
            ["ccr-ex07-a.fabrikam.example", "ccr-ex07-b.fabrikam.example"],
            ["scc-ex07-a.fabrikam.example", "scc-ex07-b.fabrikam.example"],
        ],
    ]
    assert body["waves"][0]["starts_at"].endswith("-05:00")  # the site's New York window


def test_post_scan_answers_202_with_a_status_url(api, demo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/scans/")

    assert response.status_code == 202
    body = response.json()
    assert body["status_url"].endswith(f"/api/v1/scans/{body['id']}/")
    assert api.get(body["status_url"]).json()["status"] == "succeeded"  # eager Celery: it ran in the request


# -- waivers and the change feed -------------------------------------------------------------------


def test_waiver_crud_and_validation(api, demo):
    created = api.post("/api/v1/waivers/", {"server": "mbx-ex19-01.contoso.example", "target_kind": "update",
                                             "target_kb": "kb5037224", "reason": "invented", "approver": "CAB",
                                             "expires_at": "2030-01-01T00:00:00Z"}, format="json")  # fmt: skip
    both = api.post("/api/v1/waivers/", {"server": "mbx-ex19-01.contoso.example", "site": Site.objects.first().pk, "target_kind": "fix",
                                          "target_kb": "KB2537099", "reason": "x", "approver": "y",
                                          "expires_at": "2030-01-01T00:00:00Z"}, format="json")  # fmt: skip
    bad_kb = api.post("/api/v1/waivers/", {"target_kind": "fix", "target_kb": "nope", "reason": "x", "approver": "y",
                                            "expires_at": "2030-01-01T00:00:00Z"}, format="json")  # fmt: skip

    assert created.status_code == 201 and created.json()["target_kb"] == "KB5037224"
    assert created.json()["scope"] == "server"
    assert both.json()["errors"] == {"site": ["give a server or a site (or neither for every server), not both"]}
    assert list(bad_kb.json()["errors"]) == ["target_kb"]
    waiver_id = created.json()["id"]
    assert api.delete(f"/api/v1/waivers/{waiver_id}/").status_code == 204
    assert not Waiver.objects.filter(pk=waiver_id).exists()


def test_change_feed_in_order_with_tombstones_and_verdicts(api, loaded_catalog, django_capture_on_commit_callbacks):
    sync(api, [ITEM])
    api.delete("/api/v1/servers/mbx01.contoso.example/")
    sync(api, [ITEM])
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/api/v1/scans/")

    first = api.get("/api/v1/changes/?after=0&limit=2").json()
    rest = api.get(f"/api/v1/changes/?after={first['next_cursor']}").json()
    events = [(c["kind"], c["action"]) for c in first["results"] + rest["results"]]

    assert events == [("server", "created"), ("server", "deleted"), ("server", "created"), ("verdict", "updated")]
    assert first["has_more"] is True and rest["has_more"] is False
    assert first["results"][1]["data"] is None  # the tombstone
    seqs = [c["seq"] for c in first["results"] + rest["results"]]
    assert seqs == sorted(seqs)
    assert api.get(f"/api/v1/changes/?after={rest['next_cursor']}").json() == {
        "results": [],
        "next_cursor": rest["next_cursor"],
        "has_more": False,
    }


def test_schema_and_docs_are_served(api):
    schema = api.get("/api/v1/schema/?format=json")

    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert {"/api/v1/servers/sync/", "/api/v1/changes/", "/api/v1/builds/resolve/"} <= set(paths)
    assert api.get("/api/v1/docs/").status_code == 200


def test_a_sync_that_keeps_colliding_is_a_409_naming_the_items(api, monkeypatch):
    """Collisions are retried (tests/integration/test_sync_concurrency.py makes real ones); this one never clears."""
    from django.db import IntegrityError

    from inventory import services

    attempts = []

    def collide(records, seen, *, source, copy_new):
        attempts.append(source)
        raise IntegrityError("UNIQUE constraint failed: inventory_server.fqdn")

    monkeypatch.setattr(services, "_servers_upsert", collide)
    response = sync(api, [ITEM, {"fqdn": "edge01.contoso.example"}])

    assert response.status_code == 409
    assert response.json() == {
        "detail": "2 server(s) were being changed by another writer (UNIQUE constraint failed: inventory_server.fqdn);"
        " send them again",
        "errors": {"items": {"0": {"fqdn": ["mbx01.contoso.example is being changed by another writer"]},
                             "1": {"fqdn": ["edge01.contoso.example is being changed by another writer"]}}},
    }  # fmt: skip
    assert len(attempts) == services.ATTEMPTS
    assert not Server.objects.exists()
