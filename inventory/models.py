"""Inventory models: organisations, sites, servers, clusters/DAGs, maintenance windows, waivers, scans."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from knox.models import AbstractAuthToken

from inventory.choices import (
    BuildSource,
    ChannelKind,
    ChunkStatus,
    ClusterKind,
    DeliveryStatus,
    Delta,
    JobOutcome,
    NotificationKind,
    ScanStatus,
    ScanTrigger,
    State,
    TokenScope,
    WaiverTarget,
)
from kb.models import TimeStamped


class Organisation(TimeStamped):
    name = models.CharField(max_length=200, unique=True)
    esu_enrolled_until = models.DateField(
        null=True,
        blank=True,
        help_text="Enrolled in Microsoft's Extended Security Update program for Exchange 2016/2019 until this date",
    )

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

    # One index: the unique one. Lower case is a check rather than a unique index on lower(fqdn), which every lookup
    # (fqdn = …, ordering by FQDN) would have needed a second index beside (and Django a third, for LIKE).
    fqdn = models.CharField(max_length=255, help_text="Stored lower-case; unique regardless of case")
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
    is_clustered_mailbox_server = models.BooleanField(
        default=False,
        help_text="A 2007 CCR/SCC clustered mailbox server (Get-ExchangeServer IsMemberOfCluster: Yes); its nodes are "
        "the members of the cluster of the same name",
    )
    environment = models.CharField(max_length=32, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="servers")
    owner = models.CharField(max_length=200, blank=True)
    last_reported = models.DateTimeField(null=True, blank=True)
    sync_source = models.CharField(max_length=100, blank=True, help_text="Who last wrote it: a CSV file, a CMDB")

    class Meta:
        ordering = ("fqdn",)
        constraints = [
            models.UniqueConstraint(fields=("fqdn",), name="inventory_server_unique_fqdn"),
            models.CheckConstraint(condition=Q(fqdn=Lower("fqdn")), name="inventory_server_fqdn_lower_case"),
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
    """A 2007 CCR/SCC cluster (named after its clustered mailbox server), a 2007 SCR pair, or a 2010+ DAG."""

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
    """One scan: planned into chunks of servers that any number of workers claim (see docs/jobs.md)."""

    status = models.CharField(max_length=16, choices=ScanStatus.choices, default=ScanStatus.PENDING)
    scope = models.CharField(
        max_length=64, default="estate", help_text="Lock key: two scans of one scope never run at the same time"
    )
    trigger = models.CharField(max_length=16, choices=ScanTrigger.choices, default=ScanTrigger.API)
    levels = models.JSONField(
        default=list,
        blank=True,
        help_text="A recompute: [[product, level], …] whose servers are evaluated again, the others carried forward "
        "from the baseline. Empty: every server",
    )
    baseline = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The previous succeeded scan the deltas compare with",
    )  # fmt: skip
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from a worker")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times it was dispatched, resumes included")
    as_of = models.DateField(null=True, blank=True, help_text="The date verdicts were computed for")
    chunk_count = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    server_count = models.PositiveIntegerField(default=0)
    distinct_count = models.PositiveIntegerField(default=0, help_text="Distinct (build, facts) computed")
    carried_count = models.PositiveIntegerField(default=0, help_text="Results carried forward by a recompute")
    counts = models.JSONField(default=dict, help_text="Servers per state")
    newly_noncompliant = models.PositiveIntegerField(default=0)
    newly_compliant = models.PositiveIntegerField(default=0)
    newly_excepted = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("-pk",)
        constraints = [
            # The scope lock: the database refuses a second running scan of one scope, whoever starts it.
            models.UniqueConstraint(
                fields=("scope",), condition=Q(status="running"), name="inventory_scan_one_running_per_scope"
            ),
        ]
        indexes = [models.Index(fields=("status", "scope"), name="inventory_scan_status_idx")]

    def __str__(self) -> str:
        return f"scan {self.pk} ({self.status})"


class ScanChunk(models.Model):
    """A range of server ids of one scan. A worker claims it with SELECT … FOR UPDATE SKIP LOCKED and writes its
    results and `done` in the same transaction, so a worker that dies leaves the chunk pending, never half-written."""

    scan = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    first_server_id = models.BigIntegerField()
    last_server_id = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=ChunkStatus.choices, default=ChunkStatus.PENDING)
    server_count = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, help_text="Host and process that completed it")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("scan", "number")
        constraints = [
            models.UniqueConstraint(fields=("scan", "number"), name="inventory_chunk_unique_scan_number"),
        ]
        indexes = [models.Index(fields=("scan", "status"), name="inventory_chunk_status_idx")]

    def __str__(self) -> str:
        return f"scan {self.scan_id} chunk {self.number} ({self.status})"


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
    facts_key = models.CharField(
        max_length=40, blank=True, help_text="Digest of the facts; chunks of one scan share a verdict by it"
    )
    product = models.CharField(max_length=8, blank=True, help_text="Product key of the resolved level, e.g. 2019")
    level = models.CharField(max_length=16, blank=True, help_text="Resolved level, e.g. CU14")
    is_supported = models.BooleanField(null=True, blank=True, help_text="The level is supported on the scan date")
    latest_security_update = models.JSONField(
        null=True, blank=True, help_text="The newest security update released for the server's level"
    )
    has_latest_security_update = models.BooleanField(
        null=True, blank=True, help_text="Runs the newest security update of its level (null: cannot tell)"
    )

    class Meta:
        ordering = ("scan", "pk")
        constraints = [
            # Verdicts of scans made before facts keys existed have none.
            models.UniqueConstraint(
                fields=("scan", "facts_key"), condition=~Q(facts_key=""), name="inventory_verdict_unique_scan_facts"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.state} ({self.current.get('build', '?')})"


class ServerResult(models.Model):
    """One server's result in one scan; history is kept for trends and "newly non-compliant"."""

    # No foreign-key constraints in the database (db_constraint=False): a scan writes one row per server, and
    # PostgreSQL checks each constraint of each row at commit (Django declares them DEFERRABLE INITIALLY DEFERRED, and
    # even a null waiver queues its check): about half of a scan's write time. The scan writer takes the ids from
    # the rows it read in the same run (its scan, its verdicts, the servers of the chunk, the active waivers) and,
    # when it finishes, removes the results of servers deleted meanwhile and clears waivers deleted meanwhile
    # (`scans._orphans_delete`); deletes cascade or set null through Django's collector as before (on_delete).
    # Every index costs each of a scan's inserts: none of its own on scan (reads by scan go through (scan, server)
    # and (scan, state)), verdict and state, and the waiver's only on the few rows that have one (see Meta).
    scan = models.ForeignKey(
        ScanRun, on_delete=models.CASCADE, related_name="results", db_constraint=False, db_index=False
    )
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="results", db_constraint=False)
    verdict = models.ForeignKey(
        ScanVerdict, on_delete=models.CASCADE, related_name="results", db_index=False, db_constraint=False
    )
    state = models.CharField(max_length=32, choices=State.choices)
    waiver = models.ForeignKey(
        Waiver, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False, db_constraint=False
    )
    is_newly_noncompliant = models.BooleanField(default=False)
    delta = models.CharField(max_length=20, choices=Delta.choices, blank=True, default=Delta.NONE)

    class Meta:
        ordering = ("scan", "server")
        constraints = [
            models.UniqueConstraint(fields=("scan", "server"), name="inventory_result_unique_scan_server"),
        ]
        indexes = [
            models.Index(fields=("scan", "state"), name="inv_result_scan_state_idx"),
            # Few rows per scan have a delta; notifications read only those.
            models.Index(fields=("scan", "delta"), condition=~Q(delta=""), name="inv_result_scan_delta_idx"),
            # Deleting a waiver sets its results' waiver to null: found by this index, which skips the null rows.
            models.Index(fields=("waiver",), condition=Q(waiver__isnull=False), name="inv_result_waiver_idx"),
        ]

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


