"""Inventory API serializers (explicit fields). Server writes are validated by inventory.records, like sync."""

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exchangepatch.api import StrictModelSerializer, StrictPrimaryKeyRelatedField, StrictSlugRelatedField
from inventory.choices import BuildSource, ClusterKind
from inventory.models import Change, Cluster, ClusterMember, Organisation, ScanRun, Server, Site, Waiver
from inventory.records import MAX_LENGTHS, PREREQUISITE_MAX_LENGTH
from kb.engine.catalog import InvalidKBError, normalize_kb

MAX_SYNC_ITEMS = 10_000


class ClusterRefSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    role = serializers.CharField()


class ServerSerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.name", read_only=True)
    site = serializers.CharField(source="site.name", allow_null=True, default=None, read_only=True)
    site_is_internet_facing = serializers.SerializerMethodField()
    roles = serializers.ListField(source="role_list", child=serializers.CharField(), read_only=True)
    build = serializers.CharField(source="reported_build", read_only=True)
    build_short = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    cluster = serializers.SerializerMethodField()
    state = serializers.CharField(allow_null=True, read_only=True, help_text="From the latest scan")

    class Meta:
        model = Server
        fields = (
            "id", "fqdn", "name", "organisation", "site", "site_is_internet_facing", "roles", "edition", "build",
            "build_source", "build_short", "os_name", "dotnet_version", "prerequisites", "is_forefront_installed",
            "environment", "tags", "owner", "last_reported", "cluster", "is_clustered_mailbox_server", "state",
            "sync_source", "created", "last_updated",
        )  # fmt: skip
        read_only_fields = fields

    def get_site_is_internet_facing(self, server) -> bool:
        return bool(server.site and server.site.is_internet_facing)

    def get_build_short(self, server) -> str | None:
        parts = (server.build_major, server.build_minor, server.build_number, server.build_revision)
        return ".".join(map(str, parts)) if None not in parts else None

    def get_tags(self, server) -> list[str]:
        return sorted(tag.name for tag in server.tags.all())

    @extend_schema_field(ClusterRefSerializer(allow_null=True))
    def get_cluster(self, server) -> dict | None:
        member = getattr(server, "cluster_membership", None)
        if member is None:
            return None
        return {
            "name": member.cluster.name,
            "kind": member.cluster.kind,
            "role": "active" if member.is_active else "passive",
        }


# Patterns the schema states for what inventory.records accepts. Surrounding white space is stripped (Python strips
# \x1c-\x1f as well, which JSON Schema's \s does not name); the FQDN is read case-insensitively, trailing dots dropped.
_SPACE = r"[\s\x1c-\x1f]*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
FQDN_PATTERN = rf"^{_SPACE}{_LABEL}(?:\.{_LABEL})+\.*{_SPACE}$"
DOTNET_PATTERN = rf"^{_SPACE}(?:[0-9]+(?:\.[0-9]+){{1,3}})?{_SPACE}$"


def _text(name: str, **options) -> serializers.CharField:
    return serializers.CharField(max_length=MAX_LENGTHS[name], required=False, allow_blank=True, **options)


@extend_schema_field(
    {"oneOf": [{"type": "array", "items": {"type": "string", "maxLength": MAX_LENGTHS["roles"]}},
               {"type": "string", "maxLength": MAX_LENGTHS["roles"]}],
     "description": "A list, or a comma- or semicolon-separated text; names as Get-ExchangeServer gives them"}
)  # fmt: skip
class RolesField(serializers.Field):
    pass


@extend_schema_field(
    {"oneOf": [{"type": "array", "items": {"type": "string", "maxLength": MAX_LENGTHS["tags"]}}, {"type": "string"}],
     "description": "A list, or a comma- or semicolon-separated text"}
)  # fmt: skip
class TagsField(serializers.Field):
    pass


class PrerequisitesSerializer(serializers.Serializer):
    filter_pack = serializers.CharField(
        max_length=PREREQUISITE_MAX_LENGTH, required=False, allow_blank=True, allow_null=True
    )
    ucma = serializers.CharField(max_length=PREREQUISITE_MAX_LENGTH, required=False, allow_blank=True, allow_null=True)
    vcredist_2012 = serializers.CharField(
        max_length=PREREQUISITE_MAX_LENGTH, required=False, allow_blank=True, allow_null=True
    )
    vcredist_2013 = serializers.CharField(
        max_length=PREREQUISITE_MAX_LENGTH, required=False, allow_blank=True, allow_null=True
    )
    url_rewrite = serializers.CharField(
        max_length=PREREQUISITE_MAX_LENGTH, required=False, allow_blank=True, allow_null=True
    )


