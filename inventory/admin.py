"""Admin for the inventory: servers, sites, clusters, maintenance windows, waivers; scans and the feed read-only."""

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.template.response import TemplateResponse
from django.utils import timezone

from exchangepatch.admin_actions import export_as_csv
from exchangepatch.templatetags.portal import level_text, state_badge
from inventory.api.filters import ServerFilter
from inventory.choices import ScanTrigger, State, WaiverTarget
from inventory.models import (
    ApiToken,
    Change,
    Cluster,
    ClusterMember,
    DeliveryAttempt,
    JobRun,
    MaintenanceWindow,
    Notification,
    Organisation,
    ScanChunk,
    ScanRun,
    Server,
    ServerResult,
    Site,
    Subscription,
    Tag,
    Waiver,
    WorkerHeartbeat,
)
from inventory.notifications import subscription_save
from inventory.records import fqdn_normalised, server_record_from_mapping
from inventory.scans import ScanBusyError
from inventory.selectors import scan_latest, verdict_ids_missing
from inventory.services import (
    server_delete,
    server_delete_many,
    server_upsert_many,
    site_delete,
    waiver_delete,
    waiver_save,
)
from inventory.tasks import BrokerUnavailableError, scan_launch
from kb.engine.builds import PRODUCTS, InvalidBuildError, parse_reported_build
from kb.engine.catalog import InvalidKBError, normalize_kb
from kb.models import Level

# Every list in the admin can export its selected rows as CSV.
admin.site.add_action(export_as_csv, "export_as_csv")


