"""Inventory API: servers (by id or FQDN), CMDB sync, sites, clusters, waivers, scans, verdicts, plans, changes."""

from __future__ import annotations

import hashlib
from collections import Counter

from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from exchangepatch.api import ErrorSerializer, ETagMixin, StablePagination, error_response, etag_for
from exchangepatch.text import digits, shown
from inventory.api import serializers
from inventory.api.filters import ServerFilter, WaiverFilter
from inventory.choices import ScanTrigger
from inventory.models import Change, Cluster, ScanRun, Server, ServerResult, Site, Waiver
from inventory.needs import EXCEPTED, LACKING, UNKNOWN, fix_need, update_need
from inventory.planning import UnknownServerError, plan_rollout, plan_server
from inventory.records import fqdn_normalised, records_from_items, server_record_from_mapping
from inventory.scans import ScanBusyError
from inventory.selectors import compliance_summary, result_as_dict, results_latest, scan_latest, summary_key
from inventory.services import (
    SiteInUse,
    UpsertConflict,
    server_delete,
    server_upsert_many,
    site_delete,
    waiver_delete,
    waiver_save,
)
from inventory.tasks import BrokerUnavailableError, scan_launch
from kb.engine.catalog import InvalidKBError, normalize_kb
from kb.engine.planning import PlanError
from kb.models import Update

ERRORS = {400: OpenApiResponse(description="invalid input"), 404: OpenApiResponse(description="not found")}


