"""Tests for kb.importers.fix_list: the fixes an Exchange update's announcement, KB article or blog post lists."""

from pathlib import Path

import pytest

from kb.engine.catalog import Kind
from kb.engine.names import Reference, UpdateName, find_references
from kb.importers.fix_list import FixItem, FixListError, detect_format, parse_fix_list

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
ANNOUNCEMENTS = SHARED / "announcements"
SP1_RU4 = ANNOUNCEMENTS / "2011-06-22-exchange-2010-sp1-rollup-4-released.md"
SP2_RU3 = ANNOUNCEMENTS / "2012-05-30-exchange-2010-sp2-rollup-3-released.md"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not beside the project (fresh clone)")


def _parse_file(path: Path):
    return parse_fix_list(path.read_text(encoding="utf-8"), name=path.name)


# --- real announcements (../shared/data, used as they are) ---


@needs_shared
def test_sp1_rollup_4_announcement_lists_47_fixes_from_html_fragments():
    fixes = _parse_file(SP1_RU4)

    assert len(fixes.fixes) == 47
    assert fixes.fixes[0] == FixItem(
        "KB2537099",
        "“80040154” error message when you try to configure external Client Access namespaces"
        " on an Exchange Server 2010 server",
    )
    assert fixes.fixes[-1] == FixItem(
        "KB2507066",
        "Administrator audit logging is disabled unexpectedly during an Exchange Server 2010 SP1 installation",
    )


@needs_shared
def test_sp1_rollup_4_titles_are_clean_text():
    by_kb = {fix.kb: fix.title for fix in _parse_file(SP1_RU4).fixes}

    assert "“Update-FileDistributionService”" in by_kb["KB2533451"]
    assert by_kb["KB2491951"].endswith("contains an ampersand (&) character")
    assert by_kb["KB2536700"].startswith("Outlook stops responding when")
    for title in by_kb.values():
        assert "(http://support.microsoft.com/kb/2537099/ )" not in title
        assert "http" not in title
        assert "&#" not in title
        assert title == " ".join(title.split())


@needs_shared
def test_sp1_rollup_4_update_comes_from_the_front_matter_title():
    fixes = _parse_file(SP1_RU4)

    assert fixes.update_hint == "Exchange 2010 SP1 Rollup 4 released"
    assert find_references(fixes.update_hint) == [Reference("2010", "SP1", UpdateName(Kind.RU, number=4))]


@needs_shared
def test_sp2_rollup_3_announcement_lists_42_fixes_from_tracking_links():
    fixes = _parse_file(SP2_RU3)

    assert len(fixes.fixes) == 42
    assert fixes.fixes[0] == FixItem(
        "KB2510607",
        "“Cannot open the free/busy information” error message when you try to view folder permissions in Outlook",
    )
    assert fixes.fixes[-1] == FixItem(
        "KB2708880",
        "You cannot set the “Country/region” attribute of a user mailbox to “Curaçao,”"
        " “Bonaire, Sint Eustatius and Saba,” or “Sint Maarten (Dutch part)”"
        " by using the Exchange Management Console on an Exchange Server 2010 server",
    )


@needs_shared
def test_sp2_rollup_3_titles_are_clean_text():
    by_kb = {fix.kb: fix.title for fix in _parse_file(SP2_RU3).fixes}

    assert by_kb["KB2674185"].startswith("MAPI_E_CALL_FAILED errors occur when a MAPI application")
    assert "“Disable-MailPublicFolder”" in by_kb["KB2647396"]
    for title in by_kb.values():
        assert "ocid" not in title
        assert "\\" not in title
        assert "&#" not in title


@needs_shared
def test_sp2_rollup_3_update_comes_from_the_front_matter_title():
    fixes = _parse_file(SP2_RU3)

    assert fixes.update_hint == "Exchange 2010 SP2 Rollup 3 released"
    assert find_references(fixes.update_hint) == [Reference("2010", "SP2", UpdateName(Kind.RU, number=3))]


