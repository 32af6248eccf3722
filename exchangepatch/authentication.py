"""API authentication and permissions: hashed machine tokens, read-only tokens (imported by DRF settings)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication, get_authorization_header


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_generate() -> str:
    return "xp_" + secrets.token_urlsafe(32)


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Token <key>`; the key is looked up by its SHA-256 hash."""

    keyword = "Token"

    def authenticate(self, request):
        # Imported here: DRF imports this module while reading its settings, before the app registry is ready.
        from inventory.models import ApiToken

        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header: expected 'Token <key>'")
        try:
            key = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Authorization header: the token is not valid text") from None
        token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(key)).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("invalid or revoked token")
        now = timezone.now()
        if token.last_used is None or now - token.last_used > timedelta(minutes=5):
            ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class IsAuthenticatedWritableToken(permissions.BasePermission):
    """Everything needs authentication; a read-only token may only read."""

    message = "this token is read-only"

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        token = request.auth
        return not (getattr(token, "is_read_only", False) and request.method not in permissions.SAFE_METHODS)
