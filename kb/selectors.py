"""Reads of the catalog: the engine's view of the database, built in a fixed number of queries."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db.models import Count, F, Prefetch, QuerySet
from django.utils import timezone

from kb.engine.builds import Build, parse_build
from kb.engine.catalog import AlternateBuild, Catalog, CatalogEntry, Kind, ProductSupport
from kb.engine.rules import Rules
from kb.models import CatalogSource, Fix, Rule, Update


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
        is_security=update.is_security,
        is_recalled=update.is_recalled,
        sources=tuple(update.source_names),
        alternate_builds=tuple(
            AlternateBuild(parse_build(item["build"]), item["source"]) for item in update.alternate_builds
        ),
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
    """The whole catalog as an in-memory engine object (two queries)."""
    return Catalog(catalog_entries(), support=product_support())


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
