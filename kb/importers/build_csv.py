"""The Get-ExchangeBuildNumber module's ExchangeBuildNumbers.csv (Product Name, Build Number, Date, KB, Blog)."""

from __future__ import annotations

import csv
import io

from kb.engine.builds import InvalidBuildError, parse_build
from kb.engine.catalog import CatalogEntry, normalize_kb
from kb.engine.merge import ImportedRow

from .build_page import BuildTableError, ParsedTable, parse_release_date
from .names import UnknownNameError, parse_product_name

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
        entry = CatalogEntry(
            product=name.product,
            level=name.level,
            kind=name.kind,
            build=build,
            number=name.number,
            label=name.label,
            revision=name.revision,
            kb=normalize_kb(kb_text) if kb_text else None,
            release_date=released,
            is_security=name.is_security,
            sources=(source,),
        )
        result.rows.append(ImportedRow(entry, source, line, raw_name, is_month_only))
    if not result.rows:
        raise BuildTableError(f"{source}: no Exchange 2007 or later rows")
    return result
