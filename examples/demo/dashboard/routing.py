from django.urls import path

from dashboard.consumers import DashboardConsumer
from hub.status_consumer import StatusConsumer

websocket_urlpatterns = [
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
    path("hub/ws/status/", StatusConsumer.as_asgi()),
]
