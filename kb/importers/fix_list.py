"""Extract the fixed issues (KB number, title) of an Exchange update from an article that lists them."""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath

import markdown
from bs4 import BeautifulSoup, NavigableString, Tag

__all__ = ["FixItem", "FixList", "FixListError", "detect_format", "parse_fix_list", "parse_update_hint"]

_FORMATS = ("html", "markdown", "text")
_EXTENSIONS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".txt": "text"}

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(?P<yaml>.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(?P<title>.+?)[ \t]*$", re.M)
_HTML_DOCUMENT = re.compile(r"\A\ufeff?\s*<(?:!doctype|html|head|body)\b", re.I)
_HTML_TAG = re.compile(r"<(?:p|ul|ol|li|div|h[1-6]|table|a\s)[^>]*>", re.I)
_MARKDOWN_SIGNS = re.compile(r"^#{1,6}\s|^\s{0,3}[*+-]\s+\S|\[[^\]\n]+\]\([^)\s]+\)", re.M)

_BULLET = r"(?:[·•*+\-–]|\d{1,3}[.)])"
# "[2510607](url)" stays as text when the list is raw HTML inside Markdown.
_KB = r"(?:\[\s*)?(?:KB\s*)?#?(?P<number>\d{6,7})(?!\d)(?:\s*\](?:\([^)\s]*\))?)?"
# The title may follow on the same line only: "KB2510607 Title", "2510607 - Title", "1. KB 2510607: Title".
_KB_START = re.compile(rf"\s*(?:{_BULLET}\s*)?{_KB}(?:\s*[:\-–—]|[.)])?(?P<title>.*)", re.I | re.S)
_LEADING_BULLET = re.compile(rf"\s*{_BULLET}\s+")
# A newline only ends an item when a blank line follows or the next line starts another KB number;
# other newlines are soft wraps inside one title.
_ITEM_BREAK = re.compile(rf"\n\s*\n|\n(?=\s*(?:{_BULLET}\s*)?\[?\s*(?:KB\s*)?#?\d{{6,7}}(?!\d))", re.I)
_KB_HREF = re.compile(
    r"support\.microsoft\.com/(?:(?:[a-z]{2}-[a-z]{2}|kb|help)/)*(?P<number>\d{6,7})(?!\d)"
    r"|support\.microsoft\.com/default\.aspx\?scid=kb;[a-z-]*;(?P<scid>\d{6,7})(?!\d)",
    re.I,
)
_RAW_URL = re.compile(r"\(\s*(?:https?://|www\.)[^)]*\)", re.I)
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>])")
_TITLE_LEAD = re.compile(r"^[\s:\-–—]+")
_LETTER = re.compile(r"[^\W\d_]")

# Elements whose boundaries end an item; a table row is one item, its cells are joined with spaces.
_BLOCKS = frozenset({"p", "div", "li", "ul", "ol", "tr", "table", "pre", "blockquote", "dd", "dt", "title"}) | {
    f"h{level}" for level in range(1, 7)
}
_CELLS = frozenset({"td", "th"})
_JUNK = frozenset({"script", "style", "template"})

_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_PRODUCT = r"\bExchange\s+(?P<product>2007|2010|2013|2016|2019|SE)\b"
_LEVEL = r"(?P<level>SP\d|CU\d+|RTM|Preview)\b"
_UPDATE = (
    rf"\b(?:(?:Update\s+)?Rollup\s*(?P<rollup>\d+)|(?:RU|UR)\s*(?P<ru>\d+)|(?P<label>(?:{_MONTHS})\d{{2}}(?:SU|HU)))\b"
)
_HINT_PATTERNS = (
    re.compile(rf"{_UPDATE}(?:\s*v\d+)?\s+(?:for\s+)?{_PRODUCT}(?:\s+{_LEVEL})?", re.I),
    re.compile(rf"{_PRODUCT}(?:\s+{_LEVEL})?(?:\s+{_UPDATE})?", re.I),
    re.compile(rf"\b{_LEVEL}\s+for\s+{_PRODUCT}", re.I),  # "Cumulative Update 14 for Exchange Server 2019"
)


class FixListError(ValueError):
    """The document lists no fixes (no KB number followed by a title)."""


