"""Validate a server as a CMDB, a CSV or the admin states it: field-keyed errors, normalised values; no queries.

The one place that knows what a server field may hold: every column's length (read from the models), the text rules
(no NUL, no lone surrogate, see exchangepatch.text), and each field's form. The API, servers_import and the admin
all validate through it, so a value that passes is one the database stores.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from exchangepatch.text import shown, text_problem
from inventory.models import Cluster, Organisation, Server, Site, Tag
from kb.engine.builds import InvalidBuildError, parse_reported_build

ROLES = ("Mailbox", "ClientAccess", "HubTransport", "EdgeTransport", "UnifiedMessaging")
_ROLE_ALIASES = {role.lower(): role for role in ROLES} | {
    "mb": "Mailbox", "mailboxrole": "Mailbox", "cas": "ClientAccess", "hub": "HubTransport", "edge": "EdgeTransport",
    "um": "UnifiedMessaging", "hubtransportrole": "HubTransport",
}  # fmt: skip
BUILD_SOURCES = ("exsetup", "admin_display", "manual")
PREREQUISITE_FACTS = ("filter_pack", "ucma", "vcredist_2012", "vcredist_2013", "url_rewrite")
CLUSTER_KINDS = ("CCR", "SCR", "SCC", "DAG")
CMS_KINDS = ("CCR", "SCC")  # the kinds of 2007 cluster that have a clustered mailbox server
_FQDN = re.compile(
    r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+", re.ASCII
)
_DOTNET = re.compile(r"\d+(\.\d+){1,3}", re.ASCII)
# RFC 3339 date-time, as the API schema's format date-time states it (fromisoformat alone also takes other forms).
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)?", re.ASCII)

# The longest text each field may hold once stripped: the length of the column it is stored in.
MAX_LENGTHS = {
    name: model._meta.get_field(column).max_length
    for name, model, column in (
        ("fqdn", Server, "fqdn"), ("name", Server, "name"), ("organisation", Organisation, "name"),
        ("site", Site, "name"), ("roles", Server, "roles"), ("edition", Server, "edition"),
        ("build", Server, "reported_build"), ("os_name", Server, "os_name"),
        ("dotnet_version", Server, "dotnet_version"), ("environment", Server, "environment"),
        ("tags", Tag, "name"), ("owner", Server, "owner"), ("cluster", Cluster, "name"),
    )
}  # fmt: skip
PREREQUISITE_MAX_LENGTH = 32

# Every field a caller may send; anything else is an error naming the unknown field.
FIELDS = (
    "fqdn", "name", "organisation", "site", "site_is_internet_facing", "roles", "edition", "build", "build_source",
    "os_name", "dotnet_version", "prerequisites", "is_forefront_installed", "environment", "tags", "owner",
    "last_reported", "cluster", "cluster_kind", "cluster_role", "is_clustered_mailbox_server",
)  # fmt: skip
FIELD_SET = frozenset(FIELDS)  # for membership tests, once per field of every row


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """A validated server; `provided` names the fields the caller stated (others are left as stored)."""

    fqdn: str
    provided: frozenset[str]
    values: Mapping[str, object] = field(default_factory=dict)

    def get(self, name: str, default: object = None) -> object:
        return self.values.get(name, default)


def records_from_items(
    items: Iterable[tuple[int, object]],
    *,
    where: Callable[[int], str] = lambda key: f"item {key}",
    typed: bool = True,
    first_seen: dict[str, int] | None = None,
) -> tuple[list[tuple[int, ServerRecord]], dict[int, dict[str, str]]]:
    """Validate many items keyed by position (an item index, a CSV line): the valid records, and the errors keyed by
    position then field. An FQDN given twice is an error on both, each naming the other (`where` says how).

    `first_seen` ({fqdn: position}, updated) carries the FQDNs of earlier batches of the same file: a duplicate of
    one of them is an error here and one (in the errors returned) at the earlier position."""
    valid, errors = [], {}
    first_seen = {} if first_seen is None else first_seen
    for key, item in items:
        record, problems = server_record_from_mapping(item, typed=typed)
        fqdn = record.fqdn if record is not None else _fqdn_as_given(item)
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


def _fqdn_as_given(item: object) -> str:
    value = item.get("fqdn") if isinstance(item, Mapping) else None
    return shown(fqdn_normalised(value.strip()), limit=255) if isinstance(value, str) else ""


def server_record_from_mapping(
    data: Mapping[str, object], *, typed: bool = True
) -> tuple[ServerRecord | None, dict[str, str]]:
    """Validate one item; returns (record, {}) or (None, {field: reason}).

    `typed` input (JSON: the API, the admin) is exact: booleans are true or false, cluster kinds and roles their
    documented values, times RFC 3339. Text input (`typed=False`: a CSV) may also spell booleans yes/no/1/0 and
    those values in any case. Either way, lists may be given as comma- or semicolon-separated text."""
    errors: dict[str, str] = {}
    if not isinstance(data, Mapping):
        return None, {"non_field_errors": "expected an object"}
    for name in data:
        if name not in FIELD_SET:
            errors[shown(str(name))] = "unknown field"
    values: dict[str, object] = {}
    fqdn = _text(data.get("fqdn"), "fqdn", errors, required=True)
    if fqdn is not None:
        fqdn = fqdn_normalised(fqdn)
        if not _FQDN.fullmatch(fqdn):
            errors["fqdn"] = f"{shown(fqdn)!r} is not a fully qualified domain name"
        elif not data.get("organisation") and len(fqdn.split(".", 1)[1]) > MAX_LENGTHS["organisation"]:
            errors["fqdn"] = (
                f"the domain part is longer than an organisation name ({MAX_LENGTHS['organisation']} characters); "
                "state the organisation"
            )
    for name in ("name", "organisation", "site", "edition", "os_name", "environment", "owner", "cluster"):
        if name in data:
            values[name] = _text(data[name], name, errors) or ""
    if "roles" in data:
        values["roles"] = _roles(data["roles"], errors)
    if "build" in data:
        _build(data, values, errors)
    elif "build_source" in data:
        errors["build_source"] = "build_source needs a build"
    if "dotnet_version" in data:
        dotnet = _text(data["dotnet_version"], "dotnet_version", errors) or ""
        if dotnet and not _DOTNET.fullmatch(dotnet):
            errors["dotnet_version"] = f"{dotnet!r} is not a .NET Framework version such as 4.8 or 4.7.2"
        values["dotnet_version"] = dotnet
    if "prerequisites" in data:
        values["prerequisites"] = _prerequisites(data["prerequisites"], errors)
    for name in ("is_forefront_installed", "site_is_internet_facing", "is_clustered_mailbox_server"):
        if name in data:
            values[name] = _boolean(data[name], name, errors, typed=typed)
    if "tags" in data:
        values["tags"] = _tags(data["tags"], errors)
    if "last_reported" in data:
        values["last_reported"] = _datetime(data["last_reported"], errors, typed=typed)
    if "cluster_kind" in data:
        kind = _text(data["cluster_kind"], "cluster_kind", errors) or ""
        kind = kind if typed else kind.upper()
        if kind and kind not in CLUSTER_KINDS:
            errors["cluster_kind"] = f"{shown(kind)!r} is not one of {', '.join(CLUSTER_KINDS)}"
        values["cluster_kind"] = kind
    if "cluster_role" in data:
        role = _text(data["cluster_role"], "cluster_role", errors) or ""
        role = role if typed else role.lower()
        if role and role not in ("active", "passive"):
            errors["cluster_role"] = f"{shown(role)!r} is not active or passive"
        values["cluster_role"] = role
    if values.get("cluster") and not values.get("cluster_kind") and "cluster_kind" not in errors:
        errors["cluster_kind"] = "required with cluster (CCR, SCR, SCC or DAG)"
    if values.get("is_clustered_mailbox_server"):
        _clustered_mailbox_server(values, errors)
    if errors or fqdn is None:
        return None, errors
    return ServerRecord(fqdn, frozenset(values), values), {}


def fqdn_normalised(fqdn: str) -> str:
    """An FQDN as it is stored: lower-case, without the root's dot. Only ASCII ones are changed ("K", the Kelvin
    sign, lower-cases to an ASCII k); others are refused by validation as they are given."""
    return fqdn.lower().rstrip(".") if fqdn.isascii() else fqdn


def _clustered_mailbox_server(values: dict, errors: dict) -> None:
    """A 2007 clustered mailbox server is what Get-ExchangeServer lists; its nodes are the cluster's members, named
    after it, so the server itself is no member: its cluster_kind (CCR, SCC) says which cluster it is."""
    if values.get("cluster"):
        errors["cluster"] = (
            "a clustered mailbox server is not a member of a cluster: its nodes are (import each node with "
            "cluster set to this server's name)"
        )
    kind = values.get("cluster_kind")
    if kind and kind not in CMS_KINDS and "cluster_kind" not in errors:
        errors["cluster_kind"] = f"a clustered mailbox server belongs to a CCR or SCC cluster, not {kind}"


def _text(value: object, name: str, errors: dict, *, required: bool = False, max_length: int = 0) -> str | None:
    """The stripped text, or None with the reason in errors[name]; the limit is the field's column unless given."""
    if (
        type(value) is str
        and value.isascii()
        and "\x00" not in value
        and 0 < len(value) <= (max_length or MAX_LENGTHS.get(name, 0) or len(value))
    ):
        # The usual case, decided with four cheap tests (an import checks 600,000 values): ASCII text without NUL
        # within its limit has no other problem; only a blank one, when required, is refused below.
        value = value.strip()
        if value or not required:
            return value
    if value is None or value == "":
        if required:
            errors[name] = "required"
        return None
    if not isinstance(value, str):
        errors[name] = f"expected text, got {_kind(value)}"
        return None
    problem = text_problem(value)
    if problem:
        errors[name] = problem
        return None
    max_length = max_length or MAX_LENGTHS.get(name, 0)
    if max_length and len(value) > max_length:  # padding counts: the limit is the one the API schema states
        errors[name] = f"longer than {max_length} characters"
        return None
    value = value.strip()
    if required and not value:
        errors[name] = "required"
        return None
    return value


