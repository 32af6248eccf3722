"""Top-level URL configuration: the portal (dashboard, inventory and catalog pages), the admin, the API, /healthz."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from health_check.views import HealthCheckView

from exchangepatch import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("inventory.urls")),
    path("", include("kb.urls")),
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

handler404 = "exchangepatch.api.not_found"