class ReadOnlyAdmin(admin.ModelAdmin):
    """History (scans, results, the change feed) is written by the application, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ClusterMemberInline(admin.TabularInline):
    model = ClusterMember
    extra = 0
    autocomplete_fields = ("server",)


class LatestStateFilter(admin.SimpleListFilter):
    title = "state (latest scan)"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [*State.choices, ("none", "Not scanned yet")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(latest_state__isnull=True)
        return queryset.filter(latest_state=self.value()) if self.value() else queryset


class ProductFilter(admin.SimpleListFilter):
    """By the build's product, as the API's `product` filter (ranges of the build columns)."""

    title = "product"
    parameter_name = "product"

    def lookups(self, request, model_admin):
        return [(key, info.name) for key, info in PRODUCTS.items()]

    def queryset(self, request, queryset):
        return ServerFilter({"product": self.value()}, queryset=queryset).qs if self.value() else queryset


class LevelFilter(admin.SimpleListFilter):
    """By the build's level (RTM, SP or CU), as the API's `product` and `level` filters together."""

    title = "level"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        levels = Level.objects.select_related("product").order_by("product__sort_order", "build_number")
        product = request.GET.get("product")
        if product:
            levels = levels.filter(product__key=product)
        return [(f"{level.product.key}:{level.name}", str(level)) for level in levels]

    def queryset(self, request, queryset):
        if not self.value() or ":" not in self.value():
            return queryset
        product, level = self.value().split(":", 1)
        return ServerFilter({"product": product, "level": level}, queryset=queryset).qs


class WaiverForSelectedForm(forms.Form):
    target_kind = forms.ChoiceField(choices=WaiverTarget.choices, initial=WaiverTarget.UPDATE)
    target_kb = forms.CharField(label="KB", help_text="of the update or the fix, e.g. KB5036386")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    approver = forms.CharField(max_length=200)
    ticket = forms.CharField(max_length=100, required=False)
    expires_at = forms.DateTimeField(help_text="YYYY-MM-DD HH:MM")

    def clean_target_kb(self):
        try:
            return normalize_kb(self.cleaned_data["target_kb"])
        except InvalidKBError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        if value <= timezone.now():
            raise forms.ValidationError("must be in the future: a waiver that has expired covers nothing")
        return value


class ServerAdminForm(forms.ModelForm):
    """A server as the admin edits it, validated by inventory.records as the API and servers_import validate it."""

    # Form field for each record field the admin edits, where the names differ.
    FORM_FIELDS = {"build": "reported_build"}

    class Meta:
        model = Server
        fields = ("fqdn", "name", "organisation", "site", "roles", "edition", "reported_build", "build_source",
                  "os_name", "dotnet_version", "prerequisites", "is_forefront_installed", "environment", "tags",
                  "owner", "last_reported")  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "fqdn" in self.fields:
            self.fields["fqdn"].disabled = True  # the natural key: delete and create instead, as in the API
            self.fields["fqdn"].help_text = "The server's key; it cannot be changed"

    def clean_fqdn(self) -> str:
        # As stored, before the model's own checks see it (the FQDN's lower-case check among them).
        return fqdn_normalised(self.cleaned_data["fqdn"])

    def clean(self):
        cleaned = super().clean()
        organisation, site = cleaned.get("organisation"), cleaned.get("site")
        if organisation and site and site.organisation_id != organisation.pk:
            self.add_error("site", f"{site.name} is a site of {site.organisation.name}, not of {organisation.name}")
        record, problems = server_record_from_mapping(self._as_record_input(cleaned))
        for name, reason in problems.items():
            field = self.FORM_FIELDS.get(name, name)
            if field not in self.errors:
                self.add_error(field if field in self.fields else None, reason)
        self.record = record
        return cleaned

    @staticmethod
    def _as_record_input(cleaned: dict) -> dict:
        organisation, site, last_reported = (
            cleaned.get("organisation"),
            cleaned.get("site"),
            cleaned.get("last_reported"),
        )
        return {
            "fqdn": cleaned.get("fqdn") or "",
            "name": cleaned.get("name") or "",
            "organisation": organisation.name if organisation else "",
            "site": site.name if site else "",
            "roles": cleaned.get("roles") or "",
            "edition": cleaned.get("edition") or "",
            "build": cleaned.get("reported_build") or "",
            "build_source": cleaned.get("build_source") or "",
            "os_name": cleaned.get("os_name") or "",
            "dotnet_version": cleaned.get("dotnet_version") or "",
            "prerequisites": cleaned.get("prerequisites") or {},
            "is_forefront_installed": bool(cleaned.get("is_forefront_installed")),
            "environment": cleaned.get("environment") or "",
            "tags": [tag.name for tag in cleaned.get("tags") or []],
            "owner": cleaned.get("owner") or "",
            "last_reported": last_reported.isoformat() if last_reported else None,
        }


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    """Saves and deletes go through the inventory services, as the API's and servers_import's do: the FQDN is
    stored lower-case, the build columns are computed from the build, and the change feed records every write."""

    form = ServerAdminForm
    list_display = (
        "fqdn",
        "site",
        "roles",
        "reported_build",
        "runs",
        "latest_state",
        "days_behind",
        "environment",
        "last_updated",
    )
    list_filter = (
        LatestStateFilter,
        ProductFilter,
        LevelFilter,
        "organisation",
        "site",
        "build_source",
        "environment",
        "is_forefront_installed",
        "is_clustered_mailbox_server",
        "tags",
    )
    search_fields = ("fqdn", "name", "reported_build", "owner")
    search_help_text = "FQDN, name, owner; a build in any form; or a KB (the servers that need it)"
    list_select_related = ("site", "organisation")
    actions = ("rescan", "add_waiver")
    autocomplete_fields = ("site",)
    filter_horizontal = ("tags",)
    readonly_fields = (
        "build_major",
        "build_minor",
        "build_number",
        "build_revision",
        "sync_source",
        "created",
        "last_updated",
    )

    def get_queryset(self, request):
        latest = ScanRun.objects.filter(status="succeeded").order_by("-pk").values("pk")[:1]
        result = ServerResult.objects.filter(scan_id=Subquery(latest), server=OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest_state=Subquery(result.values("state")[:1]),
                latest_current=Subquery(result.values("verdict__current")[:1]),
                latest_days_behind=Subquery(result.values("verdict__days_behind")[:1]),
            )
        )

    @admin.display(description="state (latest scan)", ordering="latest_state")
    def latest_state(self, obj):
        return state_badge(obj.latest_state)

    @admin.display(description="runs")
    def runs(self, obj):
        return level_text(obj.latest_current) or "—"

    @admin.display(description="days behind", ordering="latest_days_behind")
    def days_behind(self, obj):
        return "—" if obj.latest_days_behind is None else obj.latest_days_behind

    def get_search_results(self, request, queryset, search_term):
        """A build in any form finds the servers reporting it; a KB finds the servers that need it."""
        term = search_term.strip()
        try:
            kb = normalize_kb(term)
        except InvalidKBError:
            kb = None
        if kb is not None:
            scan = scan_latest()
            ids = verdict_ids_missing(scan, kb=kb) if scan else []
            return queryset.filter(
                pk__in=ServerResult.objects.filter(scan=scan, verdict_id__in=ids).values("server_id")
            ), False
        try:
            build = parse_reported_build(term).build
        except InvalidBuildError:
            return super().get_search_results(request, queryset, search_term)
        exact = queryset.filter(build_major=build.major, build_minor=build.minor, build_number=build.build,
                                build_revision=build.revision)  # fmt: skip
        return exact, False

    @admin.action(description="Rescan (starts a scan of the estate; verdicts are per scan)")
    def rescan(self, request, queryset):
        try:
            scan = scan_launch(trigger=ScanTrigger.ADMIN)
        except ScanBusyError as busy:
            self.message_user(request, f"Scan {busy.scan_id} is already under way; its verdicts cover every server.",
                              messages.WARNING)  # fmt: skip
            return
        except BrokerUnavailableError as error:
            self.message_user(request, f"No scan started: {error}", messages.ERROR)
            return
        self.message_user(
            request,
            f"Scan {scan.pk} started: it computes the verdicts of every server, the {queryset.count()} selected "
            "included. The dashboard and the lists show them when it succeeds.",
            messages.SUCCESS,
        )

    @admin.action(description="Add a waiver for the selected servers")
    def add_waiver(self, request, queryset):
        form = WaiverForSelectedForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            servers = list(queryset)
            for server in servers:
                waiver_save(Waiver(server=server, **form.cleaned_data), is_new=True)
            data = form.cleaned_data
            self.message_user(request, f"{data['target_kb']} waived for {len(servers)} server(s) until "
                              f"{data['expires_at']:%Y-%m-%d}.", messages.SUCCESS)  # fmt: skip
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Add a waiver for the selected servers",
            "form": form,
            "servers": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/inventory/server/add_waiver.html", context)

    def save_model(self, request, obj, form, change):
        result = server_upsert_many([form.record], source=f"admin:{request.user.get_username()}")[0]
        obj.pk = result.server_id
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        for formset in formsets:  # the tags were written by the service with the server
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        server_delete(obj)

    def delete_queryset(self, request, queryset):
        server_delete_many(list(queryset.values_list("pk", flat=True)))


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "organisation", "is_internet_facing")
    list_filter = ("organisation", "is_internet_facing")
    search_fields = ("name",)

    def delete_model(self, request, obj):
        site_delete(obj)

    def delete_queryset(self, request, queryset):
        for site in queryset:
            site_delete(site)


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "esu_enrolled_until")
    search_fields = ("name",)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "organisation")
    list_filter = ("kind", "organisation")
    search_fields = ("name",)
    inlines = (ClusterMemberInline,)


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone", "weekdays", "week_of_month", "start_time", "duration_minutes")
    filter_horizontal = ("servers", "sites")


class WaiverAdminForm(forms.ModelForm):
    class Meta:
        model = Waiver
        fields = ("server", "site", "target_kind", "target_kb", "reason", "approver", "ticket", "expires_at")

    def clean_target_kb(self):
        try:
            return normalize_kb(self.cleaned_data["target_kb"])
        except InvalidKBError as error:
            raise forms.ValidationError(str(error)) from None


@admin.register(Waiver)
class WaiverAdmin(admin.ModelAdmin):
    """Saves and deletes go through the services, so the change feed records them as it does the API's."""

    form = WaiverAdminForm
    list_display = ("target_kb", "target_kind", "server", "site", "approver", "ticket", "expires_at")
    list_filter = ("target_kind",)
    search_fields = ("target_kb", "ticket", "approver", "server__fqdn")
    autocomplete_fields = ("server", "site")

    def save_model(self, request, obj, form, change):
        waiver_save(obj, is_new=not change)

    def delete_model(self, request, obj):
        waiver_delete(obj)

    def delete_queryset(self, request, queryset):
        for waiver in queryset:
            waiver_delete(waiver)


