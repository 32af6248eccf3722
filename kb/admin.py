"""Admin for the catalog: search by KB, build or name; filter by product, level, kind; fix lists inline."""

from django import forms
from django.contrib import admin
from django.db.models import Count

from kb.engine.builds import InvalidBuildError, parse_build
from kb.engine.rules import RuleError, Rules
from kb.models import (
    CatalogChange,
    CatalogConflict,
    CatalogFeed,
    CatalogRefresh,
    CatalogSource,
    Fix,
    Level,
    Product,
    Rule,
    Update,
    UpdateFix,
)


class UpdateFixInline(admin.TabularInline):
    model = UpdateFix
    extra = 0
    autocomplete_fields = ("fix",)
    readonly_fields = ("source", "created")


class ConflictInline(admin.TabularInline):
    model = CatalogConflict
    extra = 0
    can_delete = False
    fields = ("field", "kept_value", "kept_source", "other_value", "other_source", "note")
    readonly_fields = fields


@admin.register(Update)
class UpdateAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "build", "kb", "release_date", "is_security", "is_recalled", "fix_count")
    list_filter = ("product", "kind", "is_security", "is_recalled", "level__name")
    search_fields = ("kb", "build", "name", "label", "level__name", "product__name", "fixes__kb")
    list_select_related = ("product", "level")
    readonly_fields = ("identity_key", "source", "source_names", "alternate_builds", "created", "last_updated")
    inlines = (UpdateFixInline, ConflictInline)
    ordering = ("product__sort_order", "build_major", "build_minor", "build_number", "build_revision")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(fix_total=Count("fixes", distinct=True))

    @admin.display(description="fixes", ordering="fix_total")
    def fix_count(self, obj):
        return obj.fix_total

    def get_search_results(self, request, queryset, search_term):
        # Accept any build form an admin pastes (long form, AdminDisplayVersion) as well as text.
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            build = parse_build(search_term)
        except InvalidBuildError:
            return queryset, may_have_duplicates
        exact = self.model.objects.filter(
            build_major=build.major, build_minor=build.minor, build_number=build.build, build_revision=build.revision
        )
        return queryset | exact, True


@admin.register(Level)
class LevelAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "build", "release_date", "kb")
    list_filter = ("product", "kind")
    search_fields = ("name", "build", "kb", "product__name")
    list_select_related = ("product",)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "is_cumulative")


@admin.register(Fix)
class FixAdmin(admin.ModelAdmin):
    list_display = ("kb", "title", "source")
    search_fields = ("kb", "title", "updates__kb", "updates__name")
    list_select_related = ("source",)


@admin.register(CatalogSource)
class CatalogSourceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "document_date", "imported_at", "location")
    list_filter = ("kind",)
    search_fields = ("name", "location")


@admin.register(CatalogConflict)
class CatalogConflictAdmin(admin.ModelAdmin):
    list_display = ("title", "field", "kept_value", "kept_source", "other_value", "other_source")
    list_filter = ("field", "other_source")
    search_fields = ("title", "kept_value", "other_value", "identity_key")


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = ("key", "kind", "products", "description", "data", "source_title", "source_url", "source_document",
                  "source_date", "is_practice", "is_enabled")  # fmt: skip

    def clean(self):
        """A rule the engine cannot read would break every plan: check it the way the engine reads it."""
        cleaned = super().clean()
        if cleaned.get("is_enabled", True) and cleaned.get("kind"):
            candidate = {"key": cleaned.get("key") or self.instance.key, "kind": cleaned["kind"],
                         "products": cleaned.get("products") or [], "data": cleaned.get("data") or {},
                         "source": {"title": cleaned.get("source_title", "")}}  # fmt: skip
            try:
                Rules.from_dicts([candidate])
            except RuleError as error:
                raise forms.ValidationError({"data": str(error)}) from None
        return cleaned


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ("key", "kind", "description", "is_enabled", "is_practice", "is_operator_edited", "source_title")
    list_filter = ("kind", "is_enabled", "is_practice", "is_operator_edited")
    search_fields = ("key", "description", "source_title")

    def save_model(self, request, obj, form, change):
        # An operator's change must survive the next `catalog_load` of the bundled rules.
        obj.is_operator_edited = True
        super().save_model(request, obj, form, change)


@admin.register(CatalogFeed)
class CatalogFeedAdmin(admin.ModelAdmin):
    """Configured sources and how their fetches went (the URLs themselves come from EXCHANGEPATCH_CATALOG_SOURCES)."""

    list_display = ("url", "last_success_at", "last_attempt_at", "failing_since", "consecutive_failures")
    readonly_fields = (
        "url", "last_attempt_at", "last_success_at", "failing_since", "consecutive_failures", "last_error",
        "last_sha256",
    )  # fmt: skip

    def has_add_permission(self, request):
        return False


class CatalogChangeInline(admin.TabularInline):
    model = CatalogChange
    extra = 0
    can_delete = False
    fields = ("action", "title", "kb", "build", "source_name", "source_sha256")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CatalogRefresh)
class CatalogRefreshAdmin(admin.ModelAdmin):
    list_display = ("started_at", "outcome", "created_count", "updated_count", "scan_id")
    readonly_fields = (
        "started_at", "finished_at", "outcome", "sources", "created_count", "updated_count", "affected_levels",
        "scan_id",
    )  # fmt: skip
    inlines = (CatalogChangeInline,)

    def has_add_permission(self, request):
        return False
