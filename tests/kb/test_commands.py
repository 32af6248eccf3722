"""The catalog commands against the real database: import, load, build_info, fixes_import."""

import http.server
import io
import json
import shutil
import threading
from functools import partial

import pytest
from django.core.management import CommandError, call_command

from kb.models import CatalogConflict, CatalogSource, Fix, Rule, Update, UpdateFix
from tests.conftest import SHARED_DATA, needs_shared

MARKDOWN = SHARED_DATA / "catalog" / "build-numbers-and-release-dates.md"
CSV = SHARED_DATA / "catalog" / "ExchangeBuildNumbers.csv"
SP1_RU4 = SHARED_DATA / "announcements" / "2011-06-22-exchange-2010-sp1-rollup-4-released.md"
SP2_RU3 = SHARED_DATA / "announcements" / "2012-05-30-exchange-2010-sp2-rollup-3-released.md"


def run(*args, stdin: str | None = None) -> str:
    out = io.StringIO()
    if stdin is not None:
        import sys

        previous, sys.stdin = sys.stdin, io.StringIO(stdin)
        try:
            call_command(*args, stdout=out)
        finally:
            sys.stdin = previous
    else:
        call_command(*args, stdout=out)
    return out.getvalue()


@needs_shared
@pytest.mark.django_db
def test_catalog_import_of_both_real_sources_counts_and_keeps_conflicts():
    first = run("catalog_import", str(CSV))
    second = run("catalog_import", str(MARKDOWN))
    again = run("catalog_import", str(MARKDOWN))

    assert "340 created, 0 updated, 0 unchanged, 0 conflicts, 0 skipped" in first
    # The page's support links replace 12 KBs the CSV gave to every product of a month.
    assert "1 created, 12 updated, 223 unchanged, 22 conflicts, 28 skipped" in second
    assert "0 created, 0 updated, 236 unchanged, 22 conflicts" in again
    assert (
        "  conflict: Exchange Server 2019 CU10 Jul21SU kb: kept KB5004780 (build-numbers-and-release-dates.md), "
        "ExchangeBuildNumbers.csv says KB5004778 [ExchangeBuildNumbers.csv gives KB5004778 to Jul21SU of 2013, 2016, "
        "2019 alike, where build-numbers-and-release-dates.md names a separate article per product: a simplification]"
    ) in second.splitlines()
    assert Update.objects.count() == 341
    assert CatalogConflict.objects.count() == 22
    ru4 = Update.objects.get(identity_key="2010|SP1|RU|4|1")
    assert (ru4.build, ru4.kb) == ("14.1.323.1", "KB2509910")  # the CSV's build is kept ...
    assert ru4.alternate_builds == [
        {"build": "14.1.323.6", "source": "build-numbers-and-release-dates.md"}
    ]  # ... and the page's too
    assert ru4.field_sources == {"build": CSV.name, "kb": CSV.name, "release_date": CSV.name}  # the page has no link
    jul21 = Update.objects.get(identity_key="2019|CU10|SU|Jul21SU|1")
    assert (jul21.kb, jul21.field_sources["kb"]) == ("KB5004780", MARKDOWN.name)
    assert [(d["field"], d["value"], d["source"]) for d in jul21.disagreements] == [("kb", "KB5004778", CSV.name)]
    assert set(CatalogSource.objects.values_list("name", flat=True)) == {CSV.name, MARKDOWN.name}


def _catalog_state():
    entries = {row.identity_key: (row.build, row.kb, row.release_date) for row in Update.objects.all()}
    claims = {
        (c.identity_key, c.field, frozenset({(c.kept_value, c.kept_source), (c.other_value, c.other_source)}))
        for c in CatalogConflict.objects.all()
    }
    return entries, claims


@needs_shared
@pytest.mark.django_db(transaction=False)
def test_the_order_of_imports_does_not_change_what_the_catalog_keeps(django_db_blocker):
    from django.db import transaction

    run("catalog_import", str(CSV))
    run("catalog_import", str(MARKDOWN))
    csv_first = _catalog_state()
    with transaction.atomic():
        Update.objects.all().delete()
        CatalogConflict.objects.all().delete()
        CatalogSource.objects.all().delete()
    run("catalog_import", str(MARKDOWN))
    run("catalog_import", str(CSV))
    page_first = _catalog_state()

    assert page_first[0] == csv_first[0]
    assert page_first[1] == csv_first[1]
    assert len(csv_first[1]) == 22


