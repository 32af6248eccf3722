"""Portal pages of the catalog: updates with the servers needing them, fix lists, source conflicts, sources."""

from __future__ import annotations

import django_filters
from django.db.models import F
from django.http import Http404
from django.shortcuts import render
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin, SingleTableView
from django_tables2.export import ExportMixin

from exchangepatch.access import PortalAccessMixin, portal_view
from exchangepatch.forms import InvalidFilterAnswers400, PortalFilterSet
from inventory.selectors import scan_latest, updates_needed_counts
from kb.choices import UpdateKind
from kb.engine.catalog import InvalidKBError, normalize_kb
from kb.models import CatalogConflict, CatalogSource, Fix, Product
from kb.selectors import catalog_age, catalog_sources, today, updates_for_kb, updates_listing
from kb.tables import ConflictTable, FixTable, SourceTable, UpdateTable


class UpdateFilter(PortalFilterSet, django_filters.FilterSet):
    product = django_filters.ModelChoiceFilter(
        queryset=Product.objects.order_by("sort_order"), field_name="product", to_field_name="key", label="Product"
    )
    level = django_filters.CharFilter(field_name="level__name", lookup_expr="iexact", label="Level")
    kind = django_filters.ChoiceFilter(choices=UpdateKind.choices, label="Kind")
    is_security = django_filters.BooleanFilter(label="Security update")

    class Meta:
        fields = ()


class CatalogPage(PortalAccessMixin, ExportMixin, SingleTableMixin):
    """A catalog list: a django-tables2 table, 100 rows a page, `?_export=csv` for all of it."""

    table_pagination = {"per_page": 100}


class UpdateListView(InvalidFilterAnswers400, CatalogPage, FilterView):
    table_class = UpdateTable
    filterset_class = UpdateFilter
    template_name = "kb/updates.html"
    export_name = "updates"

    def get_queryset(self):
        return updates_listing()

    def get_table_kwargs(self):
        scan = scan_latest()
        needed = updates_needed_counts(scan) if scan else []
        return {"needed_by": {row["kb"]: row["server_count"] for row in needed}}


class FixListView(CatalogPage, SingleTableView):
    table_class = FixTable
    template_name = "kb/fixes.html"
    export_name = "fixes"

    def get_queryset(self):
        return Fix.objects.prefetch_related("updates__level__product").order_by("kb")


class ConflictListView(CatalogPage, SingleTableView):
    table_class = ConflictTable
    template_name = "kb/conflicts.html"
    export_name = "catalog-conflicts"
    queryset = CatalogConflict.objects.order_by("identity_key", "field")


class SourceListView(CatalogPage, SingleTableView):
    table_class = SourceTable
    template_name = "kb/sources.html"
    export_name = "catalog-sources"

    def get_queryset(self):
        return CatalogSource.objects.order_by(F("document_date").desc(nulls_last=True), "name")

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {"age": catalog_age(catalog_sources(), on=today())}


@portal_view
def update_page(request, kb: str):
    """Every catalog row with this KB, its fix list and conflicts, and how many servers need it."""
    try:
        kb = normalize_kb(kb)
    except InvalidKBError as error:
        raise Http404(str(error)) from None
    updates = updates_for_kb(kb)
    if not updates:
        raise Http404(f"update {kb} is not in the catalog")
    scan = scan_latest()
    needed = next((row for row in updates_needed_counts(scan) if row["kb"] == kb), None) if scan else None
    return render(
        request,
        "kb/update_detail.html",
        {"kb": kb, "updates": updates, "needed_by": needed["server_count"] if needed else 0, "scan": scan},
    )
