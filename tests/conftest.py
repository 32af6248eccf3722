"""Shared fixtures: the real catalog (bundled snapshot of Microsoft's data) as an engine object and in the database."""

import json
from datetime import date
from pathlib import Path

import pytest

from kb.engine.catalog import Catalog, ProductSupport, entry_from_dict

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SNAPSHOT = ROOT / "kb" / "data" / "catalog.json"
needs_shared = pytest.mark.skipif(
    not SHARED_DATA.exists(), reason="../shared/data is not beside the project (fresh clone); CI has it"
)

# Support facts as the bundled rules state them (domain.md §2); tests pass them explicitly.
SUPPORT = {
    "2007": ProductSupport(date(2017, 4, 11), 1),
    "2010": ProductSupport(date(2020, 10, 13), 1),
    "2013": ProductSupport(date(2023, 4, 11), 2),
    "2016": ProductSupport(date(2025, 10, 14), 2),
    "2019": ProductSupport(date(2025, 10, 14), 2),
    "SE": ProductSupport(None, 2),
}


@pytest.fixture(autouse=True)
def _throttle_counters_cleared():
    """The API's throttles count in the cache (local memory in tests): each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session")
def snapshot() -> dict:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def catalog(snapshot) -> Catalog:
    return Catalog([entry_from_dict(item) for item in snapshot["entries"]], support=SUPPORT)


@pytest.fixture
def loaded_catalog(db):
    """The bundled snapshot and rules loaded into the test database."""
    from kb.services import catalog_load_snapshot

    return catalog_load_snapshot()


class LocalHttpServer:
    """A real HTTP server on 127.0.0.1 and a port the OS picks, in a thread: serves `routes` and records requests.

    routes: path → (status, body bytes, content type), or a list of them answered in turn (the last one repeats).
    """

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes: dict[str, object] = {}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                route = server.routes.get(self.path, (404, b"not found", "text/plain"))
                if isinstance(route, list):
                    route = route.pop(0) if len(route) > 1 else route[0]
                status, payload, content_type = route
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    server = LocalHttpServer()
    yield server
    server.close()


def portal_reader_create(username: str, password: str):
    """An account that may read the portal and the API (the view permissions the portal asks for), not staff."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from exchangepatch.access import PORTAL_PERMISSIONS

    user = get_user_model().objects.create_user(username, password=password)
    for permission in PORTAL_PERMISSIONS:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user