# --- invented test data: small documents in each shape the parser must read ---

FIX_LIST_CASES = [
    (
        "plain text with · bullets and KB2510607 Title",
        "fixes.txt",
        "Exchange 2010 SP2 Rollup 3\n"
        "The rollup fixes:\n"
        "· KB2510607 Cannot open the &#8220;free/busy&#8221; information\n"
        "· KB2514700 Extra.exe does not trace a user\n"
        "· Some other remark\n",
        "Exchange 2010 SP2 Rollup 3",
        [("KB2510607", "Cannot open the “free/busy” information"), ("KB2514700", "Extra.exe does not trace a user")],
    ),
    (
        "markdown list with * and links to /help/N with a query",
        "post.md",
        "---\ntitle: 'Exchange 2010 SP1 RU4 is out'\nlayout: post\n---\n"
        "Fixed in this rollup:\n\n"
        "* [2510607](https://support.microsoft.com/help/2510607?x=1) MAPI\\_E\\_CALL\\_FAILED when you log on\n"
        "* [The title is the link](https://support.microsoft.com/en-us/kb/2514700?ocid=a&WT.mc_id=b)\n"
        "* [Download](https://www.microsoft.com/download/details.aspx?id=1)\n",
        "Exchange 2010 SP1 RU4 is out",
        [("KB2510607", "MAPI_E_CALL_FAILED when you log on"), ("KB2514700", "The title is the link")],
    ),
    (
        "html page whose h1 names the rollup",
        "kb.html",
        "<html><head><title>Microsoft Support</title></head><body>"
        "<h1>Update Rollup 6 for Exchange Server 2007 SP3</h1>"
        "<ul><li><a href='/'>Home</a></li></ul>"
        "<ul><li>KB 2510607: First issue</li>"
        "<li><div><a href='http://support.microsoft.com/kb/981401'>981401</a>"
        " (http://support.microsoft.com/kb/981401/ ) Six-digit\n   KB number</div></li></ul>"
        "</body></html>",
        "Update Rollup 6 for Exchange Server 2007 SP3",
        [("KB2510607", "First issue"), ("KB981401", "Six-digit KB number")],
    ),
    (
        "numbered list with 2510607 - Title",
        "",
        "Exchange Server 2019 CU14 Mar24SU\n1. 2510607 - First issue\n2. 2514700 - Second issue\n",
        "Exchange Server 2019 CU14 Mar24SU",
        [("KB2510607", "First issue"), ("KB2514700", "Second issue")],
    ),
    (
        "duplicate KBs collapsed, first occurrence wins",
        "dupes.md",
        "- KB2510607 First title\n- KB2514700 Second title\n- KB2510607 Repeated title\n",
        None,
        [("KB2510607", "First title"), ("KB2514700", "Second title")],
    ),
    (
        "paragraph lines and table rows when there is no list",
        "article.html",
        "<h2>Exchange 2016 CU23</h2><p>2510607 First issue<br>2514700 Second issue</p>"
        "<table><tr><th>KB</th><th>Title</th></tr><tr><td>5035606</td><td>Table issue</td></tr></table>",
        "Exchange 2016 CU23",
        [("KB2510607", "First issue"), ("KB2514700", "Second issue"), ("KB5035606", "Table issue")],
    ),
    (
        "markdown table",
        "table.md",
        "| KB | Title |\n|----|-------|\n| 2510607 | Table issue |\n| [2514700](https://x.invalid/) | Linked |\n",
        None,
        [("KB2510607", "Table issue"), ("KB2514700", "Linked")],
    ),
    (
        "raw html list in markdown, whose markdown links stay text",
        "raw.md",
        "<ul>\n<li>[2510607](https://support.microsoft.com/kb/2510607) Raw list issue</li>\n</ul>\n",
        None,
        [("KB2510607", "Raw list issue")],
    ),
]