@needs_shared
@pytest.mark.django_db
def test_catalog_import_dry_run_writes_nothing():
    output = run("catalog_import", str(CSV), "--dry-run")

    assert output.startswith("dry run, nothing written: ExchangeBuildNumbers.csv (csv): 340 created")
    assert not Update.objects.exists()
    assert not CatalogSource.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "content", "name", "message"),
    [
        ("no table", "# Title\n\nJust text.\n", "page.md", "page.md: no build-number table found (expected columns 'Product name' and 'Build number')"),
        ("wrong csv", "Name,Version\nx,1\n", "builds.csv", "builds.csv: not a build-number CSV (missing column(s): Product Name, Build Number)"),
        ("only legacy rows", "|Product name|Release date|Build number|\n|---|---|---|\n|Exchange Server 2003 SP2|October 19, 2005|6.5.7683|\n", "old.md", "old.md: build-number tables hold no Exchange 2007 or later rows"),
    ],
)  # fmt: skip
def test_catalog_import_of_a_document_without_builds_fails_and_changes_nothing(
    loaded_catalog, tmp_path, _case, content, name, message
):
    before = Update.objects.count()
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(CommandError) as error:
        run("catalog_import", str(path))

    assert str(error.value) == message
    assert Update.objects.count() == before
    assert not CatalogSource.objects.filter(name=name).exists()


@pytest.mark.django_db
def test_catalog_import_names_a_missing_file():
    with pytest.raises(CommandError, match=r"/nonexistent/builds\.csv: no such file"):
        run("catalog_import", "/nonexistent/builds.csv")


@needs_shared
@pytest.mark.django_db
def test_catalog_import_reads_http_and_file_urls(tmp_path):
    shutil.copy(CSV, tmp_path / CSV.name)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        over_http = run("catalog_import", f"http://127.0.0.1:{server.server_port}/{CSV.name}")
        with pytest.raises(CommandError) as missing:
            run("catalog_import", f"http://127.0.0.1:{server.server_port}/absent.csv")
    finally:
        server.shutdown()
    over_file = run("catalog_import", f"file://{tmp_path / CSV.name}")

    assert "340 created" in over_http
    assert "HTTP 404" in str(missing.value)
    assert "0 created, 0 updated, 340 unchanged" in over_file


@pytest.mark.django_db
def test_catalog_load_is_idempotent(snapshot):
    first = run("catalog_load")
    counts = (Update.objects.count(), CatalogConflict.objects.count(), Fix.objects.count(), Rule.objects.count())
    stamps = list(Update.objects.order_by("pk").values_list("last_updated", flat=True))
    second = run("catalog_load")

    assert first.startswith(f"catalog: {len(snapshot['entries'])} created, 0 updated")
    assert second.startswith("catalog: 0 created, 0 updated; conflicts: 0 new; fixes: 0 new, 0 links")
    assert counts == (
        Update.objects.count(),
        CatalogConflict.objects.count(),
        Fix.objects.count(),
        Rule.objects.count(),
    )
    assert list(Update.objects.order_by("pk").values_list("last_updated", flat=True)) == stamps


@pytest.mark.django_db
def test_rules_edited_by_an_operator_survive_a_reload(loaded_catalog):
    rule = Rule.objects.get(key="step.forefront")
    rule.description = "Changed by our messaging team"
    rule.is_operator_edited = True
    rule.save()

    run("catalog_load")

    assert Rule.objects.get(key="step.forefront").description == "Changed by our messaging team"


