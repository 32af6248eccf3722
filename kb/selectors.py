"""Reads of the catalog: the engine's view of the database, built in a fixed number of queries."""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db.models import Count, F, Prefetch, QuerySet
from django.utils import timezone

from kb.choices import SourceKind
from kb.engine.builds import Build, parse_build
from kb.engine.catalog import AlternateBuild, Catalog, CatalogEntry, Kind, ProductSupport, disagreement_from_dict
from kb.engine.rules import Rules
from kb.models import CatalogFeed, CatalogSource, Fix, Rule, Update, UpdateFix


def today() -> date:
    """The date verdicts are computed for; EXCHANGEPATCH_TODAY pins it for reproducible reports."""
    if settings.EXCHANGEPATCH_TODAY:
        return date.fromisoformat(settings.EXCHANGEPATCH_TODAY)
    return timezone.localdate()


def identity_key(identity: tuple) -> str:
    return "|".join("" if part is None else str(part) for part in identity)


def entry_from_update(update: Update, product_key: str, level_name: str) -> CatalogEntry:
    return CatalogEntry(
        product=product_key,
        level=level_name,
        kind=Kind(update.kind),
        build=Build(update.build_major, update.build_minor, update.build_number, update.build_revision),
        number=update.number,
        label=update.label or None,
        revision=update.revision,
        kb=update.kb or None,
        release_date=update.release_date,
        is_month_only_date=update.is_month_only_date,
        is_security=update.is_security,
        is_recalled=update.is_recalled,
        sources=tuple(update.source_names),
        alternate_builds=tuple(
            AlternateBuild(parse_build(item["build"]), item["source"]) for item in update.alternate_builds
        ),
        field_sources=tuple(sorted(update.field_sources.items())),
        disagreements=tuple(disagreement_from_dict(item) for item in update.disagreements),
    )


def catalog_entries() -> list[CatalogEntry]:
    rows = Update.objects.select_related("product", "level").order_by()
    return [entry_from_update(row, row.product.key, row.level.name) for row in rows]


def product_support() -> dict[str, ProductSupport]:
    support: dict[str, ProductSupport] = {}
    for rule in Rule.objects.filter(kind="support", is_enabled=True).order_by("key"):
        end = rule.data.get("end_of_extended_support")
        facts = ProductSupport(
            end_of_extended_support=date.fromisoformat(end) if end else None,
            supported_level_count=int(rule.data.get("supported_level_count", 2)),
        )
        for product in rule.products:
            support[product] = facts
    return support


def catalog_get() -> Catalog:
    """The whole catalog as an in-memory engine object (three queries)."""
    return Catalog(catalog_entries(), support=product_support(), as_of=catalog_as_of())


def catalog_as_of() -> date | None:
    """The date of the newest build-number source: its own date, or the day it was fetched from the vendor's
    site (a page read live is current that day). Bundled notes and fix lists do not make the catalog newer."""
    dates = [
        max(filter(None, (document_date, imported_at.date() if location.startswith(("http://", "https://")) else None)))
        for document_date, imported_at, location in CatalogSource.objects.filter(
            kind__in=(SourceKind.BUILD_PAGE_MARKDOWN, SourceKind.BUILD_PAGE_HTML, SourceKind.BUILD_CSV)
        ).values_list("document_date", "imported_at", "location")
        if document_date or location.startswith(("http://", "https://"))
    ]
    return max(dates) if dates else None


def rules_get() -> Rules:
    """Enabled rules as engine values (one query)."""
    rows = Rule.objects.filter(is_enabled=True).order_by("key")
    return Rules.from_dicts(
        {
            "key": rule.key,
            "kind": rule.kind,
            "products": rule.products,
            "data": rule.data,
            "source": {"title": rule.source_title, "url": rule.source_url, "is_practice": rule.is_practice},
        }
        for rule in rows
    )


def catalog_sources() -> list[CatalogSource]:
    """The documents the catalog was built from, newest document first (one query)."""
    return list(CatalogSource.objects.order_by(F("document_date").desc(nulls_last=True), "name"))


