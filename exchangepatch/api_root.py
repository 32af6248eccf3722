"""The API root (/api/v1/): every endpoint, the verdict, plan, sync and query endpoints included, not only the
resources the router knows. Endpoints that take a key are listed as templates with {placeholders}."""

from rest_framework.reverse import reverse
from rest_framework.routers import APIRootView

# Name, URL name, and the placeholder arguments of endpoints that take a key.
ENDPOINTS = (
    ("servers-sync", "server-sync", ()),
    ("server-compliance", "server-compliance", ("{id or fqdn}",)),
    ("server-plan", "server-plan", ("{id or fqdn}",)),
    ("compliance-summary", "compliance-summary", ()),
    ("rollout", "rollout", ()),
    ("fix-missing", "fix-missing", ("{kb}",)),
    ("update-needed-by", "update-needed-by", ("{kb}",)),
    ("builds-resolve", "build-resolve", ()),
    ("catalog-status", "catalog-status", ()),
    ("changes", "changes", ()),
    ("schema", "api-schema", ()),
    ("docs", "api-docs", ()),
    ("redoc", "api-redoc", ()),
)


class ApiRootView(APIRootView):
    """Every endpoint of /api/v1/. `{id or fqdn}` and `{kb}` are to be replaced; see docs/ for parameters."""

    # The list of endpoints is no data: any signed-in user or token may read it.
    required_permissions = {"GET": [], "HEAD": [], "OPTIONS": []}

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        for key, url_name, placeholders in ENDPOINTS:
            # Reverse with a stand-in and put the placeholder back: the route patterns accept any text there.
            url = reverse(url_name, args=["PLACEHOLDER"] * len(placeholders), request=request)
            for placeholder in placeholders:
                url = url.replace("PLACEHOLDER", placeholder, 1)
            response.data[key] = url
        return response