@pytest.mark.django_db
def test_build_info_json_reads_stdin_and_keeps_input_order(loaded_catalog):
    output = run("build_info", "8.3.245.2", "-", "--json", stdin="15.02.1544.009\nVersion 8.3 (Build 83.6)\n")
    results = json.loads(output)

    assert [r["input"] for r in results] == ["8.3.245.2", "15.02.1544.009", "Version 8.3 (Build 83.6)"]
    assert results[0] | {"notes": None, "is_supported": None} == {
        "input": "8.3.245.2", "build": "8.3.245.2", "form": "short", "product": "Exchange Server 2007", "level": "SP3",
        "update": "Update Rollup 6", "kb": "KB2608656", "release_date": "2012-01-26", "exact": True,
        "is_supported": None, "is_latest": False,
        "sources": {"build": CSV.name, "kb": CSV.name, "release_date": CSV.name},
        "notes": None, "catalog_as_of": "2026-08-19", "error": None,
    }  # fmt: skip
    assert results[1]["form"] == "long"
    assert results[2]["form"] == "admin_display"
    assert (results[1]["update"], results[1]["kb"]) == ("Mar24SU", "KB5036386")
    assert results[2]["update"] is None
    assert results[2]["notes"][0].startswith("rollup level unknown")


@pytest.mark.django_db
def test_build_info_prints_the_json_then_fails_for_a_malformed_input(loaded_catalog):
    out = io.StringIO()
    with pytest.raises(CommandError, match="'abc' is not a build number"):
        call_command("build_info", "8.3.245.2", "abc", "--json", stdout=out)

    results = json.loads(out.getvalue())
    assert [r["error"] is None for r in results] == [True, False]


@pytest.mark.django_db
def test_build_info_without_a_catalog_says_what_to_do():
    with pytest.raises(CommandError, match=r"the catalog is empty: run `python manage\.py catalog_load` first"):
        run("build_info", "8.3.245.2")


@pytest.mark.django_db
def test_build_info_table_output(loaded_catalog):
    output = run("build_info", "15.1.1415.9")

    assert output.splitlines()[0].split() == [
        "INPUT",
        "PRODUCT",
        "LEVEL",
        "UPDATE",
        "KB",
        "RELEASED",
        "EXACT",
        "SUPPORTED",
        "LATEST",
    ]
    assert "unlisted build of Exchange Server 2016 CU8" in output


ANNOUNCEMENT_UPDATES = {
    "2011-06-22-exchange-2010-sp1-rollup-4-released.md": ("KB2509910", "Exchange Server 2010 SP1 Update Rollup 4", 47),
    "2012-05-30-exchange-2010-sp2-rollup-3-released.md": ("KB2685289", "Exchange Server 2010 SP2 Update Rollup 3", 42),
    "2012-01-exchange-2007-sp3-rollup-6-released.txt": ("KB2608656", "Exchange Server 2007 SP3 Update Rollup 6", 21),
}


@needs_shared
def test_every_announcement_in_shared_data_is_covered():
    assert sorted(path.name for path in (SHARED_DATA / "announcements").iterdir()) == sorted(ANNOUNCEMENT_UPDATES)


@needs_shared
@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(ANNOUNCEMENT_UPDATES))
def test_fixes_import_of_every_real_announcement(loaded_catalog, name):
    from kb.importers.fix_list import parse_fix_list

    path = SHARED_DATA / "announcements" / name
    update_kb, title, count = ANNOUNCEMENT_UPDATES[name]
    UpdateFix.objects.all().delete()
    Fix.objects.all().delete()
    payload = json.loads(run("fixes_import", str(path), "--json"))

    assert (payload["update"], payload["updates"], len(payload["fixes"]), payload["skipped"]) == (
        update_kb, [title], count, None,
    )  # fmt: skip
    update = Update.objects.get(kb=update_kb)
    # Every fix, stored with the exact title the document gives it (the extractor's own tests pin the titles).
    expected = {(fix.kb, fix.title) for fix in parse_fix_list(path.read_text(encoding="utf-8"), name=name).fixes}
    assert set(update.fixes.values_list("kb", "title")) == expected
    assert UpdateFix.objects.count() == count