def parse_flag(request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise FlagError(name, value)


class FlagError(ValueError):
    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value
        super().__init__(f"{value!r} is not true or false")


def server_queryset():
    latest = ScanRun.objects.filter(status="succeeded").order_by("-pk").values("pk")[:1]
    state = ServerResult.objects.filter(scan_id=Subquery(latest), server=OuterRef("pk")).values("state")[:1]
    return (
        Server.objects.select_related("organisation", "site", "cluster_membership__cluster")
        .prefetch_related("tags")
        .annotate(state=Subquery(state))
    )


class ServerViewSet(ETagMixin, viewsets.ModelViewSet):
    """Servers; `{id}` may be the numeric id or the FQDN (case-insensitive)."""

    serializer_class = serializers.ServerSerializer
    filterset_class = ServerFilter
    lookup_value_regex = r"[^/]+"
    required_permissions = {
        "sync": ["inventory.add_server", "inventory.change_server"],
        "compliance": ["inventory.view_server", "inventory.view_serverresult"],
        "plan": ["inventory.view_server"],
    }

    def get_queryset(self):
        return server_queryset()

    def get_object(self):
        value = self.kwargs[self.lookup_field]
        queryset = self.get_queryset()
        number = digits(value)
        lookup = {"pk": number} if number is not None and number < 2**63 else {"fqdn": fqdn_normalised(value)}
        server = queryset.filter(**lookup).first()
        if server is None:
            raise NotFound(f"server {value} is not in the inventory")
        return server

    @extend_schema(request=serializers.ServerWriteSerializer, responses={201: serializers.ServerSerializer, **ERRORS})
    def create(self, request, *args, **kwargs):
        if not isinstance(request.data, dict):
            return error_response("invalid input", 400, {"non_field_errors": ["expected a JSON object"]})
        record, problems = server_record_from_mapping(request.data)
        if problems:
            return error_response("invalid input", 400, {key: [value] for key, value in problems.items()})
        exists = error_response(f"server {record.fqdn} already exists: use PUT/PATCH or the sync endpoint", 409)
        if Server.objects.filter(fqdn=record.fqdn).exists():
            return exists
        with transaction.atomic():
            result = server_upsert_many([record], source=self._source(request))[0]
            if result.action != "created":  # another writer created it meanwhile: this request changes nothing
                transaction.set_rollback(True)
                return exists
        return Response(self.get_serializer(self.get_queryset().get(pk=result.server_id)).data, status=201)

    @extend_schema(request=serializers.ServerUpdateSerializer, responses={200: serializers.ServerSerializer, **ERRORS})
    def update(self, request, *args, **kwargs):
        """PUT and PATCH both change the fields given and leave the others (the CMDB owns what it sends)."""
        if not isinstance(request.data, dict):
            return error_response("invalid input", 400, {"non_field_errors": ["expected a JSON object"]})
        with transaction.atomic():
            server = self.get_object()
            locked = Server.objects.select_for_update().get(pk=server.pk)
            self.check_if_match(request, locked)
            data = dict(request.data)
            if "fqdn" in data and fqdn_normalised(str(data["fqdn"]).strip()) != server.fqdn:
                return error_response("invalid input", 400, {"fqdn": ["cannot be changed; delete and create instead"]})
            data["fqdn"] = server.fqdn
            record, problems = server_record_from_mapping(data)
            if problems:
                return error_response("invalid input", 400, {key: [value] for key, value in problems.items()})
            try:
                server_upsert_many([record], source=self._source(request))
            except UpsertConflict as conflict:
                return error_response(
                    str(conflict), 409, {"fqdn": [f"{server.fqdn} is being changed by another writer"]}
                )
        fresh = self.get_object()
        response = Response(self.get_serializer(fresh).data)
        response["ETag"] = etag_for(fresh)
        return response

    @extend_schema(request=serializers.ServerUpdateSerializer, responses={200: serializers.ServerSerializer, **ERRORS})
    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            server = self.get_object()
            self.check_if_match(request, Server.objects.select_for_update().get(pk=server.pk))
            server_delete(server)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _source(self, request) -> str:
        return f"api:{request.user.get_username()}"

    @extend_schema(
        request=serializers.SyncRequestSerializer,
        parameters=[
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, description="report what would happen; write nothing"),
            OpenApiParameter("atomic", OpenApiTypes.BOOL, description="default true: one bad item → nothing written"),
        ],
        responses={
            200: serializers.SyncResponseSerializer,
            400: OpenApiResponse(description="invalid items"),
            413: OpenApiResponse(description="body too large"),
        },
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def sync(self, request):
        """Upsert up to 10,000 servers by FQDN (case-insensitive); idempotent; `?dry_run=true`, `?atomic=false`."""
        try:
            dry_run = parse_flag(request, "dry_run", False)
            atomic = parse_flag(request, "atomic", True)
        except FlagError as error:
            return error_response("invalid input", 400, {error.name: [str(error)]})
        body = request.data
        if not isinstance(body, dict):
            return error_response(
                "invalid input", 400, {"non_field_errors": ["expected a JSON object with source and items"]}
            )
        problems = {}
        unknown = sorted(set(body) - {"source", "items"})
        for key in unknown:
            problems[key] = ["unknown field"]
        source, items = body.get("source"), body.get("items")
        if not isinstance(source, str) or not source.strip() or len(source) > 100:
            problems["source"] = ["required: a text of at most 100 characters naming the CMDB"]
        if not isinstance(items, list):
            problems["items"] = ["required: a list of servers"]
        elif len(items) > serializers.MAX_SYNC_ITEMS:
            problems["items"] = [f"{len(items)} items is more than the limit of {serializers.MAX_SYNC_ITEMS}"]
        if problems:
            return error_response("invalid input", 400, problems)
        records, by_index = records_from_items(enumerate(items))
        indexes = [index for index, _ in records]
        item_errors = {str(index): problems for index, problems in sorted(by_index.items())}
        if item_errors and atomic:
            return error_response(
                f"{len(item_errors)} item(s) invalid; nothing was written", 400, {"items": item_errors}
            )
        try:
            results = server_upsert_many([record for _, record in records], source=source.strip(), dry_run=dry_run)
        except UpsertConflict as conflict:
            return error_response(
                str(conflict),
                409,
                {
                    "items": {
                        str(indexes[n]): {"fqdn": [f"{fqdn} is being changed by another writer"]}
                        for n, fqdn in enumerate(conflict.fqdns)
                    }
                },
            )
        counts = Counter(result.action for result in results)
        return Response(
            {
                "dry_run": dry_run,
                "atomic": atomic,
                "counts": {
                    "created": counts["created"],
                    "updated": counts["updated"],
                    "unchanged": counts["unchanged"],
                    "invalid": len(item_errors),
                },
                "results": [
                    {"index": indexes[r.index], "fqdn": r.fqdn, "action": r.action, "changed": r.changed}
                    for r in results
                ],
                "errors": item_errors,
            }
        )

    @extend_schema(responses={200: serializers.VerdictSerializer, **ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def compliance(self, request, pk=None):
        server = self.get_object()
        result = results_latest(fqdn=server.fqdn).first()
        if result is None:
            return error_response(f"no verdict yet for {server.fqdn}: run a scan", 404)
        return Response(result_as_dict(result))

    @extend_schema(
        parameters=[OpenApiParameter("target", OpenApiTypes.STR, description="an update, a KB, a level (CU15) or SE")],
        responses={200: serializers.PlanSerializer, **ERRORS},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def plan(self, request, pk=None):
        server = self.get_object()
        try:
            plan = plan_server(server.fqdn, target=request.query_params.get("target") or None)
        except (PlanError, UnknownServerError) as error:
            return error_response("invalid input", 400, {"target": [str(error)]})
        return Response(plan.as_dict())


class SiteViewSet(viewsets.ModelViewSet):
    serializer_class = serializers.SiteSerializer
    filterset_fields = {"name": ["exact"], "is_internet_facing": ["exact"], "organisation__name": ["exact"]}

    def get_queryset(self):
        return Site.objects.select_related("organisation").annotate(server_count=Count("servers"))

    def perform_destroy(self, instance):
        try:
            site_delete(instance)
        except SiteInUse as error:
            raise ValidationError({"site": [str(error)]}) from None


class ClusterViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.ClusterSerializer
    filterset_fields = {"kind": ["exact"], "name": ["exact"]}

    def get_queryset(self):
        return Cluster.objects.select_related("organisation").prefetch_related("members__server")


class WaiverViewSet(ETagMixin, viewsets.ModelViewSet):
    serializer_class = serializers.WaiverSerializer
    filterset_class = WaiverFilter

    def get_queryset(self):
        return Waiver.objects.select_related("server", "site")

    def perform_create(self, serializer):
        waiver = Waiver(**serializer.validated_data)
        waiver_save(waiver, is_new=True)
        serializer.instance = waiver

    def perform_update(self, serializer):
        with transaction.atomic():
            self.check_if_match(self.request, Waiver.objects.select_for_update().get(pk=serializer.instance.pk))
            for name, value in serializer.validated_data.items():
                setattr(serializer.instance, name, value)
            waiver_save(serializer.instance, is_new=False)

    def perform_destroy(self, instance):
        with transaction.atomic():
            self.check_if_match(self.request, Waiver.objects.select_for_update().get(pk=instance.pk))
            waiver_delete(instance)


class ScanViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = ScanRun.objects.all()
    serializer_class = serializers.ScanSerializer
    filterset_fields = {"status": ["exact"]}

    @extend_schema(
        request=None,
        responses={
            202: serializers.ScanStartedSerializer,
            409: OpenApiResponse(ErrorSerializer, description="a scan of the estate is already pending or running"),
            503: OpenApiResponse(ErrorSerializer, description="the task broker is unavailable; nothing was started"),
        },
    )
    def create(self, request, *args, **kwargs):
        """Start a scan; it runs in the workers (or at once when Celery is eager). Poll status_url."""
        try:
            scan = scan_launch(trigger=ScanTrigger.API)
        except ScanBusyError as busy:
            active = ScanRun.objects.get(pk=busy.scan_id)
            url = request.build_absolute_uri(f"/api/v1/scans/{active.pk}/")
            return error_response(
                f"scan {active.pk} of the estate is {active.status}; poll {url} (two scans of one scope never overlap)",
                status.HTTP_409_CONFLICT,
            )
        except BrokerUnavailableError:
            return error_response(
                "the task broker is unavailable, so the scan was not started; try again later",
                status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        url = request.build_absolute_uri(f"/api/v1/scans/{scan.pk}/")
        return Response({"id": scan.pk, "status": scan.status, "status_url": url}, status=status.HTTP_202_ACCEPTED)


class ComplianceSummaryView(GenericAPIView):
    """Counts by state, by product and level, and overdue counts, from the latest scan."""

    serializer_class = serializers.SummarySerializer
    required_permissions = {"GET": ["inventory.view_serverresult"]}
    pagination_class = None
    filter_backends = []

    def get(self, request):
        """The summary of a succeeded scan never changes: it carries an ETag (the scan), and a client that sends it
        back in If-None-Match gets 304 for as long as that scan is the latest."""
        scan = scan_latest()
        if scan is None:
            return Response(compliance_summary(None))
        tag = f'W/"summary-{hashlib.sha256(repr(summary_key(scan)).encode()).hexdigest()[:16]}"'
        sent = {value.removeprefix("W/") for value in parse_etags(request.headers.get("If-None-Match", ""))}
        if tag.removeprefix("W/") in sent or "*" in sent:  # weak comparison, as If-None-Match asks
            response = Response(status=status.HTTP_304_NOT_MODIFIED)
        else:
            response = Response(compliance_summary(scan))
        response["ETag"] = tag
        return response


class RolloutView(GenericAPIView):
    """The rollout plan JSON (as `rollout --format json`) for a site or the whole estate."""

    serializer_class = serializers.RolloutSerializer
    required_permissions = {"GET": ["inventory.view_server"]}
    pagination_class = None
    filter_backends = []

    @extend_schema(
        parameters=[OpenApiParameter("site", OpenApiTypes.STR)],
        responses={200: serializers.RolloutSerializer, **ERRORS},
    )
    def get(self, request):
        site = request.query_params.get("site") or None
        if site and not Site.objects.filter(name=site).exists():
            return error_response(f"site {site} is not in the inventory", 404)
        return Response(plan_rollout(site=site).as_dict())


class ChangesView(GenericAPIView):
    """Every create, update and delete of servers, waivers and verdicts after a cursor, in commit order."""

    serializer_class = serializers.ChangesPageSerializer
    required_permissions = {"GET": ["inventory.view_change"]}
    pagination_class = None
    filter_backends = []

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after",
                {"type": "string", "pattern": "^[0-9]{1,18}$"},
                description="the next_cursor of the previous page; 0 to start",
            ),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, description="default 500"),
        ],
        responses={200: serializers.ChangesPageSerializer, **ERRORS},
    )
    def get(self, request):
        problems = {}
        after_text = request.query_params.get("after", "0")
        limit_text = request.query_params.get("limit", "500")
        after, limit = digits(after_text), digits(limit_text)
        if after is None or len(after_text) > 18:
            problems["after"] = [f"{shown(after_text)!r} is not a cursor (a non-negative integer from next_cursor)"]
        if limit is None or not 1 <= limit <= 1000:
            problems["limit"] = [f"{shown(limit_text)!r} is not between 1 and 1000"]
        if problems:
            return error_response("invalid input", 400, problems)
        rows = list(Change.objects.filter(seq__gt=after).order_by("seq")[: limit + 1])
        page, has_more = rows[:limit], len(rows) > limit
        return Response(
            {
                "results": serializers.ChangeSerializer(page, many=True).data,
                "next_cursor": str(page[-1].seq if page else after),
                "has_more": has_more,
            }
        )


PAGE_PARAMETERS = [
    OpenApiParameter("cursor", OpenApiTypes.STR, description="from the `next` or `previous` link of a page"),
    OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, description="servers a page; 100"),
]


