"""Top-level URL configuration: admin portal and the versioned API."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("exchangepatch.api_urls")),
]

handler404 = "exchangepatch.api.not_found"
