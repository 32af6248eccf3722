"""Property-based tests of the live OpenAPI schema (schemathesis) against the WSGI app and the test database.

Every operation of /api/v1/schema/ is called, in this process through `exchangepatch.wsgi.application`, with generated
requests, a real API token, the bundled catalog, the invented demo estate and a scan of it in the database:

- `test_every_request_passes_every_check`: valid and invalid requests (positive and negative generation), as
  schemathesis makes them, pass every check: no 5xx, a documented status code, content type and body, and every request that violates the
  schema refused with a 4xx (negative data rejection);
- `test_responses_conform_to_schema`: valid requests steered towards data that exists (the hooks below) pass the
  same checks but the last.

The hooks steer only the valid requests: a known value put into an invalid request would make it valid while
schemathesis still expects it refused.

The data is loaded once for the module inside an outer transaction that is rolled back at the end; each operation's
test is a savepoint in it (pytest-django's `django_db`) and each example another one, rolled back after the call, so
every example sees the same data. Generation is deterministic (derandomized, fixed seed, no example database).
"""

from __future__ import annotations

import copy
import json
import os
from io import StringIO

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from exchangepatch.wsgi import application

SCHEMA_PATH = "/api/v1/schema/"
# A fixed budget in CI; EXCHANGEPATCH_FUZZ_EXAMPLES=200 for a longer hunt (still derandomized, so repeatable).
MAX_EXAMPLES = int(os.environ.get("EXCHANGEPATCH_FUZZ_EXAMPLES", "12"))
SEED = 20240601
CONFORMANCE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Every check over valid and invalid requests alike: invalid ones must also be refused (4xx) in the documented shape.
ALL_CHECKS = [*CONFORMANCE_CHECKS, negative_data_rejection]
HYPOTHESIS_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def schemathesis_config(mode: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": mode,
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                # The test sends the token; a generated Authorization header would only be a wrong token.
                "with-security-parameters": False,
            },
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        }
    )


def live_schema_document() -> dict:
    """What GET /api/v1/schema/?format=json answers, from the view itself.

    The endpoint needs an authenticated user and the test database does not exist while pytest collects, so the
    view is called with a forced (unsaved) user; `test_the_tested_schema_is_the_served_one` checks with a real token
    that the endpoint serves exactly this document.
    """
    from django.contrib.auth import get_user_model
    from django.urls import resolve
    from rest_framework.test import APIRequestFactory, force_authenticate

    request = APIRequestFactory().get(SCHEMA_PATH, {"format": "json"})
    force_authenticate(request, user=get_user_model()(username="schema-reader"))
    response = resolve(SCHEMA_PATH).func(request)
    response.render()
    assert response.status_code == 200, response.content
    return json.loads(response.content)


DOCUMENT = live_schema_document()


def load_schema(mode: str):
    loaded = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=schemathesis_config(mode))
    loaded.app = application  # calls go through the WSGI application in this process, as from_wsgi arranges
    return loaded


any_request = load_schema("all")  # positive and negative
valid_request = load_schema("positive")


# -- steering generation towards data that exists ---------------------------------------------------
# Generated ids, KBs, site names and builds almost never exist, so without help nearly every detail, plan or
# resolve request would be a 404 or a 400. Half the time the hooks below substitute values from the test database.

KNOWN: dict[str, list] = {}  # filled by the `api_key` fixture


def known_values() -> dict[str, list]:
    from inventory.models import Cluster, Organisation, ScanRun, Server, Site, Waiver
    from kb.models import Fix, Level, Product, Rule, Update

    def ids(model, limit: int = 50) -> list[str]:
        return [str(pk) for pk in model.objects.order_by("pk").values_list("pk", flat=True)[:limit]]

    kbs = sorted(set(Update.objects.exclude(kb="").values_list("kb", flat=True)))
    fqdns = list(Server.objects.order_by("pk").values_list("fqdn", flat=True))
    return {
        # path parameters, by the collection the path starts with (and /kb for {kb} paths)
        "servers": ids(Server) + fqdns[:20],
        "sites": ids(Site),
        "clusters": ids(Cluster),
        "waivers": ids(Waiver),
        "scans": ids(ScanRun),
        "products": ids(Product),
        "levels": ids(Level),
        "rules": ids(Rule),
        "updates": ids(Update),
        "fixes/kb": sorted(Fix.objects.values_list("kb", flat=True))[:50],
        "updates/kb": kbs[:50],
        # query and body values
        "fqdns": fqdns,
        "kbs": kbs,
        "builds": sorted(set(Update.objects.values_list("build", flat=True)))[:80],
        "site_names": sorted(set(Site.objects.values_list("name", flat=True))),
        "organisations": sorted(Organisation.objects.values_list("name", flat=True)),
        "targets": [*kbs[-10:], "SE", "CU14", "CU23"],
    }


def sometimes(original, replacement: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.just(original), replacement)


