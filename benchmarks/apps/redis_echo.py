"""WebSocket echo on the Redis layer, for ``--workers N`` scaling (``benchmarks/redis_layer.py``).

- ``/echo/``: the consumer sends each message straight back; the Redis layer
  is configured, so each connection still registers a channel in its
  process's inbox, as a real application's consumers do.
- ``/layer-echo/``: each message goes through the layer first: the consumer
  sends it to its own channel, and its ``echo`` handler sends it back to the
  client. One Redis round trip in, one inbox read out, per message.

Settings: ``benchmarks.apps.redis_settings`` (``HUB_BENCH_REDIS_URL``).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.apps.redis_settings")

from django.urls import path

from hub.generic.websocket import AsyncWebsocketConsumer
from hub.routing import ProtocolTypeRouter, URLRouter


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> Any:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class LayerEcho(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> Any:
        await self.channel_layer.send(self.channel_name, {"type": "echo", "text": text_data})

    async def echo(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [path("echo/", Echo.as_asgi()), path("layer-echo/", LayerEcho.as_asgi())]  # type: ignore[arg-type]
        )
    }
)
