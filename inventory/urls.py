"""Portal URLs of the inventory; stable, so that a page can be pasted into a ticket."""

from django.urls import path

from inventory import views

app_name = "inventory"
urlpatterns = [
    path("servers/", views.ServerListView.as_view(), name="servers"),
    path("servers/<str:fqdn>/", views.server_page, name="server"),
    path("who-lacks/", views.who_lacks, name="who-lacks"),
    path("rollout/", views.rollout, name="rollout"),
    path("coexistence/", views.coexistence, name="coexistence"),
]
