"""What every API endpoint shares: cursor pagination, one error shape (404s too), strict fields, the request guard, ETags."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import models
from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from exchangepatch.text import NUL, digits, shown

# -- pagination ------------------------------------------------------------------------------------


class StablePagination(CursorPagination):
    """Cursor pagination on the primary key: stable while rows are added or changed during a sync."""

    ordering = "pk"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def get_page_size(self, request):
        """`limit` must be 1 to max_page_size: anything else (null, 0, 5000, "²") is a 400, not silently the default."""
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        limit = digits(text)
        if limit is None or not 1 <= limit <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"{shown(text)!r} is not a number from 1 to {self.max_page_size}"]}
            )
        return limit

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({"cursor": ["not a cursor from a previous page's next link"]}) from None


# -- errors ----------------------------------------------------------------------------------------


def exception_handler(error, context):
    """One error shape: {"detail": "...", "errors": {field: [reasons]}} (errors only for field problems)."""
    response = drf_exception_handler(error, context)
    if response is None:
        return None
    data = response.data
    if isinstance(error, exceptions.ValidationError):
        body = {"detail": "invalid input", "errors": data if isinstance(data, dict) else {"non_field_errors": data}}
    elif isinstance(data, dict) and "detail" in data:
        body = {"detail": str(data["detail"])}
    else:
        body = {"detail": str(data)}
    response.data = body
    return response


def error_response(detail: str, status_code: int, errors: dict | None = None) -> Response:
    body = {"detail": detail} | ({"errors": errors} if errors is not None else {})
    return Response(body, status=status_code)


def not_found(request, exception=None):
    """404 in the API's error shape under /api/ (Django's own HTML page elsewhere)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"{shown(request.path, limit=200)} is not an API endpoint"}, status=404)
    return page_not_found(request, exception)


class ApiRequestGuardMiddleware:
    """Refuse, with a JSON 4xx, what would otherwise reach the database as an error: an oversized body (413 with the
    limit, before Django reads it) and a NUL character in the path or a query parameter (PostgreSQL text cannot hold
    one; NUL in a body is refused by JSONParser, naming the field)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number"}, status=status.HTTP_400_BAD_REQUEST)
        if limit and length > limit:
            return JsonResponse(
                {"detail": f"request body of {length} bytes is larger than the limit of {limit} bytes"},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        if "\x00" in request.path:
            return JsonResponse({"detail": f"the path {NUL}"}, status=status.HTTP_400_BAD_REQUEST)
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            errors = {
                shown(name): [f"the name {NUL}" if "\x00" in name else NUL]
                for name, value in parse_qsl(query, keep_blank_values=True)
                if "\x00" in name or "\x00" in value
            }
            if errors:
                return JsonResponse({"detail": "invalid input", "errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        return self.get_response(request)


# -- strict fields: what the schema says a value is, nothing more --------------------------------------


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only; DRF's own also takes 0, 1, "yes" and "off", which the schema's boolean does not."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


class StrictCharField(serializers.CharField):
    """Text only; DRF's own also turns numbers into text, which the schema's string does not allow."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """An integer id only; DRF's own also takes "3", which the schema's integer does not."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


class StrictSlugRelatedField(serializers.SlugRelatedField):
    """A non-empty text only; DRF's own reads "" as null, so `server: ""` meant "every server"."""

    def run_validation(self, data=serializers.empty):
        if data == "":
            raise serializers.ValidationError("may not be empty: give a value, or null where null is allowed")
        if data is not None and data is not serializers.empty and not isinstance(data, str):
            self.fail("invalid")
        return super().run_validation(data)


class StrictModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = serializers.ModelSerializer.serializer_field_mapping | {
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.BooleanField: StrictBooleanField,
    }
    serializer_related_field = StrictPrimaryKeyRelatedField


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API."""

    detail = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="Field (or item index) → reasons")


# -- optimistic concurrency ------------------------------------------------------------------------


def etag_for(obj) -> str:
    stamp = obj.last_updated.isoformat() if getattr(obj, "last_updated", None) else ""
    return f'W/"{obj.pk}-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}"'


class ETagMixin:
    """Single-object GET returns an ETag; PUT/PATCH/DELETE with a stale If-Match get 412 and change nothing."""

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        response["ETag"] = etag_for(self.get_object())
        return response

    def check_if_match(self, request, instance) -> None:
        expected = request.headers.get("If-Match")
        if expected and expected.strip() not in ("*", etag_for(instance)):
            raise PreconditionFailed()


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "If-Match does not match the current version: read the object again"
    default_code = "precondition_failed"
