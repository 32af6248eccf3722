"""Server lists as admins export them: Get-ExchangeServer | Export-Csv (any PowerShell, culture and encoding), or a
plain CSV with our column names."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from inventory.records import FIELD_SET, FIELDS, PREREQUISITE_FACTS
from kb.engine.builds import InvalidBuildError, parse_reported_build

# The Get-ExchangeServer columns read, lower-cased. One set, so that reading another column means adding it here and
# where `_export_item` maps it; every other column of the file is reported as ignored.
EXPORT_COLUMNS = frozenset(
    {"name", "fqdn", "site", "serverrole", "edition", "admindisplayversion", "exsetupversion",
     # cluster facts (see _cluster_columns)
     "ismemberofcluster", "clusteredstoragetype", "databaseavailabilitygroup"}
)  # fmt: skip
# Our own column names (inventory/records.py), also read beside the export's.
PLAIN_COLUMNS = frozenset(FIELDS) | frozenset(PREREQUISITE_FACTS)
# Get-ExchangeServer | Export-Csv output is recognised by these.
_EXPORT_SIGNS = frozenset({"admindisplayversion", "serverrole"})
# ServerRole values that are not roles a plan orders by: Exchange 2003 shows "None"; internal parts of 2013 and later.
_ROLE_ALIASES = {"cafe": "ClientAccess", "frontendtransport": "ClientAccess"}
_NOT_ROLES = frozenset({"none", "monitoring", "provisionedserver", "centraladmin", "centraladmindatabase"})
_DELIMITERS = ",;\t|"
# Byte-order marks, longest first: UTF-32 LE starts like UTF-16 LE.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)


class ServerFileError(ValueError):
    """The file is not a server list; the message names it."""


@dataclass(slots=True)
class ServerFile:
    """The rows of a server list as ServerRecord input, and how the file was read."""

    # (line number, item); cells left empty are not stated. An iterator that reads the file as it goes (warnings
    # are added as rows are read).
    rows: Iterable[tuple[int, dict[str, object]]]
    shape: str  # "Get-ExchangeServer export" or "plain CSV"
    encoding: str
    delimiter: str
    ignored: list[str] = field(default_factory=list)  # header columns nothing reads, as the file spells them
    warnings: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        delimiter = {"\t": "tab"}.get(self.delimiter, repr(self.delimiter))
        return f"{self.shape}, {self.encoding}, {delimiter}-separated"


# Workbooks people save instead of a CSV: .xlsx (a ZIP) and the older .xls (an OLE compound file).
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")


_READ_SIZE = 1 << 20


def open_server_file(stream: BinaryIO, *, name: str) -> ServerFile:
    """The server list in a file opened in binary mode; its rows are read as they are iterated, so memory does not
    grow with the file. The encoding comes from the byte-order mark (Windows PowerShell's `>` and Out-File write
    UTF-16 with one), else UTF-16 recognised by its NUL bytes, else UTF-8, else the Windows ANSI code page (Export-Csv
    -Encoding Default): one pass of the incremental decoder over the file decides, then the rows are read from the
    start. A stray control character (a NUL in one cell) is that cell's error, reported with its line and field; a
    file that is mostly control characters is not text at all."""
    head = stream.read(16_384)
    if head.startswith(_WORKBOOK_MAGIC):
        raise ServerFileError(f"{name}: a spreadsheet workbook, not a CSV file (an .xlsx? save it as CSV)")
    skip, codec, label, strict = _stream_encoding(stream, head, name=name)
    stream.seek(skip)
    text = io.TextIOWrapper(stream, encoding=codec, errors="strict" if strict else "replace", newline="")
    sample = head[skip:].decode(codec, errors="ignore")[:4000]
    controls = sum(1 for char in sample if ord(char) < 32 and char not in "\t\r\n")
    if controls * 10 > len(sample):
        raise ServerFileError(f"{name}: binary data, not a CSV file")
    return parse_server_lines(text, name=name, encoding=label)


def _stream_encoding(stream: BinaryIO, head: bytes, *, name: str) -> tuple[int, str, str, bool]:
    """(bytes to skip, codec, label, whether the codec decodes the whole file)."""
    for bom, codec, label in _BOMS:
        if head.startswith(bom):
            if not _decodes(stream, codec, len(bom)):
                raise ServerFileError(f"{name}: starts with a {label} byte-order mark but is not {label}")
            return len(bom), codec, label, True
    sample = head[:4000]
    if sample and sample.count(0) * 4 > len(sample):
        codec = "utf-16-le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16-be"
        if not _decodes(stream, codec, 0):
            raise ServerFileError(f"{name}: binary data, not a CSV file")
        return 0, codec, f"{codec.upper().replace('-LE', ' LE').replace('-BE', ' BE')} without BOM", True
    if _decodes(stream, "utf-8", 0):
        return 0, "utf-8", "UTF-8", True
    return 0, "cp1252", "Windows-1252", False


def _decodes(stream: BinaryIO, codec: str, start: int) -> bool:
    stream.seek(start)
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        while chunk := stream.read(_READ_SIZE):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def parse_server_lines(lines: Iterator[str], *, name: str, encoding: str = "text") -> ServerFile:
    """A server list from its lines (as a file opened with newline="" gives them): the header is read now, the rows
    as `rows` is iterated."""
    offset, first = 0, next(lines, None)
    if first is not None and first.lstrip().startswith("#TYPE"):
        offset, first = 1, next(lines, None)
    while first is not None and not first.strip():
        offset, first = offset + 1, next(lines, None)  # blank lines before the header
    if first is None:
        raise ServerFileError(f"{name}: empty file")
    delimiter = _sniff_delimiter(first)
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter)
    header = [column.strip() for column in next(reader)]
    lowered = [column.lower() for column in header]
    is_export = bool(_EXPORT_SIGNS & set(lowered))
    if "fqdn" not in lowered:
        raise ServerFileError(
            f"{name}: no 'fqdn' column (expected Get-ExchangeServer | Export-Csv output or our column names; "
            f"read {len(header)} column(s) separated by {delimiter!r}: {', '.join(header)[:200]})"
        )
    known = EXPORT_COLUMNS | PLAIN_COLUMNS if is_export else PLAIN_COLUMNS
    ignored = [column for column, key in zip(header, lowered, strict=True) if key and key not in known]
    result = ServerFile(
        [], "Get-ExchangeServer export" if is_export else "plain CSV", encoding, delimiter, ignored=ignored
    )
    result.rows = _rows(reader, header, lowered, is_export, offset, result.warnings, name=name)
    return result


def _rows(reader, header, lowered, is_export, offset, warnings, *, name):
    try:
        for cells in reader:
            line = reader.line_num + offset
            if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
                yield line, {"__error__": f"{len(cells)} cells for {len(header)} columns"}
                continue
            by_column = {key: cell.strip() for key, cell in zip(lowered, cells, strict=False) if key}
            if not any(by_column.values()):
                continue
            item = _export_item(by_column) if is_export else {}
            item |= _plain_item(by_column, skip=item.keys() | ({"name", "site", "edition"} if is_export else set()))
            if warning := _legacy_warning(item):
                warnings.append(f"line {line}: {warning}")
            yield line, item
    except csv.Error as error:
        raise ServerFileError(f"{name}: line {reader.line_num + offset}: {error}") from None


def _sniff_delimiter(body: str) -> str:
    """The delimiter of the header line (Export-Csv -UseCulture writes ';' in many locales). csv.Sniffer reads
    quoted headers reliably; an unquoted one falls back to the candidate that splits it into the most columns."""
    header = body.splitlines()[0] if body.strip() else body
    try:
        found = csv.Sniffer().sniff(header, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        found = None
    if found and len(next(csv.reader([header], delimiter=found))) > 1:
        return found
    return max(
        _DELIMITERS, key=lambda candidate: (len(next(csv.reader([header], delimiter=candidate))), candidate == ",")
    )


def _export_item(cells: dict[str, str]) -> dict[str, object]:
    item: dict[str, object] = {"fqdn": cells.get("fqdn", ""), "name": cells.get("name", "")}
    site_path = cells.get("site", "")
    if site_path:
        # contoso.com/Configuration/Sites/Default-First-Site-Name
        parts = site_path.split("/")
        item["site"] = parts[-1]
        item["organisation"] = parts[0] if len(parts) > 1 else ""
    if cells.get("serverrole"):
        roles = [_ROLE_ALIASES.get(role.strip().lower(), role.strip()) for role in cells["serverrole"].split(",")]
        roles = [role for role in dict.fromkeys(roles) if role and role.lower() not in _NOT_ROLES]
        if roles:
            item["roles"] = ", ".join(roles)
    if cells.get("edition"):
        item["edition"] = cells["edition"]
    if cells.get("exsetupversion"):
        item["build"], item["build_source"] = cells["exsetupversion"], "exsetup"
    elif cells.get("admindisplayversion"):
        item["build"], item["build_source"] = cells["admindisplayversion"], "admin_display"
    item.update(_cluster_columns(cells))
    return item


# Exchange 2007 Get-MailboxServer: ClusteredStorageType NonShared is a CCR clustered mailbox server, Shared an SCC one.
_STORAGE_TYPES = {"nonshared": "CCR", "shared": "SCC"}


def _cluster_columns(cells: dict[str, str]) -> dict[str, object]:
    """Cluster facts an export may carry: IsMemberOfCluster (Get-ExchangeServer, 2007: the row is a clustered
    mailbox server, not a node), ClusteredStorageType (Get-MailboxServer, 2007) and DatabaseAvailabilityGroup
    (Get-MailboxServer, 2010 and later). Values the export leaves empty or "Unknown" are not stated."""
    item: dict[str, object] = {}
    member = cells.get("ismemberofcluster", "").lower()
    if member in ("yes", "true"):
        item["is_clustered_mailbox_server"] = True
        kind = _STORAGE_TYPES.get(cells.get("clusteredstoragetype", "").lower())
        if kind:
            item["cluster_kind"] = kind
    elif member in ("no", "false"):
        item["is_clustered_mailbox_server"] = False
    if cells.get("databaseavailabilitygroup"):
        item["cluster"], item["cluster_kind"] = cells["databaseavailabilitygroup"], "DAG"
    return item


def _plain_item(cells: dict[str, str], *, skip: set[str]) -> dict[str, object]:
    item: dict[str, object] = {
        key: value for key, value in cells.items() if value and key in FIELD_SET and key not in skip
    }
    prerequisites = {fact: cells[fact] for fact in PREREQUISITE_FACTS if cells.get(fact)}
    if prerequisites:
        item["prerequisites"] = prerequisites
    return item


def _legacy_warning(item: dict[str, object]) -> str | None:
    """Exchange 2003 and older are imported as legacy servers: shown, never planned."""
    text = item.get("build")
    try:
        build = parse_reported_build(text).build if isinstance(text, str) and text else None
    except InvalidBuildError:
        return None  # the row's validation reports it
    if build is None or build.major >= 8:
        return None
    return (
        f"{item.get('fqdn') or item.get('name')} runs Exchange 2003 or older ({text}): imported as legacy, shown but "
        "never planned"
    )
