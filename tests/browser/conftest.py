"""Playwright (the pip package only) driving Debian's Chromium at /usr/bin/chromium against a live server on a free
port. No browser is downloaded: `.ci/run` installs Chromium with apt when it is missing."""

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import portal_reader_create

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
REQUIRED = os.environ.get("EXCHANGEPATCH_REQUIRE_SERVICES") == "1"
USER, PASSWORD = "operator", "invented-password-1"


# Module scope: while Playwright's sync API runs, its event loop is running in this thread, and Django then refuses
# synchronous ORM calls (and async_to_sync) of tests outside this folder; the loop stops with the module.
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if REQUIRED:
            pytest.fail("/usr/bin/chromium is missing: .ci/run installs it with `apt-get install chromium`")
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    # The browser tests' own set-up (fixtures, live server) still calls the ORM synchronously beside that loop.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()
    if saved is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


class Server:
    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture
def estate(live_server, transactional_db) -> Server:
    """The invented demo estate, scanned as of its date, and a portal account (invented credentials); the live
    server's address as 127.0.0.1, so that every request the page makes can be checked against it."""
    call_command("catalog_load", stdout=io.StringIO())
    call_command("demo_load", stdout=io.StringIO())
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())
    portal_reader_create(USER, PASSWORD)
    return Server(live_server.url.replace("://localhost:", "://127.0.0.1:"))


@pytest.fixture
def page(browser, estate):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", USER)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def screenshot(page, name: str) -> None:
    """Kept under tests/browser/screenshots/ (git-ignored) for a person to look at after the run."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
