"""Admin for the inventory: servers, sites, clusters, maintenance windows, waivers; scans and the feed read-only."""

from django import forms
from django.contrib import admin
from django.db.models import OuterRef, Subquery

from inventory.models import (
    ApiToken,
    Change,
    Cluster,
    ClusterMember,
    MaintenanceWindow,
    Organisation,
    ScanRun,
    Server,
    ServerResult,
    Site,
    Tag,
    Waiver,
)
from inventory.records import server_record_from_mapping
from inventory.services import (
    server_delete,
    server_delete_many,
    server_upsert_many,
    site_delete,
    waiver_delete,
    waiver_save,
)
from kb.engine.catalog import InvalidKBError, normalize_kb


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
        "build_source",
        "latest_state",
        "environment",
        "last_updated",
    )
    list_filter = ("organisation", "site", "build_source", "environment", "is_forefront_installed", "tags")
    search_fields = ("fqdn", "name", "reported_build", "owner")
    list_select_related = ("site", "organisation")
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
        state = ServerResult.objects.filter(scan_id=Subquery(latest), server=OuterRef("pk")).values("state")[:1]
        return super().get_queryset(request).annotate(latest_state=Subquery(state))

    @admin.display(description="state (latest scan)", ordering="latest_state")
    def latest_state(self, obj):
        return obj.latest_state or "—"

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


@admin.register(ScanRun)
class ScanRunAdmin(ReadOnlyAdmin):
    list_display = ("pk", "status", "as_of", "server_count", "distinct_count", "newly_noncompliant", "finished_at")
    list_filter = ("status",)


@admin.register(ServerResult)
class ServerResultAdmin(ReadOnlyAdmin):
    list_display = ("server", "scan", "state", "is_newly_noncompliant", "waiver")
    list_filter = ("state", "is_newly_noncompliant")
    search_fields = ("server__fqdn",)
    list_select_related = ("server", "scan", "waiver")


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
