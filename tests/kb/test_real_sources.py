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

from kb.engine.builds import parse_build
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


def _kb_by_update(rows) -> dict[tuple, str | None]:
    return {param.values[1:4]: param.values[4] for param in rows}


def _kbs_the_rules_choose() -> dict[tuple, str | None]:
    """Per update: the page's support link, else the CSV's KB; but where one source gives one KB to several products
    of a month and the other names a different article for them, the other's."""
    page, csv_kbs = _kb_by_update(MARKDOWN_ROWS), _kb_by_update(CSV_ROWS)
    chosen = {key: page.get(key) or csv_kbs.get(key) for key in page.keys() | csv_kbs.keys()}
    for lumper, splitter in ((page, csv_kbs), (csv_kbs, page)):
        for key, kb in lumper.items():
            others = [k for k, v in lumper.items() if v == kb and k[2] == key[2] and k[0] != key[0]]
            if key[2] and splitter.get(key) and any(splitter.get(k) and splitter[k] != splitter[key] for k in others):
                chosen[key] = splitter[key]
    return chosen


CHOSEN_KB = _kbs_the_rules_choose()


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
            conflicts = list(CatalogConflict.objects.values("title", "field", "kept_value", "other_value"))
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
@pytest.mark.django_db  # so that pytest-django sets the test database up even when this module runs alone
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
    resolved = (
        next(key for key, name in PRODUCT_NAMES.items() if name == info["product"]),
        info["level"],
        info["update"],
    )
    assert info["kb"] == CHOSEN_KB[resolved], info
    if kb and info["kb"] != kb:
        assert _conflict_explains(conflicts, info, "kb", kb), info


@needs_shared
def test_the_page_and_the_csv_disagree_on_12_kbs_and_the_page_is_chosen_for_each():
    page, csv_kbs = _kb_by_update(MARKDOWN_ROWS), _kb_by_update(CSV_ROWS)
    differing = {
        key for key in page.keys() & csv_kbs.keys() if page[key] and csv_kbs[key] and page[key] != csv_kbs[key]
    }

    assert len(differing) == 12
    assert all(CHOSEN_KB[key] == page[key] for key in differing)
    assert CHOSEN_KB[("2019", "CU10", "Jul21SU")] == "KB5004780"
    assert CHOSEN_KB[("2019", "CU11", "Mar22SU")] == "KB5012698"


@needs_shared
@pytest.mark.django_db
def test_every_disagreement_of_the_two_sources_is_a_conflict(resolved):
    _, conflicts = resolved
    builds = {param.values[1:4]: parse_build(param.values[0]).short for param in CSV_ROWS}
    page_builds = {param.values[1:4]: parse_build(param.values[0]).short for param in MARKDOWN_ROWS}
    page, csv_kbs = _kb_by_update(MARKDOWN_ROWS), _kb_by_update(CSV_ROWS)
    recorded = {(c["field"], c["other_value"]) for c in conflicts} | {(c["field"], c["kept_value"]) for c in conflicts}

    for key in page.keys() & csv_kbs.keys():
        if page[key] and csv_kbs[key] and page[key] != csv_kbs[key]:
            assert {("kb", page[key]), ("kb", csv_kbs[key])} <= recorded, key
        if builds[key] != page_builds[key]:
            assert {("build", builds[key]), ("build", page_builds[key])} <= recorded, key
