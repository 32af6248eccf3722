"""Admin for the inventory: servers, sites, clusters, maintenance windows, waivers; scans and the feed read-only."""

from django.contrib import admin
from django.db.models import OuterRef, Subquery

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
        "pk", "status", "trigger", "as_of", "server_count", "chunks_done", "chunk_count", "newly_noncompliant",
        "newly_compliant", "newly_excepted", "finished_at",
    )  # fmt: skip
    list_filter = ("status", "trigger")
    inlines = (ScanChunkInline,)


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
    """Tokens are created with `manage.py api_token_create` (the key is shown once); here they can be revoked."""

    list_display = ("user", "name", "prefix", "is_read_only", "created", "last_used")
    readonly_fields = ("user", "prefix", "key_hash", "created", "last_used")

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