@pytest.mark.parametrize(
    ("label", "name", "text", "hint", "expected"), FIX_LIST_CASES, ids=[case[0] for case in FIX_LIST_CASES]
)
def test_parse_fix_list(label, name, text, hint, expected):
    fixes = parse_fix_list(text, name=name) if name else parse_fix_list(text)

    assert fixes.update_hint == hint
    assert [(fix.kb, fix.title) for fix in fixes.fixes] == expected


@pytest.mark.parametrize(
    ("label", "name", "text"),
    [
        ("prose only", "notes.md", "Exchange 2010 SP2 Rollup 3\n\nNothing was fixed in 2012.\n"),
        ("kb numbers without titles", "bare.txt", "KB2510607\n2514700 (http://support.microsoft.com/kb/2514700/ )\n"),
        ("empty document", "empty.html", ""),
    ],
)
def test_document_without_fixes_raises_naming_the_file(label, name, text):
    with pytest.raises(FixListError, match=rf"^{name}: no fix list found \(no KB number followed by a title\)$"):
        parse_fix_list(text, name=name)


@pytest.mark.parametrize(
    ("label", "name", "text", "expected"),
    [
        ("html extension", "kb.htm", "2510607 Title", "html"),
        ("markdown extension", "post.markdown", "<ul><li>x</li></ul>", "markdown"),
        ("text extension", "fixes.txt", "# not a heading", "text"),
        ("front matter", "", "---\ntitle: x\n---\nbody", "markdown"),
        ("html document", "", "<!DOCTYPE html><html><body>x</body></html>", "html"),
        ("markdown list", "", "Fixes:\n\n* KB2510607 Title", "markdown"),
        ("html fragment", "", "<ul><li>KB2510607 Title</li></ul>", "html"),
        ("plain lines", "page", "· KB2510607 Title\n· KB2514700 Title", "text"),
    ],
)
def test_detect_format(label, name, text, expected):
    assert detect_format(text, name) == expected


# --- fault 3: extraction does not depend on the nesting a renderer produces (all invented test data) ---

