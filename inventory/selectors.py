"""Reads of the inventory and the latest verdicts, in a fixed number of queries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Prefetch, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from inventory.models import ScanRun, ScanVerdict, Server, ServerResult, Waiver
from kb.engine.builds import InvalidBuildError
from kb.engine.compliance import ServerFacts, facts_parse, has_fix
from kb.models import Fix, Update
from kb.selectors import catalog_get, entry_from_update, today


@dataclass(frozen=True, slots=True)
class ServerRow:
    """The columns a scan needs, read with .values() (no model instances for 100,000 servers)."""

    id: int
    fqdn: str
    site_id: int | None
    facts: ServerFacts


FACTS_COLUMNS = ("reported_build", "build_source", "roles", "dotnet_version")


def server_rows(queryset: QuerySet[Server] | None = None, *, shared: dict | None = None) -> list[ServerRow]:
    """One query; equal facts are shared objects, so 100,000 servers with 300 builds cost little memory.

    `shared` (raw columns → facts) may be kept across calls, e.g. by every chunk of one scan in a worker."""
    queryset = Server.objects.all() if queryset is None else queryset
    rows = queryset.order_by("pk").values_list(
        "id", "fqdn", "site_id", *FACTS_COLUMNS, Cast("prerequisites", TextField())
    )
    shared = {} if shared is None else shared
    result = []
    for pk, fqdn, site_id, *raw in rows:
        key = tuple(raw)
        facts = shared.get(key)
        if facts is None:
            facts = shared[key] = _facts(key)
        result.append(ServerRow(pk, fqdn, site_id, facts))
    return result


def server_facts_distinct(queryset: QuerySet[Server] | None = None) -> list[ServerFacts]:
    """Every distinct set of facts among the servers, deduplicated by the database (one query)."""
    queryset = Server.objects.all() if queryset is None else queryset
    rows = queryset.order_by().values_list(*FACTS_COLUMNS, Cast("prerequisites", TextField())).distinct()
    return list({_facts(tuple(raw)) for raw in rows})


def _facts(raw: tuple) -> ServerFacts:
    build, source, roles, dotnet, prerequisites = raw
    return ServerFacts(
        build_text=build or "",
        build_source=source,
        roles=tuple(role for role in roles.split(",") if role),
        dotnet=dotnet or None,
        prerequisites=tuple(sorted(json.loads(prerequisites or "{}").items())),
    )


def facts_key(facts: ServerFacts) -> str:
    """A stable digest of the facts: the chunks of one scan find their shared verdict by it."""
    text = json.dumps([facts.build_text, facts.build_source, facts.roles, facts.dotnet, facts.prerequisites])
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def waivers_active(*, target_kind: str, now=None) -> dict[str, list[Waiver]]:
    """Active waivers of one kind, by KB (one query), so each server looks only at the KBs it misses."""
    by_kb: dict[str, list[Waiver]] = {}
    for waiver in Waiver.objects.filter(target_kind=target_kind, expires_at__gt=now or timezone.now()).order_by("pk"):
        by_kb.setdefault(waiver.target_kb, []).append(waiver)
    return by_kb


def waiver_for(
    waivers: dict[str, list[Waiver]], *, server_id: int, site_id: int | None, kbs: Iterable[str]
) -> Waiver | None:
    """The first active waiver covering this server (itself, its site, or everyone) for one of the KBs."""
    for kb in kbs:
        for waiver in waivers.get(kb, ()):
            if waiver.server_id is None and waiver.site_id is None:
                return waiver
            if waiver.server_id == server_id or (waiver.site_id and waiver.site_id == site_id):
                return waiver
    return None


def scan_latest() -> ScanRun | None:
    return ScanRun.objects.filter(status="succeeded").order_by("-pk").first()


def results_latest(*, state: str | None = None, fqdn: str | None = None) -> QuerySet[ServerResult]:
    """The latest scan's results with their verdicts and servers (three queries when iterated)."""
    scan = scan_latest()
    if scan is None:
        return ServerResult.objects.none()
    queryset = (
        ServerResult.objects.filter(scan=scan).select_related("verdict", "server", "waiver").order_by("server__fqdn")
    )
    if state:
        queryset = queryset.filter(state=state)
    if fqdn:
        queryset = queryset.filter(server__fqdn=fqdn.lower())
    return queryset


