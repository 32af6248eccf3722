"""Microsoft's build-number table in the layouts it has had (all rows invented in those shapes; builds and KBs real)."""

from datetime import date

import pytest

from kb.engine.catalog import Kind
from kb.importers.build_csv import parse_build_csv
from kb.importers.build_page import parse_build_page, parse_release_date


def rows(result):
    return [
        (e.product, e.level, e.kind, e.number or e.label, e.revision, e.build.short, e.kb, e.release_date)
        for e in (row.entry for row in result.rows)
    ]


JUL21 = ("2019", "CU10", Kind.SU, "Jul21SU", 1, "15.2.922.13", "KB5004780", date(2021, 7, 13))

LAYOUTS = [
    (
        "live HTML: <thead>, a link to today's support topic URL",
        "html",
        "<table><thead><tr><th>Product name</th><th>Release date</th><th>Build number (short format)</th>"
        "<th>Build number (long format)</th></tr></thead><tbody><tr><td><a href='https://support.microsoft.com/en-us/topic/"
        "description-of-the-security-update-for-microsoft-exchange-server-2019-july-13-2021-kb5004780-fe7b23df'>"
        "Exchange Server 2019 CU10 Jul21SU</a></td><td>July 13, 2021</td><td>15.2.922.13</td><td>15.02.0922.013</td></tr>"
        "</tbody></table>",
        [JUL21],
    ),
    (
        "older Markdown: three columns, no long form",
        "markdown",
        "|Product name|Release date|Build number|\n|---|---|---|\n"
        "|[Exchange Server 2019 CU10 Jul21SU](https://support.microsoft.com/kb/5004780)|July 13, 2021|15.2.922.13|\n",
        [JUL21],
    ),
    (
        "the long form only",
        "markdown",
        "|Product name|Release date|Build number (long format)|\n|---|---|---|\n"
        "|[Exchange Server 2019 CU10 Jul21SU](https://support.microsoft.com/help/5004780)|July 13, 2021|15.02.0922.013|\n",
        [JUL21],
    ),
    (
        "the KB in a column of its own, as text",
        "markdown",
        "|Product name|KB|Release date|Build number|\n|---|---|---|---|\n|Exchange Server 2019 CU10 Jul21SU|KB5004780|2021-07-13|15.2.922.13|\n",
        [JUL21],
    ),
    (
        "a KB link in another column, day-first date",
        "html",
        "<table><tr><td>Product name</td><td>Build number</td><td>Release date</td><td>Article</td></tr>"
        "<tr><td>Exchange Server 2019 CU10 Jul21SU</td><td>15.2.922.13</td><td>13 July 2021</td>"
        "<td><a href='https://support.microsoft.com/default.aspx?scid=kb;en-us;5004780'>Article</a></td></tr></table>",
        [JUL21],
    ),
    (
        "re-release and spelled-out spellings",
        "markdown",
        "|Product name|Release date|Build number|\n|---|---|---|\n"
        "|Exchange Server 2019 CU14 Nov24SU-v2|November 27, 2024|15.2.1544.14|\n"
        "|Update Rollup 3 Version 3 for Exchange Server 2010 SP1|April 6, 2011|14.1.289.7|\n"
        "|Exchange Server 2013 Cumulative Update 23|June 18, 2019|15.0.1497.2|\n"
        "|Exchange Server 2010 Service Pack 3|February 12, 2013|14.3.123.4|\n",
        [
            ("2019", "CU14", Kind.SU, "Nov24SU", 2, "15.2.1544.14", None, date(2024, 11, 27)),
            ("2010", "SP1", Kind.RU, 3, 3, "14.1.289.7", None, date(2011, 4, 6)),
            ("2013", "CU23", Kind.CU, None, 1, "15.0.1497.2", None, date(2019, 6, 18)),
            ("2010", "SP3", Kind.SP, None, 1, "14.3.123.4", None, date(2013, 2, 12)),
        ],
    ),
]


@pytest.mark.parametrize(("_case", "fmt", "text", "expected"), LAYOUTS, ids=[layout[0] for layout in LAYOUTS])
def test_every_layout_of_the_build_page_reads_the_same_rows(_case, fmt, text, expected):
    assert rows(parse_build_page(text, source="page", fmt=fmt)) == expected


def test_the_csv_reads_every_re_release_spelling():
    # Invented rows in the CSV's shape; the builds and KBs are real.
    text = (
        "\ufeffProduct Name,Build Number,Date,KB,Blog\r\n"
        "Exchange 2019 CU14 Nov24SUv2,15.2.1544.14,11/27/2024,KB5049233,\r\n"
        "Exchange 2019 CU13 Nov24SU-v2,15.2.1258.39,11/27/2024,KB5049233,\r\n"
        "Exchange 2010 SP1 RU3-v3,14.1.289.7,04/06/2011,KB2529939,\r\n"
    )

    assert rows(parse_build_csv(text, source="csv")) == [
        ("2019", "CU14", Kind.SU, "Nov24SU", 2, "15.2.1544.14", "KB5049233", date(2024, 11, 27)),
        ("2019", "CU13", Kind.SU, "Nov24SU", 2, "15.2.1258.39", "KB5049233", date(2024, 11, 27)),
        ("2010", "SP1", Kind.RU, 3, 3, "14.1.289.7", "KB2529939", date(2011, 4, 6)),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("April 20, 2022", (date(2022, 4, 20), False)),
        ("Apr 20, 2022", (date(2022, 4, 20), False)),
        ("20 April 2022", (date(2022, 4, 20), False)),
        ("4/20/2022", (date(2022, 4, 20), False)),
        ("04/20/2022", (date(2022, 4, 20), False)),
        ("2022-04-20", (date(2022, 4, 20), False)),
        ("December, 2015", (date(2015, 12, 1), True)),
        ("Dec 2015", (date(2015, 12, 1), True)),
        ("soon", (None, False)),
    ],
)
def test_release_dates_in_every_format_the_sources_use(text, expected):
    assert parse_release_date(text) == expected
