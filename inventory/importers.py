"""Server lists as admins export them: Get-ExchangeServer | Export-Csv, or a plain CSV with our column names."""

from __future__ import annotations

import csv
import io

from inventory.records import FIELDS, PREREQUISITE_FACTS

# Get-ExchangeServer | Select Name,Fqdn,Site,ServerRole,Edition,AdminDisplayVersion[,ExSetupVersion] | Export-Csv
EXCHANGE_COLUMNS = {"name", "fqdn", "site", "serverrole", "edition", "admindisplayversion"}


class ServerFileError(ValueError):
    """The file is not a server list; the message names it."""


def parse_server_csv(text: str, *, name: str) -> list[tuple[int, dict[str, object]]]:
    """(line number, item) per data row, as ServerRecord input; cells left empty are not stated."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    offset = 0
    if lines and lines[0].startswith("#TYPE"):
        offset = 1
    reader = csv.DictReader(io.StringIO("".join(lines[offset:]), newline=""))
    header = [column.strip() for column in reader.fieldnames or []]
    if not header:
        raise ServerFileError(f"{name}: empty file")
    lowered = {column.lower() for column in header}
    is_exchange = lowered >= EXCHANGE_COLUMNS or "admindisplayversion" in lowered
    if not is_exchange:
        unknown = [c for c in header if c not in FIELDS and c not in PREREQUISITE_FACTS]
        if "fqdn" not in header:
            raise ServerFileError(
                f"{name}: no 'fqdn' column (expected Get-ExchangeServer | Export-Csv output or our column names)"
            )
        if unknown:
            raise ServerFileError(f"{name}: unknown column(s): {', '.join(unknown)}")
    rows = []
    for raw in reader:
        line = reader.line_num + offset
        cells = {(key or "").strip(): (value or "").strip() for key, value in raw.items() if key is not None}
        if None in raw:
            rows.append((line, {"__error__": "more cells than columns"}))
            continue
        if not any(cells.values()):
            continue
        rows.append((line, _exchange_item(cells) if is_exchange else _plain_item(cells)))
    return rows


def _exchange_item(cells: dict[str, str]) -> dict[str, object]:
    by_lower = {key.lower(): value for key, value in cells.items()}
    item: dict[str, object] = {"fqdn": by_lower.get("fqdn", ""), "name": by_lower.get("name", "")}
    site_path = by_lower.get("site", "")
    if site_path:
        # contoso.com/Configuration/Sites/Default-First-Site-Name
        parts = site_path.split("/")
        item["site"] = parts[-1]
        item["organisation"] = parts[0] if len(parts) > 1 else ""
    if by_lower.get("serverrole"):
        item["roles"] = by_lower["serverrole"]
    if by_lower.get("edition"):
        item["edition"] = by_lower["edition"]
    if by_lower.get("exsetupversion"):
        item["build"], item["build_source"] = by_lower["exsetupversion"], "exsetup"
    elif by_lower.get("admindisplayversion"):
        item["build"], item["build_source"] = by_lower["admindisplayversion"], "admin_display"
    return item


def _plain_item(cells: dict[str, str]) -> dict[str, object]:
    item: dict[str, object] = {key: value for key, value in cells.items() if value and key in FIELDS}
    prerequisites = {fact: cells[fact] for fact in PREREQUISITE_FACTS if cells.get(fact)}
    if prerequisites:
        item["prerequisites"] = prerequisites
    return item
