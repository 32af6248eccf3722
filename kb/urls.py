"""Portal URLs of the catalog."""

from django.urls import path

from kb import views

app_name = "kb"
urlpatterns = [
    path("catalog/", views.UpdateListView.as_view(), name="updates"),
    path("catalog/updates/<str:kb>/", views.update_page, name="update"),
    path("catalog/fixes/", views.FixListView.as_view(), name="fixes"),
    path("catalog/conflicts/", views.ConflictListView.as_view(), name="conflicts"),
    path("catalog/sources/", views.SourceListView.as_view(), name="sources"),
]
