"""The /api/v1/ routes."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

import exchangepatch.schema  # noqa: F401  (registers the token scheme with drf-spectacular)
from exchangepatch.api_root import ApiRootView
from inventory.api import views as inventory
from kb.api import views as kb

router = DefaultRouter()
router.APIRootView = ApiRootView  # lists every endpoint, not only the registered resources
router.register("servers", inventory.ServerViewSet, basename="server")
router.register("sites", inventory.SiteViewSet, basename="site")
router.register("clusters", inventory.ClusterViewSet, basename="cluster")
router.register("waivers", inventory.WaiverViewSet, basename="waiver")
router.register("scans", inventory.ScanViewSet, basename="scan")
router.register("products", kb.ProductViewSet, basename="product")
router.register("levels", kb.LevelViewSet, basename="level")
router.register("updates", kb.UpdateViewSet, basename="update")
router.register("fixes", kb.FixViewSet, basename="fix")
router.register("rules", kb.RuleViewSet, basename="rule")

urlpatterns = [
    path("compliance/summary/", inventory.ComplianceSummaryView.as_view(), name="compliance-summary"),
    path("builds/resolve/", kb.BuildResolveView.as_view(), name="build-resolve"),
    path("catalog/status/", kb.CatalogStatusView.as_view(), name="catalog-status"),
    path("rollout/", inventory.RolloutView.as_view(), name="rollout"),
    path("fixes/<str:kb>/missing/", inventory.FixMissingView.as_view(), name="fix-missing"),
    path("updates/<str:kb>/needed-by/", inventory.UpdateNeededByView.as_view(), name="update-needed-by"),
    path("changes/", inventory.ChangesView.as_view(), name="changes"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path(
        "redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="portal/redoc.html"),
        name="api-redoc",
    ),
    path("", include(router.urls)),
]