def flatmap_path_parameters(context, path_parameters):
    if not isinstance(path_parameters, dict) or not path_parameters:
        return st.just(path_parameters)
    collection = context.operation.path.removeprefix("/api/v1/").split("/")[0]
    name, key = ("kb", f"{collection}/kb") if "kb" in path_parameters else ("id", collection)
    values = KNOWN.get(key)
    if not values or name not in path_parameters:
        return st.just(path_parameters)
    return sometimes(path_parameters, st.sampled_from(values).map(lambda v: {**path_parameters, name: v}))


QUERY_VALUES = {  # (path, query parameter) -> KNOWN key
    ("/api/v1/builds/resolve/", "build"): "builds",
    ("/api/v1/rollout/", "site"): "site_names",
    ("/api/v1/servers/{id}/plan/", "target"): "targets",
    ("/api/v1/servers/", "site"): "site_names",
    ("/api/v1/servers/", "fqdn"): "fqdns",
}


def flatmap_query(context, query):
    if not isinstance(query, dict):
        return st.just(query)
    path = context.operation.path
    keys = {name: QUERY_VALUES[(path, name)] for name in query if (path, name) in QUERY_VALUES}
    if not keys:
        return st.just(query)
    replacement = st.fixed_dictionaries({name: st.sampled_from(KNOWN[key]) for name, key in keys.items()})
    return sometimes(query, replacement.map(lambda values: {**query, **values}))


ROLE_SETS = [["Mailbox"], ["Mailbox", "ClientAccess"], ["HubTransport", "ClientAccess"], ["EdgeTransport"]]


def plausible_server(item: dict, fqdn: st.SearchStrategy) -> st.SearchStrategy:
    """The item with the fields a CMDB would send sensibly: a valid FQDN, real roles, a real build."""
    replacements = {"fqdn": fqdn}
    if "roles" in item:
        replacements["roles"] = st.sampled_from(ROLE_SETS)
    if "build" in item or "build_source" in item:
        replacements["build"] = st.sampled_from(KNOWN["builds"])
    if "dotnet_version" in item:
        replacements["dotnet_version"] = st.sampled_from(["4.8", "4.7.2", ""])
    if item.get("cluster"):
        replacements["cluster_kind"] = st.just("DAG")
    dropped = {"prerequisites"}
    return st.fixed_dictionaries(replacements).map(
        lambda values: {k: v for k, v in item.items() if k not in dropped} | values
    )


def new_fqdn(index: int = 0) -> st.SearchStrategy:
    return st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True).map(lambda h: f"{h}{index}.schemathesis.example")


def flatmap_body(context, body):
    if not isinstance(body, dict):
        return st.just(body)
    path, method = context.operation.path, context.operation.method.upper()
    if path == "/api/v1/servers/" and method == "POST":
        return sometimes(body, plausible_server(body, new_fqdn()))
    if path == "/api/v1/servers/{id}/":
        # The FQDN cannot change; without it the server keeps its own.
        return sometimes(body, plausible_server(body, st.none()).map(_without_fqdn))
    if path == "/api/v1/servers/sync/" and isinstance(body.get("items"), list):
        items = [item for item in body["items"] if isinstance(item, dict)]
        fqdns = [st.sampled_from(KNOWN["fqdns"]) | new_fqdn(i) for i in range(len(items))]
        replaced = st.tuples(*(plausible_server(item, fqdn) for item, fqdn in zip(items, fqdns, strict=True)))
        return sometimes(body, replaced.map(lambda new: {**body, "items": _unique_fqdns(list(new))}))
    if path.startswith("/api/v1/sites/") and "organisation" in body:
        return sometimes(body, st.sampled_from(KNOWN["organisations"]).map(lambda org: {**body, "organisation": org}))
    if path.startswith("/api/v1/waivers/"):
        scope = st.fixed_dictionaries(
            {
                "server": st.none() | st.sampled_from(KNOWN["fqdns"]),
                "site": st.none(),
                "target_kb": st.sampled_from(KNOWN["kbs"]),
            }
        )
        return sometimes(body, scope.map(lambda values: {**body, **values}))
    return st.just(body)


def _without_fqdn(item: dict) -> dict:
    return {k: v for k, v in item.items() if k != "fqdn"}


def _unique_fqdns(items: list[dict]) -> list[dict]:
    seen: set[str] = set()
    return [item for item in items if not (item["fqdn"] in seen or seen.add(item["fqdn"]))]


# Only valid requests are steered: a hook that put a known value into an invalid request would make it valid while
# schemathesis still expects it refused (negative_data_rejection).
for _hook in (flatmap_path_parameters, flatmap_query, flatmap_body):
    valid_request.hook(_hook)