def _roles(value: object, errors: dict) -> str:
    if isinstance(value, str):  # an estate spells its roles a few ways, each many times
        roles, problem = _roles_text(value)
        if problem:
            errors["roles"] = problem
        return roles
    return _roles_list(value, errors)


@functools.lru_cache(maxsize=1024)
def _roles_text(value: str) -> tuple[str, str | None]:
    errors: dict[str, str] = {}
    roles = _roles_list(value.replace(";", ",").split(","), errors)
    return roles, errors.get("roles")


def _roles_list(items: object, errors: dict) -> str:
    if not isinstance(items, list | tuple):
        errors["roles"] = "expected a list of roles or a comma-separated text"
        return ""
    roles = []
    for item in items:
        if not isinstance(item, str):
            errors["roles"] = f"expected role names, got {_kind(item)}"
            return ""
        key = item.strip().replace(" ", "").lower()
        if not key:
            continue
        if key not in _ROLE_ALIASES:
            errors["roles"] = f"{shown(item.strip())!r} is not an Exchange role ({', '.join(ROLES)})"
            return ""
        roles.append(_ROLE_ALIASES[key])
    return ",".join(role for role in ROLES if role in roles)


def _build(data: Mapping, values: dict, errors: dict) -> None:
    text = data["build"]
    source = data.get("build_source")
    if source not in (None, "") and source not in BUILD_SOURCES:
        errors["build_source"] = f"{_shown_value(source)} is not one of {', '.join(BUILD_SOURCES)}"
        return
    if text in (None, ""):
        values.update(reported_build="", build_source=source or "manual", build=None)
        return
    text = _text(text, "build", errors)
    if text is None:
        return
    try:
        parsed = parse_reported_build(text)
    except InvalidBuildError as error:
        errors["build"] = shown(str(error), limit=300)
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
            errors["prerequisites"] = (
                f"{_shown_value(fact)} is not a known prerequisite ({', '.join(PREREQUISITE_FACTS)})"
            )
            return {}
        if version in (None, ""):
            continue
        problems: dict[str, str] = {}
        text = _text(version, fact, problems, max_length=PREREQUISITE_MAX_LENGTH)
        if text is None:
            errors["prerequisites"] = f"{fact}: {problems.get(fact, 'expected a version text')}"
            return {}
        result[fact] = text
    return dict(sorted(result.items()))


