"""Server filters, including product and level, which are ranges of the four build columns."""

from datetime import UTC

import django_filters
from django.db.models import Q
from rest_framework.exceptions import ValidationError

from exchangepatch.filters import StrictFilterSet
from inventory.models import Server, Waiver
from inventory.records import fqdn_normalised
from kb.engine.builds import PRODUCTS
from kb.models import Level

PRODUCT_FILTERS = {
    "2007": Q(build_major=8),
    "2010": Q(build_major=14),
    "2013": Q(build_major=15, build_minor=0),
    "2016": Q(build_major=15, build_minor=1),
    "2019": Q(build_major=15, build_minor=2, build_number__lt=2562),
    "SE": Q(build_major=15, build_minor=2, build_number__gte=2562),
}


def _at_least(build) -> Q:
    return Q(build_major=build.major, build_minor=build.minor) & (
        Q(build_number__gt=build.build) | Q(build_number=build.build, build_revision__gte=build.revision)
    )


def _below(build) -> Q:
    return Q(build_major=build.major, build_minor=build.minor) & (
        Q(build_number__lt=build.build) | Q(build_number=build.build, build_revision__lt=build.revision)
    )


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO 8601 with any offset, compared in UTC; a value that cannot be expressed in UTC is a 400, not a 500."""

    def filter(self, queryset, value):
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except (OverflowError, ValueError):
                raise ValidationError({self.field_name: [f"{value.isoformat()} is out of range"]}) from None
        return super().filter(queryset, value)


class ServerFilter(StrictFilterSet):
    fqdn = django_filters.CharFilter(method="filter_fqdn", help_text="Any case; the trailing dot may be given")
    site = django_filters.CharFilter(field_name="site__name")
    role = django_filters.ChoiceFilter(
        method="filter_role",
        choices=[(r, r) for r in ("Mailbox", "ClientAccess", "HubTransport", "EdgeTransport", "UnifiedMessaging")],
    )
    tag = django_filters.CharFilter(field_name="tags__name")
    state = django_filters.CharFilter(field_name="state")
    product = django_filters.ChoiceFilter(method="filter_product", choices=[(k, k) for k in PRODUCTS])
    level = django_filters.CharFilter(method="filter_level", help_text="RTM, SP3, CU14 …; combine with product")
    last_updated__gte = UtcDateTimeFilter(field_name="last_updated", lookup_expr="gte")

    class Meta:
        model = Server
        fields = ("fqdn", "site", "role", "tag", "state", "product", "level", "last_updated__gte", "environment")

    def filter_fqdn(self, queryset, name, value):
        # As stored (lower case, no root dot): an equality the FQDN's unique index answers, where iexact compared
        # UPPER(fqdn) with every row.
        return queryset.filter(fqdn=fqdn_normalised(value.strip()))

    def filter_role(self, queryset, name, value):
        return queryset.filter(roles__contains=value)

    def filter_product(self, queryset, name, value):
        return queryset.filter(PRODUCT_FILTERS[value])

    def filter_level(self, queryset, name, value):
        product = self.form.cleaned_data.get("product")
        levels = Level.objects.filter(name__iexact=value).select_related("product")
        if product:
            levels = levels.filter(product__key=product)
        condition = Q(pk__in=[])
        for level in levels:
            key = level.product.key
            if not PRODUCTS[key].is_cumulative:
                condition |= PRODUCT_FILTERS[key] & Q(build_minor=level.build_minor)
                continue
            following = (
                Level.objects.filter(product=level.product)
                .exclude(pk=level.pk)
                .filter(_level_after(level))
                .order_by("build_major", "build_minor", "build_number", "build_revision")
                .first()
            )
            upper = _below(following.build_value) if following else Q()
            condition |= PRODUCT_FILTERS[key] & _at_least(level.build_value) & upper
        return queryset.filter(condition)


def _level_after(level) -> Q:
    return Q(build_number__gt=level.build_number) | Q(
        build_number=level.build_number, build_revision__gt=level.build_revision
    )


class WaiverFilter(StrictFilterSet):
    expires_at__gte = UtcDateTimeFilter(field_name="expires_at", lookup_expr="gte")
    expires_at__lte = UtcDateTimeFilter(field_name="expires_at", lookup_expr="lte")

    class Meta:
        model = Waiver
        fields = ("target_kind", "target_kb", "expires_at__gte", "expires_at__lte")
