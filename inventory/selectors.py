"""Reads of the inventory and the latest verdicts, in a fixed number of queries."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    CharField,
    Count,
    F,
    FilteredRelation,
    IntegerField,
    JSONField,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from inventory.choices import ScanStatus
from inventory.models import (
    ClusterMember,
    Organisation,
    ScanRun,
    ScanTally,
    ScanVerdict,
    Server,
    ServerResult,
    Waiver,
)
from inventory.records import fqdn_normalised
from kb.engine.builds import InvalidBuildError, parse_reported_build
from kb.engine.compliance import COMPLIANT_STATES, EXCEPTED, ServerFacts, facts_parse, has_fix
from kb.engine.lookup import build_info
from kb.models import Fix, Update
from kb.selectors import catalog_age, catalog_get, catalog_sources, entry_from_update, today, update_titles


class ServerRow(NamedTuple):
    """The columns a scan needs, read with .values() (no model instances for 100,000 servers). A named tuple: made
    once per server of every scan, in a third of the time of a frozen dataclass."""

    id: int
    fqdn: str
    site_id: int | None
    facts: ServerFacts


FACTS_COLUMNS = ("reported_build", "build_source", "roles", "dotnet_version")
# After the plain columns: the prerequisites as text (hashable), and the organisation's ESU enrolment.
FACTS_EXPRESSIONS = (Cast("prerequisites", TextField()), "organisation__esu_enrolled_until")


def server_rows(queryset: QuerySet[Server] | None = None, *, shared: dict | None = None) -> list[ServerRow]:
    """One query; equal facts are shared objects, so 100,000 servers with 300 builds cost little memory.

    `shared` (raw columns → facts) may be kept across calls, e.g. by every chunk of one scan in a worker."""
    queryset = Server.objects.all() if queryset is None else queryset
    rows = queryset.order_by("pk").values_list("id", "fqdn", "site_id", *FACTS_COLUMNS, *FACTS_EXPRESSIONS)
    if connection.vendor == "postgresql":
        # The same query's rows in one fetch, without the queryset's iterator (100 rows a fetch, a tuple per row):
        # a scan reads every server. PostgreSQL needs no converter for these columns; SQLite does (the date).
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    shared = {} if shared is None else shared
    result = []
    for row in rows:
        key = tuple(row[3:])
        facts = shared.get(key)
        if facts is None:
            facts = shared[key] = _facts(key)
        result.append(ServerRow(row[0], row[1], row[2], facts))
    return result


def server_facts_by_raw() -> dict[tuple, ServerFacts]:
    """Every distinct raw key among the servers (the columns `server_rows` keys its shared facts by: FACTS_COLUMNS,
    the prerequisites as text and the organisation's ESU date) and its facts. Raw keys that differ only in ways the
    facts ignore (an empty role in the list, say) share one facts object."""
    # Distinct over the server's own columns and its organisation's id, then the organisation's ESU date by id: with
    # the join inside, PostgreSQL sorts every server to deduplicate (4 s at 1,000,000 servers); without it, it
    # hashes them (0.5 s).
    rows = Server.objects.values_list(*FACTS_COLUMNS, *FACTS_EXPRESSIONS[:-1], "organisation_id").order_by().distinct()
    esu = dict(Organisation.objects.values_list("pk", "esu_enrolled_until"))
    shared: dict[ServerFacts, ServerFacts] = {}
    by_raw = {}
    for raw in rows:
        key = (*raw[:-1], esu.get(raw[-1]))
        facts = _facts(key)
        by_raw[key] = shared.setdefault(facts, facts)
    return by_raw


def _facts(raw: tuple) -> ServerFacts:
    build, source, roles, dotnet, prerequisites, esu_until = raw
    return ServerFacts(
        build_text=build or "",
        build_source=source,
        roles=tuple(role for role in roles.split(",") if role),
        dotnet=dotnet or None,
        prerequisites=tuple(sorted(json.loads(prerequisites or "{}").items())),
        esu_until=esu_until,
    )


def facts_key(facts: ServerFacts) -> str:
    """A stable digest of the facts: the chunks of one scan find their shared verdict by it."""
    esu_until = facts.esu_until.isoformat() if facts.esu_until else None
    text = json.dumps([facts.build_text, facts.build_source, facts.roles, facts.dotnet, facts.prerequisites, esu_until])
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def waivers_active(*, target_kind: str, now=None) -> dict[str, list[Waiver]]:
    """Active waivers of one kind, by KB (one query), so each server looks only at the KBs it misses."""
    by_kb: dict[str, list[Waiver]] = {}
    for waiver in Waiver.objects.filter(target_kind=target_kind, expires_at__gt=now or timezone.now()).order_by("pk"):
        by_kb.setdefault(waiver.target_kb, []).append(waiver)
    return by_kb


class WaiverIndex:
    """Active waivers of one kind by KB, then by scope (every server, a server, a site): the waiver covering a server
    is found with three dictionary look-ups per KB it misses, whatever the number of waivers, so a scan costs
    O(waivers + servers), not O(waivers times servers). Answers as `waiver_for` over the same waivers: for the first KB
    (in the order given) that any covering waiver names, the covering waiver created first (the scope does not rank
    them: a waiver for everyone older than a server's own one wins)."""

    def __init__(self, by_kb: dict[str, list[Waiver]]):
        self._by_kb: dict[str, tuple[Waiver | None, dict[int, Waiver], dict[int, Waiver]]] = {}
        for kb, waivers in by_kb.items():
            everyone, servers, sites = None, {}, {}
            for waiver in sorted(waivers, key=lambda w: w.pk):
                if waiver.server_id is None and waiver.site_id is None:
                    everyone = everyone or waiver
                elif waiver.server_id is not None:
                    servers.setdefault(waiver.server_id, waiver)
                else:
                    sites.setdefault(waiver.site_id, waiver)
            self._by_kb[kb] = (everyone, servers, sites)

    def __bool__(self) -> bool:
        return bool(self._by_kb)

    def __contains__(self, kb: str) -> bool:
        return kb in self._by_kb

    def server_ids(self) -> set[int]:
        return {server for _, servers, _ in self._by_kb.values() for server in servers}

    def site_ids(self) -> set[int]:
        return {site for _, _, sites in self._by_kb.values() for site in sites}

    def everyone(self, kbs: Iterable[str]) -> Waiver | None:
        """What `covering` answers for a server that no server- or site-scoped waiver names."""
        for kb in kbs:
            scopes = self._by_kb.get(kb)
            if scopes is not None and scopes[0] is not None:
                return scopes[0]
        return None

    def covering(self, *, server_id: int, site_id: int | None, kbs: Iterable[str]) -> Waiver | None:
        for kb in kbs:
            scopes = self._by_kb.get(kb)
            if scopes is None:
                continue
            everyone, servers, sites = scopes
            found = [w for w in (everyone, servers.get(server_id), sites.get(site_id) if site_id else None) if w]
            if found:
                return min(found, key=lambda w: w.pk)
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
        queryset = queryset.filter(server__fqdn=fqdn_normalised(fqdn))
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
    latest = verdict.latest_security_update
    return {
        "fqdn": result.server.fqdn,
        "state": result.state,
        "current": {key: verdict.current.get(key) for key in ("build", "product", "level", "update", "kb")},
        "install": {"name": install["name"], "kb": install["kb"], "build": install["build"],
                    "esu_only": bool(install.get("esu_only"))} if install else None,
        "supersedes": list(verdict.supersedes),
        "missing_prerequisites": list(verdict.missing_prerequisites),
        "days_behind": verdict.days_behind,
        "is_supported": verdict.is_supported,
        "latest_security_update": {key: latest.get(key) for key in ("name", "kb", "build", "esu_only")} if latest else None,
        "has_latest_security_update": verdict.has_latest_security_update,
        "reasons": reasons,
    }  # fmt: skip


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
    waivers = WaiverIndex(waivers_active(target_kind="fix"))
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
        elif kb in waivers and waivers.covering(server_id=row.id, site_id=row.site_id, kbs=(kb,)):
            status.excepted.append(row.fqdn)
        elif present is None:
            status.unknown.append(row.fqdn)
        else:
            status.lacking.append(row.fqdn)
    return status


# -- the portal's reads (dashboard, server list, server page) ----------------------------------------


SUMMARY_CACHE_SECONDS = 24 * 3600


def summary_key(scan: ScanRun) -> tuple:
    """What a scan's summary depends on: the scan (its id and when it finished: ids can come back in SQLite test
    databases) and the overdue threshold. Also the ETag of the API's summary."""
    finished = scan.finished_at.isoformat() if scan.finished_at else ""
    return (scan.pk, finished, settings.EXCHANGEPATCH_OVERDUE_DAYS)


def compliance_summary(scan: ScanRun | None = None) -> dict:
    """Counts by state, by product and level, and overdue, from one scan (the latest by default), read from the
    scan's aggregates (ScanTally: servers per verdict and state) and its distinct verdicts: two small queries
    whatever the estate, and none at all for a scan already summed up (Django's cache: a succeeded scan's summary
    never changes).

    The API's summary and the portal's dashboard both show this, so they cannot disagree.
    """
    threshold = settings.EXCHANGEPATCH_OVERDUE_DAYS
    scan = scan or scan_latest()
    if scan is None:
        return {"scan": None, "as_of": None, "servers": 0, "by_state": {}, "by_product_level": [],
                "overdue": {"threshold_days": threshold, "count": 0}, "newly_noncompliant": 0}  # fmt: skip
    key = "compliance-summary:" + ":".join(map(str, summary_key(scan)))
    cached = cache.get(key) if scan.status == ScanStatus.SUCCEEDED else None
    if cached is not None:
        return cached
    verdicts, days = {}, {}
    for pk, current, days_behind in ScanVerdict.objects.filter(scan=scan).values_list("pk", "current", "days_behind"):
        verdicts[pk], days[pk] = current, days_behind
    by_state: Counter = Counter()
    levels: Counter = Counter()
    overdue = 0
    for verdict_id, state, count in servers_per_verdict(scan):
        by_state[state] += count
        current = verdicts.get(verdict_id) or {}
        levels[(current.get("product"), current.get("level"))] += count
        if state not in COMPLIANT_STATES and (days.get(verdict_id) or 0) > threshold:
            overdue += count
    summary = {
        "scan": scan.pk,
        "as_of": scan.as_of,
        "servers": scan.server_count,
        "by_state": dict(sorted(by_state.items())),
        "by_product_level": [
            {"product": product, "level": level, "count": count}
            for (product, level), count in sorted(levels.items(), key=lambda item: (str(item[0][0]), str(item[0][1])))
        ],
        "overdue": {"threshold_days": threshold, "count": overdue},
        "newly_noncompliant": scan.newly_noncompliant,
    }
    if scan.status == ScanStatus.SUCCEEDED:
        cache.set(key, summary, SUMMARY_CACHE_SECONDS)
    return summary


def servers_per_verdict(scan: ScanRun) -> list[tuple[int, str, int]]:
    """(verdict id, state, servers) of a scan, from its aggregates (ScanTally, written when the scan finishes): a few
    thousand rows for 100,000 servers. A scan without them is grouped from its results. Kept on the
    scan object, so that the dashboard's panels, which all start from it, read it once per request."""
    if not hasattr(scan, "_servers_per_verdict"):
        rows = []
        if scan.status == ScanStatus.SUCCEEDED:
            tallies = ScanTally.objects.filter(scan=scan).values_list("verdict_id", "state")
            rows = list(tallies.annotate(n=Sum("server_count")).order_by())
        if not rows and (
            scan.server_count or scan.status != ScanStatus.SUCCEEDED
        ):  # running, or finished before tallies existed (migration 0004)
            results = ServerResult.objects.filter(scan=scan).values_list("verdict_id", "state")
            rows = list(results.annotate(n=Count("pk")).order_by())
        scan._servers_per_verdict = rows
    return scan._servers_per_verdict


def compliant_count(by_state: dict[str, int]) -> int:
    return sum(count for state, count in by_state.items() if state in COMPLIANT_STATES)


def compliance_trend(*, limit: int = 30) -> list[dict]:
    """Per successful scan, oldest first: its date and servers per state (one query over the scans' own counts)."""
    scans = ScanRun.objects.filter(status=ScanStatus.SUCCEEDED).order_by("-pk")[:limit]
    trend = []
    for scan in reversed(list(scans.values("pk", "as_of", "finished_at", "server_count", "counts"))):
        counts = scan["counts"] or {}
        trend.append(
            {"scan": scan["pk"], "as_of": scan["as_of"], "finished_at": scan["finished_at"],
             "servers": scan["server_count"], "by_state": counts, "compliant": compliant_count(counts)}
        )  # fmt: skip
    return trend


def updates_needed_counts(scan: ScanRun, *, limit: int | None = None) -> list[dict]:
    """Per update KB: how many servers of the scan miss it and for how many it is the one to install next (the
    newest of what they miss: cumulative updates make the others unnecessary). Most installs first.

    Two queries whatever the estate: servers per verdict (grouped in SQL), then the scan's distinct verdicts.
    """
    per_verdict: Counter = Counter()
    for verdict_id, _, count in servers_per_verdict(scan):
        per_verdict[verdict_id] += count
    missing: Counter = Counter()
    installs: Counter = Counter()
    for verdict_id, kbs, install in ScanVerdict.objects.filter(scan=scan).values_list(
        "pk", "missing_updates", "install"
    ):
        servers = per_verdict.get(verdict_id, 0)
        for kb in kbs or ():
            missing[kb] += servers
        if install and install.get("kb"):
            installs[install["kb"]] += servers
    ranked = sorted((kb for kb in missing | installs if missing[kb] or installs[kb]),
                    key=lambda kb: (-installs[kb], -missing[kb], kb))  # fmt: skip
    return [{"kb": kb, "server_count": missing[kb], "install_count": installs[kb]} for kb in ranked[:limit]]


def verdict_ids_missing(scan: ScanRun, *, kb: str, install_only: bool = False) -> list[int]:
    """The scan's verdicts that miss an update (a KB), or whose update to install next it is; read over its
    distinct verdicts (one query)."""
    rows = ScanVerdict.objects.filter(scan=scan).values_list("pk", "missing_updates", "install")
    if install_only:
        return [pk for pk, _, install in rows if install and install.get("kb") == kb]
    return [pk for pk, missing, _ in rows if kb in (missing or ())]


def results_overdue(scan: ScanRun, *, limit: int) -> list[ServerResult]:
    """The non-compliant servers furthest behind (days since the oldest missing update), in three small queries:
    the verdicts furthest behind are picked first from the scan's distinct verdicts, so the database never sorts
    every server of the estate."""
    days = dict(ScanVerdict.objects.filter(scan=scan, days_behind__isnull=False).values_list("pk", "days_behind"))
    behind = sorted(((v, s, n) for v, s, n in servers_per_verdict(scan) if v in days and s not in COMPLIANT_STATES),
                    key=lambda row: -days[row[0]])  # fmt: skip
    chosen, servers = [], 0
    for verdict_id, _, count in behind:
        if servers >= limit and days[verdict_id] < days[chosen[-1]]:
            break
        chosen.append(verdict_id)
        servers += count
    return list(
        ServerResult.objects.filter(scan=scan, verdict_id__in=chosen)
        .exclude(state__in=COMPLIANT_STATES)
        .select_related("server", "verdict", "server__site")
        .order_by("-verdict__days_behind", "server__fqdn")[:limit]
    )


def results_newly_noncompliant(scan: ScanRun, *, limit: int) -> list[ServerResult]:
    if not scan.newly_noncompliant:  # counted by the scan: no need to look through its results
        return []
    return list(
        ServerResult.objects.filter(scan=scan, is_newly_noncompliant=True)
        .select_related("server", "verdict", "server__site")
        .order_by("server__fqdn")[:limit]
    )


def servers_with_verdicts(scan: ScanRun | None) -> QuerySet[Server]:
    """Every server with its result in the scan (none when not scanned) as annotations: LEFT JOINs, one query.

    The sort keys are never NULL (a missing value sorts as -1 or ""), so that keyset paging can compare them.
    """
    queryset = Server.objects.select_related("site", "cluster_membership__cluster").prefetch_related("tags")
    if scan is None:
        return queryset.annotate(
            state=Value(None, output_field=CharField()),
            days_behind=Value(None, output_field=IntegerField()),
            current=Value(None, output_field=JSONField()),
            install=Value(None, output_field=JSONField()),
            verdict_id=Value(None, output_field=IntegerField()),
            sort_days=Value(-1, output_field=IntegerField()),
            sort_state=Value(""),
            sort_site=Coalesce("site__name", Value("")),
        )
    return queryset.annotate(
        latest=FilteredRelation("results", condition=Q(results__scan_id=scan.pk)),
        state=F("latest__state"),
        days_behind=F("latest__verdict__days_behind"),
        current=F("latest__verdict__current"),
        install=F("latest__verdict__install"),
        verdict_id=F("latest__verdict_id"),
        # A plain integer: on a positive-integer field Django answers a lookup of -1 with no rows at all.
        sort_days=Coalesce("latest__verdict__days_behind", Value(-1), output_field=IntegerField()),
        sort_state=Coalesce("latest__state", Value("")),
        sort_site=Coalesce("site__name", Value("")),
    )


def verdicts_at_level(scan: ScanRun, *, product: str | None, level: str | None) -> list[int]:
    """The scan's verdicts whose resolved product (its name) and level are the given ones (one query). A list, not a
    subquery: PostgreSQL plans `verdict_id IN (subquery on JSON)` over 100,000 servers badly (seconds)."""
    verdicts = ScanVerdict.objects.filter(scan=scan)
    if product:
        verdicts = verdicts.filter(current__product=product)
    if level:
        verdicts = verdicts.filter(current__level__iexact=level)
    return list(verdicts.values_list("pk", flat=True))


@dataclass(frozen=True, slots=True)
class ServerDetail:
    """Everything the server page shows, read in a fixed number of queries."""

    server: Server
    result: ServerResult | None
    build: dict  # build_info of the reported build: product, level, update, exact, notes, error
    build_form: str | None
    missing_updates: list[dict]  # {"kb", "titles", "is_install"}
    missing_fixes: list[Fix]
    waivers: list[Waiver]
    cluster_members: list  # ClusterMember of the same cluster, this server included
    history: list[ServerResult]


def server_detail(fqdn: str, *, history: int = 30) -> ServerDetail | None:
    server = (
        Server.objects.select_related("site", "organisation", "cluster_membership__cluster")
        .prefetch_related("tags", "maintenance_windows")
        .filter(fqdn=fqdn_normalised(fqdn))
        .first()
    )
    if server is None:
        return None
    scan = scan_latest()
    result = (
        ServerResult.objects.filter(scan=scan, server=server).select_related("scan", "verdict", "waiver").first()
        if scan
        else None
    )
    catalog = catalog_get()
    info = build_info(server.reported_build, catalog, today=scan.as_of if result and scan.as_of else today())
    try:
        form = parse_reported_build(server.reported_build).form.value
    except InvalidBuildError:
        form = None
    missing_kbs = list(result.verdict.missing_updates) if result else []
    install_kb = (result.verdict.install or {}).get("kb") if result else None
    titles = update_titles(missing_kbs, product=info["product"])
    missing_updates = [{"kb": kb, "titles": titles.get(kb, []), "is_install": kb == install_kb} for kb in missing_kbs]
    # The waivers that can cover it: its own, its site's and the estate-wide ones, expired ones included.
    scope = Q(server=server) | Q(server__isnull=True, site__isnull=True)
    if server.site_id:
        scope |= Q(site_id=server.site_id)
    membership = getattr(server, "cluster_membership", None)
    members = (
        list(ClusterMember.objects.filter(cluster_id=membership.cluster_id).select_related("server"))
        if membership
        else []
    )
    return ServerDetail(
        server=server,
        result=result,
        build=info,
        build_form=form,
        missing_updates=missing_updates,
        missing_fixes=list(
            Fix.objects.filter(updates__kb__in=missing_kbs, updates__product__name=info["product"]).distinct()
        ),
        waivers=list(Waiver.objects.filter(scope).select_related("server", "site").order_by("-expires_at")),
        cluster_members=members,
        history=list(
            ServerResult.objects.filter(server=server)
            .select_related("scan", "verdict", "waiver")
            .order_by("-scan_id")[:history]
        ),
    )


@dataclass(frozen=True, slots=True)
class JobHealth:
    """One line of the dashboard's job panel: what ran last, when, and whether it went well."""

    name: str
    last_run: object  # datetime or date, or None when it never ran
    outcome: str
    is_ok: bool
    detail: str = ""


def job_health() -> list[JobHealth]:
    """What the jobs have recorded, read in two queries: today the scans and the catalog's source documents.

    The one place the dashboard asks; when the job runs of the scheduler are recorded, this reads them instead.
    """
    scans = list(ScanRun.objects.order_by("-pk")[:20])
    last = next((scan for scan in scans if scan.status == ScanStatus.SUCCEEDED), None)
    failed = next((scan for scan in scans if scan.status == ScanStatus.FAILED), None)
    waiting = [scan for scan in scans if scan.status in (ScanStatus.PENDING, ScanStatus.RUNNING)]
    jobs = []
    if last is None:
        jobs.append(JobHealth("Scan", None, "never succeeded", False, "run `python manage.py scan` or start one"))
    else:
        took = (last.finished_at - last.started_at).total_seconds() if last.finished_at and last.started_at else None
        detail = f"{last.server_count:,} servers" + (f" in {took:.1f} s" if took is not None else "")
        detail += f", verdicts as of {last.as_of}" if last.as_of else ""
        jobs.append(JobHealth("Scan", last.finished_at, f"scan {last.pk} succeeded", True, detail))
    if failed is not None and (last is None or failed.pk > last.pk):
        jobs.append(JobHealth("Scan", failed.finished_at, f"scan {failed.pk} failed", False, failed.error[:300]))
    for scan in waiting:
        started = scan.started_at or scan.created
        jobs.append(JobHealth("Scan", started, f"scan {scan.pk} {scan.status}", True, ""))
    sources = catalog_sources()
    age = catalog_age(sources, on=today())
    if not sources:
        jobs.append(JobHealth("Catalog", None, "empty", False, "run `python manage.py catalog_load`"))
    else:
        imported = max(source.imported_at for source in sources)
        detail = f"{len(sources)} sources; newest document {age} days old" if age is not None else ""
        jobs.append(JobHealth("Catalog", imported, "imported", True, detail))
    return jobs


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """Which servers of a scan lack an update (by KB), which are excepted, and where it cannot be known."""

    kb: str
    updates: list[Update]  # the catalog rows with this KB (an SU's KB can cover several CUs)
    lacking: QuerySet[ServerResult]
    excepted: QuerySet[ServerResult]
    unknown: QuerySet[ServerResult]


def update_status(scan: ScanRun, *, kb: str) -> UpdateStatus | None:
    """None when no catalog update has this KB. Unknown: servers at one of its levels whose rollup level
    AdminDisplayVersion does not show, and servers whose build is not known at all."""
    updates = list(Update.objects.filter(kb=kb).select_related("product", "level__product"))
    if not updates:
        return None
    results = ServerResult.objects.filter(scan=scan).select_related("server", "server__site", "verdict")
    missing = verdict_ids_missing(scan, kb=kb)
    at_level = Q(pk__in=[])
    for update in updates:
        at_level |= Q(current__product=update.product.name, current__level=update.level.name)
    cannot_tell = ScanVerdict.objects.filter(scan=scan).filter(
        Q(state="unknown_build") | (Q(state="rollup_unknown") & at_level)
    )
    by_fqdn = ("server__fqdn",)
    return UpdateStatus(
        kb=kb,
        updates=updates,
        lacking=results.filter(verdict_id__in=missing).exclude(state=EXCEPTED).order_by(*by_fqdn),
        excepted=results.filter(verdict_id__in=missing, state=EXCEPTED).order_by(*by_fqdn),
        unknown=results.filter(verdict_id__in=cannot_tell.values("pk")).order_by(*by_fqdn),
    )


def results_by_fqdn(scan: ScanRun | None, fqdns: list[str], *, chunk: int = 5000) -> dict[str, ServerResult]:
    """The scan's results of the named servers (a query per 5,000 names)."""
    found: dict[str, ServerResult] = {}
    if scan is None:
        return found
    for start in range(0, len(fqdns), chunk):
        rows = ServerResult.objects.filter(scan=scan, server__fqdn__in=fqdns[start : start + chunk])
        found |= {result.server.fqdn: result for result in rows.select_related("server", "server__site", "verdict")}
    return found


def waivers_expired_since(*, since, now=None) -> int:
    """How many waivers expired after `since` (the last run) and by `now`; with no `since`, in the last hour."""
    now = now or timezone.now()
    since = since or now - timedelta(hours=1)
    return Waiver.objects.filter(expires_at__gt=since, expires_at__lte=now).count()
