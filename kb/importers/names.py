"""Turn the product names used by Microsoft's build tables into catalog identities."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from kb.engine.builds import Build
from kb.engine.catalog import CatalogEntry, Kind
from kb.engine.merge import ImportedRow

_PRODUCT = r"(?P<product>2007|2010|2013|2016|2019|SE)"
_ROLLUP = re.compile(
    r"^Update\s+Rollup\s+(?P<number>\d+)(?:\s*-?\s*v(?P<revision>\d+))?\s+(?:for\s*)?Exchange\s+"
    + _PRODUCT
    + r"(?:\s+(?P<level>SP\d|RTM))?$",
    re.IGNORECASE,
)
_UPDATE = re.compile(
    r"^Exchange\s+"
    + _PRODUCT
    + r"(?:\s+(?P<level>SP\d|CU\d+|RTM|Preview))?"
    + r"(?:\s+(?:(?P<rtm>RTM)|RU(?P<number>\d+)(?:\s*v(?P<ru_revision>\d+))?"
    + r"|(?P<label>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\d{2}(?:SU|HU))(?:\s*v(?P<su_revision>\d+))?))?$",
    re.IGNORECASE,
)


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
    """Remove the quirks of the tables: "Exchange Server", "forExchange", "(2022H1)", "(recalled)", nbsp."""
    text = raw.replace("\xa0", " ")
    text = re.sub(r"\([^)]*\)", " ", text)  # "(2022H1)", "(recalled)"
    text = re.sub(r"Exchange\s+Server", "Exchange", text, flags=re.IGNORECASE)
    text = re.sub(r"for(?=Exchange)", "for ", text)
    return re.sub(r"\s+", " ", text).strip()


def parse_product_name(raw: str) -> ParsedName:
    text = normalize_name(raw)
    if match := _ROLLUP.match(text):
        product = _product_key(match["product"])
        return ParsedName(
            product=product,
            level=_level_name(product, match["level"]),
            kind=Kind.RU,
            number=int(match["number"]),
            revision=int(match["revision"] or 1),
        )
    if match := _UPDATE.match(text):
        product = _product_key(match["product"])
        level = _level_name(product, match["level"])
        if match["number"]:
            return ParsedName(
                product, level, Kind.RU, number=int(match["number"]), revision=int(match["ru_revision"] or 1)
            )
        if match["label"]:
            label = match["label"][:3].title() + match["label"][3:5] + match["label"][5:].upper()
            kind = Kind.HU if label.endswith("HU") else Kind.SU
            return ParsedName(product, level, kind, label=label, revision=int(match["su_revision"] or 1))
        return ParsedName(product, level, _base_kind(product, level))
    raise UnknownNameError(f"{raw!r} does not name an Exchange 2007 or later release")


def _product_key(text: str) -> str:
    return text.upper()


def _level_name(product: str, level: str | None) -> str:
    if not level:
        return "RTM"
    if level.lower() == "preview":
        return "Preview"
    return level.upper()


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
