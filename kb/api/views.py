"""Catalog API: products, levels, updates, fixes, rules (read), build resolution, fix and update queries."""

import django_filters
from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from exchangepatch.api import error_response
from exchangepatch.filters import StrictFilterSet
from kb.api import serializers
from kb.engine.catalog import InvalidKBError, normalize_kb
from kb.engine.lookup import build_info
from kb.models import Fix, Level, Product, Rule, Update
from kb.selectors import catalog_get, catalog_status, today


class UpdateFilter(StrictFilterSet):
    product = django_filters.CharFilter(field_name="product__key")
    level = django_filters.CharFilter(field_name="level__name")
    kb = django_filters.CharFilter(field_name="kb", method="filter_kb")

    class Meta:
        model = Update
        fields = ("product", "level", "kind", "kb", "is_security", "is_recalled")

    def filter_kb(self, queryset, name, value):
        try:
            return queryset.filter(kb=normalize_kb(value))
        except InvalidKBError:
            return queryset.none()


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Product.objects.all()
    serializer_class = serializers.ProductSerializer


class LevelViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Level.objects.select_related("product")
    serializer_class = serializers.LevelSerializer
    filterset_fields = {"product__key": ["exact"], "kind": ["exact"], "name": ["exact"]}


class UpdateViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Update.objects.select_related("product", "level").annotate(fix_count=Count("fixes"))
    serializer_class = serializers.UpdateSerializer
    filterset_class = UpdateFilter


class FixViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Fix.objects.prefetch_related("updates__level__product")
    serializer_class = serializers.FixSerializer
    lookup_field = "kb"
    filterset_fields = {"kb": ["exact"]}


class RuleViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Rule.objects.all()
    serializer_class = serializers.RuleSerializer
    filterset_fields = {"kind": ["exact"], "is_enabled": ["exact"]}


class BuildResolveView(GenericAPIView):
    """Resolve a build in any form `build_info` accepts; the same object as `build_info --json`."""

    serializer_class = serializers.BuildInfoSerializer
    required_permissions = {"GET": ["kb.view_update"]}
    pagination_class = None
    filter_backends = []

    @extend_schema(
        parameters=[OpenApiParameter("build", OpenApiTypes.STR, required=True, description="e.g. 15.02.1544.004")],
        responses=serializers.BuildInfoSerializer,
    )
    def get(self, request):
        text = request.query_params.get("build")
        if not text:
            return error_response("invalid input", 400, {"build": ["required"]})
        info = build_info(text, catalog_get(), today=today())
        if info["error"]:
            return error_response("invalid input", 400, {"build": [info["error"]]})
        return Response(info)


class CatalogStatusView(GenericAPIView):
    """How fresh the catalog is: newest import, each configured source's fetches, and staleness warnings."""

    serializer_class = serializers.CatalogStatusSerializer
    pagination_class = None
    filter_backends = []
    required_permissions = {"GET": ["kb.view_catalogsource"]}

    def get(self, request):
        return Response(serializers.CatalogStatusSerializer(catalog_status()).data)
