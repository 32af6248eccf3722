"""Portal URLs of the inventory; stable, so that a page can be pasted into a ticket."""

from django.urls import path

from inventory import views

urlpatterns = [
    path("servers/", views.ServerListView.as_view(), name="server-list"),
    path("servers/<str:fqdn>/", views.server_page, name="server-detail"),
    path("who-lacks/", views.who_lacks, name="who-lacks"),
    path("rollout/", views.rollout, name="rollout"),
    path("coexistence/", views.coexistence, name="coexistence"),
]
