"""What every API endpoint shares: token authentication, permissions, cursor pagination, one error shape, ETags."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.http import JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

# -- pagination ------------------------------------------------------------------------------------


class StablePagination(CursorPagination):
    """Cursor pagination on the primary key: stable while rows are added or changed during a sync."""

    ordering = "pk"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

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


class ApiRequestGuardMiddleware:
    """Refuse, with a JSON 4xx, what would otherwise reach the database as an error: an oversized body (413 with the
    limit, before Django reads it) and a NUL character anywhere (PostgreSQL text cannot hold one)."""

    NUL_MESSAGE = "the request contains a NUL character (\\u0000), which no field accepts"

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
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            return JsonResponse({"detail": self.NUL_MESSAGE}, status=status.HTTP_400_BAD_REQUEST)
        if length and (b"\\u0000" in request.body or b"\x00" in request.body):
            return JsonResponse({"detail": self.NUL_MESSAGE}, status=status.HTTP_400_BAD_REQUEST)
        return self.get_response(request)


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
