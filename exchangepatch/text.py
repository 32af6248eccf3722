"""Rules every stored text obeys, shared by the API's JSON parser, the serializers and inventory.records (API, CSV
import, admin): no NUL (PostgreSQL text cannot hold one) and no lone surrogate (not text: UTF-8 cannot encode it)."""

from __future__ import annotations

NUL = "contains a NUL character (\\u0000), which no field accepts"


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None."""
    if "\x00" in value:
        return NUL
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            return f"contains a lone surrogate ({shown(value[error.start])}), which is not text"
    return None


def shown(text: str, *, limit: int = 64) -> str:
    """`text` safe to quote in a message: control characters and lone surrogates as escapes, cut at `limit`."""
    cut = text[:limit]
    safe = "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else f"\\u{ord(c):04x}" for c in cut)
    return safe + ("…" if len(text) > limit else "")


def digits(text: str) -> int | None:
    """The value of a text of ASCII digits 0-9, else None: str.isdigit() also accepts "²" and "٣", which int() refuses
    or reads as another number."""
    return int(text) if text.isascii() and text.isdigit() else None
