"""Turn the product names used by Microsoft's build tables into catalog identities."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from kb.engine.builds import Build
from kb.engine.catalog import CatalogEntry, Kind
from kb.engine.merge import ImportedRow
from kb.engine.names import parse_release_name


class UnknownNameError(ValueError):
    """The product name is not one of the forms used for Exchange 2007 and later."""


@dataclass(frozen=True, slots=True)
class ParsedName:
    product: str
    level: str
    kind: Kind
    number: int | None = None
    label: str | None = None
    revision: int = 1

    @property
    def is_security(self) -> bool:
        return self.kind is Kind.SU


def normalize_name(raw: str) -> str:
    """Remove the quirks of the tables: "(2022H1)", "(recalled)", non-breaking spaces."""
    text = raw.replace("\xa0", " ")
    text = re.sub(r"\((?!\s*v(?:ersion)?\s*\d)[^)]*\)", " ", text, flags=re.IGNORECASE)  # keeps "(v2)"
    return re.sub(r"\s+", " ", text).strip()


def parse_product_name(raw: str) -> ParsedName:
    """The identity a row's name states; every spelling of an update name (`kb.engine.names`) is read the same."""
    reference = parse_release_name(normalize_name(raw))
    if reference is None or reference.product is None:
        raise UnknownNameError(f"{raw!r} does not name an Exchange 2007 or later release")
    product = reference.product
    # Microsoft names the rollups of a release without a service pack "for Exchange Server 2010": RTM's.
    level = reference.level or "RTM"
    name = reference.name
    if name is not None:
        return ParsedName(product, level, name.kind, number=name.number, label=name.label, revision=name.revision)
    return ParsedName(product, level, _base_kind(product, level))


def _base_kind(product: str, level: str) -> Kind:
    if level == "Preview":
        return Kind.PREVIEW
    if level == "RTM":
        return Kind.RTM
    if product in {"2007", "2010"}:
        return Kind.SP
    return Kind.CU  # includes Exchange 2013 SP1, which is CU4


def imported_row(
    name: ParsedName, build: Build, *, kb: str | None, released: date | None, is_month_only: bool, source: str, line: int | None,
    raw_name: str, is_recalled: bool = False,
) -> ImportedRow:  # fmt: skip
    """The ImportedRow both table importers produce for one named, dated build."""
    entry = CatalogEntry(
        product=name.product, level=name.level, kind=name.kind, build=build, number=name.number, label=name.label,
        revision=name.revision, kb=kb, release_date=released, is_security=name.is_security, is_recalled=is_recalled,
        sources=(source,),
    )  # fmt: skip
    return ImportedRow(entry, source, line, raw_name, is_month_only)
