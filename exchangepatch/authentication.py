"""API authentication and permissions (imported by DRF settings): django-rest-knox tokens for machines, with their
scope; Django model permissions for people signed in to the portal; failed authentications throttled per address."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import exceptions, permissions
from rest_framework.throttling import SimpleRateThrottle

INVALID = "invalid, expired or revoked token"
LEGACY_KEY_LENGTH = 8  # keys issued before knox were recognised by their first 8 characters and a SHA-256 hash
LAST_USED_EVERY = timedelta(minutes=5)


class AuthFailureThrottle(SimpleRateThrottle):
    """Counts failed authentications per client address (DRF's throttle arithmetic and cache). Once the rate is
    reached, every token from that address is refused with 429, a right one too, until the window has passed: a
    guess must not be told apart from a wrong one."""

    scope = "auth_failure"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def wait_if_blocked(self, request) -> float | None:
        """Seconds until the address may try again, or None when it may now."""
        if self.rate is None:
            return None
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        self.history = [moment for moment in self.history if moment > self.now - self.duration]
        return self.wait() if len(self.history) >= self.num_requests else None

    def record_failure(self, request) -> None:
        if self.rate is not None:
            self.wait_if_blocked(request)
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)


class ApiTokenAuthentication(TokenAuthentication):
    """knox's `Authorization: Token <key>`, plus what knox leaves to the project: failures throttled per address,
    the last use recorded (at most every 5 minutes), and keys issued before knox accepted and moved to knox's hash
    the first time they are used (migration inventory 0004 copied their SHA-256 hashes)."""

    def authenticate(self, request):
        throttle = AuthFailureThrottle()
        header = self.authenticate_header(request).lower().encode()
        sent = request.META.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace").split()
        if not sent or sent[0].lower() != header:
            return None  # no token: the session (or nothing) authenticates
        wait = throttle.wait_if_blocked(request)
        if wait is not None:
            raise exceptions.Throttled(wait, "too many failed authentications from this address.")
        try:
            user, token = super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise
        now = timezone.now()
        if token.last_used is None or now - token.last_used > LAST_USED_EVERY:
            type(token).objects.filter(pk=token.pk).update(last_used=now)
        return user, token

    def authenticate_credentials(self, token: bytes):
        try:
            key = token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID) from None
        if len(key) > 200:
            raise exceptions.AuthenticationFailed(INVALID)
        try:
            return super().authenticate_credentials(token)
        except exceptions.AuthenticationFailed:
            legacy = _legacy_token_upgrade(key)
            if legacy is None:
                raise exceptions.AuthenticationFailed(INVALID) from None
            return self.validate_user(legacy)


def _legacy_token_upgrade(key: str):
    """The token issued before knox whose hash this key matches, now stored under knox's hash; or None."""
    from inventory.models import ApiToken  # DRF imports this module while reading its settings

    legacy_digest = hashlib.sha256(key.encode()).hexdigest()
    found = ApiToken.objects.filter(token_key=key[:LEGACY_KEY_LENGTH], digest=legacy_digest)
    if not found.update(digest=hash_token(key), token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH]):
        return None
    return ApiToken.objects.select_related("user").get(digest=hash_token(key))


class ModelPermissionsOrTokenScope(permissions.BasePermission):
    """Everything needs authentication. A machine (token) may do what its scope allows: read-only tokens only read.
    A person (portal session) needs the Django model permissions the admin would ask for: view_ to read, add_ to
    create, change_ to change, delete_ to delete, on the view's model; views without one name theirs in
    `required_permissions` ({method or action: [permission, …]})."""

    READ_ONLY = "this token is read-only"
    PERMISSIONS = {
        "GET": ["%(app)s.view_%(model)s"],
        "HEAD": ["%(app)s.view_%(model)s"],
        "OPTIONS": [],
        "POST": ["%(app)s.add_%(model)s"],
        "PUT": ["%(app)s.change_%(model)s"],
        "PATCH": ["%(app)s.change_%(model)s"],
        "DELETE": ["%(app)s.delete_%(model)s"],
    }

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.auth is not None:  # a token
            if request.method in permissions.SAFE_METHODS:
                return True
            self.message = self.READ_ONLY
            return not request.auth.is_read_only
        return user.has_perms(required_permissions(view, request.method))


def required_permissions(view, method: str) -> list[str]:
    declared = getattr(view, "required_permissions", {})
    action = getattr(view, "action", None)
    if action in declared:
        return declared[action]
    if method in declared:
        return declared[method]
    if method not in ModelPermissionsOrTokenScope.PERMISSIONS:
        raise exceptions.MethodNotAllowed(method)
    model = view.get_queryset().model
    names = {"app": model._meta.app_label, "model": model._meta.model_name}
    return [permission % names for permission in ModelPermissionsOrTokenScope.PERMISSIONS[method]]
