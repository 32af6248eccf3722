"""Reads of the catalog: the engine's view of the database, built in a fixed number of queries."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.utils import timezone

from kb.choices import SourceKind
from kb.engine.builds import Build, parse_build
from kb.engine.catalog import AlternateBuild, Catalog, CatalogEntry, Kind, ProductSupport, disagreement_from_dict
from kb.engine.rules import Rules
from kb.models import CatalogSource, Rule, Update


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
