"""Every row of both real sources resolves through `build_info` to its own product, level, update and KB.

Expectations are read from the source files here with simple patterns of their own, independent of the importers.
"""

import csv
import io
import json
import re
import sys

import pytest
from django.core.management import call_command

from kb.models import CatalogConflict
from tests.conftest import SHARED_DATA, needs_shared

PRODUCT_NAMES = {
    "2007": "Exchange Server 2007", "2010": "Exchange Server 2010", "2013": "Exchange Server 2013",
    "2016": "Exchange Server 2016", "2019": "Exchange Server 2019", "SE": "Exchange Server Subscription Edition",
}  # fmt: skip


def _csv_rows():
    path = SHARED_DATA / "catalog" / "ExchangeBuildNumbers.csv"
    if not path.exists():
        return []
    rows = []
    for line, row in enumerate(csv.DictReader(io.StringIO(path.read_text(), newline="")), start=2):
        match = re.fullmatch(
            r"Exchange (\d{4}|SE)(?: (SP\d|CU\d+|RTM|Preview))?(?: \(\w+\))?(?: (.+))?", row["Product Name"]
        )
        product, level, rest = match.groups()
        level = level or "RTM"
        update = None
        if rest and rest != "RTM":
            if ru := re.fullmatch(r"RU(\d+)(?:v(\d))?", rest):
                update = f"Update Rollup {ru[1]}" + (f" v{ru[2]}" if ru[2] else "")
            else:
                su = re.fullmatch(r"(\w{3}\d\d[SH]U)(?:v(\d))?", rest)
                update = su[1] + (f" v{su[2]}" if su[2] else "")
        rows.append(pytest.param(row["Build Number"], product, level, update, row["KB"] or None, id=f"csv:{line}"))
    return rows


def _markdown_rows():
    path = SHARED_DATA / "catalog" / "build-numbers-and-release-dates.md"
    if not path.exists():
        return []
    rows = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        cells = text.split("|")
        if len(cells) < 5 or not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", cells[3].strip()):
            continue
        name = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cells[1].replace("&nbsp;", ""))  # [text](url) -> text
        name = re.sub(r"\([^)]*\)", "", name).replace("forExchange", "for Exchange")
        name = " ".join(name.replace("Exchange Server", "Exchange").split())
        kb_link = re.search(r"support\.microsoft\.com/help/(\d+)", cells[1])
        if ru := re.fullmatch(r"Update Rollup (\d+)(?:[ -]v(\d))? (?:for )?Exchange (\d{4})(?: (SP\d))?", name):
            revision = f" v{ru[2]}" if ru[2] and ru[2] != "1" else ""
            expected = (ru[3], ru[4] or "RTM", f"Update Rollup {ru[1]}{revision}")
        elif other := re.fullmatch(r"Exchange (\d{4}) (SP\d|CU\d+|RTM|Preview)(?: (\w{3}\d\d[SH]U))?", name):
            expected = (other[1], other[2], other[3])
        else:
            continue  # Exchange 2003 and older: not tracked
        kb = f"KB{kb_link[1]}" if kb_link else None
        rows.append(pytest.param(cells[3].strip(), *expected, kb, id=f"md:{line}"))
    return rows


CSV_ROWS = _csv_rows()
MARKDOWN_ROWS = _markdown_rows()


@pytest.fixture(scope="module")
def resolved(django_db_setup, django_db_blocker):
    """build_info --json for every build of both files, in one call (stdin), against the bundled catalog."""
    builds = sorted({param.values[0] for param in CSV_ROWS + MARKDOWN_ROWS})
    with django_db_blocker.unblock():
        from django.db import transaction

        with transaction.atomic():
            call_command("catalog_load", stdout=io.StringIO())
            out, previous = io.StringIO(), sys.stdin
            sys.stdin = io.StringIO("\n".join(builds))
            try:
                call_command("build_info", "-", "--json", stdout=out)
            finally:
                sys.stdin = previous
            conflicts = list(CatalogConflict.objects.values("title", "field", "other_value"))
            transaction.set_rollback(True)
    return {item["input"]: item for item in json.loads(out.getvalue())}, conflicts


def _conflict_explains(conflicts, info, field, value):
    return any(c["field"] == field and c["other_value"] == value for c in conflicts) or any(
        value and value in note for note in info["notes"]
    )


@needs_shared
def test_both_sources_were_read_in_full():
    assert (len(CSV_ROWS), len(MARKDOWN_ROWS)) == (340, 236)


@needs_shared
@pytest.mark.parametrize(("build", "product", "level", "update", "kb"), CSV_ROWS + MARKDOWN_ROWS)
def test_row_resolves_to_its_own_product_level_update_and_kb(resolved, build, product, level, update, kb):
    results, conflicts = resolved
    info = results[build]

    assert info["error"] is None
    assert info["exact"] is True
    assert info["product"] == PRODUCT_NAMES[product]
    if info["level"] != level or info["update"] != update:
        # Only where the sources disagree on this build, and the verdict says so.
        assert any("conflict:" in note and (update or level) in note for note in info["notes"]), info
    if kb and info["kb"] != kb:
        assert _conflict_explains(conflicts, info, "kb", kb), info
