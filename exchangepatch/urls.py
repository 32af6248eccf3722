"""Top-level URL configuration: admin portal, the versioned API and /healthz."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from health_check.views import HealthCheckView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("exchangepatch.api_urls")),
    # For load balancers and monitoring: no login, no data; 200 when every check passes, 500 otherwise.
    path(
        "healthz",
        HealthCheckView.as_view(
            checks=(
                "health_check.checks.Database",
                "inventory.health.Broker",
                "inventory.health.Worker",
                "inventory.health.CatalogAge",
            )
        ),
        name="healthz",
    ),
]
