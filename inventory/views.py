"""Portal pages of the inventory: servers list and page, who lacks a KB, rollout, coexistence. Read-only, thin:
every fact comes from a selector or the planner."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django_filters.views import FilterView
from django_tables2 import RequestConfig, SingleTableMixin
from django_tables2.export import ExportMixin, TableExport

from exchangepatch.access import PortalAccessMixin, portal_view
from exchangepatch.forms import InvalidFilterAnswers400
from exchangepatch.paging import InvalidPageError, KeysetPaginator
from inventory.filters import ServerListFilter
from inventory.formats import blockers_with_plans, render_plan, render_rollout
from inventory.models import Organisation, Site
from inventory.needs import EXCEPTED, LACKING, UNKNOWN, fix_need
from inventory.planning import check_coexistence, plan_rollout, plan_server
from inventory.selectors import (
    scan_latest,
    server_detail,
    servers_with_verdicts,
    update_status,
)
from inventory.tables import FixLackingTable, ResultTable, ServerTable
from kb.engine.builds import PRODUCTS
from kb.engine.catalog import InvalidKBError, normalize_kb
from kb.engine.planning import PlanError

EXPORTS = {"markdown": ("text/markdown; charset=utf-8", "md"), "csv": ("text/csv; charset=utf-8", "csv")}


def text_download(body: str, export: str, name: str) -> HttpResponse:
    content_type, extension = EXPORTS[export]
    response = HttpResponse(body + "\n", content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    return response


class ServerListView(PortalAccessMixin, InvalidFilterAnswers400, ExportMixin, SingleTableMixin, FilterView):
    """Filters and search over every server with its latest verdict; keyset pages; `?_export=csv` exports all."""

    table_class = ServerTable
    filterset_class = ServerListFilter
    template_name = "inventory/server_list.html"
    export_name = "servers"

    def get(self, request, *args, **kwargs):
        self.scan = scan_latest()
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return servers_with_verdicts(self.scan)

    def get_filterset_kwargs(self, filterset_class):
        return super().get_filterset_kwargs(filterset_class) | {"scan": self.scan}

    def get_table(self, **kwargs):
        table = self.table_class(data=self.get_table_data(), **kwargs)
        RequestConfig(self.request, paginate=False).configure(table)
        if self.request.GET.get(self.export_trigger_param):
            return table
        try:
            table.paginate(KeysetPaginator, settings.EXCHANGEPATCH_PAGE_SIZE, self.request.GET.get("page", ""))
        except InvalidPageError:
            messages.warning(self.request, "That page link is not one this list made (edited, or sorted another "
                             "way since); here is the first page.")  # fmt: skip
            table.paginate(KeysetPaginator, settings.EXCHANGEPATCH_PAGE_SIZE, "")
        return table

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        search = self.filterset.form.cleaned_data.get("q") if self.filterset.is_valid() else None
        context |= {"scan": self.scan, "search": search, "products": PRODUCTS}
        return context


@portal_view
def server_page(request, fqdn: str):
    detail = server_detail(fqdn)
    if detail is None:
        raise Http404(f"server {fqdn} is not in the inventory")
    target = request.GET.get("target", "").strip() or None
    plan, plan_error = None, None
    try:
        plan = plan_server(detail.server.fqdn, target=target)
    except PlanError as error:
        plan_error = str(error)
    export = request.GET.get("export")
    if plan is not None and export in EXPORTS:
        return text_download(render_plan(plan, export), export, f"plan-{detail.server.fqdn}")
    context = {"detail": detail, "server": detail.server, "result": detail.result, "plan": plan,
               "plan_error": plan_error, "target": target or "", "now": timezone.now()}  # fmt: skip
    # A target that cannot be planned is bad input (400); a server that cannot be planned at all is not.
    return render(request, "inventory/server_detail.html", context, status=400 if plan_error and target else 200)


@portal_view
def who_lacks(request):
    """A KB of a fix or of an update: the servers lacking it, those excepted, and those where it cannot be told."""
    text = request.GET.get("kb", "").strip()
    context = {"text": text, "status": 200}
    if text:
        try:
            kb = normalize_kb(text)
        except InvalidKBError as error:
            context |= {"error": f"kb: {error}", "status": 400}
        else:
            context |= _lacking(request, kb)
    export = request.GET.get("_export")
    if TableExport.is_valid_format(export):
        tables = dict(context.get("fix_tables", []) + context.get("update_tables", []))
        table = next((t for t in tables.values() if t.prefix == request.GET.get("_table")), None)
        if table is not None:
            return TableExport(export, table).response(f"{context['kb']}-{table.prefix.strip('-')}.{export}")
    return render(request, "inventory/who_lacks.html", context, status=context["status"])


def _lacking(request, kb: str) -> dict:
    scan = scan_latest()
    fix = fix_need(kb, scan=scan)
    update = update_status(scan, kb=kb) if scan else None
    context = {"kb": kb, "scan": scan, "fix": fix, "update": update}
    if fix is None and update is None:
        context |= {"error": f"{kb} is neither a fix nor an update in the catalog", "status": 404}
        return context
    config = RequestConfig(request, paginate={"per_page": settings.EXCHANGEPATCH_PAGE_SIZE})
    if fix is not None:
        carried = f"not carried by what it runs; carried by: {', '.join(fix.carriers)}"
        context["fix_tables"] = [
            (title, config.configure(FixLackingTable(fix.of(key), why=why, prefix=f"fix-{key}-")))
            for key, title, why in (
                (LACKING, "Lacking the fix", carried),
                (UNKNOWN, "Cannot be told", None),
                (EXCEPTED, "Lacking, but excepted by a waiver", "a waiver covers this fix"),
            )
        ]
    if update is not None:
        context["update_tables"] = [
            (title, config.configure(ResultTable(rows, prefix=f"update-{key}-")))
            for key, title, rows in (
                ("lacking", "Lacking the update", update.lacking),
                ("unknown", "Cannot be told", update.unknown),
                ("excepted", "Lacking, but excepted by a waiver", update.excepted),
            )
        ]
    return context


@portal_view
def rollout(request):
    """The planner's waves for a site or the estate; printable; `?export=markdown|csv` as the rollout command."""
    site = request.GET.get("site", "").strip() or None
    sites = Site.objects.order_by("name").values_list("name", flat=True).distinct()
    context = {"site": site or "", "sites": sites}
    if site and not Site.objects.filter(name=site).exists():
        context["error"] = f"site {site!r} is not in the inventory"
        return render(request, "inventory/rollout.html", context, status=404)
    plan = plan_rollout(site=site)
    export = request.GET.get("export")
    if export in EXPORTS:
        return text_download(render_rollout(plan, export), export, f"rollout-{site or 'estate'}")
    context["rollout"] = plan
    return render(request, "inventory/rollout.html", context)