def catalog_age(sources: list[CatalogSource], *, on: date) -> int | None:
    """Days since the newest dated source document: how old the catalog's knowledge is."""
    dates = [source.document_date for source in sources if source.document_date]
    return (on - max(dates)).days if dates else None


def update_titles(kbs: list[str], *, product: str | None = None) -> dict[str, list[str]]:
    """KB → titles of the catalog rows with that KB ("Exchange Server 2019 CU14 Mar24SU"), of one product (by its
    name) if given: an SU's KB is shared by the CUs, and sometimes the versions, it was released for. One query."""
    titles: dict[str, list[str]] = {}
    updates = Update.objects.filter(kb__in=kbs).select_related("product", "level__product")
    for update in updates.filter(product__name=product) if product else updates:
        titles.setdefault(update.kb, []).append(str(update))
    return {kb: sorted(names) for kb, names in titles.items()}


def updates_listing() -> QuerySet[Update]:
    """Every catalog update with its level, product and number of listed fixes (one query when iterated)."""
    return Update.objects.select_related("product", "level__product", "source").annotate(fix_count=Count("fixes"))


def updates_for_kb(kb: str) -> list[Update]:
    """The catalog rows with one KB, each with its fix list and recorded conflicts (three queries)."""
    return list(
        Update.objects.filter(kb=kb)
        .select_related("product", "level__product", "source")
        .prefetch_related(Prefetch("fixes", queryset=Fix.objects.order_by("kb")), "conflicts")
    )


def fix_carriers() -> dict[str, list[CatalogEntry]]:
    """Every fix's KB → the catalog entries of the updates that carry it (one query)."""
    carriers: dict[str, list[CatalogEntry]] = {}
    links = UpdateFix.objects.select_related("fix", "update__product", "update__level").order_by("fix__kb", "pk")
    for link in links:
        update = link.update
        carriers.setdefault(link.fix.kb, []).append(entry_from_update(update, update.product.key, update.level.name))
    return carriers


def catalog_staleness(*, now=None) -> list[str]:
    """A warning per configured source that could not be fetched for more than EXCHANGEPATCH_CATALOG_STALE_DAYS."""
    now = now or timezone.now()
    warnings = []
    feeds = CatalogFeed.objects.filter(url__in=settings.EXCHANGEPATCH_CATALOG_SOURCES, failing_since__isnull=False)
    for feed in feeds.order_by("url"):
        quiet = now - feed.failing_since
        if quiet > timedelta(days=settings.EXCHANGEPATCH_CATALOG_STALE_DAYS):
            last = f"last success {feed.last_success_at:%Y-%m-%d}" if feed.last_success_at else "never fetched"
            warnings.append(
                f"catalog source {feed.url} could not be fetched for {quiet.days} days ({last}; "
                f"last error: {feed.last_error})"
            )
    return warnings


def catalog_status() -> dict:
    """How fresh the catalog is: newest import, each configured source's fetch history, staleness warnings (API,
    portal)."""
    imported = CatalogSource.objects.order_by("-imported_at").values_list("imported_at", flat=True).first()
    feeds = {feed.url: feed for feed in CatalogFeed.objects.filter(url__in=settings.EXCHANGEPATCH_CATALOG_SOURCES)}
    sources = []
    for url in settings.EXCHANGEPATCH_CATALOG_SOURCES:
        feed = feeds.get(url)
        sources.append(
            {
                "url": url,
                "last_attempt_at": feed.last_attempt_at if feed else None,
                "last_success_at": feed.last_success_at if feed else None,
                "failing_since": feed.failing_since if feed else None,
                "last_error": feed.last_error if feed else "",
            }
        )
    return {
        "imported_at": imported,
        "age_days": round((timezone.now() - imported).total_seconds() / 86400, 2) if imported else None,
        "stale_after_days": settings.EXCHANGEPATCH_CATALOG_STALE_DAYS,
        "sources": sources,
        "warnings": catalog_staleness(),
    }
