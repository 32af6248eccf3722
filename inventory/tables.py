"""django-tables2 tables of the portal's inventory pages; each one also exports to CSV with the same columns."""

from __future__ import annotations

import django_tables2 as tables
from django.urls import reverse

from exchangepatch.templatetags.portal import level_text, state_badge, state_label
from inventory.choices import Role

ROLE_LABELS = dict(Role.choices)


def server_url(fqdn: str) -> str:
    return reverse("inventory:server", args=[fqdn])


def roles_text(roles: str | list | tuple) -> str:
    items = roles.split(",") if isinstance(roles, str) else roles
    return ", ".join(ROLE_LABELS.get(role, role) for role in items if role)


class StateColumn(tables.Column):
    """A verdict state: a coloured label on the page, the label as text in the export. The raw value is read from
    the record: for a model field with choices django-tables2 would hand over the label."""

    def render(self, record, bound_column):
        return state_badge(self._state(record, bound_column))

    def value(self, record, bound_column):
        return state_label(self._state(record, bound_column))

    def _state(self, record, bound_column):
        return bound_column.accessor.resolve(record, quiet=True)


class ServerTable(tables.Table):
    """The servers list; sort keys are the NULL-free annotations of `servers_with_verdicts` (keyset paging)."""

    fqdn = tables.Column(verbose_name="FQDN", linkify=lambda record: server_url(record.fqdn))
    site = tables.Column(accessor="site__name", verbose_name="Site", order_by=("sort_site", "fqdn"), default="—")
    roles = tables.Column(orderable=False)
    reported_build = tables.Column(verbose_name="Build", orderable=False)
    runs = tables.Column(accessor="current", verbose_name="Runs", orderable=False, empty_values=(None, {}))
    state = StateColumn(order_by=("sort_state", "fqdn"), empty_values=())
    days_behind = tables.Column(verbose_name="Days behind", order_by=("sort_days", "fqdn"), default="—")
    install = tables.Column(verbose_name="Install next", orderable=False, empty_values=(None, {}))
    cluster = tables.Column(accessor="cluster_membership__cluster__name", verbose_name="Cluster", orderable=False)
    tags = tables.Column(accessor="pk", verbose_name="Tags", orderable=False)

    class Meta:
        order_by = ("-days_behind",)
        attrs = {"class": "table table-sm table-hover align-middle", "id": "servers"}
        row_attrs = {"data-fqdn": lambda record: record.fqdn}

    def render_roles(self, value):
        return roles_text(value)

    def render_runs(self, value):
        return level_text(value)

    def render_install(self, value):
        return " ".join(filter(None, [value.get("name"), f"({value['kb']})" if value.get("kb") else None]))

    def render_tags(self, record):
        return ", ".join(tag.name for tag in record.tags.all())

    def value_tags(self, record):
        return self.render_tags(record)


class ResultTable(tables.Table):
    """Servers of one scan as results (dashboard panels, who lacks an update)."""

    fqdn = tables.Column(
        accessor="server__fqdn", verbose_name="FQDN", linkify=lambda record: server_url(record.server.fqdn)
    )
    site = tables.Column(accessor="server__site__name", verbose_name="Site", default="—")
    runs = tables.Column(accessor="verdict__current", verbose_name="Runs", empty_values=(None, {}))
    state = StateColumn()
    days_behind = tables.Column(accessor="verdict__days_behind", verbose_name="Days behind", default="—")
    why = tables.Column(accessor="verdict__reasons", verbose_name="Why", empty_values=(None, []))

    class Meta:
        orderable = False
        attrs = {"class": "table table-sm table-hover align-middle"}

    def render_runs(self, value):
        return level_text(value)

    def render_why(self, value):
        return "; ".join(value)


class FixLackingTable(ResultTable):
    """Servers of a fix query (results of inventory.needs.fix_need); `why` says why they are listed, or, when not
    given, the verdict's reasons. The pages count the rows themselves (a COUNT): the scan's tallies outlive servers
    deleted since, and a paginator told another number would cut rows or show empty pages."""

    def __init__(self, *args, why: str | None = None, **kwargs):
        self.why = why
        super().__init__(*args, **kwargs)

    def render_why(self, value):
        return self.why or "; ".join(value or ())

    def value_why(self, value):
        return self.render_why(value)
