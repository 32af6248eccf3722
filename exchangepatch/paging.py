"""Keyset (seek) paging for django-tables2: a page is found from the sort values of the row before it, not by OFFSET.

OFFSET makes the database produce and throw away every earlier row, so page 1,000 of a 100,000-server list costs a
thousand times page 1. Here the link to the next page carries the last row's sort values, and the next query asks
for rows after them: every page costs the same. django-tables2's paginators are OFFSET-based, and DRF's
CursorPagination needs a DRF request and keeps an offset for repeated values; this is the small piece between.

The sort keys must not be NULL (annotate them with Coalesce); a unique key (the primary key) is appended so that
rows with equal values keep one order.
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import cached_property

from django.db.models import Q
from django_tables2.rows import BoundRows

FORWARD, BACKWARD = "n", "p"


class InvalidPageError(ValueError):
    """The page link was not made by this list (edited by hand, or from a list sorted another way)."""


class KeysetPage:
    """The page interface the table template uses; the "page numbers" are opaque tokens."""

    def __init__(self, rows: list, paginator: KeysetPaginator, *, has_next: bool, has_previous: bool):
        self.object_list = BoundRows(rows, paginator.table)
        self.paginator = paginator
        self._rows = rows
        self._has_next, self._has_previous = has_next, has_previous

    def __len__(self) -> int:
        return len(self._rows)

    def has_next(self) -> bool:
        return self._has_next

    def has_previous(self) -> bool:
        return self._has_previous

    def has_other_pages(self) -> bool:
        return self._has_next or self._has_previous

    def next_page_number(self) -> str:
        return self.paginator.token(FORWARD, self._rows[-1])

    def previous_page_number(self) -> str:
        return self.paginator.token(BACKWARD, self._rows[0])


class KeysetPaginator:
    """Pass as django-tables2's `paginator_class`; `page(token)` takes "" for the first page."""

    is_keyset = True

    def __init__(self, rows: BoundRows, per_page: int, *, unique: str = "pk"):
        self.table = rows.table
        queryset = rows.data.data
        ordering = [
            name for name in (queryset.query.order_by or queryset.model._meta.ordering) if isinstance(name, str)
        ]
        self.keys = [(name.lstrip("-"), name.startswith("-")) for name in ordering]
        if unique not in {name for name, _ in self.keys}:
            self.keys.append((unique, False))
        self.queryset = queryset.order_by(*self._ordering(reverse=False))
        self.per_page = per_page

    @cached_property
    def count(self) -> int:
        return self.queryset.order_by().count()

    @property
    def num_pages(self) -> int:
        return 1 + (self.count - 1) // self.per_page if self.count else 1

    def page(self, token: str = "") -> KeysetPage:
        if not token:
            rows = self._rows(self.queryset)
            return KeysetPage(rows[: self.per_page], self, has_next=len(rows) > self.per_page, has_previous=False)
        direction, values = self._decode(token)
        backward = direction == BACKWARD
        queryset = self.queryset.filter(self._after(values, backward=backward))
        if backward:
            queryset = queryset.order_by(*self._ordering(reverse=True))
        rows = self._rows(queryset)
        more, rows = len(rows) > self.per_page, rows[: self.per_page]
        if backward:
            return KeysetPage(rows[::-1], self, has_next=True, has_previous=more)
        return KeysetPage(rows, self, has_next=more, has_previous=True)

    def _rows(self, queryset) -> list:
        """The page's rows in two queries: the keys of per_page + 1 rows first (narrow rows, the only joins those the
        sort needs), then the full rows of those keys. Sorting 100,000 full-width rows to keep 101 cost seconds."""
        ids = list(queryset.values_list("pk", flat=True)[: self.per_page + 1])
        found = {row.pk: row for row in self.queryset.filter(pk__in=ids)}
        return [found[pk] for pk in ids]

    def token(self, direction: str, row) -> str:
        values = [_value(row, name) for name, _ in self.keys]
        text = json.dumps([direction, values], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def _decode(self, token: str) -> tuple[str, list]:
        try:
            direction, values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
            raise InvalidPageError(token) from None
        valid = (
            direction in (FORWARD, BACKWARD)
            and isinstance(values, list)
            and len(values) == len(self.keys)
            and all(isinstance(value, int | str) and not isinstance(value, bool) for value in values)
        )
        if not valid:
            raise InvalidPageError(token)
        return direction, values

    def _ordering(self, *, reverse: bool) -> list[str]:
        return [("-" if descending != reverse else "") + name for name, descending in self.keys]

    def _after(self, values: list, *, backward: bool) -> Q:
        """Rows after (or, going back, before) the given sort values: (k1 > v1) or (k1 = v1 and k2 > v2) or …"""
        condition, equal = Q(pk__in=[]), {}
        for (name, descending), value in zip(self.keys, values, strict=True):
            lookup = "lt" if descending != backward else "gt"
            condition |= Q(**equal, **{f"{name}__{lookup}": value})
            equal[name] = value
        return condition


def _value(row, name: str):
    for part in name.split("__"):
        row = getattr(row, part)
    return row
