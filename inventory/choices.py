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
    DAG = "DAG", "Database availability group (2010+)"


class State(models.TextChoices):
    CURRENT = "current", "Current"
    UPDATE_AVAILABLE = "update_available", "Update available"
    SECURITY_UPDATE_MISSING = "security_update_missing", "Security update missing"
    UNSUPPORTED_LEVEL = "unsupported_level", "Unsupported level"
    END_OF_LIFE = "end_of_life", "End of life"
    ROLLUP_UNKNOWN = "rollup_unknown", "Rollup level unknown"
    UNKNOWN_BUILD = "unknown_build", "Unknown build"
    EXCEPTED = "excepted", "Excepted (waiver)"


class WaiverTarget(models.TextChoices):
    UPDATE = "update", "Update"
    FIX = "fix", "Fix"


class ScanStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class TokenScope(models.TextChoices):
    READ_ONLY = "read-only", "Read only (GET)"
    READ_WRITE = "read-write", "Read and write"
