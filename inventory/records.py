"""Validate a server as a CMDB or a CSV states it: field-keyed errors, normalised values; no database."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kb.engine.builds import InvalidBuildError, parse_reported_build

ROLES = ("Mailbox", "ClientAccess", "HubTransport", "EdgeTransport", "UnifiedMessaging")
_ROLE_ALIASES = {role.lower(): role for role in ROLES} | {
    "mb": "Mailbox", "mailboxrole": "Mailbox", "cas": "ClientAccess", "hub": "HubTransport", "edge": "EdgeTransport",
    "um": "UnifiedMessaging", "hubtransportrole": "HubTransport",
}  # fmt: skip
BUILD_SOURCES = ("exsetup", "admin_display", "manual")
PREREQUISITE_FACTS = ("filter_pack", "ucma", "vcredist_2012", "vcredist_2013", "url_rewrite")
CLUSTER_KINDS = ("CCR", "SCR", "DAG")
_FQDN = re.compile(
    r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+", re.ASCII
)
_DOTNET = re.compile(r"\d+(\.\d+){1,3}", re.ASCII)

# Every field a caller may send; anything else is an error naming the unknown field.
FIELDS = (
    "fqdn", "name", "organisation", "site", "site_is_internet_facing", "roles", "edition", "build", "build_source",
    "os_name", "dotnet_version", "prerequisites", "is_forefront_installed", "environment", "tags", "owner",
    "last_reported", "cluster", "cluster_kind", "cluster_role",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """A validated server; `provided` names the fields the caller stated (others are left as stored)."""

    fqdn: str
    provided: frozenset[str]
    values: Mapping[str, object] = field(default_factory=dict)

    def get(self, name: str, default: object = None) -> object:
        return self.values.get(name, default)


def records_from_items(
    items: Iterable[tuple[int, object]], *, where: Callable[[int], str] = lambda key: f"item {key}"
) -> tuple[list[tuple[int, ServerRecord]], dict[int, dict[str, str]]]:
    """Validate many items keyed by position (an item index, a CSV line): the valid records, and the errors keyed by
    position then field. An FQDN given twice is an error on both, each naming the other (`where` says how)."""
    valid, errors, first_seen = [], {}, {}
    for key, item in items:
        record, problems = server_record_from_mapping(item)
        fqdn = str(item.get("fqdn", "")).strip().lower().rstrip(".") if isinstance(item, Mapping) else ""
        if fqdn in first_seen:
            other = first_seen[fqdn]
            problems = {**problems, "fqdn": f"{fqdn} is also {where(other)}"}
            errors.setdefault(other, {})["fqdn"] = f"{fqdn} is also {where(key)}"
        elif fqdn:
            first_seen[fqdn] = key
        if problems:
            errors[key] = {name: str(reason) for name, reason in problems.items()}
        else:
            valid.append((key, record))
    return [(key, record) for key, record in valid if key not in errors], errors


def server_record_from_mapping(data: Mapping[str, object]) -> tuple[ServerRecord | None, dict[str, str]]:
    """Validate one item; returns (record, {}) or (None, {field: reason})."""
    errors: dict[str, str] = {}
    if not isinstance(data, Mapping):
        return None, {"non_field_errors": "expected an object"}
    for name in data:
        if name not in FIELDS:
            errors[str(name)] = "unknown field"
    values: dict[str, object] = {}
    fqdn = _text(data.get("fqdn"), "fqdn", errors, required=True, max_length=255)
    if fqdn is not None:
        fqdn = fqdn.lower().rstrip(".")
        if not _FQDN.fullmatch(fqdn):
            errors["fqdn"] = f"{fqdn!r} is not a fully qualified domain name"
    for name, limit in (("name", 64), ("organisation", 200), ("site", 200), ("edition", 64), ("os_name", 100),
                        ("environment", 32), ("owner", 200), ("cluster", 100)):  # fmt: skip
        if name in data:
            values[name] = _text(data[name], name, errors, max_length=limit) or ""
    if "roles" in data:
        values["roles"] = _roles(data["roles"], errors)
    if "build" in data:
        _build(data, values, errors)
    elif "build_source" in data:
        errors["build_source"] = "build_source needs a build"
    if "dotnet_version" in data:
        dotnet = _text(data["dotnet_version"], "dotnet_version", errors, max_length=16) or ""
        if dotnet and not _DOTNET.fullmatch(dotnet):
            errors["dotnet_version"] = f"{dotnet!r} is not a .NET Framework version such as 4.8 or 4.7.2"
        values["dotnet_version"] = dotnet
    if "prerequisites" in data:
        values["prerequisites"] = _prerequisites(data["prerequisites"], errors)
    for name in ("is_forefront_installed", "site_is_internet_facing"):
        if name in data:
            values[name] = _boolean(data[name], name, errors)
    if "tags" in data:
        values["tags"] = _tags(data["tags"], errors)
    if "last_reported" in data:
        values["last_reported"] = _datetime(data["last_reported"], errors)
    if "cluster_kind" in data:
        kind = (_text(data["cluster_kind"], "cluster_kind", errors) or "").upper()
        if kind and kind not in CLUSTER_KINDS:
            errors["cluster_kind"] = f"{kind!r} is not one of {', '.join(CLUSTER_KINDS)}"
        values["cluster_kind"] = kind
    if "cluster_role" in data:
        role = (_text(data["cluster_role"], "cluster_role", errors) or "").lower()
        if role and role not in ("active", "passive"):
            errors["cluster_role"] = f"{role!r} is not active or passive"
        values["cluster_role"] = role
    if values.get("cluster") and not values.get("cluster_kind") and "cluster_kind" not in errors:
        errors["cluster_kind"] = "required with cluster (CCR, SCR or DAG)"
    if errors or fqdn is None:
        return None, errors
    return ServerRecord(fqdn, frozenset(values), values), {}


def _text(value: object, name: str, errors: dict, *, required: bool = False, max_length: int = 200) -> str | None:
    if value is None or value == "":
        if required:
            errors[name] = "required"
        return None
    if not isinstance(value, str):
        errors[name] = f"expected text, got {type(value).__name__}"
        return None
    value = value.strip()
    if len(value) > max_length:
        errors[name] = f"longer than {max_length} characters"
        return None
    if required and not value:
        errors[name] = "required"
        return None
    return value


def _roles(value: object, errors: dict) -> str:
    items = value.replace(";", ",").split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        errors["roles"] = "expected a list of roles or a comma-separated text"
        return ""
    roles = []
    for item in items:
        if not isinstance(item, str):
            errors["roles"] = f"expected role names, got {type(item).__name__}"
            return ""
        key = item.strip().replace(" ", "").lower()
        if not key:
            continue
        if key not in _ROLE_ALIASES:
            errors["roles"] = f"{item.strip()!r} is not an Exchange role ({', '.join(ROLES)})"
            return ""
        roles.append(_ROLE_ALIASES[key])
    return ",".join(role for role in ROLES if role in roles)


def _build(data: Mapping, values: dict, errors: dict) -> None:
    text = data["build"]
    source = data.get("build_source")
    if source not in (None, "") and source not in BUILD_SOURCES:
        errors["build_source"] = f"{source!r} is not one of {', '.join(BUILD_SOURCES)}"
        return
    if text in (None, ""):
        values.update(reported_build="", build_source=source or "manual", build=None)
        return
    if not isinstance(text, str):
        errors["build"] = f"expected text, got {type(text).__name__}"
        return
    try:
        parsed = parse_reported_build(text)
    except InvalidBuildError as error:
        errors["build"] = str(error)
        return
    if source in (None, ""):
        source = "admin_display" if parsed.form.is_level_only else "exsetup"
    values.update(reported_build=text.strip(), build_source=source, build=parsed.build)


def _prerequisites(value: object, errors: dict) -> dict[str, str]:
    if not isinstance(value, Mapping):
        errors["prerequisites"] = 'expected an object such as {"filter_pack": "2010 SP1"}'
        return {}
    result = {}
    for fact, version in value.items():
        if fact not in PREREQUISITE_FACTS:
            errors["prerequisites"] = f"{fact!r} is not a known prerequisite ({', '.join(PREREQUISITE_FACTS)})"
            return {}
        if version in (None, ""):
            continue
        if not isinstance(version, str) or len(version) > 32:
            errors["prerequisites"] = f"{fact}: expected a version text of at most 32 characters"
            return {}
        result[fact] = version.strip()
    return dict(sorted(result.items()))


def _boolean(value: object, name: str, errors: dict) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "1", "false", "no", "0", ""}:
        return value.strip().lower() in {"true", "yes", "1"}
    errors[name] = f"expected true or false, got {value!r}"
    return False


def _tags(value: object, errors: dict) -> list[str]:
    items = value.replace(";", ",").split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        errors["tags"] = "expected a list of tag names"
        return []
    tags = sorted({item.strip() for item in items if item.strip()})
    if any(len(tag) > 64 for tag in tags):
        errors["tags"] = "a tag is longer than 64 characters"
    return tags


def _datetime(value: object, errors: dict) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                errors["last_reported"] = "needs a time zone, e.g. 2026-11-25T08:00:00Z"
                return None
            try:
                return parsed.astimezone(UTC)
            except (OverflowError, ValueError):
                errors["last_reported"] = f"{value!r} is out of range"
                return None
    errors["last_reported"] = f"{value!r} is not an ISO 8601 date and time"
    return None