class ServerUpdateSerializer(serializers.Serializer):
    """Documents the writable fields; validation itself is inventory.records.server_record_from_mapping. Each limit
    is the length of the column the value is stored in."""

    name = _text("name")
    organisation = _text("organisation", help_text="Default for a new server: the FQDN's domain part")
    site = _text("site", help_text="Empty: no site")
    site_is_internet_facing = serializers.BooleanField(required=False)
    roles = RolesField(required=False)
    edition = _text("edition")
    build = _text("build", help_text="Any form build_info accepts; empty: no build")
    build_source = serializers.ChoiceField(
        choices=BuildSource.choices,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="Guessed from the form",
    )
    os_name = _text("os_name")
    dotnet_version = _text("dotnet_version", help_text="e.g. 4.8 or 4.7.2")
    prerequisites = PrerequisitesSerializer(required=False)
    is_forefront_installed = serializers.BooleanField(required=False)
    environment = _text("environment")
    tags = TagsField(required=False)
    owner = _text("owner")
    last_reported = serializers.DateTimeField(required=False, allow_null=True, help_text="RFC 3339, with a zone")
    cluster = _text("cluster", help_text="Empty: in no cluster")
    cluster_kind = serializers.ChoiceField(
        choices=ClusterKind.choices, required=False, allow_blank=True, allow_null=True
    )
    cluster_role = serializers.ChoiceField(
        choices=["active", "passive"], required=False, allow_blank=True, allow_null=True
    )

    is_clustered_mailbox_server = serializers.BooleanField(
        required=False,
        help_text="A 2007 clustered mailbox server (IsMemberOfCluster: Yes): its nodes are the members of the cluster "
        "named after it; with cluster_kind CCR or SCC, that cluster is created",
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["dotnet_version"].validators.append(RegexValidator(DOTNET_PATTERN))
        return fields


class ServerWriteSerializer(ServerUpdateSerializer):
    fqdn = serializers.CharField(max_length=MAX_LENGTHS["fqdn"], help_text="Read case-insensitively; stored lower-case")

    def get_fields(self):
        fields = super().get_fields()
        fields["fqdn"].validators.append(RegexValidator(FQDN_PATTERN))
        return fields


class SyncRequestSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=100, min_length=1)
    items = serializers.ListField(child=ServerWriteSerializer(), max_length=MAX_SYNC_ITEMS)


class SyncResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    fqdn = serializers.CharField()
    action = serializers.ChoiceField(choices=["created", "updated", "unchanged"])
    changed = serializers.ListField(child=serializers.CharField())


class SyncResponseSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    atomic = serializers.BooleanField()
    counts = serializers.DictField(child=serializers.IntegerField())
    results = SyncResultSerializer(many=True)
    errors = serializers.DictField(child=serializers.DictField(child=serializers.CharField()))


class SiteSerializer(StrictModelSerializer):
    organisation = StrictSlugRelatedField(slug_field="name", queryset=Organisation.objects.all())
    server_count = serializers.SerializerMethodField()

    class Meta:
        model = Site
        fields = ("id", "organisation", "name", "is_internet_facing", "server_count", "created", "last_updated")

    def get_server_count(self, site) -> int:
        # Lists annotate it in SQL; a site just created or changed is counted once.
        counted = getattr(site, "server_count", None)
        return counted if counted is not None else site.servers.count()


class ClusterMemberSerializer(serializers.ModelSerializer):
    fqdn = serializers.CharField(source="server.fqdn")

    class Meta:
        model = ClusterMember
        fields = ("fqdn", "is_active")


class ClusterSerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.name")
    members = ClusterMemberSerializer(many=True)

    class Meta:
        model = Cluster
        fields = ("id", "organisation", "name", "kind", "members", "created", "last_updated")


class WaiverSerializer(StrictModelSerializer):
    server = StrictSlugRelatedField(slug_field="fqdn", queryset=Server.objects.all(), required=False, allow_null=True)
    site = StrictPrimaryKeyRelatedField(queryset=Site.objects.all(), required=False, allow_null=True)
    scope = serializers.SerializerMethodField()

    class Meta:
        model = Waiver
        fields = (
            "id", "server", "site", "scope", "target_kind", "target_kb", "reason", "approver", "ticket", "expires_at",
            "created", "last_updated",
        )  # fmt: skip

    def get_scope(self, waiver) -> str:
        return "server" if waiver.server_id else "site" if waiver.site_id else "all"

    def validate_target_kb(self, value):
        try:
            return normalize_kb(value)
        except InvalidKBError as error:
            raise serializers.ValidationError(str(error)) from None

    def validate(self, attrs):
        server = attrs.get("server", getattr(self.instance, "server", None))
        site = attrs.get("site", getattr(self.instance, "site", None))
        if server is not None and site is not None:
            raise serializers.ValidationError(
                {"site": ["give a server or a site (or neither for every server), not both"]}
            )
        return attrs


class ScanSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScanRun
        fields = (
            "id", "status", "trigger", "started_at", "finished_at", "as_of", "server_count", "distinct_count", "counts",
            "newly_noncompliant", "newly_compliant", "newly_excepted", "baseline", "chunk_count", "chunks_done",
            "carried_count", "error", "created",
        )  # fmt: skip


class ScanStartedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    status_url = serializers.CharField()


class UpdateRefSerializer(serializers.Serializer):
    name = serializers.CharField()
    kb = serializers.CharField(allow_null=True)
    build = serializers.CharField()
    esu_only = serializers.BooleanField(help_text="An Extended Security Update: only for organisations enrolled in ESU")


class VerdictSerializer(serializers.Serializer):
    """The compliance_report --json object."""

    fqdn = serializers.CharField()
    state = serializers.CharField()
    current = serializers.DictField(child=serializers.CharField(allow_null=True))
    install = UpdateRefSerializer(allow_null=True)
    supersedes = serializers.ListField(child=serializers.CharField())
    missing_prerequisites = serializers.ListField(child=serializers.CharField())
    days_behind = serializers.IntegerField(allow_null=True)
    is_supported = serializers.BooleanField(allow_null=True, help_text="The level is supported on the scan date")
    latest_security_update = UpdateRefSerializer(
        allow_null=True, help_text="The newest security update released for the server's level"
    )
    has_latest_security_update = serializers.BooleanField(
        allow_null=True, help_text="Runs the newest security update of its level; null when it cannot be told"
    )
    reasons = serializers.ListField(child=serializers.CharField())


class SummarySerializer(serializers.Serializer):
    scan = serializers.IntegerField(allow_null=True)
    as_of = serializers.DateField(allow_null=True)
    servers = serializers.IntegerField()
    by_state = serializers.DictField(child=serializers.IntegerField())
    by_product_level = serializers.ListField(child=serializers.DictField())
    overdue = serializers.DictField(child=serializers.IntegerField())
    newly_noncompliant = serializers.IntegerField()


class ChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Change
        fields = ("seq", "kind", "object_id", "key", "action", "data", "created")


class ChangesPageSerializer(serializers.Serializer):
    results = ChangeSerializer(many=True)
    next_cursor = serializers.CharField()
    has_more = serializers.BooleanField()


class PlanSerializer(serializers.Serializer):
    server = serializers.CharField()
    current = serializers.DictField(child=serializers.CharField(allow_null=True))
    target = serializers.DictField(child=serializers.CharField(allow_null=True))
    cluster = serializers.DictField(
        child=serializers.CharField(allow_null=True), allow_null=True,
        help_text="For a cluster or DAG member: the cluster's name, kind and this server's role; steps keep the "
        "numbers of the whole cluster plan",
    )  # fmt: skip
    steps = serializers.ListField(child=serializers.DictField())
    notes = serializers.ListField(child=serializers.CharField())


class RolloutSerializer(serializers.Serializer):
    preparation = serializers.ListField(
        child=serializers.DictField(), help_text="Active Directory preparation, once per organisation, before wave 1"
    )
    waves = serializers.ListField(child=serializers.DictField())
    blocked = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))
    up_to_date = serializers.ListField(child=serializers.CharField())


class NeededBySerializer(serializers.Serializer):
    kb = serializers.CharField()
    titles = serializers.ListField(child=serializers.CharField(), help_text="Catalog rows with this KB")
    scan = serializers.IntegerField(allow_null=True)
    server_count = serializers.IntegerField(help_text="Servers that miss this update")
    install_targets = serializers.IntegerField(help_text="Of those, servers for which it is the update to install")
    servers = serializers.ListField(child=serializers.CharField(), help_text="One page of them, by FQDN")
    next = serializers.URLField(allow_null=True, help_text="The next page of servers")
    previous = serializers.URLField(allow_null=True)


class FixMissingSerializer(serializers.Serializer):
    kb = serializers.CharField()
    title = serializers.CharField()
    carried_by = serializers.ListField(child=serializers.CharField())
    lacking = serializers.ListField(child=serializers.CharField())
    unknown = serializers.ListField(child=serializers.CharField())
    excepted = serializers.ListField(child=serializers.CharField())
    scan = serializers.IntegerField(allow_null=True)
    lacking_count = serializers.IntegerField()
    unknown_count = serializers.IntegerField()
    excepted_count = serializers.IntegerField()
    present_count = serializers.IntegerField()
    not_applicable_count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True, help_text="The next page of servers (lacking, unknown, excepted)")
    previous = serializers.URLField(allow_null=True)