class FqdnPagination(StablePagination):
    """The servers of a KB query, a page at a time by FQDN (a keyset: a deep page costs what the first one does)."""

    ordering = "fqdn"

    def page_links(self) -> dict:
        return {"next": self.get_next_link(), "previous": self.get_previous_link()}


class FixMissingView(GenericAPIView):
    """Servers that lack a fix (and those that cannot be told, are excepted, or run another product).

    `lacking`, `unknown` and `excepted` hold the servers of one page (`limit`, default 100; `next` and `previous`
    links by FQDN), split by why; the `*_count` fields count the whole scan."""

    serializer_class = serializers.FixMissingSerializer
    required_permissions = {"GET": ["kb.view_fix", "inventory.view_server"]}
    pagination_class = FqdnPagination
    filter_backends = []

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: serializers.FixMissingSerializer, **ERRORS})
    def get(self, request, kb: str):
        try:
            kb = normalize_kb(kb)
        except InvalidKBError as error:
            return error_response("invalid input", 400, {"kb": [str(error)]})
        need = fix_need(kb, scan=scan_latest())
        if need is None:
            return error_response(f"fix {kb} is not in the catalog", 404)
        page = self.paginate_queryset(need.results) or []
        lists = {LACKING: [], UNKNOWN: [], EXCEPTED: []}
        for result in page:
            lists[result.status].append(result.server.fqdn)
        return Response(
            {
                "kb": need.kb, "title": need.title, "carried_by": need.carriers, "scan": need.scan.pk if need.scan else None,
                **lists, "lacking_count": need.lacking_count, "unknown_count": need.unknown_count,
                "excepted_count": need.excepted_count, "present_count": need.present,
                "not_applicable_count": need.not_applicable, **self.paginator.page_links(),
            }
        )  # fmt: skip


class UpdateNeededByView(GenericAPIView):
    """How many servers (latest scan) miss an update, and which: `servers` is one page (`limit`, default 100;
    `next` and `previous` links by FQDN); `server_count` counts them all."""

    serializer_class = serializers.NeededBySerializer
    required_permissions = {"GET": ["kb.view_update", "inventory.view_server"]}
    pagination_class = FqdnPagination
    filter_backends = []

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: serializers.NeededBySerializer, **ERRORS})
    def get(self, request, kb: str):
        try:
            kb = normalize_kb(kb)
        except InvalidKBError as error:
            return error_response("invalid input", 400, {"kb": [str(error)]})
        titles = sorted({str(u) for u in Update.objects.filter(kb=kb).select_related("product", "level")})
        if not titles:
            return error_response(f"update {kb} is not in the catalog", 404)
        need = update_need(scan_latest(), kb=kb)
        page = self.paginate_queryset(need.servers.values("fqdn")) or []
        return Response(
            {
                "kb": kb, "titles": titles, "scan": need.scan.pk if need.scan else None,
                "server_count": need.server_count, "install_targets": need.install_targets,
                "servers": [row["fqdn"] for row in page], **self.paginator.page_links(),
            }
        )  # fmt: skip
