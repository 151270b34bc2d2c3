"""The benchmark project on Channels: the same echo consumer, Channels' imports and layer."""

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.apps.django_project.settings_channels")

from channels.generic.websocket import AsyncWebsocketConsumer  # type: ignore[import-untyped]
from channels.routing import ProtocolTypeRouter, URLRouter  # type: ignore[import-untyped]
from django.core.asgi import get_asgi_application
from django.urls import path

django_application = get_asgi_application()


class EchoConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Sends every message back as it came: the whole app of ``ws-echo-consumer``."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> Any:
        await self.send(text_data=text_data, bytes_data=bytes_data)


application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter([path("echo/", EchoConsumer.as_asgi())]),
    }
)
