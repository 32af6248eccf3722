"""Tests for kb.importers.fix_list: the fixes an Exchange update's announcement, KB article or blog post lists."""

from pathlib import Path

import pytest

from kb.importers.fix_list import FixItem, FixListError, detect_format, parse_fix_list, parse_update_hint

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
    assert parse_update_hint(fixes.update_hint) == ("2010", "SP1", "Update Rollup 4")


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
    assert parse_update_hint(fixes.update_hint) == ("2010", "SP2", "Update Rollup 3")


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
    ("label", "text", "expected"),
    [
        ("product first, rollup", "Exchange 2010 SP2 Rollup 3", ("2010", "SP2", "Update Rollup 3")),
        ("update rollup for", "Update Rollup 6 for Exchange Server 2007 SP3", ("2007", "SP3", "Update Rollup 6")),
        ("security update label", "Exchange Server 2019 CU14 Mar24SU", ("2019", "CU14", "Mar24SU")),
        ("hotfix update label", "Exchange Server 2019 CU14 Apr24HU", ("2019", "CU14", "Apr24HU")),
        ("RU abbreviation", "Exchange 2010 SP1 RU4", ("2010", "SP1", "Update Rollup 4")),
        ("UR abbreviation", "Exchange 2007 SP3 UR6", ("2007", "SP3", "Update Rollup 6")),
        ("rollup without service pack", "Update Rollup 5 for Exchange Server 2010", ("2010", "RTM", "Update Rollup 5")),
        ("base level", "Exchange 2016 CU23", ("2016", "CU23", None)),
        ("spelled-out cumulative update", "Cumulative Update 14 for Exchange Server 2019", ("2019", "CU14", None)),
        ("subscription edition", "Exchange Server SE RTM", ("SE", "RTM", None)),
        (
            "surrounded by prose",
            "Microsoft released Rollup 4 for Exchange 2010 SP1 today.",
            ("2010", "SP1", "Update Rollup 4"),
        ),
        ("product alone", "Exchange 2016", None),
        ("no exchange update", "hello world", None),
    ],
)
def test_parse_update_hint(label, text, expected):
    assert parse_update_hint(text) == expected


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
