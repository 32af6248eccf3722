"""django-tables2 tables of the catalog pages; each one also exports to CSV with the same columns."""

from __future__ import annotations

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html


def update_url(kb: str) -> str | None:
    return reverse("kb:update", args=[kb]) if kb else None


class UpdateTable(tables.Table):
    """Catalog updates; `needed_by` (KB → servers of the latest scan missing it) is given by the view."""

    product = tables.Column(accessor="product__name", verbose_name="Product", order_by=("product__sort_order",))
    level = tables.Column(
        accessor="level__name", verbose_name="Level", order_by=("product__sort_order", "level__build_number")
    )
    name = tables.Column(verbose_name="Update", default="(the level itself)")
    kind = tables.Column()
    build = tables.Column(order_by=("build_major", "build_minor", "build_number", "build_revision"))
    kb = tables.Column(verbose_name="KB", linkify=lambda record: update_url(record.kb), default="—")
    release_date = tables.Column(verbose_name="Released", default="—")
    is_security = tables.BooleanColumn(verbose_name="Security")
    is_recalled = tables.BooleanColumn(verbose_name="Recalled")
    fix_count = tables.Column(verbose_name="Listed fixes")
    needed_by = tables.Column(accessor="kb", verbose_name="Needed by", orderable=False, empty_values=())

    class Meta:
        order_by = ("-release_date",)
        attrs = {"class": "table table-sm table-hover align-middle", "id": "updates"}

    def __init__(self, *args, needed_by: dict[str, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.needed_by = needed_by

    def render_needed_by(self, record):
        count = self.needed_by.get(record.kb, 0)
        if not count:
            return "0 servers"
        url = reverse("inventory:servers") + f"?needs={record.kb}"
        return format_html('<a href="{}">{} server{}</a>', url, f"{count:,}", "" if count == 1 else "s")

    def value_needed_by(self, record):
        return self.needed_by.get(record.kb, 0)


class FixTable(tables.Table):
    kb = tables.Column(verbose_name="KB", linkify=lambda record: reverse("inventory:who-lacks") + f"?kb={record.kb}")
    title = tables.Column()
    carried_by = tables.Column(accessor="pk", verbose_name="Carried by", orderable=False)

    class Meta:
        attrs = {"class": "table table-sm table-hover align-middle", "id": "fixes"}

    def render_carried_by(self, record):
        return ", ".join(str(update) for update in record.updates.all())

    def value_carried_by(self, record):
        return self.render_carried_by(record)


class ConflictTable(tables.Table):
    title = tables.Column(verbose_name="Update")
    field = tables.Column()
    kept_value = tables.Column(verbose_name="Kept", default="—")
    kept_source = tables.Column(verbose_name="Kept from", default="—")
    other_value = tables.Column(verbose_name="Other value")
    other_source = tables.Column(verbose_name="Stated by")
    note = tables.Column(default="")

    class Meta:
        attrs = {"class": "table table-sm table-hover align-middle", "id": "conflicts"}


class SourceTable(tables.Table):
    name = tables.Column()
    kind = tables.Column(accessor="get_kind_display", order_by=("kind",))
    document_date = tables.Column(verbose_name="Document date", default="—")
    imported_at = tables.DateTimeColumn(verbose_name="Imported", format="Y-m-d H:i")
    location = tables.Column(default="—")
    sha256 = tables.Column(verbose_name="SHA-256", default="—")

    class Meta:
        attrs = {"class": "table table-sm table-hover align-middle", "id": "sources"}

    def render_sha256(self, value):
        return format_html('<code title="{}">{}…</code>', value, value[:12])

    def value_sha256(self, value):
        return value
