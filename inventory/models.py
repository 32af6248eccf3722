"""Inventory models: organisations, sites, servers, clusters/DAGs, maintenance windows, waivers, scans."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from knox.models import AbstractAuthToken

from inventory.choices import BuildSource, ClusterKind, ScanStatus, State, TokenScope, WaiverTarget
from kb.models import TimeStamped


class Organisation(TimeStamped):
    name = models.CharField(max_length=200, unique=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Site(TimeStamped):
    """An Active Directory site."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(max_length=200)
    is_internet_facing = models.BooleanField(default=False)

    class Meta:
        ordering = ("organisation__name", "name")
        constraints = [
            models.UniqueConstraint(fields=("organisation", "name"), name="inventory_site_unique_org_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Server(TimeStamped):
    """An Exchange server; the FQDN (stored lower-case) is its natural key."""

    fqdn = models.CharField(max_length=255, db_index=True, help_text="Stored lower-case; unique regardless of case")
    name = models.CharField(max_length=64)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="servers")
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="servers")
    roles = models.CharField(max_length=200, blank=True, help_text="Comma-separated: Mailbox,ClientAccess,…")
    edition = models.CharField(max_length=64, blank=True)
    reported_build = models.CharField(max_length=100, blank=True, help_text="The build string as reported")
    build_source = models.CharField(max_length=16, choices=BuildSource.choices, default=BuildSource.EXSETUP)
    build_major = models.PositiveIntegerField(null=True, blank=True)
    build_minor = models.PositiveIntegerField(null=True, blank=True)
    build_number = models.PositiveIntegerField(null=True, blank=True)
    build_revision = models.PositiveIntegerField(null=True, blank=True)
    os_name = models.CharField(max_length=100, blank=True)
    dotnet_version = models.CharField(max_length=16, blank=True)
    prerequisites = models.JSONField(
        default=dict, blank=True, help_text='Installed prerequisites, e.g. {"filter_pack": "2010 SP1"}'
    )
    is_forefront_installed = models.BooleanField(default=False)
    environment = models.CharField(max_length=32, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="servers")
    owner = models.CharField(max_length=200, blank=True)
    last_reported = models.DateTimeField(null=True, blank=True)
    sync_source = models.CharField(max_length=100, blank=True, help_text="Who last wrote it: a CSV file, a CMDB")

    class Meta:
        ordering = ("fqdn",)
        constraints = [
            models.UniqueConstraint(Lower("fqdn"), name="inventory_server_unique_fqdn_ci"),
            models.CheckConstraint(condition=~Q(fqdn=""), name="inventory_server_fqdn_not_empty"),
        ]
        indexes = [
            models.Index(
                fields=("build_major", "build_minor", "build_number", "build_revision"),
                name="inventory_server_build_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.fqdn

    @property
    def role_list(self) -> list[str]:
        return [role for role in self.roles.split(",") if role]


class Cluster(TimeStamped):
    """A 2007 CCR/SCR cluster or a 2010+ database availability group."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="clusters")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=ClusterKind.choices)

    class Meta:
        ordering = ("organisation__name", "name")
        constraints = [
            models.UniqueConstraint(fields=("organisation", "name"), name="inventory_cluster_unique_org_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class ClusterMember(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="members")
    server = models.OneToOneField(Server, on_delete=models.CASCADE, related_name="cluster_membership")
    is_active = models.BooleanField(default=False, help_text="Holds the active role / active database copies")

    class Meta:
        ordering = ("cluster", "-is_active", "server__fqdn")

    def __str__(self) -> str:
        return f"{self.server} in {self.cluster} ({'active' if self.is_active else 'passive'})"


class MaintenanceWindow(TimeStamped):
    """A recurring window, in its own time zone: weekdays (0=Monday), optionally the Nth week of the month."""

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    weekdays = models.JSONField(default=list, help_text="0=Monday … 6=Sunday")
    week_of_month = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1–5: only the Nth such weekday")
    start_time = models.TimeField()
    duration_minutes = models.PositiveIntegerField()
    servers = models.ManyToManyField(Server, blank=True, related_name="maintenance_windows")
    sites = models.ManyToManyField(Site, blank=True, related_name="maintenance_windows")

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(condition=Q(duration_minutes__gt=0), name="inventory_window_duration_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Reject what the rollout scheduler could not place: an unknown zone, weekdays outside 0 to 6."""
        errors = {}
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = f"{self.time_zone!r} is not an IANA time zone such as Europe/Amsterdam"
        weekdays = self.weekdays if isinstance(self.weekdays, list) else None
        if not weekdays or not all(isinstance(day, int) and 0 <= day <= 6 for day in weekdays):
            errors["weekdays"] = "a non-empty list of days, 0 (Monday) to 6 (Sunday)"
        if self.week_of_month is not None and not 1 <= self.week_of_month <= 5:
            errors["week_of_month"] = "1 to 5, or empty for every week"
        if errors:
            raise ValidationError(errors)


class Waiver(TimeStamped):
    """An accepted exception from an update or a fix, for a server, a site or every server, until it expires."""

    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.CASCADE, related_name="waivers")
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.CASCADE, related_name="waivers")
    target_kind = models.CharField(max_length=8, choices=WaiverTarget.choices)
    target_kb = models.CharField(max_length=16, help_text="KB of the update or the fix")
    reason = models.TextField()
    approver = models.CharField(max_length=200)
    ticket = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ("expires_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(server__isnull=True) | Q(site__isnull=True), name="inventory_waiver_one_scope"
            ),
        ]

    def __str__(self) -> str:
        scope = self.server or self.site or "all servers"
        return f"{self.target_kb} waived for {scope} until {self.expires_at:%Y-%m-%d}"


