"""The Get-ExchangeBuildNumber module's ExchangeBuildNumbers.csv (Product Name, Build Number, Date, KB, Blog)."""

from __future__ import annotations

import csv
import io

from kb.engine.builds import InvalidBuildError, parse_build
from kb.engine.catalog import InvalidKBError, normalize_kb

from .build_page import BuildTableError, ParsedTable, parse_release_date
from .names import UnknownNameError, imported_row, parse_product_name

REQUIRED_COLUMNS = ("Product Name", "Build Number")


def parse_build_csv(text: str, *, source: str) -> ParsedTable:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise BuildTableError(f"{source}: not a build-number CSV (missing column(s): {', '.join(missing)})")
    result = ParsedTable()
    for line, raw in enumerate(reader, start=2):
        row = {(key or "").strip(): (value or "").strip() for key, value in raw.items() if key}
        raw_name = row.get("Product Name", "")
        if not raw_name:
            continue
        try:
            name = parse_product_name(raw_name)
            build = parse_build(row.get("Build Number", ""))
        except (UnknownNameError, InvalidBuildError) as error:
            result.skipped.append(f"line {line}: {error}")
            continue
        released, is_month_only = parse_release_date(row.get("Date", ""))
        kb_text = row.get("KB", "")
        try:
            kb = normalize_kb(kb_text) if kb_text else None
        except InvalidKBError as error:
            result.warnings.append(f"line {line}: KB ignored: {error}")
            kb = None
        result.rows.append(
            imported_row(
                name,
                build,
                kb=kb,
                released=released,
                is_month_only=is_month_only,
                source=source,
                line=line,
                raw_name=raw_name,
            )
        )
    if not result.rows:
        raise BuildTableError(f"{source}: no Exchange 2007 or later rows")
    return result