# -- fixtures and tests -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_key(django_db_setup, django_db_blocker):
    """The bundled catalog, the invented demo estate scanned as of 2024-06-01, and a read-write API token.

    Loaded once for the module in an outer transaction that is rolled back afterwards; each test is a savepoint in it.
    """
    # Django's WSGI handler closes "old" connections at the start and end of each request; inside the test
    # transaction that marks it as broken. django.test.Client disconnects the same receivers for the same reason.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with django_db_blocker.unblock(), transaction.atomic():
            call_command("catalog_load", stdout=StringIO())
            call_command("demo_load", stdout=StringIO())
            call_command("scan", "--as-of", "2024-06-01", stdout=StringIO())
            out = StringIO()
            call_command("api_token_create", "--user", "schemathesis", "--create-user", stdout=out)
            KNOWN.update(known_values())
            yield out.getvalue().strip()
            KNOWN.clear()
            transaction.set_rollback(True)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call_in_savepoint(case, api_key: str, checks: list) -> None:
    """One example: the call and its checks in a savepoint that is rolled back, whatever the outcome."""
    with transaction.atomic():
        case.call_and_validate(headers={"Authorization": f"Token {api_key}"}, checks=checks)
        transaction.set_rollback(True)


@pytest.mark.django_db
@any_request.parametrize()
@HYPOTHESIS_SETTINGS
def test_every_request_passes_every_check(case, api_key):
    call_in_savepoint(case, api_key, ALL_CHECKS)


@pytest.mark.django_db
@valid_request.parametrize()
@HYPOTHESIS_SETTINGS
def test_responses_conform_to_schema(case, api_key):
    call_in_savepoint(case, api_key, CONFORMANCE_CHECKS)


# Inputs that generation reaches only rarely within the example budget, found while writing these tests: each must be
# refused with a 4xx, never a 5xx. NUL characters cannot be stored in PostgreSQL text; datetimes near the ends of
# the calendar overflow when converted to UTC; PostgreSQL accepts UTC offsets up to 15:59 only.
HOSTILE_REQUESTS = [
    pytest.param("GET", "/api/v1/servers/mbx%00.contoso.example/", None, id="server-id-nul"),
    pytest.param("GET", "/api/v1/servers/mbx%00.contoso.example/compliance/", None, id="server-compliance-id-nul"),
    pytest.param("GET", "/api/v1/rollout/?site=Amsterdam%00", None, id="rollout-site-nul"),
    pytest.param("GET", "/api/v1/fixes/KB5%00/", None, id="fix-kb-nul"),
    pytest.param("POST", "/api/v1/servers/", {"fqdn": "nul.schemathesis.example", "owner": "ops\x00"},
                 id="server-owner-nul"),
    pytest.param("POST", "/api/v1/servers/sync/", {"source": "cmdb\x00", "items": [{"fqdn": "nul.schemathesis.example"}]},
                 id="sync-source-nul"),
    pytest.param("POST", "/api/v1/servers/sync/",
                 {"source": "cmdb", "items": [{"fqdn": "nul.schemathesis.example", "tags": ["eu\x00"]}]},
                 id="sync-tag-nul"),
    pytest.param("POST", "/api/v1/sites/", {"organisation": "contoso\x00", "name": "Nowhere"},
                 id="site-organisation-nul"),
    pytest.param("POST", "/api/v1/waivers/", {"server": "mbx\x00", "target_kind": "update", "target_kb": "KB5036386",
                                              "reason": "r", "approver": "a", "expires_at": "2030-01-01T00:00:00Z"},
                 id="waiver-server-nul"),
    pytest.param("POST", "/api/v1/servers/", {"fqdn": "a.schemathesis.example", "last_reported": "0001-01-01T00:00:00+01:00"},
                 id="last-reported-before-year-1-in-utc"),
    pytest.param("POST", "/api/v1/servers/", {"fqdn": "b.schemathesis.example", "last_reported": "9999-12-31T23:00:00-05:00"},
                 id="last-reported-after-year-9999-in-utc"),
    pytest.param("POST", "/api/v1/servers/", {"fqdn": "c.schemathesis.example", "last_reported": "2024-01-01T00:00:00+16:00"},
                 id="last-reported-offset-16h"),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), HOSTILE_REQUESTS)
def test_hostile_values_are_refused_not_crashed(api_key, method, path, body):
    from werkzeug.test import Client

    with transaction.atomic():
        response = Client(application).open(
            path, method=method, json=body, headers={"Authorization": f"Token {api_key}"}
        )
        transaction.set_rollback(True)

    assert response.status_code < 500, response.get_data(as_text=True)[:300]


@pytest.mark.django_db
def test_the_tested_schema_is_the_served_one(api_key):
    from werkzeug.test import Client

    response = Client(application).get(
        SCHEMA_PATH, query_string={"format": "json"}, headers={"Authorization": f"Token {api_key}"}
    )

    assert response.status_code == 200
    assert json.loads(response.get_data()) == DOCUMENT


def test_schema_is_valid_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert target.read_text(encoding="utf-8").startswith("openapi:")