class ScanRun(TimeStamped):
    status = models.CharField(max_length=16, choices=ScanStatus.choices, default=ScanStatus.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    as_of = models.DateField(null=True, blank=True, help_text="The date verdicts were computed for")
    server_count = models.PositiveIntegerField(default=0)
    distinct_count = models.PositiveIntegerField(default=0, help_text="Distinct (build, facts) computed")
    counts = models.JSONField(default=dict, help_text="Servers per state")
    newly_noncompliant = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("-pk",)

    def __str__(self) -> str:
        return f"scan {self.pk} ({self.status})"


class ScanVerdict(models.Model):
    """A verdict computed once per distinct (build, facts) in a scan; many servers share it."""

    scan = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="verdicts")
    state = models.CharField(max_length=32, choices=State.choices)
    current = models.JSONField(default=dict)
    install = models.JSONField(null=True, blank=True)
    supersedes = models.JSONField(default=list)
    security_updates = models.JSONField(default=list)
    missing_updates = models.JSONField(default=list, help_text="KBs of every update the server misses")
    missing_prerequisites = models.JSONField(default=list)
    days_behind = models.PositiveIntegerField(null=True, blank=True)
    reasons = models.JSONField(default=list)

    class Meta:
        ordering = ("scan", "pk")

    def __str__(self) -> str:
        return f"{self.state} ({self.current.get('build', '?')})"


class ServerResult(models.Model):
    """One server's result in one scan; history is kept for trends and "newly non-compliant"."""

    scan = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="results")
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="results")
    # No single-column indexes on verdict and state: they would slow the bulk insert of every scan; reads go
    # through (scan, server) and (scan, state).
    verdict = models.ForeignKey(ScanVerdict, on_delete=models.CASCADE, related_name="results", db_index=False)
    state = models.CharField(max_length=32, choices=State.choices)
    waiver = models.ForeignKey(Waiver, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    is_newly_noncompliant = models.BooleanField(default=False)

    class Meta:
        ordering = ("scan", "server")
        constraints = [
            models.UniqueConstraint(fields=("scan", "server"), name="inventory_result_unique_scan_server"),
        ]
        indexes = [models.Index(fields=("scan", "state"), name="inv_result_scan_state_idx")]

    def __str__(self) -> str:
        return f"{self.server} {self.state}"


class ApiToken(AbstractAuthToken):
    """A machine credential, kept by django-rest-knox: only a hash of the key is stored (the key is shown once), its
    first characters (`token_key`) recognise it, it may expire, and deleting it revokes it. Its scope says what the
    machine may do; the user's model permissions apply to people signed in to the portal, not to tokens."""

    name = models.CharField(max_length=100, blank=True, help_text="What the token is for, e.g. servicenow")
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.READ_WRITE)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("user", "created")
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.user} {self.token_key}… ({self.scope})"

    @property
    def is_read_only(self) -> bool:
        return self.scope == TokenScope.READ_ONLY


class Change(models.Model):
    """The change feed: every create, update and delete of servers, waivers and verdicts, in commit order.

    `seq` is assigned while the writer holds the feed lock until it commits (see inventory.changes), so a reader
    that has seen seq N will never later find a smaller one.
    """

    seq = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16)  # "server", "waiver", "verdict"
    object_id = models.BigIntegerField()
    key = models.CharField(max_length=255, help_text="FQDN for servers and verdicts; id for waivers")
    action = models.CharField(max_length=16)  # "created", "updated", "deleted"
    data = models.JSONField(null=True, blank=True, help_text="Changed fields; null for a deletion (tombstone)")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("seq",)

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} {self.key} {self.action}"