@pytest.mark.django_db
def test_fixes_import_with_an_explicit_update_and_a_dry_run(loaded_catalog, tmp_path):
    # Invented test data: a fix list for Exchange 2007 SP3 Update Rollup 6 (KB2608656); the KB numbers are made up.
    path = tmp_path / "ru6.txt"
    path.write_text("Fixes in this rollup:\n· KB9100001 Invented fix one\n· KB9100002 Invented fix two\n")

    dry = run("fixes_import", str(path), "--update", "kb2608656", "--dry-run")
    assert dry.startswith("dry run, nothing written: 2 fixes for KB2608656")
    assert not Fix.objects.filter(kb="KB9100001").exists()

    run("fixes_import", str(path), "--update", "KB2608656")
    ru6 = Update.objects.get(kb="KB2608656")
    assert sorted(ru6.fixes.filter(kb__in=["KB9100001", "KB9100002"]).values_list("kb", "title")) == [
        ("KB9100001", "Invented fix one"),
        ("KB9100002", "Invented fix two"),
    ]
    assert ru6.fixes.count() == 21 + 2  # the bundled announcement's fixes and these


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "content", "args", "message"),
    [
        ("no fix list", "Nothing to see here.\n", (), "notes.txt: no fix list found"),
        ("no update named", "· KB9100001 Invented fix\n", (), "notes.txt: cannot tell which update the fixes belong to"),
        ("unknown update", "· KB9100001 Invented fix\n", ("--update", "KB9999999"), "--update: KB9999999 is not in the catalog"),
        ("bad KB", "· KB9100001 Invented fix\n", ("--update", "rollup-6"), "--update: 'rollup-6' is not a KB number"),
    ],
)  # fmt: skip
def test_fixes_import_errors_name_the_problem_and_write_nothing(
    loaded_catalog, tmp_path, _case, content, args, message
):
    path = tmp_path / "notes.txt"
    path.write_text(content)
    before = (Fix.objects.count(), UpdateFix.objects.count())

    with pytest.raises(CommandError) as error:
        run("fixes_import", str(path), *args)

    assert message in str(error.value)
    assert (Fix.objects.count(), UpdateFix.objects.count()) == before


@needs_shared
def test_the_live_html_rendering_imports_exactly_like_the_markdown():
    # The live page is the HTML rendering of the docs Markdown; render it with the same library and compare.
    from kb.importers.build_page import markdown_to_html, parse_build_page

    text = MARKDOWN.read_text()
    from_markdown = parse_build_page(text, source="page", fmt="markdown")
    html = "<html><body><main>" + markdown_to_html(text) + "</main></body></html>"
    from_html = parse_build_page(html, source="page", fmt="html")

    assert [row.entry for row in from_html.rows] == [row.entry for row in from_markdown.rows]
    assert len(from_html.rows) == 236


@needs_shared
@pytest.mark.django_db
def test_fixes_import_reads_an_http_url(loaded_catalog, tmp_path):
    shutil.copy(SP2_RU3, tmp_path / SP2_RU3.name)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        payload = json.loads(
            run("fixes_import", f"http://127.0.0.1:{server.server_port}/{SP2_RU3.name}", "--json", "--dry-run")
        )
    finally:
        server.shutdown()

    assert (payload["update"], len(payload["fixes"])) == ("KB2685289", 42)


@pytest.mark.django_db
def test_build_info_says_which_source_each_field_came_from(loaded_catalog, settings):
    settings.EXCHANGEPATCH_TODAY = "2026-09-01"
    info = json.loads(run("build_info", "15.2.922.13", "--json"))[0]
    text = run("build_info", "15.2.922.13")

    # Fault 1: the page's support link for 2019 CU10 Jul21SU, not the 2013 article the CSV gives every product.
    assert (info["update"], info["kb"]) == ("Jul21SU", "KB5004780")
    assert info["sources"] == {
        "build": "ExchangeBuildNumbers.csv",
        "kb": "build-numbers-and-release-dates.md",
        "release_date": "ExchangeBuildNumbers.csv",
    }
    assert info["notes"] == [
        "Exchange Server 2019 is past the end of extended support",
        "KB: ExchangeBuildNumbers.csv says KB5004778 (ExchangeBuildNumbers.csv gives KB5004778 to Jul21SU of 2013, 2016, "
        "2019 alike, where build-numbers-and-release-dates.md names a separate article per product: a simplification)",
    ]
    assert (
        "  15.2.922.13: build and release date from ExchangeBuildNumbers.csv; KB from build-numbers-and-release-dates.md"
    ) in text.splitlines()


