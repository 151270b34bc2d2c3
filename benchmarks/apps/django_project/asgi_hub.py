"""The benchmark project on hub: Django for HTTP, hub's echo consumer at ``/echo/``."""

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.apps.django_project.settings")

from django.core.asgi import get_asgi_application
from django.urls import path

from hub.generic.websocket import AsyncWebsocketConsumer
from hub.routing import ProtocolTypeRouter, URLRouter

django_application = get_asgi_application()


class EchoConsumer(AsyncWebsocketConsumer):
    """Sends every message back as it came: the whole app of ``ws-echo-consumer``."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> Any:
        await self.send(text_data=text_data, bytes_data=bytes_data)


application = ProtocolTypeRouter(
    {
        "http": django_application,  # type: ignore[dict-item]
        "websocket": URLRouter([path("echo/", EchoConsumer.as_asgi())]),  # type: ignore[arg-type]
    }
)
