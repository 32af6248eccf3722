"""Catalog API serializers (read-only; explicit fields)."""

from rest_framework import serializers

from kb.models import Fix, Level, Product, Rule, Update


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ("id", "key", "name", "is_cumulative")


class LevelSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key")

    class Meta:
        model = Level
        fields = ("id", "product", "name", "kind", "build", "release_date", "kb")


class UpdateSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key")
    level = serializers.CharField(source="level.name")
    fix_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Update
        fields = (
            "id", "product", "level", "kind", "name", "kb", "build", "release_date", "is_security", "is_recalled",
            "revision", "source_names", "alternate_builds", "fix_count", "last_updated",
        )  # fmt: skip


class FixSerializer(serializers.ModelSerializer):
    updates = serializers.SerializerMethodField()

    class Meta:
        model = Fix
        fields = ("id", "kb", "title", "updates")

    def get_updates(self, fix) -> list[str]:
        return [str(update) for update in fix.updates.all()]


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rule
        fields = (
            "id", "key", "kind", "products", "description", "data", "source_title", "source_url", "source_document",
            "source_date", "is_practice", "is_enabled", "is_operator_edited", "last_updated",
        )  # fmt: skip


class BuildInfoSerializer(serializers.Serializer):
    """The same object as `build_info --json`."""

    input = serializers.CharField()
    build = serializers.CharField(allow_null=True)
    form = serializers.ChoiceField(
        choices=["short", "long", "admin_display", "ad_serial_number"],
        allow_null=True,
        help_text="How the build was written",
    )
    product = serializers.CharField(allow_null=True)
    level = serializers.CharField(allow_null=True)
    update = serializers.CharField(allow_null=True)
    kb = serializers.CharField(allow_null=True)
    release_date = serializers.DateField(allow_null=True)
    exact = serializers.BooleanField()
    is_supported = serializers.BooleanField()
    is_latest = serializers.BooleanField(allow_null=True, help_text="null: newer than every build the catalog lists")
    sources = serializers.DictField(
        child=serializers.CharField(), help_text="The source each of build, kb and release_date was taken from"
    )
    notes = serializers.ListField(child=serializers.CharField())
    catalog_as_of = serializers.DateField(allow_null=True, help_text="Date of the newest build-number source")
    error = serializers.CharField(allow_null=True)


class CatalogSourceStatusSerializer(serializers.Serializer):
    url = serializers.CharField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)


class CatalogStatusSerializer(serializers.Serializer):
    imported_at = serializers.DateTimeField(allow_null=True)
    age_days = serializers.FloatField(allow_null=True)
    stale_after_days = serializers.IntegerField()
    sources = CatalogSourceStatusSerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField())
