"""Microsoft's "Exchange Server build numbers and release dates" page, as live HTML or docs Markdown."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import markdown
from bs4 import BeautifulSoup, Tag

from kb.engine.builds import InvalidBuildError, parse_build
from kb.engine.catalog import normalize_kb
from kb.engine.merge import ImportedRow

from .documents import kb_of_support_link
from .names import UnknownNameError, imported_row, parse_product_name

_KB_TEXT = re.compile(r"^\s*KB\s*(\d{6,7})\s*$", re.IGNORECASE)
_LEGACY_NAME = re.compile(r"Exchange\s+(?:Server\s+)?(?:2003|2000|version\s+5|5\.|4\.)", re.IGNORECASE)


class BuildTableError(ValueError):
    """The document has no build-number table."""


@dataclass(slots=True)
class ParsedTable:
    rows: list[ImportedRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "line 12: reason"
    warnings: list[str] = field(default_factory=list)


def markdown_to_html(text: str) -> str:
    return markdown.markdown(_strip_front_matter(text), extensions=["tables"])


def parse_build_page(text: str, *, source: str, fmt: str) -> ParsedTable:
    """Rows of every build table; Markdown is rendered to HTML first so one parser reads both."""
    html = markdown_to_html(text) if fmt == "markdown" else text
    soup = BeautifulSoup(html, "html.parser")
    result = ParsedTable()
    tables = [table for table in soup.find_all("table") if _columns(table) is not None]
    if not tables:
        raise BuildTableError(
            f"{source}: no build-number table found (expected columns 'Product name' and 'Build number')"
        )
    lines = text.splitlines()
    for table in tables:
        columns = _columns(table)
        assert columns is not None
        for row in table.find_all("tr"):
            cells = row.find_all("td")
            if not cells or not any(cell.get_text(strip=True) for cell in cells):
                continue
            _parse_row(cells, columns, source, lines, result)
    if not result.rows:
        raise BuildTableError(f"{source}: build-number tables hold no Exchange 2007 or later rows")
    return result


def _columns(table: Tag) -> dict[str, int] | None:
    header = table.find("tr")
    if header is None:
        return None
    columns: dict[str, int] = {}
    for index, cell in enumerate(header.find_all(["th", "td"])):
        label = " ".join(cell.get_text(" ", strip=True).lower().split())
        if "product" in label:
            columns["name"] = index
        elif "date" in label:
            columns["date"] = index
        elif "long" in label:
            columns["long"] = index
        elif "build" in label:
            columns["short"] = index
    if "short" not in columns and "long" in columns:
        columns["short"] = columns["long"]  # a layout with the long (ExSetup) form only
    return columns if {"name", "short"} <= columns.keys() else None


def _parse_row(cells: list[Tag], columns: dict[str, int], source: str, lines: list[str], result: ParsedTable) -> None:
    def cell(key: str) -> str:
        index = columns.get(key)
        return (
            cells[index].get_text(" ", strip=True).replace("\xa0", " ").strip()
            if index is not None and index < len(cells)
            else ""
        )

    raw_name = cell("name")
    short = cell("short")
    line = _line_of(lines, short, raw_name)
    where = f"line {line}" if line else f"row {raw_name!r}"
    if _LEGACY_NAME.search(raw_name):
        result.skipped.append(f"{where}: {raw_name.strip()} is legacy (Exchange 2003 or older), not tracked")
        return
    try:
        name = parse_product_name(raw_name)
        build = parse_build(short)
    except (UnknownNameError, InvalidBuildError) as error:
        result.skipped.append(f"{where}: {error}")
        return
    long_text = cell("long")
    if long_text:
        try:
            long_build = parse_build(long_text)
        except InvalidBuildError as error:
            result.warnings.append(f"{where}: long form ignored: {error}")
        else:
            if long_build != build:
                result.warnings.append(f"{where}: long form {long_text} disagrees with short form {short}")
    released, is_month_only = parse_release_date(cell("date"))
    result.rows.append(
        imported_row(
            name,
            build,
            kb=_row_kb(cells, columns["name"]),
            released=released,
            is_month_only=is_month_only,
            source=source,
            line=line,
            raw_name=raw_name,
            is_recalled="recalled" in raw_name.lower(),
        )
    )


def _row_kb(cells: list[Tag], name_index: int) -> str | None:
    """The support article the row links to: from the name cell, else from any other cell (a link or "KB5004780")."""
    ordered = [cells[name_index], *(cell for index, cell in enumerate(cells) if index != name_index)]
    for cell in ordered:
        for link in cell.find_all("a", href=True):
            if number := kb_of_support_link(link["href"]):
                return normalize_kb(number)
    for cell in ordered:
        if match := _KB_TEXT.match(cell.get_text(" ", strip=True)):
            return normalize_kb(match.group(1))
    return None


def parse_release_date(text: str) -> tuple[date | None, bool]:
    """ "April 20, 2022" → (2022-04-20, False); "December, 2015" → (2015-12-01, True); unknown → (None, False)."""
    cleaned = " ".join(text.replace(",", " , ").split()).replace(" ,", ",")
    for pattern in ("%B %d, %Y", "%B %d %Y", "%b %d, %Y", "%d %B %Y", "%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(cleaned, pattern).date(), False
        except ValueError:
            pass
    for pattern in ("%B, %Y", "%B %Y", "%b %Y"):
        try:
            return datetime.strptime(cleaned, pattern).date(), True
        except ValueError:
            pass
    return None, False


def _line_of(lines: list[str], short: str, raw_name: str) -> int | None:
    needle = f"|{short}|"
    for number, text in enumerate(lines, start=1):
        if needle in text.replace(" ", "") or (short and short in text and raw_name[:20] in text):
            return number
    return None


def _strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :]
    return text
