"""Exchange build numbers: parse every real form, compare as integers, map to a product."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from enum import StrEnum

# Windows file-version components are 16-bit; anything larger is not a build.
MAX_PART = 65535


class InvalidBuildError(ValueError):
    """The text is not an Exchange build number; the message names the input and the reason."""

    def __init__(self, text: object, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"{text!r} is not a build number: {reason}")


class BuildForm(StrEnum):
    """Where a build string came from; it decides how much of the level it can tell."""

    SHORT = "short"  # 15.2.1544.4 (build-number table)
    LONG = "long"  # 15.02.1544.004 (ExSetup.exe file version)
    ADMIN_DISPLAY = "admin_display"  # Version 15.2 (Build 1544.4) (Get-ExchangeServer)
    AD_SERIAL_NUMBER = "ad_serial_number"  # Version 15.2 (Build 31544.4) (the server object's serialNumber in AD)

    @property
    def is_level_only(self) -> bool:
        """AdminDisplayVersion and the AD serialNumber show the CU or service pack, never the SU or rollup."""
        return self in (BuildForm.ADMIN_DISPLAY, BuildForm.AD_SERIAL_NUMBER)


# The directory's serialNumber carries the build number plus 30000 ("Version 15.2 (Build 31118.7)" is 15.2.1118.7);
# no Exchange build number comes near 30000 (the newest are about 2600), so the two forms cannot be confused.
AD_SERIAL_OFFSET = 30000


@dataclass(frozen=True, order=True, slots=True)
class Build:
    major: int
    minor: int
    build: int
    revision: int

    @property
    def short(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}.{self.revision}"

    @property
    def long(self) -> str:
        return f"{self.major}.{self.minor:02d}.{self.build:04d}.{self.revision:03d}"

    def __str__(self) -> str:
        return self.short


@dataclass(frozen=True, slots=True)
class ParsedBuild:
    build: Build
    form: BuildForm


# "Version 15.2 (Build 1544.4)"; Exchange 2003 and older add the service pack: "(Build 7638.2: Service Pack 2)".
_ADMIN_DISPLAY = re.compile(
    r"Version\s+(\d+)\.(\d+)\s*\(\s*Build\s+(\d+)\.(\d+)(?:\s*:\s*Service\s+Pack\s+\d+)?\s*\)",
    re.ASCII | re.IGNORECASE,
)
_DOTTED_PART = re.compile(r"\d+", re.ASCII)
# Marks that copying from a web page or a Windows dialog leaves around a value.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"))


def parse_reported_build(text: object) -> ParsedBuild:
    """Parse a build as an admin reads it: short, long/zero-padded (ExSetup), AdminDisplayVersion or the AD
    serialNumber form; the form is kept, because it decides what the build can tell."""
    if not isinstance(text, str):
        raise InvalidBuildError(text, "expected text")
    return _parse_text(text)


@functools.lru_cache(maxsize=8192)
def _parse_text(text: str) -> ParsedBuild:
    # Estates repeat a few hundred builds thousands of times (a 10,000-server sync, a scan): parse each once.
    stripped = text.translate(_INVISIBLE).strip()
    if not stripped:
        raise InvalidBuildError(text, "empty")
    if stripped.lower().startswith("version"):
        match = _ADMIN_DISPLAY.fullmatch(stripped)
        if not match:
            raise InvalidBuildError(text, "expected 'Version M.m (Build B.r)'")
        build = _build_from_parts(text, match.groups())
        if build.major >= 8 and build.build >= AD_SERIAL_OFFSET:
            return ParsedBuild(replace(build, build=build.build - AD_SERIAL_OFFSET), BuildForm.AD_SERIAL_NUMBER)
        return ParsedBuild(build, BuildForm.ADMIN_DISPLAY)
    parts = stripped.split(".")
    if len(parts) != 4:
        raise InvalidBuildError(text, f"expected four numbers separated by dots, got {len(parts)} part(s)")
    for part in parts:
        if not _DOTTED_PART.fullmatch(part):
            raise InvalidBuildError(text, f"part {part!r} is not a non-negative ASCII number")
    padded = any(len(part) > 1 and part.startswith("0") for part in parts)
    return ParsedBuild(_build_from_parts(text, parts), BuildForm.LONG if padded else BuildForm.SHORT)


def parse_build(text: object) -> Build:
    """Parse any accepted form to a Build; raises InvalidBuildError naming the input."""
    return parse_reported_build(text).build


def _build_from_parts(text: object, parts: tuple[str, ...] | list[str]) -> Build:
    numbers = []
    for part in parts:
        if len(part) > 5 or int(part) > MAX_PART:
            raise InvalidBuildError(text, f"part {part!r} is larger than {MAX_PART}")
        numbers.append(int(part))
    return Build(*numbers)


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """A product line; `key` is stable ("2007" … "SE") and used across the catalog."""

    key: str
    name: str
    is_cumulative: bool  # True: CUs with SU/HU; False: service packs with update rollups


PRODUCTS: dict[str, ProductInfo] = {
    "2007": ProductInfo("2007", "Exchange Server 2007", False),
    "2010": ProductInfo("2010", "Exchange Server 2010", False),
    "2013": ProductInfo("2013", "Exchange Server 2013", True),
    "2016": ProductInfo("2016", "Exchange Server 2016", True),
    "2019": ProductInfo("2019", "Exchange Server 2019", True),
    "SE": ProductInfo("SE", "Exchange Server Subscription Edition", True),
}
PRODUCT_ORDER = ("2007", "2010", "2013", "2016", "2019", "SE")

# Exchange 2007/2010: the minor version is the service pack.
SERVICE_PACK_BY_MINOR = {0: "RTM", 1: "SP1", 2: "SP2", 3: "SP3"}
SE_FIRST_BUILD = 2562


def product_for_build(build: Build) -> ProductInfo | None:
    """Map major.minor(.build) to a product; None for legacy (Exchange 2003 and older) or unknown versions."""
    if build.major == 8 and build.minor in SERVICE_PACK_BY_MINOR:
        return PRODUCTS["2007"]
    if build.major == 14 and build.minor in SERVICE_PACK_BY_MINOR:
        return PRODUCTS["2010"]
    if build.major == 15:
        if build.minor == 0:
            return PRODUCTS["2013"]
        if build.minor == 1:
            return PRODUCTS["2016"]
        if build.minor == 2:
            return PRODUCTS["SE"] if build.build >= SE_FIRST_BUILD else PRODUCTS["2019"]
    return None


def service_pack_for_build(build: Build) -> str | None:
    """For 2007/2010 the minor version names the service pack level ("RTM", "SP1", …)."""
    product = product_for_build(build)
    if product is None or product.is_cumulative:
        return None
    return SERVICE_PACK_BY_MINOR[build.minor]
