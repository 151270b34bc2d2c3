"""Background workers: ``hub.worker.Worker`` and ``manage.py runworker``."""

from __future__ import annotations

import asyncio

import pytest
from django.core.management import CommandError, call_command

from hub.consumer import AsyncConsumer
from hub.layers import get_channel_layer
from hub.routing import ChannelNameRouter
from hub.worker import Worker


class Thumbnailer(AsyncConsumer):
    async def thumbnail_make(self, message):
        await self.channel_layer.send(
            message["reply_to"], {"type": "thumbnail.done", "name": message["name"] + ".small"}
        )


class TestWorker:
    async def test_messages_on_a_channel_reach_its_consumer(self):
        layer = get_channel_layer()
        app = ChannelNameRouter({"thumbnails": Thumbnailer.as_asgi()})
        worker = Worker(app, ["thumbnails"], layer)
        running = asyncio.create_task(worker.arun())
        try:
            reply_to = await layer.new_channel()
            await layer.send(
                "thumbnails", {"type": "thumbnail.make", "name": "cat", "reply_to": reply_to}
            )
            reply = await asyncio.wait_for(layer.receive(reply_to), 5)
            assert reply == {"type": "thumbnail.done", "name": "cat.small"}
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    def test_a_worker_needs_a_layer_and_channels(self):
        with pytest.raises(ValueError, match="needs a channel layer"):
            Worker(Thumbnailer.as_asgi(), ["thumbnails"], None)
        with pytest.raises(ValueError, match="at least one channel"):
            Worker(Thumbnailer.as_asgi(), [], get_channel_layer())

    def test_an_invalid_channel_name_is_refused(self):
        with pytest.raises(TypeError, match="is invalid"):
            Worker(Thumbnailer.as_asgi(), ["no spaces"], get_channel_layer())


class TestRunworker:
    def test_an_unknown_layer_alias_is_an_error(self):
        with pytest.raises(CommandError, match="No channel layer 'nope'"):
            call_command("runworker", "thumbnails", layer="nope")