def _boolean(value: object, name: str, errors: dict, *, typed: bool) -> bool:
    if isinstance(value, bool):
        return value
    if not typed and isinstance(value, str) and value.strip().lower() in {"true", "yes", "1", "false", "no", "0", ""}:
        return value.strip().lower() in {"true", "yes", "1"}
    errors[name] = f"expected true or false, got {_shown_value(value)}"
    return False


def _tags(value: object, errors: dict) -> list[str]:
    items = value.replace(";", ",").split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        errors["tags"] = "expected a list of tag names"
        return []
    tags = set()
    for item in items:
        problems: dict[str, str] = {}
        tag = _text(item, "tags", problems)
        if problems:
            reason = problems["tags"]
            errors["tags"] = f"a tag {'is ' if reason.startswith('longer') else ''}{reason}"
            return []
        if tag:
            tags.add(tag)
    return sorted(tags)


def _datetime(value: object, errors: dict, *, typed: bool) -> datetime | None:
    if value in (None, ""):
        return None
    text = value if typed or not isinstance(value, str) else value.strip()
    if isinstance(text, str) and _RFC3339.fullmatch(text):
        try:
            parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                errors["last_reported"] = "needs a time zone, e.g. 2026-11-25T08:00:00Z"
                return None
            try:
                return parsed.astimezone(UTC)
            except (OverflowError, ValueError):
                errors["last_reported"] = f"{_shown_value(value)} is out of range"
                return None
    errors["last_reported"] = f"{_shown_value(value)} is not an ISO 8601 date and time"
    return None


def _kind(value: object) -> str:
    """The type for a message: never the value itself, which may be huge or deeply nested."""
    return type(value).__name__


def _shown_value(value: object) -> str:
    return (
        repr(shown(value))
        if isinstance(value, str)
        else repr(value)
        if isinstance(value, int | float)
        else _kind(value)
    )
