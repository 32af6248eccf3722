"""Labelled choices for the inventory."""

from django.db import models


class Role(models.TextChoices):
    MAILBOX = "Mailbox", "Mailbox"
    CLIENT_ACCESS = "ClientAccess", "Client Access"
    HUB_TRANSPORT = "HubTransport", "Hub Transport"
    EDGE_TRANSPORT = "EdgeTransport", "Edge Transport"
    UNIFIED_MESSAGING = "UnifiedMessaging", "Unified Messaging"


class BuildSource(models.TextChoices):
    EXSETUP = "exsetup", "ExSetup.exe file version"
    ADMIN_DISPLAY = "admin_display", "AdminDisplayVersion"
    MANUAL = "manual", "Entered by hand"


class ClusterKind(models.TextChoices):
    CCR = "CCR", "Cluster continuous replication (2007)"
    SCR = "SCR", "Standby continuous replication (2007)"
    SCC = "SCC", "Single copy cluster (2007, shared storage)"
    DAG = "DAG", "Database availability group (2010+)"


class State(models.TextChoices):
    CURRENT = "current", "Current"
    UPDATE_AVAILABLE = "update_available", "Update available"
    SECURITY_UPDATE_MISSING = "security_update_missing", "Security update missing"
    UNSUPPORTED_LEVEL = "unsupported_level", "Unsupported level"
    END_OF_LIFE = "end_of_life", "End of life"
    ROLLUP_UNKNOWN = "rollup_unknown", "Rollup level unknown"
    UNKNOWN_BUILD = "unknown_build", "Unknown build"
    LEGACY = "legacy", "Legacy (Exchange 2003 or older: shown, never planned)"
    EXCEPTED = "excepted", "Excepted (waiver)"


class WaiverTarget(models.TextChoices):
    UPDATE = "update", "Update"
    FIX = "fix", "Fix"


class ScanStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ScanTrigger(models.TextChoices):
    API = "api", "Started through the API"
    COMMAND = "command", "Started by the scan command"
    ADMIN = "admin", "Started from the admin (Rescan)"
    SCHEDULE = "schedule", "Started by the nightly schedule"
    CATALOG = "catalog", "Recompute after a catalog refresh"
    WAIVERS = "waivers", "Recompute after waivers expired"
    WATCHDOG = "watchdog", "Re-run of a scan that failed"


class ChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"


class Delta(models.TextChoices):
    """How a server's state moved since the scan's baseline; the deltas that notifications carry."""

    NONE = "", "No change"
    NEWLY_NONCOMPLIANT = "newly_noncompliant", "Newly non-compliant"
    NEWLY_COMPLIANT = "newly_compliant", "Newly compliant"
    NEWLY_EXCEPTED = "newly_excepted", "Newly excepted"


class JobOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class NotificationKind(models.TextChoices):
    SCAN_DELTAS = "scan_deltas", "Servers whose state changed in a scan"
    WAIVERS_EXPIRING = "waivers_expiring", "Waivers expiring soon"
    DIGEST = "digest", "Daily digest"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class TokenScope(models.TextChoices):
    READ_ONLY = "read-only", "Read only (GET)"
    READ_WRITE = "read-write", "Read and write"