COEXISTENCE_VERSIONS = ("2010", "2013", "2016", "2019", "SE")


@portal_view
def coexistence(request):
    """Pick a version to introduce (or none: what already runs side by side): the blockers, each with its plan."""
    introduce = request.GET.get("introduce", "").strip().upper()
    organisation = request.GET.get("organisation", "").strip() or None
    site = request.GET.get("site", "").strip() or None
    checked = bool(introduce)
    if introduce == "NONE":
        introduce = ""
    context = {
        "introduce": introduce, "organisation": organisation or "", "site": site or "", "checked": checked,
        "introduce_name": PRODUCTS[introduce].name if introduce in COEXISTENCE_VERSIONS else introduce,
        "versions": [(key, PRODUCTS[key].name) for key in COEXISTENCE_VERSIONS],
        "organisations": Organisation.objects.order_by("name").values_list("name", flat=True),
        "sites": Site.objects.order_by("name").values_list("name", flat=True).distinct(),
    }  # fmt: skip
    if not checked:
        return render(request, "inventory/coexistence.html", context)
    errors = []
    if introduce and introduce not in COEXISTENCE_VERSIONS:
        errors.append(f"introduce: {introduce!r} is not one of {', '.join(COEXISTENCE_VERSIONS)} or none")
    if site and not Site.objects.filter(name=site).exists():
        errors.append(f"site: {site!r} is not a site in the inventory")
    if organisation and not Organisation.objects.filter(name=organisation).exists():
        errors.append(f"organisation: {organisation!r} is not an organisation in the inventory")
    if not errors:
        try:
            context["report"] = report = check_coexistence(introduce or None, site=site, organisation=organisation)
            context["blockers"] = blockers_with_plans(report)
        except PlanError as error:
            errors.append(str(error))
    context["errors"] = errors
    return render(request, "inventory/coexistence.html", context, status=400 if errors else 200)
