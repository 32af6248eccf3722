"""The portal in a real browser: sign-in, the dashboard against the API, drilling down, search, plans, exports, and
the API docs with no request leaving 127.0.0.1."""

import csv
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import log_in, screenshot

pytestmark = pytest.mark.integration


def test_anonymous_visitors_are_sent_to_the_login_page(page, estate):
    page.goto(f"{estate.url}/servers/?state=excepted")

    assert urlsplit(page.url).path == "/login/"
    assert page.get_by_role("heading", name="Sign in to ExchangePatch").is_visible()
    screenshot(page, "01-login")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "invented-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{estate.url}/servers/?state=excepted")  # back to the page that was asked for
    assert page.locator("tr[data-fqdn]").all_inner_texts()[0].startswith("mbx-ex19-02.contoso.example")


def test_dashboard_counts_equal_the_api_summary(page, estate):
    log_in(page, estate.url)
    summary = page.request.get(f"{estate.url}/api/v1/compliance/summary/").json()

    shown = {
        card.get_attribute("data-state"): int(card.locator(".count").inner_text())
        for card in page.locator("#state-counts a[data-state]").all()
    }
    total = int(page.get_by_test_id("servers-total").locator(".count").inner_text())

    assert {state: count for state, count in shown.items() if count} == summary["by_state"]
    assert total == summary["servers"] == 24  # the demo estate (invented)
    assert page.get_by_test_id("newly-count").inner_text() == str(summary["newly_noncompliant"])
    assert page.evaluate("window.levelsChart.data.datasets[0].data") == [
        row["count"] for row in summary["by_product_level"]
    ]
    screenshot(page, "02-dashboard")


def test_a_chart_bar_opens_the_servers_behind_it(page, estate):
    log_in(page, estate.url)
    labels = page.evaluate("window.levelsChart.data.labels")
    index = labels.index("Exchange Server 2019 CU14")
    expected = page.evaluate(f"window.levelsChart.data.datasets[0].data[{index}]")
    # Click the middle of that bar, where Chart.js drew it.
    x, y = page.evaluate(
        f"(() => {{ const bar = window.levelsChart.getDatasetMeta(0).data[{index}];"
        f" const box = window.levelsChart.canvas.getBoundingClientRect();"
        f" return [box.left + (bar.x + bar.base) / 2, box.top + bar.y]; }})()"
    )
    page.mouse.click(x, y)
    page.wait_for_url("**/servers/?product=2019&level=CU14")

    rows = page.locator("tr[data-fqdn]")
    assert rows.count() == expected == 5
    assert page.get_by_test_id("match-count").inner_text().startswith("5 servers")
    screenshot(page, "03-servers-from-chart")


def test_a_table_link_and_a_kb_search(page, estate):
    log_in(page, estate.url)
    link = page.locator("#needed-table tbody tr").first.locator("a[data-count]")
    count = int(link.get_attribute("data-count"))
    link.click()
    page.wait_for_url("**/servers/?installs=KB4011325")  # 2007 SP3 RU23: the next install of most demo servers
    assert page.locator("tr[data-fqdn]").count() == count == 8

    page.fill("input[name=q] >> nth=0", "kb5036386")
    page.press("input[name=q] >> nth=0", "Enter")
    page.wait_for_url("**/servers/?q=kb5036386")
    assert sorted(page.locator("tr[data-fqdn]").evaluate_all("rows => rows.map(r => r.dataset.fqdn)")) == [
        "edge-ex19-01.contoso.example", "edge-ex19-02.contoso.example", "mbx-ex19-02.contoso.example",
    ]  # fmt: skip
    screenshot(page, "04-kb-search")

    page.goto(f"{estate.url}/servers/?q=KB12")
    assert "'KB12' is not a KB number" in page.get_by_test_id("search-error").inner_text()
    assert page.locator("tr[data-fqdn]").count() == 0
    screenshot(page, "05-bad-search")