def updates_needed(scan: ScanRun, *, kb: str | None = None) -> list[dict]:
    """Per update: how many servers miss it and which (the inverse of the per-server list), from one scan.

    Computed over the scan's distinct verdicts (a few thousand at most), each annotated with its server count.
    """
    verdicts = (
        ScanVerdict.objects.filter(scan=scan)
        .exclude(missing_updates=[])
        .prefetch_related(
            Prefetch("results", queryset=ServerResult.objects.select_related("server").order_by("server__fqdn"))
        )
    )
    needed: dict[str, dict] = {}
    for verdict in verdicts:
        for missing in verdict.missing_updates:
            if kb and missing != kb:
                continue
            entry = needed.setdefault(missing, {"kb": missing, "servers": [], "install_targets": 0})
            entry["servers"].extend(result.server.fqdn for result in verdict.results.all())
            if verdict.install and verdict.install.get("kb") == missing:
                entry["install_targets"] += len(verdict.results.all())
    return sorted(
        ({**e, "servers": sorted(e["servers"]), "server_count": len(e["servers"])} for e in needed.values()),
        key=lambda e: (-e["server_count"], e["kb"]),
    )


def result_as_dict(result: ServerResult) -> dict:
    """The compliance_report / API shape of one server's latest verdict."""
    verdict = result.verdict
    reasons = list(verdict.reasons)
    if result.waiver is not None:
        waiver = result.waiver
        reasons.append(
            f"excepted: {waiver.target_kb} waived until {waiver.expires_at:%Y-%m-%d} by {waiver.approver}"
            + (f" ({waiver.ticket})" if waiver.ticket else "")
            + f": {waiver.reason}"
        )
    install = verdict.install
    return {
        "fqdn": result.server.fqdn,
        "state": result.state,
        "current": {key: verdict.current.get(key) for key in ("build", "product", "level", "update", "kb")},
        "install": {"name": install["name"], "kb": install["kb"], "build": install["build"]} if install else None,
        "supersedes": list(verdict.supersedes),
        "missing_prerequisites": list(verdict.missing_prerequisites),
        "days_behind": verdict.days_behind,
        "reasons": reasons,
    }


@dataclass(slots=True)
class FixStatus:
    kb: str
    title: str
    carriers: list[str]
    lacking: list[str]
    unknown: list[str]
    excepted: list[str]
    present: int
    not_applicable: int  # servers of other products

    def as_dict(self) -> dict:
        return {
            "kb": self.kb, "title": self.title, "carried_by": self.carriers, "lacking": self.lacking,
            "unknown": self.unknown, "excepted": self.excepted, "present_count": self.present,
            "not_applicable_count": self.not_applicable,
        }  # fmt: skip


def fix_status(kb: str, *, as_of=None) -> FixStatus | None:
    """Which servers lack a fix: computed from each server's build and the updates that carry it (set-based)."""
    fix = Fix.objects.filter(kb=kb).first()
    if fix is None:
        return None
    carriers = [
        entry_from_update(update, update.product.key, update.level.name)
        for update in Update.objects.filter(fixes=fix).select_related("product", "level")
    ]
    catalog, on = catalog_get(), as_of or today()
    waivers = waivers_active(target_kind="fix")
    cache: dict[ServerFacts, bool | str | None] = {}
    products = {carrier.product for carrier in carriers}
    status = FixStatus(kb, fix.title, [c.title for c in carriers], [], [], [], 0, 0)
    for row in server_rows():
        if row.facts not in cache:
            try:
                resolution = catalog.resolve(facts_parse(row.facts), today=on)
            except InvalidBuildError:
                resolution = None
            if resolution is not None and resolution.product is not None and resolution.product.key not in products:
                cache[row.facts] = "not_applicable"
            else:
                cache[row.facts] = has_fix(resolution, carriers, catalog)
        present = cache[row.facts]
        if present == "not_applicable":
            status.not_applicable += 1
        elif present:
            status.present += 1
        elif waiver_for(waivers, server_id=row.id, site_id=row.site_id, kbs={kb}):
            status.excepted.append(row.fqdn)
        elif present is None:
            status.unknown.append(row.fqdn)
        else:
            status.lacking.append(row.fqdn)
    return status


def waivers_expired_since(*, since, now=None) -> int:
    """How many waivers expired after `since` (the last run) and by `now`; with no `since`, in the last hour."""
    now = now or timezone.now()
    since = since or now - timedelta(hours=1)
    return Waiver.objects.filter(expires_at__gt=since, expires_at__lte=now).count()
