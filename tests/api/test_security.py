"""Who may do what: the permissions matrix (every endpoint and method, for anonymous, view-only staff, read-only token,
read-write token, superuser), knox tokens (legacy keys, expiry, revocation), throttling, the admin's login lockout and
the production settings' `check --deploy`. Users and servers are invented."""

import hashlib
import io
import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from exchangepatch.authentication import AuthFailureThrottle
from inventory.models import ApiToken, Cluster, ScanRun, Server, Site, Waiver
from kb.models import Fix, Level, Product, Rule, Update
from tests.api.conftest import token_for

pytestmark = pytest.mark.django_db
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAFE = {"GET", "HEAD", "OPTIONS"}
COLLECTIONS = {"sites": Site, "clusters": Cluster, "scans": ScanRun, "products": Product, "levels": Level,
               "updates": Update, "rules": Rule}  # fmt: skip


def operations() -> list[tuple[str, str]]:
    """Every (method, path) of the API as its schema states them, plus the schema and docs pages themselves."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = [(method.upper(), path) for path, item in schema["paths"].items() for method in item]
    return sorted({*found, ("GET", "/api/v1/schema/"), ("GET", "/api/v1/docs/")})


OPERATIONS = operations()


def concrete(path: str) -> str:
    """The path with its parameters filled from the demo estate."""
    if "{kb}" in path:
        kb = Fix.objects.order_by("kb").first().kb if path.startswith("/api/v1/fixes/") else "KB5036386"
        return path.replace("{kb}", kb)
    if path.startswith("/api/v1/servers/{id}"):
        return path.replace("{id}", "mbx-ex19-01.contoso.example")
    if path.startswith("/api/v1/waivers/{id}"):
        return path.replace("{id}", str(Waiver.objects.first().pk))
    if "{id}" in path:
        model = COLLECTIONS[path.split("/")[3]]
        return path.replace("{id}", str(model.objects.order_by("pk").first().pk))
    return path


def session(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def actors(demo):
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return {
        "anonymous": APIClient(),
        "view-only staff": session(viewer),
        "read-only token": with_token(token_for("auditor", read_only=True)),
        "read-write token": with_token(token_for("cmdb")),
        "superuser": session(User.objects.create_superuser("root", password="invented-Pa55")),
    }


def expected(actor: str, method: str) -> str:
    if actor == "anonymous":
        return "401"
    if actor in ("view-only staff", "read-only token") and method not in SAFE:
        return "403"
    return "allowed"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_permissions_matrix(actors, method, path):
    url = concrete(path)
    outcome = {}
    for actor, client in actors.items():
        response = getattr(client, method.lower())(url, {}, format="json") if method not in SAFE else client.get(url)
        outcome[actor] = str(response.status_code) if response.status_code in (401, 403) else "allowed"

    assert outcome == {actor: expected(actor, method) for actor in actors}


def test_the_matrix_covers_every_route():
    paths = {path for _, path in OPERATIONS}

    assert {"/api/v1/servers/sync/", "/api/v1/waivers/{id}/", "/api/v1/changes/", "/api/v1/scans/"} <= paths
    assert len(OPERATIONS) >= 40


def test_a_user_who_may_only_view_servers_can_neither_waive_nor_delete(demo):
    """The fault of issue 10: the admin refused this user the waiver page while the API let them write."""
    user = User.objects.create_user("server-viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_server"))
    client = session(user)
    waiver = {"target_kind": "update", "target_kb": "KB5036386", "reason": "invented", "approver": "nobody",
              "expires_at": "2030-01-01T00:00:00Z"}  # fmt: skip
    waivers = Waiver.objects.count()

    assert client.get("/api/v1/servers/").status_code == 200
    assert client.get("/api/v1/waivers/").status_code == 403
    assert client.post("/api/v1/waivers/", waiver, format="json").status_code == 403
    assert client.delete("/api/v1/servers/mbx-ex19-01.contoso.example/").status_code == 403
    assert client.get("/admin/inventory/waiver/").status_code == 403
    assert Waiver.objects.count() == waivers
    assert Server.objects.filter(fqdn="mbx-ex19-01.contoso.example").exists()


# -- tokens ----------------------------------------------------------------------------------------


def test_a_key_issued_before_knox_still_works_and_moves_to_knox_hash():
    user = User.objects.create_user("cmdb")
    key = "xp_" + "k" * 43  # the shape of the keys the hand-written tokens issued
    ApiToken.objects.bulk_create(
        [ApiToken(digest=hashlib.sha256(key.encode()).hexdigest(), token_key=key[:8], user=user, name="legacy")]
    )

    first = with_token(key).get("/api/v1/servers/")
    second = with_token(key).get("/api/v1/servers/")

    assert (first.status_code, second.status_code) == (200, 200)
    token = ApiToken.objects.get()
    assert (token.token_key, len(token.digest), token.name) == (key[:15], 128, "legacy")
    assert with_token("xp_" + "k" * 42 + "j").get("/api/v1/servers/").status_code == 401


def test_expired_and_revoked_tokens_are_refused():
    expired, revoked = token_for("expired"), token_for("revoked")
    ApiToken.objects.filter(user__username="expired").update(expiry="2000-01-01T00:00:00Z")
    ApiToken.objects.filter(user__username="revoked").delete()

    for key in (expired, revoked):
        response = with_token(key).get("/api/v1/servers/")
        assert (response.status_code, response.json()) == (401, {"detail": "invalid, expired or revoked token"})
    assert not ApiToken.objects.exists()  # knox removes an expired token when it is presented


@pytest.mark.parametrize(("days", "expires"), [("30", True), ("0", False)])
def test_api_token_create_sets_the_expiry(days, expires):
    out = io.StringIO()
    call_command("api_token_create", "--user", "cmdb", "--create-user", "--expires-in-days", days, stdout=out)

    token = ApiToken.objects.get()
    assert (token.expiry is not None) == expires
    assert re.fullmatch(r"xp_[0-9a-f]{64}", out.getvalue().strip())


def test_api_token_create_refuses_a_negative_expiry():
    with pytest.raises(CommandError, match="--expires-in-days: -1 is negative"):
        call_command("api_token_create", "--user", "cmdb", "--create-user", "--expires-in-days", "-1")
    assert not ApiToken.objects.exists()


# -- throttling and lockout ------------------------------------------------------------------------


def test_bad_tokens_are_throttled_per_address_and_then_even_a_good_one_waits(monkeypatch):
    monkeypatch.setattr(AuthFailureThrottle, "THROTTLE_RATES", {"auth_failure": "5/minute"})
    good = token_for("cmdb")

    answers = [with_token(f"xp_wrong{n}").get("/api/v1/servers/").status_code for n in range(8)]
    blocked = with_token(good).get("/api/v1/servers/")

    assert answers == [401] * 5 + [429] * 3
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) > 0
    assert blocked.json()["detail"].startswith("too many failed authentications from this address")


def test_authenticated_requests_are_throttled_per_user(monkeypatch):
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    client = with_token(token_for("cmdb"))

    assert [client.get("/api/v1/servers/").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_the_admin_login_locks_after_repeated_failures(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_superuser("admin", password="invented-Pa55")

    def login(password):
        return client.post("/admin/login/?next=/admin/", {"username": "admin", "password": password})

    failures = [login("wrong").status_code for _ in range(3)]
    locked = login("invented-Pa55")

    assert failures[:2] == [200, 200]  # the form again, with an error
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


# -- production settings ---------------------------------------------------------------------------

# The production configuration README "Security" documents (values invented).
PRODUCTION = {
    "DJANGO_SECRET_KEY": "invented-" + "s3cr3t-" * 8,
    "DJANGO_DEBUG": "0",
    "DJANGO_ALLOWED_HOSTS": "patch.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://patch.example.com",
    "DJANGO_BEHIND_TLS_PROXY": "1",
    "DJANGO_SECURE_COOKIES": "1",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
}


def check_deploy(environment: dict) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")} | environment
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_check_deploy_is_clean_in_the_documented_production_configuration():
    result = check_deploy(PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("left_out", "warning"),
    [("DJANGO_SECURE_HSTS_SECONDS", "security.W004"), ("DJANGO_SECURE_SSL_REDIRECT", "security.W008")],
)
def test_check_deploy_names_what_is_missing(left_out, warning):
    result = check_deploy({key: value for key, value in PRODUCTION.items() if key != left_out})

    assert result.returncode != 0
    assert warning in result.stderr + result.stdout
