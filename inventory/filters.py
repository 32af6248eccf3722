"""The portal's server list filters: state, product, level, site, role, cluster, tag; search by FQDN, build or KB."""

from __future__ import annotations

import re

import django_filters
from django import forms
from django.conf import settings
from django.db.models import Q

from exchangepatch.forms import PortalFilterSet
from inventory.choices import Role, State
from inventory.selectors import verdict_ids_missing, verdicts_at_level
from kb.engine.builds import PRODUCTS, InvalidBuildError, parse_reported_build
from kb.engine.catalog import InvalidKBError, normalize_kb
from kb.engine.compliance import COMPLIANT_STATES

NOT_SCANNED = "not_scanned"
# What a search box entry is taken for: a KB ("KB5036386", "kb 5036386", bare 6-8 digits), a build (starts with a
# number and a dot, or "Version"), otherwise part of a name.
_LOOKS_LIKE_KB = re.compile(r"\s*(kb.*|\d{6,8})\s*", re.IGNORECASE)
_LOOKS_LIKE_BUILD = re.compile(r"\s*(version\b.*|\d+\..*)", re.IGNORECASE)


class Search:
    """A search box entry, classified: kind is "kb", "build" or "text"."""

    def __init__(self, kind: str, value) -> None:
        self.kind, self.value = kind, value

    @classmethod
    def parse(cls, text: str) -> Search:
        """Raises forms.ValidationError naming the input when it looks like a KB or a build but is not one."""
        if _LOOKS_LIKE_KB.fullmatch(text):
            try:
                return cls("kb", normalize_kb(text))
            except InvalidKBError as error:
                raise forms.ValidationError(str(error)) from None
        if _LOOKS_LIKE_BUILD.fullmatch(text):
            try:
                return cls("build", parse_reported_build(text.strip()).build)
            except InvalidBuildError as error:
                raise forms.ValidationError(str(error)) from None
        return cls("text", text.strip())


class ServerSearchForm(forms.Form):
    def clean_q(self):
        text = self.cleaned_data.get("q")
        return Search.parse(text) if text else None

    def clean_needs(self):
        return _kb_or_none(self.cleaned_data.get("needs"))

    def clean_installs(self):
        return _kb_or_none(self.cleaned_data.get("installs"))


def _kb_or_none(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return normalize_kb(text)
    except InvalidKBError as error:
        raise forms.ValidationError(str(error)) from None


class ServerListFilter(PortalFilterSet, django_filters.FilterSet):
    """Over `servers_with_verdicts(scan)`; filters that read verdicts need the scan, given as `scan=`."""

    q = django_filters.CharFilter(label="Search", method="filter_search",
                                  help_text="FQDN or name, a build in any form, or a KB (servers that need it)")  # fmt: skip
    state = django_filters.ChoiceFilter(
        label="State", choices=[*State.choices, (NOT_SCANNED, "Not scanned yet")], method="filter_state"
    )
    product = django_filters.ChoiceFilter(
        label="Product", choices=[(key, info.name) for key, info in PRODUCTS.items()], method="filter_level"
    )
    level = django_filters.CharFilter(label="Level", method="filter_level", help_text="RTM, SP3, CU14 …")
    site = django_filters.CharFilter(label="Site", field_name="site__name", lookup_expr="iexact")
    role = django_filters.ChoiceFilter(label="Role", choices=Role.choices, field_name="roles", lookup_expr="contains")
    cluster = django_filters.CharFilter(
        label="Cluster / DAG", field_name="cluster_membership__cluster__name", lookup_expr="iexact"
    )
    tag = django_filters.CharFilter(label="Tag", field_name="tags__name", lookup_expr="iexact")
    needs = django_filters.CharFilter(label="Needs KB", method="filter_needs")
    installs = django_filters.CharFilter(label="Installs next", method="filter_installs")
    # Checkboxes: unticked means "do not filter", never "only the false ones".
    newly = django_filters.BooleanFilter(label="Newly non-compliant", method="filter_newly", widget=forms.CheckboxInput)
    overdue = django_filters.BooleanFilter(label="Overdue", method="filter_overdue", widget=forms.CheckboxInput)

    class Meta:
        form = ServerSearchForm
        fields = ()

    def __init__(self, *args, scan=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.scan = scan

    def filter_search(self, queryset, name, search: Search | None):
        if search is None:
            return queryset
        if search.kind == "kb":
            return self.filter_needs(queryset, name, search.value)
        if search.kind == "build":
            build = search.value
            return queryset.filter(build_major=build.major, build_minor=build.minor, build_number=build.build,
                                   build_revision=build.revision)  # fmt: skip
        return queryset.filter(Q(fqdn__icontains=search.value) | Q(name__icontains=search.value))

    def filter_state(self, queryset, name, value):
        if value == NOT_SCANNED:
            return queryset.filter(state__isnull=True)
        return queryset.filter(state=value)

    def filter_level(self, queryset, name, value):
        # product and level are read together (the chart links carry both); apply them once.
        if name == "level" and self.form.cleaned_data.get("product"):
            return queryset
        product = self.form.cleaned_data.get("product")
        level = self.form.cleaned_data.get("level")
        if self.scan is None:
            return queryset.none()
        name = PRODUCTS[product].name if product else None
        return queryset.filter(verdict_id__in=verdicts_at_level(self.scan, product=name, level=level or None))

    def filter_needs(self, queryset, name, kb: str | None):
        if not kb:
            return queryset
        if self.scan is None:
            return queryset.none()
        return queryset.filter(verdict_id__in=verdict_ids_missing(self.scan, kb=kb))

    def filter_installs(self, queryset, name, kb: str | None):
        if not kb:
            return queryset
        if self.scan is None:
            return queryset.none()
        return queryset.filter(verdict_id__in=verdict_ids_missing(self.scan, kb=kb, install_only=True))

    def filter_newly(self, queryset, name, value):
        return queryset.filter(latest__is_newly_noncompliant=True) if value else queryset

    def filter_overdue(self, queryset, name, value):
        if not value:
            return queryset
        # The same rule as the summary's overdue count.
        return queryset.filter(days_behind__gt=settings.EXCHANGEPATCH_OVERDUE_DAYS).exclude(state__in=COMPLIANT_STATES)
