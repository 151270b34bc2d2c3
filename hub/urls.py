"""hub's endpoints: ``path("hub/", include("hub.urls"))`` (see :mod:`hub.views`)."""

from django.urls import path

from hub import views

app_name = "hub"
urlpatterns = [
    path("health/", views.health, name="health"),
    path("ready/", views.ready, name="ready"),
    path("metrics/", views.metrics, name="metrics"),
    path("status/", views.status, name="status"),
]
