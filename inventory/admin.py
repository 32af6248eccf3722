"""Admin for the inventory: servers, sites, clusters, maintenance windows, waivers; scans and the feed read-only."""

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


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
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


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "organisation", "is_internet_facing")
    list_filter = ("organisation", "is_internet_facing")
    search_fields = ("name",)


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


@admin.register(Waiver)
class WaiverAdmin(admin.ModelAdmin):
    list_display = ("target_kb", "target_kind", "server", "site", "approver", "ticket", "expires_at")
    list_filter = ("target_kind",)
    search_fields = ("target_kb", "ticket", "approver", "server__fqdn")
    autocomplete_fields = ("server", "site")


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
