"""Who may open the portal: a signed-in account with the view permissions the API asks of a session for the same
facts (issue 10's rule: the portal and the API never disagree on who may read what)."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

# Every portal page shows servers with their verdicts and catalog updates.
PORTAL_PERMISSIONS = ("inventory.view_server", "inventory.view_serverresult", "kb.view_update")
DENIED = (
    "Your account may not read the inventory: ask an administrator for the view permissions on servers, server "
    "results and updates (or membership of a group that has them)."
)


def portal_view(view):
    """Anonymous visitors go to the login page; a signed-in account without the permissions gets a 403 page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.has_perms(PORTAL_PERMISSIONS):
            raise PermissionDenied(DENIED)
        return view(request, *args, **kwargs)

    return wrapper


class PortalAccessMixin(LoginRequiredMixin):
    """The class-based form of portal_view."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.has_perms(PORTAL_PERMISSIONS):
            raise PermissionDenied(DENIED)
        return super().dispatch(request, *args, **kwargs)
