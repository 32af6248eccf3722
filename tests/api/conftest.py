"""API fixtures: real tokens (hashed in the database) and clients that send them."""

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient


def token_for(username: str, *, read_only: bool = False) -> str:
    out = io.StringIO()
    args = ["api_token_create", "--user", username, "--create-user"] + (["--read-only"] if read_only else [])
    call_command(*args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def api(db) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('cmdb')}")
    return client


@pytest.fixture
def read_only_api(db) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('auditor', read_only=True)}")
    return client


@pytest.fixture
def demo(loaded_catalog):
    """The invented demo estate, scanned as of its date (June 2024)."""
    call_command("demo_load", stdout=io.StringIO())
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())
