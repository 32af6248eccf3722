"""Who needs an update, who lacks a fix: answered in SQL from the scan's VerdictGap rows (docs/design.md, "Data
layout for reads"), in a fixed number of queries whatever the estate, never by walking the servers in Python.

A scan writes, per verdict (one per distinct set of facts), one VerdictGap row per update it misses and per fix it
lacks or cannot be told to have, and per-verdict server counts (ScanTally). So:
- the counts are sums over a few thousand tally rows of the verdicts the gaps name;
- the servers are a queryset of the scan's results whose verdict the gaps name, ordered by FQDN, that the caller
  pages with a keyset cursor (the API) or by page number (the portal): only one page ever leaves the database.

The answers equal the Python walks they replace (`inventory.selectors.updates_needed` and `fix_status`, kept as the
reference), with one difference: they read the latest scan's results, so a server added since is not in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, CharField, Count, F, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from inventory.choices import WaiverTarget
from inventory.models import ScanRun, ScanTally, ScanVerdict, Server, ServerResult, VerdictGap, Waiver
from kb.models import Fix, Update
from kb.selectors import entry_from_update

LACKING, UNKNOWN, EXCEPTED = "lacking", "unknown", "excepted"


def _gaps(scan: ScanRun, *, kind: str, kb: str) -> QuerySet[VerdictGap]:
    """The scan's gap rows for one KB: read through the (scan, kind, kb) index."""
    return VerdictGap.objects.filter(scan=scan, kind=kind, kb=kb)


# -- updates ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class UpdateNeed:
    kb: str
    scan: ScanRun | None
    server_count: int
    install_targets: int
    servers: QuerySet[Server]  # every server of the scan that misses it, by FQDN (page it)


def update_need(scan: ScanRun | None, *, kb: str) -> UpdateNeed:
    """Servers of the scan that miss an update (their verdict lists it), and for how many it is the one to install.

    Two queries plus the page: the counts (a sum over the tallies of the verdicts that miss it) and the servers."""
    if scan is None:
        return UpdateNeed(kb, None, 0, 0, Server.objects.none())
    gaps = _gaps(scan, kind=WaiverTarget.UPDATE, kb=kb)
    counts = ScanTally.objects.filter(scan=scan, verdict_id__in=gaps.values("verdict_id")).aggregate(
        servers=Sum("server_count"),
        installs=Sum("server_count", filter=Q(verdict_id__in=gaps.filter(is_install_target=True).values("verdict_id"))),
    )
    # A join, not `pk IN (…)`: one result per server and scan, so no row comes twice, and PostgreSQL may walk the
    # servers by FQDN and stop after a page.
    servers = Server.objects.filter(results__scan=scan, results__verdict_id__in=gaps.values("verdict_id"))
    return UpdateNeed(kb, scan, counts["servers"] or 0, counts["installs"] or 0, servers.order_by("fqdn"))


# -- fixes -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class FixNeed:
    kb: str
    title: str
    carriers: list[str]
    scan: ScanRun | None
    lacking_count: int = 0
    unknown_count: int = 0
    excepted_count: int = 0
    present: int = 0
    not_applicable: int = 0  # servers of other products
    # The scan's results that lack it or cannot be told, each annotated with `status` (lacking, unknown or
    # excepted: a waiver for this fix covers it) and `fqdn`, with server and verdict, ordered by FQDN.
    results: QuerySet[ServerResult] = field(default_factory=ServerResult.objects.none)

    def of(self, status: str) -> QuerySet[ServerResult]:
        return self.results.filter(status=status)


def fix_need(kb: str, *, scan: ScanRun | None, now=None) -> FixNeed | None:
    """Which servers of the scan lack a fix, cannot be told to have it (a rollup level AdminDisplayVersion does not
    show, an unknown build), are excepted by a waiver for it, have it, or run another product. None for a KB that is
    not a fix in the catalog.

    Six queries plus the page, whatever the estate: the fix, its carriers, the gaps for it, the tallies, the scan's
    verdicts, the active waivers for this fix; and the excepted counts when there are such waivers."""
    fix = Fix.objects.filter(kb=kb).first()
    if fix is None:
        return None
    carriers = list(Update.objects.filter(fixes=fix).select_related("product", "level"))
    need = FixNeed(kb, fix.title, [_carrier_title(update) for update in carriers], scan)
    if scan is None:
        return need
    products = {update.product.name for update in carriers}
    # Per verdict (a few thousand rows for 100,000 servers): its product (from the verdict), its servers (from the
    # tallies) and its gap for this fix, if any.
    gaps = dict(_gaps(scan, kind=WaiverTarget.FIX, kb=kb).values_list("verdict_id", "is_known"))
    servers_of = dict(
        ScanTally.objects.filter(scan=scan).values_list("verdict_id").annotate(n=Sum("server_count")).order_by()
    )
    lacking, unknown = [], []
    for pk, current in ScanVerdict.objects.filter(scan=scan).values_list("pk", "current"):
        servers = servers_of.get(pk, 0)
        is_known = gaps.get(pk)
        if is_known:
            lacking.append(pk)
            need.lacking_count += servers
        elif is_known is False or (current or {}).get("product") is None:
            unknown.append(pk)  # no product resolved (an unknown build): no gap row, and it cannot be told
            need.unknown_count += servers
        elif current["product"] in products:
            need.present += servers
        else:
            need.not_applicable += servers
    covered = _waived(kb, now=now)
    results = ServerResult.objects.filter(scan=scan, verdict_id__in=lacking + unknown or [0])
    status = Case(
        *([When(covered, then=Value(EXCEPTED))] if covered is not None else []),
        When(verdict_id__in=unknown or [0], then=Value(UNKNOWN)),
        default=Value(LACKING),
        output_field=CharField(),
    )
    if covered is not None and (lacking or unknown):
        excepted = results.filter(covered).aggregate(
            lacking=Count("pk", filter=Q(verdict_id__in=lacking or [0])),
            unknown=Count("pk", filter=Q(verdict_id__in=unknown or [0])),
        )
        need.lacking_count -= excepted["lacking"]
        need.unknown_count -= excepted["unknown"]
        need.excepted_count = excepted["lacking"] + excepted["unknown"]
    need.results = (
        results.annotate(status=status, fqdn=F("server__fqdn"))
        .select_related("server", "server__site", "verdict")
        .order_by("fqdn")
    )
    return need


def _waived(kb: str, *, now=None) -> Q | None:
    """The results a waiver for this fix covers (its server, its site, or every server); None when no waiver is
    active. One query, over the waivers of this KB only."""
    waivers = Waiver.objects.filter(target_kind=WaiverTarget.FIX, target_kb=kb, expires_at__gt=now or timezone.now())
    servers, sites, everyone = set(), set(), False
    for server_id, site_id in waivers.values_list("server_id", "site_id"):
        if server_id is None and site_id is None:
            everyone = True
        elif server_id is not None:
            servers.add(server_id)
        else:
            sites.add(site_id)
    if everyone:
        return Q(pk__isnull=False)
    if not servers and not sites:
        return None
    return Q(server_id__in=sorted(servers) or [0]) | Q(server__site_id__in=sorted(sites) or [0])


def _carrier_title(update: Update) -> str:
    """The title fix_status gives a carrier (entry_from_update(...).title)."""
    return entry_from_update(update, update.product.key, update.level.name).title
