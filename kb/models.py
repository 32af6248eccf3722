"""Catalog models: products, levels, updates, fixes, rules, with provenance and recorded conflicts."""

from django.db import models
from django.db.models import Q

from kb.choices import RuleKind, SourceKind, UpdateKind
from kb.engine.builds import Build


class BuildColumns(models.Model):
    """A build as four integer columns (indexable, orderable) beside its display string."""

    build = models.CharField(max_length=32, help_text="Short form, e.g. 15.2.1544.4")
    build_major = models.PositiveIntegerField()
    build_minor = models.PositiveIntegerField()
    build_number = models.PositiveIntegerField()
    build_revision = models.PositiveIntegerField()

    class Meta:
        abstract = True

    def set_build(self, value: Build) -> None:
        self.build = value.short
        self.build_major, self.build_minor = value.major, value.minor
        self.build_number, self.build_revision = value.build, value.revision

    @property
    def build_value(self) -> Build:
        return Build(self.build_major, self.build_minor, self.build_number, self.build_revision)


class TimeStamped(models.Model):
    created = models.DateTimeField(auto_now_add=True)
    last_updated = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        abstract = True


class CatalogSource(TimeStamped):
    """A document the catalog was built from: where it is, its date and when it was imported."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=SourceKind.choices)
    location = models.CharField(max_length=1000, blank=True)
    document_date = models.DateField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    imported_at = models.DateTimeField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Product(TimeStamped):
    key = models.CharField(max_length=8, unique=True, help_text='"2007" … "2019", "SE"')
    name = models.CharField(max_length=100)
    is_cumulative = models.BooleanField(help_text="CUs with SU/HU (2013+); otherwise service packs with rollups")
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("sort_order",)

    def __str__(self) -> str:
        return self.name


class Level(BuildColumns, TimeStamped):
    """RTM, a service pack or a CU, with the build it starts at."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="levels")
    name = models.CharField(max_length=16)
    kind = models.CharField(max_length=8, choices=UpdateKind.choices)
    release_date = models.DateField(null=True, blank=True)
    kb = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ("product__sort_order", "build_major", "build_minor", "build_number", "build_revision")
        constraints = [
            models.UniqueConstraint(fields=("product", "name"), name="kb_level_unique_product_name"),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} {self.name}"


