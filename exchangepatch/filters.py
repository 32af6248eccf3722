"""Filtering for every list endpoint (imported by DRF settings): django-filter, refusing values it would ignore."""

from __future__ import annotations

import django_filters
from django_filters.rest_framework import DjangoFilterBackend, FilterSet


class StrictFilterSet(FilterSet):
    """A filter given a value it cannot use answers 400 naming it, where django-filter would silently not filter:
    a boolean other than true or false (`is_internet_facing=null`), an empty value for a filter that is not free
    text (`kind=`, `expires_at__lte=`)."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, given in self.filters.items():
            if name not in self.data:
                continue
            value = self.data.get(name)
            if isinstance(given, django_filters.BooleanFilter) and value not in ("true", "false"):
                self.form.add_error(name, "expected true or false")
            elif value == "" and not isinstance(given, django_filters.CharFilter):
                self.form.add_error(name, "give a value, or leave the parameter out")
        return valid and not self.form.errors


class StrictFilterBackend(DjangoFilterBackend):
    filterset_base = StrictFilterSet