class ScanChunkInline(admin.TabularInline):
    model = ScanChunk
    extra = 0
    can_delete = False
    fields = ("number", "first_server_id", "last_server_id", "status", "server_count", "worker", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ScanRun)
class ScanRunAdmin(ReadOnlyAdmin):
    list_display = (
        "pk", "status", "trigger", "as_of", "server_count", "chunks_done", "chunk_count", "states",
        "newly_noncompliant", "newly_compliant", "newly_excepted", "finished_at",
    )  # fmt: skip
    list_filter = ("status", "trigger")
    inlines = (ScanChunkInline,)

    @admin.display(description="servers per state")
    def states(self, obj):
        labels = dict(State.choices)
        return "; ".join(f"{labels.get(state, state)}: {count}" for state, count in (obj.counts or {}).items())


@admin.register(ServerResult)
class ServerResultAdmin(ReadOnlyAdmin):
    list_display = ("server", "scan", "state_label", "is_newly_noncompliant", "waiver")
    list_filter = ("state", "is_newly_noncompliant")
    search_fields = ("server__fqdn",)
    list_select_related = ("server", "scan", "waiver")

    @admin.display(description="state", ordering="state")
    def state_label(self, obj):
        return state_badge(obj.state)


@admin.register(Change)
class ChangeAdmin(ReadOnlyAdmin):
    list_display = ("seq", "kind", "key", "action", "created")
    list_filter = ("kind", "action")
    search_fields = ("key",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with `manage.py api_token_create` (the key is shown once); deleting one here revokes it."""

    list_display = ("user", "name", "token_key", "scope", "created", "expiry", "last_used")
    list_filter = ("scope",)
    readonly_fields = ("user", "token_key", "created", "expiry", "last_used")
    exclude = ("digest",)

    def has_add_permission(self, request):
        return False


# -- jobs and notifications ------------------------------------------------------------------------
# The schedules themselves (enable, disable, change the time) are django-celery-beat's "Periodic tasks".


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ("job", "started_at", "finished_at", "outcome", "worker", "detail")
    list_filter = ("job", "outcome")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("hostname", "pid", "started_at", "last_seen")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("name", "channel", "target", "organisation", "site", "wants_deltas", "wants_digest", "is_enabled")
    list_filter = ("channel", "is_enabled")
    autocomplete_fields = ("site",)

    def save_model(self, request, obj, form, change):
        subscription_save(obj)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("number", "at", "status_code", "error", "duration_ms")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("subject", "subscription", "kind", "status", "attempts", "created", "sent_at")
    list_filter = ("status", "kind")
    list_select_related = ("subscription",)
    inlines = (DeliveryAttemptInline,)