TWO_FIXES = [
    ("KB4412345", "An invented title of a fixed issue in an Exchange Server 2010 environment"),
    ("KB4412346", "Another invented title of a fixed issue"),
]
NESTING_CASES = [
    (
        "the issue's example: a link, then the title in a <div> of the same item",
        "post.md",
        "Exchange 2010 SP1 Rollup 9 released\n\n"
        "  * [4412345](http://support.microsoft.com/kb/4412345) <div>\n"
        "      An invented title of a fixed issue in an Exchange Server 2010 environment\n    </div>\n"
        "  * [4412346](http://support.microsoft.com/kb/4412346) <div>\n"
        "      Another invented title of a fixed issue\n    </div>\n",
    ),
    (
        "html: the title in a <p> after the link",
        "kb.html",
        "<h1>Exchange 2010 SP1 Rollup 9</h1><ul>"
        "<li><a href='https://support.microsoft.com/kb/4412345'>4412345</a>"
        "<p>An invented title of a fixed issue in an Exchange Server 2010 environment</p></li>"
        "<li><a href='https://support.microsoft.com/kb/4412346'>KB4412346</a>"
        "<p>Another invented title of a fixed issue</p><p>A longer description that is not the title.</p></li></ul>",
    ),
    (
        "html: a stray </li> and a missing <li>",
        "kb.html",
        "<ul><li>KB4412345 An invented title of a fixed issue in an Exchange Server 2010 environment</li></li>"
        "KB4412346 Another invented title of a fixed issue</li></ul>",
    ),
    (
        "html: unclosed <li> elements",
        "kb.html",
        "<ul><li>4412345 - An invented title of a fixed issue in an Exchange Server 2010 environment"
        "<li>4412346 - Another invented title of a fixed issue</ul>",
    ),
    (
        "markdown: nested bullets indented into a code block",
        "post.md",
        "Fixed issues:\n\n* Exchange 2010\n\n"
        "        * [4412345](http://support.microsoft.com/kb/4412345) An invented title of a fixed issue in an\n"
        "          Exchange Server 2010 environment\n"
        "        * [4412346](http://support.microsoft.com/kb/4412346) Another invented title of a fixed issue\n",
    ),
    (
        "markdown: the whole list indented into a code block",
        "post.md",
        "Fixed issues:\n\n"
        "    * [4412345](http://support.microsoft.com/kb/4412345) An invented title of a fixed issue in an Exchange Server 2010 environment\n"
        "    * [4412346](http://support.microsoft.com/kb/4412346) Another invented title of a fixed issue\n",
    ),
    (
        "markdown: the title on the line after the link",
        "post.md",
        "* [4412345](http://support.microsoft.com/kb/4412345)\n"
        "  An invented title of a fixed issue in an Exchange Server 2010 environment\n"
        "* [4412346](http://support.microsoft.com/kb/4412346)\n  Another invented title of a fixed issue\n",
    ),
    (
        "markdown: the title first, the KB last",
        "post.md",
        "- An invented title of a fixed issue in an Exchange Server 2010 environment (KB4412345)\n"
        "- Another invented title of a fixed issue - [KB4412346](https://support.microsoft.com/help/4412346)\n",
    ),
    (
        "html table with the KB in the second column",
        "kb.html",
        "<table><tr><th>Title</th><th>KB</th></tr>"
        "<tr><td>An invented title of a fixed issue in an Exchange Server 2010 environment</td><td>KB4412345</td></tr>"
        "<tr><td>Another invented title of a fixed issue</td><td><a href='https://support.microsoft.com/kb/4412346'>KB4412346</a></td></tr></table>",
    ),
    (
        "html: today's support.microsoft.com topic links, the title as link text",
        "kb.html",
        "<ul><li><a href='https://support.microsoft.com/en-us/topic/an-invented-title-kb4412345-0f1e2d3c'>"
        "An invented title of a fixed issue in an Exchange Server 2010 environment</a></li>"
        "<li><a href='https://support.microsoft.com/topic/kb4412346-another-invented-title-4b5c'>"
        "Another invented title of a fixed issue</a></li></ul>",
    ),
    (
        "html without lists: each KB in a <div>, its title in the next",
        "kb.html",
        "<div><a href='http://support.microsoft.com/kb/4412345'>4412345</a></div>"
        "<div>An invented title of a fixed issue in an Exchange Server 2010 environment</div>"
        "<div><a href='http://support.microsoft.com/kb/4412346'>4412346</a></div>"
        "<div>Another invented title of a fixed issue</div>",
    ),
    (
        "definition list",
        "kb.html",
        "<dl><dt>KB4412345</dt><dd>An invented title of a fixed issue in an Exchange Server 2010 environment</dd>"
        "<dt>KB4412346</dt><dd>Another invented title of a fixed issue</dd></dl>",
    ),
    (
        "plain text with a soft-wrapped title",
        "fixes.txt",
        "· 4412345 An invented title of a fixed issue in an\n  Exchange Server 2010 environment\n"
        "· 4412346 Another invented title of a fixed issue\n",
    ),
]


@pytest.mark.parametrize(("label", "name", "text"), NESTING_CASES, ids=[case[0] for case in NESTING_CASES])
def test_every_fix_is_found_whatever_the_nesting(label, name, text):
    fixes = parse_fix_list(text, name=name)

    assert [(fix.kb, fix.title) for fix in fixes.fixes] == TWO_FIXES
    assert fixes.skipped == ()


def test_the_issue_example_with_17_items_loses_none():
    # Invented: 12 items in the <div> layout that used to vanish, 5 on one line.
    divs = "".join(
        f"  * [44123{n:02d}](http://support.microsoft.com/kb/44123{n:02d}) <div>\n      Invented issue {n}\n    </div>\n"
        for n in range(12)
    )
    lines = "".join(
        f"  * [44124{n:02d}](http://support.microsoft.com/kb/44124{n:02d}) Invented issue {n + 12}\n" for n in range(5)
    )

    fixes = parse_fix_list("Exchange 2010 SP1 Rollup 9 released\n\n" + divs + lines, name="post.md")

    assert len(fixes.fixes) == 17
    assert fixes.fixes[0] == FixItem("KB4412300", "Invented issue 0")
    assert fixes.fixes[-1] == FixItem("KB4412404", "Invented issue 16")