class Update(BuildColumns, TimeStamped):
    """One catalog row: a base level (kind RTM/SP/CU) or an RU/SU/HU within a level."""

    identity_key = models.CharField(
        max_length=100, unique=True, help_text="product|level|kind|number-or-label|revision"
    )
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="updates")
    level = models.ForeignKey(Level, on_delete=models.CASCADE, related_name="updates")
    kind = models.CharField(max_length=8, choices=UpdateKind.choices)
    name = models.CharField(
        max_length=64, blank=True, help_text='"Update Rollup 6", "Mar24SU"; blank for the level itself'
    )
    number = models.PositiveIntegerField(null=True, blank=True)
    label = models.CharField(max_length=16, blank=True)
    revision = models.PositiveSmallIntegerField(default=1, help_text="Re-release: 2 for v2")
    kb = models.CharField(max_length=16, blank=True, db_index=True)
    release_date = models.DateField(null=True, blank=True)
    is_month_only_date = models.BooleanField(
        default=False, help_text='The source gives the month only ("December, 2015")'
    )
    is_security = models.BooleanField(default=False)
    is_recalled = models.BooleanField(default=False)
    alternate_builds = models.JSONField(
        default=list, blank=True, help_text="[{build, source}] from conflicting sources"
    )
    source = models.ForeignKey(CatalogSource, on_delete=models.PROTECT, related_name="updates")
    source_names = models.JSONField(default=list, help_text="Every source that states this row")
    field_sources = models.JSONField(
        default=dict, blank=True, help_text="{field: source} the kept build, kb and release_date come from"
    )
    disagreements = models.JSONField(
        default=list, blank=True, help_text="[{field, value, source, note}] values other sources give"
    )
    fixes = models.ManyToManyField("Fix", through="UpdateFix", related_name="updates")

    class Meta:
        ordering = ("product__sort_order", "build_major", "build_minor", "build_number", "build_revision")
        indexes = [
            models.Index(
                fields=("build_major", "build_minor", "build_number", "build_revision"), name="kb_update_build_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(revision__gte=1), name="kb_update_revision_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.name}".strip()


class Fix(TimeStamped):
    """A fixed issue, known by its KB article."""

    kb = models.CharField(max_length=16, unique=True)
    title = models.TextField()
    source = models.ForeignKey(CatalogSource, on_delete=models.PROTECT, related_name="fixes")

    class Meta:
        ordering = ("kb",)
        verbose_name_plural = "fixes"

    def __str__(self) -> str:
        return f"{self.kb} {self.title[:80]}"


class UpdateFix(models.Model):
    update = models.ForeignKey(Update, on_delete=models.CASCADE)
    fix = models.ForeignKey(Fix, on_delete=models.CASCADE)
    source = models.ForeignKey(CatalogSource, on_delete=models.PROTECT)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("update", "fix")
        constraints = [models.UniqueConstraint(fields=("update", "fix"), name="kb_updatefix_unique_update_fix")]

    def __str__(self) -> str:
        return f"{self.update} carries {self.fix.kb}"


class CatalogConflict(models.Model):
    """Two sources disagree on a value: both are kept, nothing is overwritten silently."""

    identity_key = models.CharField(max_length=100, db_index=True)
    update = models.ForeignKey(Update, null=True, blank=True, on_delete=models.CASCADE, related_name="conflicts")
    title = models.CharField(max_length=200)
    field = models.CharField(max_length=32)
    kept_value = models.CharField(max_length=200, blank=True)
    kept_source = models.CharField(max_length=400, blank=True)
    other_value = models.CharField(max_length=200)
    other_source = models.CharField(max_length=200)
    note = models.TextField(blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("identity_key", "field")
        constraints = [
            models.UniqueConstraint(
                fields=("identity_key", "field", "other_source", "other_value"), name="kb_conflict_unique_claim"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title}: {self.field} {self.kept_value or '—'} vs {self.other_value} ({self.other_source})"


class Rule(TimeStamped):
    """A patching rule as data (.NET per level, prerequisites, steps, gates, support), editable by operators."""

    key = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=RuleKind.choices)
    products = models.JSONField(default=list)
    description = models.TextField()
    data = models.JSONField(default=dict)
    source_title = models.CharField(max_length=300)
    source_url = models.CharField(max_length=500, blank=True)
    source_document = models.CharField(max_length=300, blank=True)
    source_date = models.DateField(null=True, blank=True)
    is_practice = models.BooleanField(default=False, help_text="From practitioners rather than Microsoft")
    is_enabled = models.BooleanField(default=True)
    is_operator_edited = models.BooleanField(
        default=False, help_text="Changed by an operator; loading the bundled rules leaves it alone"
    )

    class Meta:
        ordering = ("kind", "key")

    def __str__(self) -> str:
        return self.key


class CatalogFeed(models.Model):
    """A configured catalog source URL and how its fetches went; a feed failing for days makes the catalog stale."""

    url = models.CharField(max_length=1000, unique=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True, help_text="First failed fetch since the last success")
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_sha256 = models.CharField(max_length=64, blank=True, help_text="Of the last document imported")

    class Meta:
        ordering = ("url",)

    def __str__(self) -> str:
        return self.url


class CatalogRefresh(models.Model):
    """One run of the catalog refresh: what each source answered and what changed."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, help_text="changed, unchanged, failed or partial")
    sources = models.JSONField(default=list, help_text="[{url, status, detail, counts, sha256}]")
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    affected_levels = models.JSONField(default=list, help_text="[[product, level], …] the changes touch")
    scan_id = models.BigIntegerField(null=True, blank=True, help_text="The recompute it started (inventory scan id)")

    class Meta:
        ordering = ("-started_at", "-pk")

    def __str__(self) -> str:
        return f"refresh {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"


class CatalogChange(models.Model):
    """An update a refresh created or changed, with the document it came from (provenance)."""

    refresh = models.ForeignKey(CatalogRefresh, on_delete=models.CASCADE, related_name="changes")
    update = models.ForeignKey(Update, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    identity_key = models.CharField(max_length=100)
    action = models.CharField(max_length=8, help_text="created or updated")
    title = models.CharField(max_length=200)
    product = models.CharField(max_length=8)
    level = models.CharField(max_length=16)
    kind = models.CharField(max_length=8, choices=UpdateKind.choices)
    kb = models.CharField(max_length=16, blank=True)
    build = models.CharField(max_length=32, blank=True)
    is_security = models.BooleanField(default=False)
    source_name = models.CharField(max_length=200)
    source_location = models.CharField(max_length=1000)
    source_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ("refresh", "pk")

    def __str__(self) -> str:
        return f"{self.action} {self.title} ({self.source_name})"
