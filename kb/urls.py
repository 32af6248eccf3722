"""Portal URLs of the catalog."""

from django.urls import path

from kb import views

urlpatterns = [
    path("catalog/", views.UpdateListView.as_view(), name="catalog-updates"),
    path("catalog/updates/<str:kb>/", views.update_page, name="catalog-update"),
    path("catalog/fixes/", views.FixListView.as_view(), name="catalog-fixes"),
    path("catalog/conflicts/", views.ConflictListView.as_view(), name="catalog-conflicts"),
    path("catalog/sources/", views.SourceListView.as_view(), name="catalog-sources"),
]