class VerdictGap(models.Model):
    """An update or fix that a verdict misses: one row per (verdict, kind, KB), written by the scan, so "which
    servers need KB X" is an indexed join of results and gaps instead of a walk over every verdict in Python."""

    scan = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    verdict = models.ForeignKey(ScanVerdict, on_delete=models.CASCADE, related_name="gaps", db_index=False)
    kind = models.CharField(max_length=8, choices=WaiverTarget.choices)
    kb = models.CharField(max_length=32, help_text="The KB, or the update's name when it has none")
    is_security = models.BooleanField(default=False)
    is_install_target = models.BooleanField(default=False, help_text="The update the verdict says to install")
    is_known = models.BooleanField(default=True, help_text="False: the build cannot tell (AdminDisplayVersion)")

    class Meta:
        ordering = ("scan", "verdict", "kind", "kb")
        constraints = [
            models.UniqueConstraint(fields=("verdict", "kind", "kb"), name="inventory_gap_unique_verdict_kind_kb"),
        ]
        indexes = [models.Index(fields=("scan", "kind", "kb"), name="inventory_gap_scan_kb_idx")]

    def __str__(self) -> str:
        return f"verdict {self.verdict_id} misses {self.kind} {self.kb}"


class ScanTally(models.Model):
    """Per-scan aggregate: servers per (verdict, state, delta). Kept for ever, after per-server rows are pruned, so
    trends and summaries never need the per-server table."""

    scan = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="tallies")
    verdict = models.ForeignKey(ScanVerdict, on_delete=models.CASCADE, related_name="+", db_index=False)
    state = models.CharField(max_length=32, choices=State.choices)
    delta = models.CharField(max_length=20, choices=Delta.choices, blank=True)
    server_count = models.PositiveIntegerField()

    class Meta:
        ordering = ("scan", "verdict", "state", "delta")

    def __str__(self) -> str:
        return f"scan {self.scan_id}: {self.server_count} {self.state}"