@dataclass(frozen=True, slots=True)
class FixItem:
    kb: str
    title: str


@dataclass(frozen=True, slots=True)
class FixList:
    update_hint: str | None
    fixes: tuple[FixItem, ...]


def detect_format(text: str, name: str = "") -> str:
    """Return "html", "markdown" or "text": from the file extension when it is a known one, else by sniffing."""
    if fmt := _EXTENSIONS.get(PurePath(name).suffix.lower()):
        return fmt
    if _FRONT_MATTER.match(text):
        return "markdown"
    if _HTML_DOCUMENT.match(text):
        return "html"
    if _MARKDOWN_SIGNS.search(text):
        return "markdown"
    if _HTML_TAG.search(text):
        return "html"
    return "text"


def parse_fix_list(text: str, *, name: str = "<document>", fmt: str = "auto") -> FixList:
    """Find every fixed issue of the document, in order and once per KB, and the update its heading names."""
    if fmt == "auto":
        fmt = detect_format(text, name)
    if fmt not in _FORMATS:
        raise ValueError(f"{name}: unknown format {fmt!r} (expected one of {', '.join(_FORMATS)} or auto)")
    front_title = None
    if fmt != "html":
        front_title, text = _split_front_matter(text)
    soup = _soup(text, fmt)
    linked = _linked_kbs(soup)
    hint = _update_hint(soup, front_title, linked)
    fixes = _fixes(soup, linked)
    if not fixes:
        raise FixListError(f"{name}: no fix list found (no KB number followed by a title)")
    return FixList(update_hint=hint, fixes=fixes)


def parse_update_hint(text: str) -> tuple[str, str | None, str | None] | None:
    """Return (product_key, level, update_label) of the Exchange update the text names, or None.

    An update (rollup, SU, HU) wins over a bare level; among equals the first one in the text wins.
    """
    text = _normalise_hint(text)
    matches = sorted((m for pattern in _HINT_PATTERNS for m in pattern.finditer(text)), key=lambda m: m.start())
    hints = [hint for m in matches if (hint := _hint_from(m))]
    return next((hint for hint in hints if hint[2]), hints[0] if hints else None)