def test_open_a_servers_plan(page, estate):
    log_in(page, estate.url)
    page.goto(f"{estate.url}/servers/")
    page.get_by_role("link", name="mbx-ex19-01.contoso.example", exact=True).click()
    page.wait_for_url("**/servers/mbx-ex19-01.contoso.example/")

    steps = page.get_by_test_id("plan-steps").locator("li")
    own = steps.evaluate_all(
        "items => items.filter(i => i.dataset.server === 'mbx-ex19-01.contoso.example').map(i => i.dataset.kind)"
    )
    last = steps.last
    commands = page.locator("pre.command").all_inner_texts()
    assert own[-1] in ("verify", "gate") and "install" in own
    # every DAG member is drained (active copies are per database, not per server), then the DAG is rebalanced
    assert "Set-MailboxServer MBX-EX19-01 -DatabaseCopyActivationDisabledAndMoveNow $true" in commands
    assert last.get_attribute("data-scope") == "cluster" and "RedistributeActiveDatabases.ps1" in last.inner_text()
    assert page.locator("#cluster-members tr").count() == 3
    screenshot(page, "06-server-plan")

    page.goto(f"{estate.url}/servers/nowhere.contoso.example/")
    assert "server nowhere.contoso.example is not in the inventory" in page.locator("main").inner_text()
    assert page.locator("nav.navbar").is_visible()
    screenshot(page, "07-unknown-server")


def test_export_a_csv_and_check_its_rows(page, estate):
    log_in(page, estate.url)
    page.goto(f"{estate.url}/servers/?tag=edge")
    listed = page.locator("tr[data-fqdn]").evaluate_all("rows => rows.map(r => r.dataset.fqdn)")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    with open(download.value.path(), encoding="utf-8") as exported:
        rows = list(csv.DictReader(exported))

    assert download.value.suggested_filename == "servers.csv"
    assert [row["FQDN"] for row in rows] == listed
    assert {row["FQDN"]: row["State"] for row in rows} == {
        "edge-ex07-01.fabrikam.example": "End of life",
        "edge-ex19-01.contoso.example": "Security update missing",
        "edge-ex19-02.contoso.example": "Security update missing",
    }


def test_every_page_renders_for_the_screenshots(page, estate):
    log_in(page, estate.url)
    for name, path in [
        ("08-who-lacks", "/who-lacks/?kb=KB5036386"),
        ("09-rollout", "/rollout/"),
        ("10-coexistence", "/coexistence/?introduce=2013&organisation=fabrikam.example"),
        ("11-catalog", "/catalog/?product=2019"),
        ("12-update", "/catalog/updates/KB2509910/"),
        ("13-sources", "/catalog/sources/"),
        ("14-admin-servers", "/admin/inventory/server/"),
    ]:
        response = page.goto(f"{estate.url}{path}")
        assert response.status == (302 if name == "14-admin-servers" else 200) or response.ok, path
        screenshot(page, name)


def test_swagger_renders_with_no_request_leaving_127_0_0_1(page, estate):
    log_in(page, estate.url)
    requests, blocked = [], {}
    page.on("request", lambda request: requests.append(request.url))
    page.on("requestfailed", lambda request: blocked.setdefault(request.url, request.failure))

    page.goto(f"{estate.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock-tag")
    page.wait_for_load_state("networkidle")
    assert page.locator(".swagger-ui .opblock").count() > 20  # every operation is there
    screenshot(page, "15-swagger")
    swagger = list(requests)

    page.goto(f"{estate.url}/api/v1/redoc/")
    page.wait_for_selector(".menu-content")
    page.wait_for_load_state("networkidle")
    screenshot(page, "16-redoc")

    assert swagger and {host_of(url) for url in swagger} == {"127.0.0.1"}, swagger
    # Redoc's menu always asks for its logo on cdn.redoc.ly; the page's Content-Security-Policy stops it in the browser.
    outside = sorted({url for url in requests if host_of(url) != "127.0.0.1"})
    assert all(blocked.get(url) == "csp" for url in outside), (outside, blocked)


def host_of(url: str) -> str:
    return urlsplit(url.removeprefix("blob:")).hostname
