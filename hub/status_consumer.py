"""The live feed of the admin's "Hub status" page, and the operator's actions.

Route it for staff: ``path("hub/ws/status/", StatusConsumer.as_asgi())`` in the
WebSocket router, behind ``AuthMiddlewareStack``. It sends a snapshot of
:data:`hub.status.STATUS` every ``interval`` seconds and takes two actions:
``{"action": "disconnect", "channel": NAME}`` and
``{"action": "message", "channel": NAME, "text": TEXT}``, delivered to that
connection's consumer through the channel layer (so they work for a consumer
in any process once the layer spans processes).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hub.generic.websocket import AsyncJsonWebsocketConsumer
from hub.status import STATUS


class StatusConsumer(AsyncJsonWebsocketConsumer):
    """Staff-only: status snapshots out, operator actions in."""

    #: Seconds between two snapshots.
    interval = 1.0

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not getattr(user, "is_staff", False):
            await self.close()
            return
        await self.accept()
        self._ticker = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        while True:
            await self.send_json({"kind": "snapshot", "data": STATUS.snapshot()})
            await asyncio.sleep(self.interval)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        channel = content.get("channel")
        action = content.get("action")
        if not isinstance(channel, str) or action not in ("disconnect", "message"):
            await self.send_json({"kind": "error", "data": f"bad action: {content!r:.200}"})
            return
        if action == "disconnect":
            await self.channel_layer.send(channel, {"type": "hub.disconnect"})
        else:
            text = str(content.get("text", ""))
            await self.channel_layer.send(channel, {"type": "hub.message", "text": text})
        await self.send_json({"kind": "done", "data": {"action": action, "channel": channel}})

    async def disconnect(self, code: int) -> None:
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
