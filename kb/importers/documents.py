"""Read an import document from a path, a file:// URL or an http(s):// URL."""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024

# Links to a KB article, as every era of support.microsoft.com wrote them: /kb/N, /help/N, /en-us/kb/N,
# default.aspx?scid=kb;en-us;N, /?kbid=N, and today's /en-us/topic/description-of-…-kbN-<guid>.
_SUPPORT_LINK = re.compile(
    r"support\.microsoft\.com/(?:(?:(?:[a-z]{2}-[a-z]{2}|kb|help)/)*(?P<number>\d{6,7})(?!\d)"
    r"|(?:[a-z]{2}-[a-z]{2}/)?topic/[\w-]*?\bkb(?P<topic>\d{6,7})(?!\d)"
    r"|(?:default\.aspx)?\?(?:kbid=|scid=kb;[a-z-]*;)(?P<query>\d{6,7})(?!\d))",
    re.IGNORECASE,
)


def kb_of_support_link(href: str) -> str | None:
    """The KB number ("2608656") a support.microsoft.com link points to, or None for any other link."""
    match = _SUPPORT_LINK.search(href or "")
    return (match["number"] or match["topic"] or match["query"]) if match else None


class DocumentError(ValueError):
    """The document could not be read; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class Document:
    name: str  # short source name used for provenance, e.g. "build-numbers-and-release-dates.md"
    location: str  # the path or URL as given
    text: str
    sha256: str
    fetched_at: datetime
    last_modified: datetime | None
    content_type: str = ""


def read_document(location: str, *, timeout: float = 30.0) -> Document:
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme in {"http", "https"}:
        return _read_url(location, timeout)
    if parsed.scheme == "file":
        return _read_path(Path(urllib.parse.unquote(parsed.path)), location)
    if parsed.scheme and len(parsed.scheme) > 1:
        raise DocumentError(f"{location}: unsupported URL scheme {parsed.scheme!r} (use a path, file:// or http(s)://)")
    return _read_path(Path(location), location)


def _read_path(path: Path, location: str) -> Document:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DocumentError(f"{location}: no such file") from None
    except IsADirectoryError:
        raise DocumentError(f"{location}: is a directory, not a document") from None
    except OSError as error:
        raise DocumentError(f"{location}: cannot be read ({error.strerror})") from None
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return _document(path.name, location, data, modified, content_type="")


def _read_url(location: str, timeout: float) -> Document:
    request = urllib.request.Request(location, headers={"User-Agent": "ExchangePatch catalog importer"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_DOCUMENT_BYTES + 1)
            header = response.headers.get("Last-Modified")
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        raise DocumentError(f"{location}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DocumentError(f"{location}: cannot be fetched ({reason})") from None
    modified = None
    if header:
        try:
            modified = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            modified = None
    name = Path(urllib.parse.urlparse(location).path).name or urllib.parse.urlparse(location).netloc
    return _document(name, location, data, modified, content_type=content_type)


def _document(name: str, location: str, data: bytes, modified: datetime | None, *, content_type: str) -> Document:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{location}: larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return Document(
        name=name,
        location=location,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        fetched_at=datetime.now(tz=UTC),
        last_modified=modified,
        content_type=content_type,
    )


def detect_catalog_format(document: Document) -> str:
    """ "html", "markdown" or "csv", from the name, the content type, then the content."""
    lowered = document.name.lower()
    for suffix, fmt in (
        (".csv", "csv"),
        (".md", "markdown"),
        (".markdown", "markdown"),
        (".html", "html"),
        (".htm", "html"),
    ):
        if lowered.endswith(suffix):
            return fmt
    if "csv" in document.content_type:
        return "csv"
    if "html" in document.content_type:
        return "html"
    head = document.text.lstrip()[:2000].lower()
    if head.startswith("product name,") or "product name,build number" in head:
        return "csv"
    if head.startswith("<") or "<table" in document.text.lower():
        return "html"
    return "markdown"