def _split_front_matter(text: str) -> tuple[str | None, str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return None, text
    title = _FRONT_TITLE.search(match["yaml"])
    value = title["title"].strip() if title else ""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value or None, text[match.end() :]


def _soup(text: str, fmt: str) -> BeautifulSoup:
    if fmt == "markdown":
        # Core Markdown keeps raw HTML (the <div>s inside list items); of "extra" only tables matter to a fix
        # list, and the rest costs a fifth more time on long lists.
        text = markdown.markdown(text, extensions=["tables"])
    elif fmt == "text":
        # "&" is left alone so that entities in the text are decoded like in HTML.
        lines = (line.replace("<", "&lt;").replace(">", "&gt;") for line in text.splitlines() if line.strip())
        text = "\n".join(f"<p>{line}</p>" for line in lines)
    return BeautifulSoup(text, "html.parser")


def _tags(soup: BeautifulSoup, names: Container[str]) -> list[Tag]:
    # A plain walk: bs4's filtered find_all costs several times more on long pages.
    return [node for node in soup.descendants if isinstance(node, Tag) and node.name in names]


def _text(node: Tag, skip: frozenset[str] = _JUNK) -> str:
    """The text of node with a blank line around each block, so that items never run into each other."""
    parts: list[str] = []
    _collect_text(node, skip, parts)
    return "".join(parts)


def _collect_text(node: Tag, skip: frozenset[str], parts: list[str]) -> None:
    for child in node.children:
        if isinstance(child, Tag):
            if child.name in skip:
                continue
            if child.name == "br":
                parts.append("\n")
            elif child.name in _BLOCKS:
                parts.append("\n\n")
                _collect_text(child, skip, parts)
                parts.append("\n\n")
            else:
                _collect_text(child, skip, parts)
                if child.name in _CELLS:
                    parts.append(" ")
        elif type(child) is NavigableString:  # not a comment, doctype or CDATA
            parts.append(child)


def _linked_kbs(soup: BeautifulSoup) -> dict[str, str]:
    """Map the text of each link to a KB article to its number, so an item that starts with that link is a fix."""
    linked: dict[str, str] = {}
    for link in _tags(soup, {"a"}):
        match = _KB_HREF.search(link.get("href", ""))
        text = " ".join(link.get_text().split())
        if match and text:
            linked.setdefault(text, match["number"] or match["scid"])
    return linked


def _update_hint(soup: BeautifulSoup, front_title: str | None, linked: dict[str, str]) -> str | None:
    headings = (" ".join(_text(tag).split()) for tag in _tags(soup, {"title", "h1", "h2"}))
    for candidate in (front_title, *headings):
        if candidate and parse_update_hint(candidate):
            return candidate
    for line in _text(soup).splitlines():
        line = " ".join(line.split())
        if _fix_from(line, linked):
            break  # the fix list has begun: its titles name Exchange versions, not the update
        if parse_update_hint(line):
            return line
    return None


def _fixes(soup: BeautifulSoup, linked: dict[str, str]) -> tuple[FixItem, ...]:
    # Nested items are visited on their own, so an item's text leaves them out.
    items = [_text(item, _JUNK | {"li"}) for item in _tags(soup, {"li"})]
    # List items are the fix list when they hold any fix; otherwise the prose around a list would add false fixes.
    found = _unique(fix for text in items for fix in _fixes_in(text, linked))
    # The document's own title is not one of its fixes, even when it starts with a KB number.
    return found or _unique(_fixes_in(_text(soup, _JUNK | {"head", "title", "h1"}), linked))


def _fixes_in(text: str, linked: dict[str, str]) -> Iterator[FixItem]:
    for chunk in _ITEM_BREAK.split(text):
        if fix := _fix_from(chunk, linked):
            yield fix


def _fix_from(chunk: str, linked: dict[str, str]) -> FixItem | None:
    if not chunk or chunk.isspace():
        return None
    if match := _KB_START.match(chunk):
        number, title = match["number"], match["title"]
    else:
        title = _LEADING_BULLET.sub("", chunk, count=1).strip()
        number = next((kb for text, kb in linked.items() if title.startswith(text)), None)
        if number is None:
            return None
    title = _clean_title(title)
    return FixItem(kb=f"KB{number}", title=title) if _LETTER.search(title) else None


def _clean_title(text: str) -> str:
    text = _RAW_URL.sub(" ", text)
    text = _MARKDOWN_ESCAPE.sub(r"\1", text)
    return _TITLE_LEAD.sub("", " ".join(text.split()))


def _unique(fixes: Iterable[FixItem]) -> tuple[FixItem, ...]:
    first: dict[str, FixItem] = {}
    for fix in fixes:
        first.setdefault(fix.kb, fix)
    return tuple(first.values())


def _normalise_hint(text: str) -> str:
    text = re.sub(r"\bExchange\s+Server\b", "Exchange", text, flags=re.I)
    text = re.sub(r"\bSubscription\s+Edition\b", "SE", text, flags=re.I)
    text = re.sub(r"\bCumulative\s+Update\s*(\d+)", r"CU\1", text, flags=re.I)
    text = re.sub(r"\bService\s+Pack\s*(\d)", r"SP\1", text, flags=re.I)
    text = re.sub(
        rf"\b({_MONTHS})[a-z]*\.?\s+(?:20)?(\d\d)\s+(Security|Hotfix)\s+Updates?\b",
        lambda m: f"{m[1][:3]}{m[2]}{m[3][0]}U",
        text,
        flags=re.I,
    )
    return " ".join(text.split())


def _hint_from(match: re.Match[str]) -> tuple[str, str | None, str | None] | None:
    groups = match.groupdict()
    product = groups["product"].upper()
    level = groups["level"]
    update = None
    if number := groups.get("rollup") or groups.get("ru"):
        update = f"Update Rollup {int(number)}"
    elif label := groups.get("label"):
        update = label[:3].title() + label[3:5] + label[5:].upper()
    if level is None and update is None:
        return None  # "Exchange 2010" alone names a product, not an update
    if level is None:
        level = "RTM" if product in {"2007", "2010"} else None
    elif level.lower() == "preview":
        level = "Preview"
    else:
        level = level.upper()
    return product, level, update
