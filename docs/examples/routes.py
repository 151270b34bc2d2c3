"""URL routing for WebSockets: converters, nesting and regular expressions."""

from django.urls import path, re_path
from hub.generic.websocket import AsyncJsonWebsocketConsumer
from hub.routing import URLRouter


class ShowRoute(AsyncJsonWebsocketConsumer):
    """Accepts, then tells the client which consumer answered and what the URL captured."""

    async def connect(self):
        await self.accept()
        route = self.scope["url_route"]
        await self.send_json(
            {"consumer": type(self).__name__, "args": route["args"], "kwargs": route["kwargs"]}
        )


class DeviceConsumer(ShowRoute):
    pass


class DeviceLogConsumer(ShowRoute):
    pass


class LegacyConsumer(ShowRoute):
    pass


devices = URLRouter(
    [
        path("<int:device_id>/", DeviceConsumer.as_asgi()),
        path("<int:device_id>/logs/<slug:level>/", DeviceLogConsumer.as_asgi()),
    ]
)

websocket_router = URLRouter(
    [
        path("ws/devices/", devices),
        re_path(r"^ws/legacy/([0-9a-f]{8})/$", LegacyConsumer.as_asgi()),
    ]
)
