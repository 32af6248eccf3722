"""Labelled choices for the catalog."""

from django.db import models


class UpdateKind(models.TextChoices):
    PREVIEW = "PREVIEW", "Preview"
    RTM = "RTM", "Release to manufacturing"
    SP = "SP", "Service pack"
    CU = "CU", "Cumulative update"
    RU = "RU", "Update rollup"
    SU = "SU", "Security update"
    HU = "HU", "Hotfix update"


class SourceKind(models.TextChoices):
    BUILD_PAGE_MARKDOWN = "build_page_markdown", "Build-number page (Markdown)"
    BUILD_PAGE_HTML = "build_page_html", "Build-number page (HTML)"
    BUILD_CSV = "build_csv", "Get-ExchangeBuildNumber CSV"
    BUILD_NOTES = "build_notes", "Known discrepancies (bundled notes; never override a value)"
    FIX_LIST = "fix_list", "Fix list"
    RULES = "rules", "Rules data"
    SNAPSHOT = "snapshot", "Bundled catalog snapshot"


class RuleKind(models.TextChoices):
    SUPPORT = "support", "Support lifecycle"
    DOTNET = "dotnet", ".NET Framework per level"
    PREREQUISITE = "prerequisite", "Prerequisite"
    STEP = "step", "Pre/post step"
    COEXISTENCE = "coexistence", "Coexistence gate"
    ROLE_ORDER = "role_order", "Role order"
    RUNBOOK = "runbook", "Runbook (maintenance, failover, verification)"
    AD_PREPARATION = "ad_preparation", "Active Directory preparation"
    SETUP = "setup", "Setup commands"
    UPGRADE_PATH = "upgrade_path", "In-place upgrade path"
    MIGRATION = "migration", "Swing migration"
    ESU = "esu", "Extended Security Updates"
