"""Connection churn: consumers arriving and leaving by the thousand cost no Redis connections.

Each simulated consumer does what a WebSocket consumer's life does to the
layer: ``new_channel()``, ``group_add``, a ``receive()`` that waits, then the
client leaves: the receive is cancelled and the group left. Redis's own
``CLIENT LIST`` is the measure.
"""

from __future__ import annotations

import asyncio
import threading

from asgiref.sync import async_to_sync
from redis.asyncio import Redis

from hub.layers.redis import RedisChannelLayer
from hub.layers.redis_connections import POOL_SIZE

from .test_redis import make_layer

__all__ = ["make_layer"]

#: Consumers that arrive and leave in one test, and how many are connected at once.
CONSUMERS = 5000
AT_ONCE = 500
#: Connections one layer may hold on one loop: its bounded command pool, plus the inbox's read.
MAX_CONNECTIONS = POOL_SIZE + 1


async def client_count(url: str) -> int:
    """Connections the server has, not counting the one asking."""
    async with Redis.from_url(url) as admin:
        return len(await admin.client_list()) - 1


async def consumer_life(layer: RedisChannelLayer, group: str) -> None:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    receiving = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0)  # the receive is waiting
    receiving.cancel()
    await layer.group_discard(group, channel)


class TestChurn:
    async def test_thousands_of_consumers_coming_and_going_reuse_a_few_connections(
        self, make_layer, redis_server
    ):
        layer = make_layer(redis_server.url)
        peak = 0
        for _ in range(CONSUMERS // AT_ONCE):
            await asyncio.gather(*(consumer_life(layer, "churn") for _ in range(AT_ONCE)))
            peak = max(peak, await client_count(redis_server.url))
        assert peak <= MAX_CONNECTIONS
        assert await layer.group_count("churn") == 0
        assert not layer._inboxes[layer._inbox_id].channels, "no state left per consumer"

    async def test_consumers_leaving_while_messages_arrive_lose_none_and_leak_nothing(
        self, make_layer, redis_server
    ):
        layer = make_layer(redis_server.url)
        staying = await layer.new_channel()
        await layer.group_add("room", staying)
        for round_number in range(10):
            await asyncio.gather(*(consumer_life(layer, "room") for _ in range(AT_ONCE)))
            await layer.group_send("room", {"type": "tick", "n": round_number})
        received = [await asyncio.wait_for(layer.receive(staying), 10) for _ in range(10)]
        assert [message["n"] for message in received] == list(range(10))
        assert await client_count(redis_server.url) <= MAX_CONNECTIONS

    def test_sync_callers_on_fresh_event_loops_close_their_connections(self, redis_server):
        layer = RedisChannelLayer(hosts=[redis_server.url], prefix="churnsync")

        def sync_consumers() -> None:
            for _ in range(200):  # each async_to_sync call here runs in a new loop
                channel = async_to_sync(layer.new_channel)()
                async_to_sync(layer.group_add)("sync", channel)
                async_to_sync(layer.group_discard)("sync", channel)

        thread = threading.Thread(target=sync_consumers)
        thread.start()
        thread.join(60)
        assert not thread.is_alive()
        assert async_to_sync(client_count)(redis_server.url) <= MAX_CONNECTIONS
