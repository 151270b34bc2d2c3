"""What the Redis layer adds to the contract: scale, faults, encryption, sharding, compatibility.

The contract shared with the in-memory layer is in ``test_redis_contract.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from hub.generic.websocket import AsyncWebsocketConsumer
from hub.layers import channel_layers, get_channel_layer
from hub.layers.redis import RESYNC_TYPE, RedisChannelLayer, RedisUnavailable
from hub.layers.redis_connections import decode_hosts, jump_hash
from hub.layers.redis_readers import POLL_SECONDS
from hub.testing import WebsocketCommunicator


@pytest.fixture
async def make_layer() -> AsyncIterator[Callable[..., RedisChannelLayer]]:
    """Build Redis layers with a key prefix of their own; flush and close them after the test."""
    made: list[RedisChannelLayer] = []
    prefix = f"t{os.urandom(4).hex()}"

    def make(*hosts: str, **config: Any) -> RedisChannelLayer:
        layer = RedisChannelLayer(hosts=list(hosts), prefix=config.pop("prefix", prefix), **config)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        with contextlib.suppress(RedisUnavailable):
            await layer.flush()
        await layer.close()


async def client_count(url: str) -> int:
    """Connections the server has, not counting the one asking."""
    async with Redis.from_url(url) as admin:
        return len(await admin.client_list()) - 1


async def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Poll ``condition`` (for states the layer exposes no event for)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class TestSettings:
    def test_hosts_take_urls_host_port_pairs_and_dicts(self):
        assert decode_hosts(["redis://a:1/0", ("b", 2), {"address": "redis://c:3", "db": 1}]) == [
            {"address": "redis://a:1/0"},
            {"host": "b", "port": 2},
            {"address": "redis://c:3", "db": 1},
        ]

    def test_a_single_url_instead_of_a_list_is_refused(self):
        with pytest.raises(TypeError, match="must be a list of Redis hosts"):
            decode_hosts("redis://a:1/0")  # type: ignore[arg-type]

    def test_a_prefix_with_braces_is_refused(self):
        with pytest.raises(ValueError, match="Cluster hash tag"):
            RedisChannelLayer(prefix="a{b}")

    def test_channels_redis_settings_build_the_layer(self, settings, redis_url):
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "hub.layers.redis.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [redis_url],
                    "prefix": "myapp",
                    "expiry": 30,
                    "group_expiry": 3600,
                    "capacity": 50,
                    "channel_capacity": {"http.request": 200},
                    "symmetric_encryption_keys": ["secret"],
                },
            }
        }
        layer = get_channel_layer()
        assert isinstance(layer, RedisChannelLayer)
        assert (layer.prefix, layer.expiry, layer.group_expiry) == ("myapp", 30, 3600)
        assert layer.get_capacity("http.request") == 200
        assert layer.get_capacity("other") == 50

    def test_adding_a_shard_moves_names_only_to_the_new_shard(self):
        names = [f"specific.r{i}" for i in range(2000)]
        before = {name: jump_hash(name, 3) for name in names}
        after = {name: jump_hash(name, 4) for name in names}
        moved = [name for name in names if before[name] != after[name]]
        assert all(after[name] == 3 for name in moved)
        assert 0 < len(moved) < len(names) / 2


class TestInbox:
    async def test_ten_thousand_receivers_share_a_few_connections(self, redis_server, make_layer):
        layer = make_layer(redis_server.url)
        channels = [await layer.new_channel() for _ in range(10_000)]
        receivers = [asyncio.create_task(layer.receive(channel)) for channel in channels]
        for channel in channels:
            await layer.group_add("everyone", channel)
        await layer.group_send("everyone", {"type": "hello"})
        results = await asyncio.wait_for(asyncio.gather(*receivers), 30)
        assert results == [{"type": "hello"}] * 10_000
        # One for commands, one for the inbox's blocking read.
        assert await client_count(redis_server.url) <= 3

    async def test_messages_to_channels_nobody_is_waiting_on_yet_are_kept(
        self, make_layer, redis_url
    ):
        layer = make_layer(redis_url)
        busy, waiting = await layer.new_channel(), await layer.new_channel()
        receiving = asyncio.create_task(layer.receive(waiting))
        await layer.send(busy, {"type": "for.busy"})
        await layer.send(waiting, {"type": "for.waiting"})
        assert await asyncio.wait_for(receiving, 5) == {"type": "for.waiting"}
        assert await layer.receive(busy) == {"type": "for.busy"}

    async def test_close_releases_every_connection(self, redis_server, make_layer):
        layer = make_layer(redis_server.url)
        channel = await layer.new_channel()
        receiving = asyncio.create_task(layer.receive(channel))
        normal = asyncio.create_task(layer.receive("worker.channel"))
        await layer.send(channel, {"type": "x"})
        await receiving
        await layer.close()
        assert normal.cancelled() or not normal.done()
        normal.cancel()
        # The server notices closed sockets on its next loop turn: poll briefly.
        async with asyncio.timeout(5):
            while await client_count(redis_server.url):
                await asyncio.sleep(0.01)


class TestCancellation:
    @pytest.mark.parametrize("kind", ["normal", "specific"])
    async def test_cancelled_receivers_lose_no_message(self, make_layer, redis_url, kind):
        layer = make_layer(redis_url)
        channel = "test.cancel" if kind == "normal" else await layer.new_channel()
        received = []
        for i in range(60):
            receiving = asyncio.create_task(layer.receive(channel))
            await asyncio.sleep(0)
            await layer.send(channel, {"type": "n", "i": i})
            for _ in range(i % 6):
                await asyncio.sleep(0)
            receiving.cancel()
            result = await asyncio.gather(receiving, return_exceptions=True)
            if isinstance(result[0], dict):
                received.append(result[0]["i"])
        while len(received) < 60:
            received.append((await asyncio.wait_for(layer.receive(channel), 5))["i"])
        assert sorted(received) == list(range(60))

    async def test_cancelled_receivers_leave_no_task_behind(self, make_layer, redis_url):
        layer = make_layer(redis_url)
        channels = [await layer.new_channel() for _ in range(100)] + ["worker.a", "worker.b"]
        receivers = [asyncio.create_task(layer.receive(channel)) for channel in channels]
        await asyncio.sleep(0)
        for receiver in receivers:
            receiver.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
        me = asyncio.current_task()
        await wait_for(lambda: asyncio.all_tasks() == {me}, timeout=POLL_SECONDS * 5)


class TestRedisRestart:
    async def test_a_send_while_redis_is_away_raises_a_clear_error(self, redis_server, make_layer):
        layer = make_layer(redis_server.url)
        await layer.send("test.channel", {"type": "before"})
        redis_server.stop()
        unreachable = rf"send to 'test.channel' failed: {redis_server.url} is unreachable"
        with pytest.raises(RedisUnavailable, match=unreachable):
            await layer.send("test.channel", {"type": "during"})
        with pytest.raises(RedisUnavailable, match="group_send to 'room' failed"):
            await layer.group_send("room", {"type": "during"})
        redis_server.start()
        await layer.send("test.channel", {"type": "after"})
        assert await layer.receive("test.channel") == {"type": "after"}

    @pytest.mark.parametrize("kind", ["normal", "specific"])
    async def test_a_waiting_receiver_resumes_after_a_restart_with_a_resync(
        self, redis_server, make_layer, caplog, kind
    ):
        caplog.set_level(logging.WARNING, logger="hub.layers")
        layer = make_layer(redis_server.url)
        channel = "test.channel" if kind == "normal" else await layer.new_channel()
        receiving = asyncio.create_task(layer.receive(channel))
        await layer.send(channel, {"type": "first"})
        assert await asyncio.wait_for(receiving, 5) == {"type": "first"}
        receiving = asyncio.create_task(layer.receive(channel))
        await wait_for(lambda: "cmd=blpop" in redis_server.cli("client", "list"))
        redis_server.stop()
        await wait_for(lambda: "lost redis://" in caplog.text)
        redis_server.start()
        assert await asyncio.wait_for(receiving, 15) == {"type": RESYNC_TYPE}
        assert "reconnected to redis://" in caplog.text
        await layer.send(channel, {"type": "after"})
        assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "after"}


class TestEncryption:
    async def test_an_encrypted_message_round_trips_and_is_unreadable_in_redis(
        self, make_layer, redis_url
    ):
        layer = make_layer(redis_url, symmetric_encryption_keys=["key one"])
        await layer.send("test.channel", {"type": "m", "text": "the secret"})
        async with Redis.from_url(redis_url) as admin:
            stored = await admin.lrange(f"{layer.prefix}:c:{{test.channel}}", 0, -1)
        assert len(stored) == 1
        assert b"the secret" not in stored[0]
        assert await layer.receive("test.channel") == {"type": "m", "text": "the secret"}

    async def test_a_message_under_another_key_is_dropped_and_logged(
        self, make_layer, redis_url, caplog
    ):
        sender = make_layer(redis_url, symmetric_encryption_keys=["key one"])
        receiver = make_layer(redis_url, symmetric_encryption_keys=["key two"])
        await sender.send("test.channel", {"type": "unreadable"})
        await receiver.send("test.channel", {"type": "readable"})
        assert await receiver.receive("test.channel") == {"type": "readable"}
        assert "could not be decrypted" in caplog.text

    async def test_a_rotated_key_still_decrypts_old_messages(self, make_layer, redis_url):
        old = make_layer(redis_url, symmetric_encryption_keys=["old"])
        rotated = make_layer(redis_url, symmetric_encryption_keys=["new", "old"])
        await old.send("test.channel", {"type": "from.old"})
        assert await rotated.receive("test.channel") == {"type": "from.old"}


class TestSharding:
    async def test_channels_and_groups_spread_over_every_shard(self, two_redis_servers, make_layer):
        urls = [server.url for server in two_redis_servers]
        layer = make_layer(*urls)
        other_process = make_layer(*urls)
        channels = [f"worker.{i}" for i in range(20)] + [await layer.new_channel()]
        for i, channel in enumerate(channels):
            await layer.group_add(f"group{i % 4}", channel)
            await layer.group_add("all", channel)
        await other_process.group_send("all", {"type": "everyone"})
        for channel in channels:
            assert await layer.receive(channel) == {"type": "everyone"}
        for url in urls:
            async with Redis.from_url(url) as admin:
                assert await admin.keys(f"{layer.prefix}:g:*"), f"no group lives on {url}"
        assert await other_process.group_count("all") == len(channels)


class TestAcrossProcesses:
    async def test_two_processes_exchange_messages_and_group_sends(self, make_layer, redis_url):
        layer = make_layer(redis_url)
        script = textwrap.dedent(
            f"""
            import asyncio
            from hub.layers.redis import RedisChannelLayer

            async def main():
                layer = RedisChannelLayer(hosts=[{redis_url!r}], prefix={layer.prefix!r})
                mine = await layer.new_channel()
                await layer.group_add("room", mine)
                await layer.send("to.parent", {{"type": "ready", "channel": mine}})
                message = await layer.receive(mine)
                await layer.send("to.parent", {{"type": "echo", "got": message}})
                await layer.close()

            asyncio.run(main())
            """
        )
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
        try:
            ready = await asyncio.wait_for(layer.receive("to.parent"), 20)
            mine = await layer.new_channel()
            await layer.group_add("room", mine)
            await layer.group_send("room", {"type": "hello", "n": 1})
            assert await layer.receive(mine) == {"type": "hello", "n": 1}
            echo = await asyncio.wait_for(layer.receive("to.parent"), 20)
            assert echo == {"type": "echo", "got": {"type": "hello", "n": 1}}
            assert await layer.group_members("room") == {mine, ready["channel"]}
        finally:
            await asyncio.wait_for(child.wait(), 20)
        assert child.returncode == 0


class RoomConsumer(AsyncWebsocketConsumer):
    groups = ["room"]

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send("room", {"type": "room.message", "text": text_data})

    async def room_message(self, event):
        await self.send(text_data=json.dumps(event["text"]))


class TestAsBackendOfHub:
    @pytest.mark.parametrize(
        "backend", ["channels_redis.core.RedisChannelLayer", "hub.layers.redis.RedisChannelLayer"]
    )
    async def test_a_redis_layer_carries_group_sends_between_hub_consumers(
        self, settings, redis_url, backend
    ):
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": backend,
                "CONFIG": {"hosts": [redis_url], "prefix": f"t{os.urandom(4).hex()}"},
            }
        }
        alice = WebsocketCommunicator(RoomConsumer.as_asgi(), "/")
        bob = WebsocketCommunicator(RoomConsumer.as_asgi(), "/")
        try:
            assert (await alice.connect(timeout=5))[0]
            assert (await bob.connect(timeout=5))[0]
            await alice.send_to(text_data="hi bob")
            assert await bob.receive_from(timeout=5) == '"hi bob"'
            assert await alice.receive_from(timeout=5) == '"hi bob"'
        finally:
            await alice.disconnect()
            await bob.disconnect()
            layer = channel_layers.backends.get("default")
            if layer is not None:
                await layer.flush()
                if isinstance(layer, RedisChannelLayer):
                    await layer.close()