@pytest.mark.django_db
def test_build_info_names_the_ad_form_and_refuses_a_build_that_cannot_exist(loaded_catalog, settings):
    settings.EXCHANGEPATCH_TODAY = "2026-09-01"
    out = io.StringIO()

    with pytest.raises(
        CommandError, match=r"'15\.2\.31118\.7' is not an Exchange build: build number 31118 is far beyond"
    ):
        call_command("build_info", "Version 15.2 (Build 31118.7)", "15.2.31118.7", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[1].split()[:8] == ["Version", "15.2", "(Build", "31118.7)", "Exchange", "Server", "2019", "CU12"]
    assert "  Version 15.2 (Build 31118.7): form: Active Directory serialNumber: the level only" in lines
    assert lines[2].split()[:2] == ["15.2.31118.7", "-"]


# Faults 3, 4 and 5 through the command. All documents are invented, in the shapes the issue describes; the updates
# and KBs they name are real catalog rows.
ISSUE_DOCUMENTS = [
    (
        "the block-element layout of fault 3 (the minimal two-item file)",
        "rollup.md",
        "---\ntitle: Exchange 2010 SP1 Rollup 4 released\n---\nThis rollup fixes:\n\n"
        "  * [9100001](http://support.microsoft.com/kb/9100001) <div>\n"
        "      An invented title of a fixed issue in an Exchange Server 2010 environment\n    </div>\n"
        "  * [9100002](http://support.microsoft.com/kb/9100002) <div>\n      Another invented title\n    </div>\n",
        ["Exchange Server 2010 SP1 Update Rollup 4"],
    ),
    (
        "fault 4: 'first rollup for Exchange 2010 SP2' is RU1, not SP2",
        "first.md",
        "# The first rollup for Exchange 2010 SP2 is available\n\n* KB9100001 Invented issue one\n* KB9100002 Invented issue two\n",
        ["Exchange Server 2010 SP2 Update Rollup 1"],
    ),
    (
        "fault 4: an SU post whose table starts with a CU row links to the SU of every CU it shipped for",
        "su.md",
        "# Released: May 2022 Exchange Server Security Updates\n\n"
        "| Product | Build | KB |\n|---|---|---|\n| Exchange 2019 CU12 | 15.2.1118.9 | KB5014261 |\n"
        "| Exchange 2016 CU23 | 15.1.2507.9 | KB5014261 |\n\nFixed:\n\n* KB9100001 Invented issue one\n* KB9100002 Invented issue two\n",
        [
            "Exchange Server 2016 CU22 May22SU",
            "Exchange Server 2016 CU23 May22SU",
            "Exchange Server 2019 CU11 May22SU",
            "Exchange Server 2019 CU12 May22SU",
        ],
    ),
    (
        "fault 5: a heading '… CU14 Nov24SUv2' is the re-release, not CU14",
        "v2.html",
        "<h1>Exchange Server 2019 CU14 Nov24SUv2</h1><ul><li>KB9100001 Invented issue one</li><li>KB9100002 Invented issue two</li></ul>",
        [
            "Exchange Server 2016 CU23 Nov24SU v2",
            "Exchange Server 2019 CU13 Nov24SU v2",
            "Exchange Server 2019 CU14 Nov24SU v2",
        ],
    ),
    (
        "fault 5: 'Update Rollup 3-v3' in a plain-text heading",
        "ru3v3.txt",
        "Update Rollup 3-v3 for Exchange Server 2010 SP1\n\n· KB9100001 Invented issue one\n· KB9100002 Invented issue two\n",
        ["Exchange Server 2010 SP1 Update Rollup 3 v3"],
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("_case", "name", "text", "updates"), ISSUE_DOCUMENTS, ids=[d[0] for d in ISSUE_DOCUMENTS])
def test_fixes_import_links_the_issue_examples_to_the_right_updates(
    loaded_catalog, tmp_path, _case, name, text, updates
):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    payload = json.loads(run("fixes_import", str(path), "--json"))

    assert payload["updates"] == updates
    assert [fix["kb"] for fix in payload["fixes"]] == ["KB9100001", "KB9100002"]
    linked = UpdateFix.objects.filter(fix__kb__in=["KB9100001", "KB9100002"]).select_related("update__level__product")
    assert sorted({str(link.update) for link in linked}) == sorted(updates)
    assert linked.count() == 2 * len(updates)
    assert not linked.filter(update__kind__in=["RTM", "SP", "CU"]).exists()


@pytest.mark.django_db
def test_fixes_import_refuses_an_ambiguous_document_with_the_candidates_and_writes_nothing(loaded_catalog, tmp_path):
    # Invented: July 2021 shipped one SU article per product; the post does not say which.
    path = tmp_path / "jul21.md"
    path.write_text("# Released: July 2021 Exchange Server Security Updates\n\n* KB9100001 Invented issue\n")
    before = (Fix.objects.count(), UpdateFix.objects.count())

    with pytest.raises(CommandError) as error:
        run("fixes_import", str(path))
    payload = json.loads(run("fixes_import", str(path), "--update", "KB5004780", "--json", "--dry-run"))

    assert str(error.value) == (
        "jul21.md: the document names Jul21SU, which is 3 different updates; candidates: KB5004778: Exchange Server 2013 "
        "CU23 Jul21SU; KB5004779: Exchange Server 2016 CU20 Jul21SU, Exchange Server 2016 CU21 Jul21SU; KB5004780: "
        "Exchange Server 2019 CU9 Jul21SU, Exchange Server 2019 CU10 Jul21SU; pass --update KB"
    )
    assert (Fix.objects.count(), UpdateFix.objects.count()) == before
    assert payload["updates"] == ["Exchange Server 2019 CU9 Jul21SU", "Exchange Server 2019 CU10 Jul21SU"]


@pytest.mark.django_db
def test_fixes_import_reports_kb_shaped_items_it_skipped(loaded_catalog, tmp_path):
    # Invented: two fixes and a KB link without a title; the update's own KB in the introduction is not an item.
    path = tmp_path / "ru6.md"
    path.write_text(
        "# Exchange 2007 SP3 Update Rollup 6\n\nSee [KB2608656](https://support.microsoft.com/kb/2608656).\n\n"
        "* KB9100001 Invented issue one\n* [9100003](https://support.microsoft.com/kb/9100003)\n* KB9100002 Invented issue two\n"
    )

    output = run("fixes_import", str(path), "--dry-run")

    assert output.splitlines() == [
        "dry run, nothing written: 2 fixes for KB2608656 (Exchange Server 2007 SP3 Update Rollup 6): 0 new fixes, 0 new links",
        "  warning: skipped 1 KB-shaped item, first few: KB9100003 (no title)",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "sources", "as_of"),
    [
        ("the newest build source's own date", [("csv", "build_csv", "/data/a.csv", "2026-08-19", "2026-11-01")], "2026-08-19"),
        ("a page fetched over HTTPS is current the day it was fetched",
         [("csv", "build_csv", "/data/a.csv", "2026-08-19", "2026-09-01"),
          ("page", "build_page_html", "https://learn.microsoft.com/x", "2026-05-01", "2026-11-20")], "2026-11-20"),
        ("notes and fix lists do not make the catalog newer",
         [("csv", "build_csv", "/data/a.csv", "2026-08-19", "2026-09-01"),
          ("notes", "build_notes", "kb/data/sources/x.csv", "2026-11-25", "2026-11-25"),
          ("fixes", "fix_list", "https://blog.example/x", "2026-11-25", "2026-11-25")], "2026-08-19"),
        ("no build source", [], None),
    ],
)  # fmt: skip
def test_the_catalog_is_as_of_its_newest_build_number_source(_case, sources, as_of):
    from datetime import UTC, date, datetime

    from kb.selectors import catalog_as_of

    for name, kind, location, document_date, imported in sources:  # invented sources
        CatalogSource.objects.create(
            name=name, kind=kind, location=location, document_date=date.fromisoformat(document_date),
            imported_at=datetime.fromisoformat(imported).replace(tzinfo=UTC),
        )  # fmt: skip

    assert catalog_as_of() == (date.fromisoformat(as_of) if as_of else None)
