"""Migration inventory 0004 moves the hand-written tokens onto knox and keeps every issued key working."""

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

BEFORE = [("inventory", "0006_legacy_state")]
AFTER = [("inventory", "0007_apitoken_knox")]


@pytest.mark.django_db(transaction=True)
def test_tokens_issued_before_knox_keep_working_after_the_migration():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="cmdb")
    keys = {"xp_" + "a" * 43: False, "xp_" + "b" * 43: True}  # invented keys in the old shape: key → read-only
    for key, read_only in keys.items():
        old.get_model("inventory", "ApiToken").objects.create(
            user_id=user.pk, name="servicenow", prefix=key[:8], key_hash=hashlib.sha256(key.encode()).hexdigest(),
            is_read_only=read_only,
        )  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from inventory.models import ApiToken

    assert sorted(ApiToken.objects.values_list("scope", "name", "expiry")) == [
        ("read-only", "servicenow", None), ("read-write", "servicenow", None)
    ]  # fmt: skip
    for key, read_only in keys.items():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert client.get("/api/v1/servers/").status_code == 200
        write = client.post("/api/v1/servers/sync/", {"source": "x", "items": []}, format="json")
        assert write.status_code == (403 if read_only else 200)
    assert sorted(len(digest) for digest in ApiToken.objects.values_list("digest", flat=True)) == [128, 128]