def test_kb_shaped_items_that_are_not_fixes_are_reported_never_dropped_silently():
    # Invented: three fixes, a KB link without a title, a list item naming a KB it does not start with, and the
    # update's own KB in the title (not an item).
    text = (
        "# Update Rollup 9 for Exchange Server 2010 SP1 (KB4400001)\n\n"
        "* KB4412345 First invented issue\n"
        "* [4412398](http://support.microsoft.com/kb/4412398)\n"
        "* KB4412346 Second invented issue\n"
        "* See also the article KB4412399 about setup\n"
        "* KB4412347 Third invented issue\n\n"
        "Download it from the [Download Center](https://www.microsoft.com/download/details.aspx?id=1).\n"
    )

    fixes = parse_fix_list(text, name="post.md")

    assert [fix.kb for fix in fixes.fixes] == ["KB4412345", "KB4412346", "KB4412347"]
    assert fixes.skipped_report() == (
        "skipped 2 KB-shaped items, first few: KB4412398 (no title), KB4412399 (See also the article KB4412399 about setup)"
    )
    assert fixes.skipped_report(ignore=frozenset({"KB4412398", "KB4412399"})) is None


def test_the_report_shows_the_first_five_of_many():
    # Invented: one fix and seven bare KB numbers in a list.
    text = "* KB4412345 Invented issue\n" + "".join(f"* KB44124{n:02d}\n" for n in range(7))

    report = parse_fix_list(text, name="post.md").skipped_report()

    assert report.startswith("skipped 7 KB-shaped items, first few: KB4412400 (no title), ")
    assert report.count("(no title)") == 5


@needs_shared
@pytest.mark.parametrize(
    "path", sorted(ANNOUNCEMENTS.glob("*")) if ANNOUNCEMENTS.exists() else [], ids=lambda p: p.name
)
def test_real_announcements_leave_no_kb_shaped_item_out(path):
    assert _parse_file(path).skipped_report() is None


@needs_shared
def test_the_2007_sp3_rollup_6_announcement_lists_21_fixes():
    fixes = _parse_file(ANNOUNCEMENTS / "2012-01-exchange-2007-sp3-rollup-6-released.txt")

    assert len(fixes.fixes) == 21
    assert fixes.title == "Exchange 2007 SP3 Update Rollup 6"
    assert fixes.stated_kbs == ("KB2608656",)
    assert fixes.fixes[1] == FixItem(
        "KB2498852",
        "“0×80041606″ error message when you perform a prefix search by using Outlook in online mode in an Exchange"
        " Server 2007 environment",
    )
    assert [fix.kb for fix in fixes.fixes[14:17]] == ["KB2633801", "KB914533", "KB976977"]


def test_thousands_of_unclosed_list_items_nest_deeper_than_recursion_allows_and_still_read():
    # Invented: html.parser nests every unclosed <li> inside the previous one.
    html = "<ul>" + "".join(f"<li>{4400000 + n} Invented issue {n}" for n in range(3000)) + "</ul>"

    fixes = parse_fix_list(html, name="long.html")

    assert len(fixes.fixes) == 3000
    assert fixes.fixes[-1] == FixItem("KB4402999", "Invented issue 2999")


def test_a_heading_inside_the_list_is_not_the_documents_title():
    # Invented: an SU post whose sections per CU come after its first fixes.
    text = (
        "# Released: May 2022 Exchange Server Security Updates\n\n* KB9100001 Invented issue one\n\n"
        "## Exchange 2019 CU12\n\n* KB9100002 Invented issue two\n"
    )

    fixes = parse_fix_list(text, name="post.md")

    assert fixes.title == "Released: May 2022 Exchange Server Security Updates"
    assert [fix.kb for fix in fixes.fixes] == ["KB9100001", "KB9100002"]
