"""Background workers: consumers fed from named channels instead of connections.

``manage.py runworker thumbnails`` reads channel ``thumbnails`` on the channel
layer and runs the application (usually a ``ChannelNameRouter``) with scope
``{"type": "channel", "channel": "thumbnails"}``, one long-lived application
instance per channel, as in Channels. asgiref's ``StatelessServer`` owns the
application instances: it restarts one that crashed, logging the exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from asgiref.server import StatelessServer

from hub.types import ASGIApp


class Worker(StatelessServer):
    """Run ``application`` for messages arriving on ``channels`` of ``channel_layer``."""

    def __init__(
        self,
        application: ASGIApp,
        channels: Sequence[str],
        channel_layer: Any,
        max_applications: int = 1000,
    ) -> None:
        if channel_layer is None:
            raise ValueError("A worker needs a channel layer; CHANNEL_LAYERS has none configured")
        if not channels:
            raise ValueError("A worker needs at least one channel to listen on")
        for channel in channels:
            channel_layer.require_valid_channel_name(channel)
        super().__init__(application, max_applications)  # type: ignore[no-untyped-call]
        self.channels = list(channels)
        self.channel_layer = channel_layer

    async def handle(self) -> None:
        """Listen on every channel until one listener fails, then raise its error."""
        listeners = [asyncio.ensure_future(self.listener(channel)) for channel in self.channels]
        try:
            done, _ = await asyncio.wait(listeners, return_when=asyncio.FIRST_EXCEPTION)
            for listener in done:
                listener.result()
        finally:
            for listener in listeners:
                listener.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)

    async def listener(self, channel: str) -> None:
        """Feed each message on ``channel`` to that channel's application instance."""
        while True:
            message = await self.channel_layer.receive(channel)
            if not message.get("type"):
                raise ValueError(f"Worker received a message with no type on {channel!r}")
            scope = {"type": "channel", "channel": channel}
            queue = self.get_or_create_application_instance(channel, scope)  # type: ignore[no-untyped-call]
            await queue.put(message)
