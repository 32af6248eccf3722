"""Extract the fixed issues (KB number, title) of an Exchange update from an article that lists them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath

import markdown
from bs4 import BeautifulSoup, NavigableString, Tag

from kb.engine.names import find_references

from .documents import kb_of_support_link

__all__ = ["FixItem", "FixList", "FixListError", "SkippedItem", "detect_format", "parse_fix_list"]

_FORMATS = ("html", "markdown", "text")
_EXTENSIONS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".txt": "text"}

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(?P<yaml>.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(?P<title>.+?)[ \t]*$", re.M)
_HTML_DOCUMENT = re.compile(r"\A\ufeff?\s*<(?:!doctype|html|head|body)\b", re.I)
_HTML_TAG = re.compile(r"<(?:p|ul|ol|li|div|h[1-6]|table|a\s)[^>]*>", re.I)
_MARKDOWN_SIGNS = re.compile(r"^#{1,6}\s|^\s{0,3}[*+-]\s+\S|\[[^\]\n]+\]\([^)\s]+\)", re.M)

_BULLET = r"(?:[·•*+\-–]|\d{1,3}[.)])"
# "[2510607](url)" stays as text where Markdown is not rendered: raw HTML lists, indented (code) blocks.
_KB = r"(?:\[\s*)?(?:KB\s*)?#?(?P<number>\d{6,7})(?!\d)(?:\s*\](?:\([^)\s]*\))?)?"
# "KB2510607 Title", "2510607 - Title", "1. KB 2510607: Title", "| 2510607 | Title |".
_KB_START = re.compile(rf"[\s|]*(?:{_BULLET}\s*)?{_KB}(?:\s*[:\-–—|]|[.)])?(?P<title>.*)", re.I | re.S)
# "Title (KB2510607)", "Title - KB2510607": list items and table rows that put the KB last.
_KB_LAST = re.compile(
    r"(?P<title>.*?\w.*?)[\s|:\-–—]*[(\[]?\s*KB\s*#?(?P<number>\d{6,7})(?!\d)\s*[)\]]?[\s|.]*", re.I | re.S
)
# "[Title](https://support.microsoft.com/kb/2510607) rest" as literal text.
_MARKDOWN_LINK = re.compile(
    r"[\s|]*(?:" + _BULLET + r"\s*)?\[(?P<text>[^\]]+)\]\((?P<href>[^)\s]+)\)(?P<rest>.*)", re.S
)
_LEADING_BULLET = re.compile(rf"[\s|]*{_BULLET}\s+")
# A newline ends an item where a blank line follows or the next line starts a bullet or another KB number;
# other newlines are soft wraps inside one title.
_ITEM_BREAK = re.compile(
    rf"\n\s*\n|\n(?=[ \t]*{_BULLET}\s)|\n(?=[\s|]*(?:{_BULLET}\s*)?\[?\s*(?:KB\s*)?#?\d{{6,7}}(?!\d))", re.I
)
_KB_MENTION = re.compile(r"\bKB\s*#?(?P<number>\d{6,7})(?!\d)", re.I)
_RAW_URL = re.compile(r"\(\s*(?:https?://|www\.)[^)]*\)|^\s*(?:https?://|www\.)\S*", re.I)
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>])")
_TITLE_LEAD = re.compile(r"^[\s:\-–—|]+")
_TITLE_TAIL = re.compile(r"[\s|]+$")
_LETTER = re.compile(r"[^\W\d_]")

# Elements whose boundaries end a block of text; a table row is one block, its cells joined with " | ".
_BLOCKS = frozenset({"p", "div", "li", "ul", "ol", "table", "pre", "blockquote", "dd", "dt", "section", "article"})
_HEADINGS = frozenset({"title", "h1", "h2", "h3", "h4", "h5", "h6"})
_CONTAINERS = frozenset({"thead", "tbody", "tfoot", "head", "body", "html"})
_LISTS = frozenset({"ul", "ol", "li"})
_JUNK = frozenset({"script", "style", "template"})
SKIPPED_SHOWN = 5


class FixListError(ValueError):
    """The document lists no fixes (no KB number followed by a title)."""


@dataclass(frozen=True, slots=True)
class FixItem:
    kb: str
    title: str


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """A KB-shaped item the extractor did not turn into a fix, and the text around it (for the report)."""

    kb: str
    text: str

    def describe(self) -> str:
        text = " ".join(self.text.split())
        return f"{self.kb} ({text[:60]}{'…' if len(text) > 60 else ''})" if text else f"{self.kb} (no title)"


@dataclass(frozen=True, slots=True)
class FixList:
    update_hint: str | None  # the heading (or first line) that names the update, when one does
    fixes: tuple[FixItem, ...]
    title: str | None = None  # the document's own title: front matter, <title>, first heading or first line
    intro: tuple[str, ...] = ()  # the lines before the first fix: what the document says about itself
    stated_kbs: tuple[str, ...] = ()  # KB numbers named in the title and the introduction
    skipped: tuple[SkippedItem, ...] = field(default=())

    def skipped_report(self, *, ignore: frozenset[str] = frozenset()) -> str | None:
        """ "skipped 2 KB-shaped items, first few: …", leaving out the KBs of the update itself."""
        items = [item for item in self.skipped if item.kb not in ignore]
        if not items:
            return None
        shown = ", ".join(item.describe() for item in items[:SKIPPED_SHOWN])
        return f"skipped {len(items)} KB-shaped item{'s' if len(items) > 1 else ''}, first few: {shown}"


@dataclass(slots=True)
class _Block:
    """A run of text between block boundaries, with where it sits in the document."""

    text: str
    item: int | None  # id of the list item it belongs to
    in_list: bool
    is_heading: bool
    kbs: list[str]  # numbers of the links to KB articles inside it
    is_row: bool = False  # a table row, its cells joined with " | "


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
    """Every fixed issue of the document, in order and once per KB, whatever the nesting of its markup; what the
    document says about itself (title, introduction, KBs named there); and the KB-shaped items left out."""
    if fmt == "auto":
        fmt = detect_format(text, name)
    if fmt not in _FORMATS:
        raise ValueError(f"{name}: unknown format {fmt!r} (expected one of {', '.join(_FORMATS)} or auto)")
    front_title = None
    if fmt != "html":
        front_title, text = _split_front_matter(text)
    soup = _soup(text, fmt)
    blocks = _blocks(soup)
    linked = _linked_kbs(soup)
    found = _extract(blocks, linked, list_only=True) or _extract(blocks, linked, list_only=False)
    fixes = _unique_fixes(fix for _, _, fix in found)
    if not fixes:
        raise FixListError(f"{name}: no fix list found (no KB number followed by a title)")
    first_block, first_segment, _ = min(found, key=lambda item: item[:2])
    before = [block.text for block in blocks[:first_block] if not block.is_heading]
    before += list(_segments(blocks[first_block].text))[:first_segment]
    intro = tuple(line for text in before for line in map(_one_line, text.splitlines()) if line)
    # What the document calls itself: its front matter, <title> or the headings above the list (a heading inside
    # the list names a part of it, not the document), else a first line before the list.
    titles = [front_title] if front_title else []
    titles += [_one_line(block.text) for block in blocks[:first_block] if block.is_heading]
    titles = titles or list(intro[:1])
    title = next((t for t in titles if find_references(t)), titles[0] if titles else None)
    hint = title if title and find_references(title) else next((line for line in intro if find_references(line)), None)
    stated = _stated_kbs([*titles, *intro], [kb for block in blocks[:first_block] for kb in block.kbs])
    skipped = _skipped(blocks, {fix.kb for fix in fixes}, titles)
    return FixList(hint, fixes, title, intro, stated, skipped)


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
        # A paragraph is a run of non-blank lines; "&" is left alone so that entities decode as in HTML.
        paragraphs = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
        text = "\n".join(
            "<p>" + paragraph.strip("\n").replace("<", "&lt;").replace(">", "&gt;") + "</p>"
            for paragraph in paragraphs
            if paragraph.strip()
        )
    return BeautifulSoup(text, "html.parser")


@dataclass(slots=True)
class _Open:
    """An element being walked: the list item and list it belongs to, and whether its inside is one block."""

    tag: Tag
    item: int | None
    in_list: bool
    inline: bool  # a heading or table row: the blocks inside it are one block
    junk: bool


def _blocks(soup: BeautifulSoup) -> list[_Block]:
    """The document as blocks of text in order. A list item's own text and the blocks nested in it share its id,
    so a KB and a title that markup put in separate blocks of one item can be joined again.

    The walk is iterative (bs4's `descendants`, and a stack of the open elements): unclosed <li> elements nest
    as deep as the list is long, deeper than Python's recursion allows."""
    blocks: list[_Block] = []
    parts: list[str] = []
    kbs: list[str] = []
    items = iter(range(1, 10**9))
    stack: list[_Open] = []

    def flush(item: int | None, in_list: bool, *, is_heading: bool = False, is_row: bool = False) -> None:
        text = "".join(parts)
        if text.strip():
            blocks.append(_Block(text, item, in_list, is_heading, list(kbs), is_row))
        parts.clear()
        kbs.clear()

    def close(element: _Open) -> None:
        name = element.tag.name
        if element.junk:
            return
        if name in _HEADINGS or name == "tr":
            if not (stack and stack[-1].inline):
                flush(element.item, element.in_list, is_heading=name in _HEADINGS, is_row=name == "tr")
        elif name in {"td", "th"}:
            parts.append(" | ")
        elif name in _BLOCKS or name in _CONTAINERS:
            if stack and stack[-1].inline:
                parts.append("\n")
            else:
                flush(element.item, element.in_list)

    for node in soup.descendants:
        while stack and stack[-1].tag is not node.parent:
            close(stack.pop())
        top = stack[-1] if stack else None
        junk = bool(top and top.junk)
        inline = bool(top and top.inline)
        item, in_list = (top.item, top.in_list) if top else (None, False)
        if isinstance(node, Tag):
            name = node.name
            junk = junk or name in _JUNK or (name == "head" and not node.find("title"))
            if not junk:
                if name == "br":
                    parts.append("\n")
                if name == "a" and (number := kb_of_support_link(node.get("href", ""))):
                    kbs.append(number)
                starts_block = name in _HEADINGS or name == "tr" or name in _BLOCKS or name in _CONTAINERS
                if starts_block and not inline:
                    flush(item, in_list)
                if name == "li" and not inline:
                    item = next(items)
                in_list = in_list or name in _LISTS
                inline = inline or name in _HEADINGS or name == "tr"
            stack.append(_Open(node, item, in_list, inline, junk))
        elif type(node) is NavigableString and not junk:  # not a comment, doctype or CDATA
            parts.append(node)
    while stack:
        close(stack.pop())
    flush(None, False)
    return blocks


def _linked_kbs(soup: BeautifulSoup) -> dict[str, str]:
    """Map the text of each link to a KB article to its number, so an item that starts with that link is a fix."""
    linked: dict[str, str] = {}
    for link in soup.find_all("a", href=True):
        number = kb_of_support_link(link["href"])
        text = " ".join(link.get_text().split())
        if number and text:
            linked.setdefault(text, number)
    return linked


def _extract(blocks: list[_Block], linked: dict[str, str], *, list_only: bool) -> list[tuple[int, int, FixItem]]:
    """(block index, segment index, fix) for every item. With list_only, only text inside lists counts: the prose
    around a list would otherwise add false fixes; a document without a listed fix is read whole."""
    found: list[tuple[int, int, FixItem]] = []
    consumed: set[int] = set()
    for index, block in enumerate(blocks):
        if block.is_heading or index in consumed or (list_only and not block.in_list):
            continue
        for position, segment in enumerate(_segments(block.text)):
            if fix := _fix_from(segment, linked, kb_last=block.in_list or block.is_row):
                found.append((index, position, fix))
            elif (number := _bare_kb(segment)) and (title := _next_title(blocks, index, consumed)):
                found.append((index, position, FixItem(f"KB{number}", title)))
    return found


def _segments(text: str) -> Iterator[str]:
    for chunk in _ITEM_BREAK.split(text):
        if chunk and not chunk.isspace():
            yield chunk


def _fix_from(chunk: str, linked: dict[str, str], *, kb_last: bool = False) -> FixItem | None:
    """A fix from a segment that starts with a KB (number or link) or, in lists and tables, ends with one."""
    if match := _KB_START.match(chunk):
        number, title = match["number"], match["title"]
    elif (link := _MARKDOWN_LINK.match(chunk)) and (linked_number := kb_of_support_link(link["href"])):
        number, title = linked_number, f"{link['text']} {link['rest']}"
    elif kb_last and (last := _KB_LAST.fullmatch(_LEADING_BULLET.sub("", chunk, count=1))):
        number, title = last["number"], last["title"]
    else:
        title = _LEADING_BULLET.sub("", chunk, count=1).strip(" |")
        number = next((kb for text, kb in linked.items() if title.startswith(text)), None)
        if number is None:
            return None
    title = _clean_title(title)
    return FixItem(kb=f"KB{number}", title=title) if _LETTER.search(title) else None


def _bare_kb(chunk: str) -> str | None:
    """The KB number of a segment that is a KB and nothing else (its title is in the next block)."""
    match = _KB_START.match(chunk)
    if match and not _LETTER.search(_clean_title(match["title"])):
        return match["number"]
    return None


def _next_title(blocks: list[_Block], index: int, consumed: set[int]) -> str | None:
    """The title of a KB that stands alone: the next block of the same list item (or, outside lists, the next
    block), unless that block starts another item."""
    if index + 1 >= len(blocks):
        return None
    block, following = blocks[index], blocks[index + 1]
    if following.is_heading or following.item != block.item or _KB_START.match(following.text.lstrip()):
        return None
    title = _clean_title(next(_segments(following.text), ""))
    if not _LETTER.search(title):
        return None
    consumed.add(index + 1)
    return title


def _clean_title(text: str) -> str:
    text = _RAW_URL.sub(" ", text)
    text = _MARKDOWN_ESCAPE.sub(r"\1", text)
    return _TITLE_TAIL.sub("", _TITLE_LEAD.sub("", " ".join(text.split())))


def _unique_fixes(fixes) -> tuple[FixItem, ...]:
    first: dict[str, FixItem] = {}
    for fix in fixes:
        first.setdefault(fix.kb, fix)
    return tuple(first.values())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _stated_kbs(lines: list[str], linked: list[str]) -> tuple[str, ...]:
    found = [f"KB{m['number']}" for line in lines for m in _KB_MENTION.finditer(line)] + [f"KB{n}" for n in linked]
    return tuple(dict.fromkeys(found))


def _skipped(blocks: list[_Block], known: set[str], titles: list[str]) -> tuple[SkippedItem, ...]:
    """KB-shaped items that are not fixes: links to KB articles, list segments naming a KB, and segments anywhere
    that start with a KB number. KBs of the document's own title are not items."""
    in_titles = {f"KB{m['number']}" for t in titles for m in _KB_MENTION.finditer(t)}
    seen: dict[str, SkippedItem] = {}
    for block in blocks:
        if block.is_heading:
            continue
        for number in block.kbs:
            text = _clean_title(start["title"]) if (start := _KB_START.match(block.text)) else _one_line(block.text)
            seen.setdefault(f"KB{number}", SkippedItem(f"KB{number}", text))
        for segment in _segments(block.text):
            if match := _KB_START.match(segment):
                seen.setdefault(
                    f"KB{match['number']}", SkippedItem(f"KB{match['number']}", _clean_title(match["title"]))
                )
            elif block.in_list and (mention := _KB_MENTION.search(segment)):
                seen.setdefault(f"KB{mention['number']}", SkippedItem(f"KB{mention['number']}", _one_line(segment)))
    return tuple(item for kb, item in seen.items() if kb not in known and kb not in in_titles)