# -- jobs and notifications ------------------------------------------------------------------------


class JobRun(models.Model):
    """One run of a scheduled or queued job: what jobs_status and the portal show."""

    job = models.CharField(max_length=64)
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=JobOutcome.choices, default=JobOutcome.RUNNING)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ("-started_at", "-pk")
        indexes = [models.Index(fields=("job", "-started_at"), name="inventory_jobrun_job_idx")]

    def __str__(self) -> str:
        return f"{self.job} {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life, written by the worker itself every few seconds."""

    hostname = models.CharField(max_length=255, unique=True)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ("-last_seen",)

    def __str__(self) -> str:
        return f"{self.hostname} (seen {self.last_seen:%Y-%m-%d %H:%M:%S})"


class Subscription(TimeStamped):
    """Who hears about changes: an e-mail list or a webhook, for one organisation, one site or everything."""

    name = models.CharField(max_length=100)
    channel = models.CharField(max_length=8, choices=ChannelKind.choices)
    target = models.CharField(max_length=1000, help_text="E-mail addresses (comma-separated) or the webhook URL")
    secret = models.CharField(
        max_length=200, blank=True, help_text="Webhook signing secret (whsec_…); generated when left empty"
    )
    organisation = models.ForeignKey(Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    wants_deltas = models.BooleanField(default=True, help_text="Changes as they happen")
    wants_digest = models.BooleanField(default=True, help_text="The daily digest")
    is_enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ("name", "pk")
        constraints = [
            models.CheckConstraint(
                condition=Q(organisation__isnull=True) | Q(site__isnull=True), name="inventory_subscription_one_scope"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.channel})"


class Notification(models.Model):
    """One message for one subscription. Unique per (subscription, key), so a job that runs twice sends once."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    key = models.CharField(max_length=100, help_text="What it is about, e.g. scan:12 or digest:2026-11-29")
    subject = models.CharField(max_length=300)
    payload = models.JSONField()
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-pk",)
        constraints = [
            models.UniqueConstraint(fields=("subscription", "key"), name="inventory_notification_unique_key"),
        ]
        indexes = [models.Index(fields=("status",), name="inventory_notification_st_idx")]

    def __str__(self) -> str:
        return f"{self.subject} → {self.subscription} ({self.status})"


class DeliveryAttempt(models.Model):
    """The delivery log: every attempt with its HTTP status code or error."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("notification", "number")
        constraints = [
            models.UniqueConstraint(fields=("notification", "number"), name="inventory_attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error[:40]}"
