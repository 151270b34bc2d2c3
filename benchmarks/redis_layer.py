"""Redis channel layers: ``hub.layers.redis.RedisChannelLayer`` against channels_redis's.

The load is ``benchmarks/layers.py``'s (same producer, same window of messages
in flight, same message), driven in one process and one event loop against a
redis-server that the harness starts for each implementation on a free port
(no persistence), so every layer meets an empty server of the same build:

- ``redis-send-receive``: a producer sends to one specific channel (a name
  from ``new_channel()``, as a consumer's is) while a task receives.
- ``redis-group-send-N``: N member channels, each with a task blocked in
  ``receive()``, and a producer calling ``group_send``.

Contenders: channels_redis's ``RedisChannelLayer`` (lists in sorted sets,
one receive loop per process for specific channels) and its
``RedisPubSubChannelLayer`` (Redis pub/sub, no capacity or expiry).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from benchmarks.harness import Benchmark, Implementation, Sample
from benchmarks.layers import GROUP, _fan_out, configure_django

REDIS_SERVER = (
    "redis-server",
    "--port", "{port}",
    "--bind", "127.0.0.1",
    "--save", "",
    "--appendonly", "no",
)  # fmt: skip


def make_layer(name: str, port: int, capacity: int) -> Any:
    configure_django()
    hosts = [f"redis://127.0.0.1:{port}/0"]
    prefix = f"bench{os.urandom(4).hex()}"  # a fresh key space per repetition
    if name == "hub":
        from hub.layers.redis import RedisChannelLayer

        return RedisChannelLayer(hosts=hosts, prefix=prefix, capacity=capacity)
    if name == "channels_redis":
        from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer

        return ChannelsRedisLayer(hosts=hosts, prefix=prefix, capacity=capacity)
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return RedisPubSubChannelLayer(hosts=hosts, prefix=prefix)


async def _close(layer: Any) -> None:
    for method in ("close", "close_pools", "flush"):
        if hasattr(layer, method):
            await getattr(layer, method)()
            return


def send_receive(params: dict[str, Any]) -> Sample:
    """One producer, one consumer, one specific channel."""

    async def main() -> Sample:
        layer = make_layer(params["layer"], params["port"], params["capacity"])
        try:
            channel = await layer.new_channel()
            return await _fan_out(
                layer, [channel], params["messages"], params["max_seconds"], group=False
            )
        finally:
            await _close(layer)

    return asyncio.run(main())


def group_send(params: dict[str, Any]) -> Sample:
    """``group_send`` to a group of ``params["members"]`` waiting consumers."""

    async def main() -> Sample:
        layer = make_layer(params["layer"], params["port"], params["capacity"])
        try:
            channels = [await layer.new_channel() for _ in range(params["members"])]
            for channel in channels:
                await layer.group_add(GROUP, channel)
            return await _fan_out(
                layer, channels, params["messages"], params["max_seconds"], group=True
            )
        finally:
            await _close(layer)

    return asyncio.run(main())


def _implementations(target: str) -> tuple[Implementation, ...]:
    return tuple(
        Implementation(
            name,
            target,
            {"layer": name},
            server=REDIS_SERVER,
            requires=("redis-server", *(("channels_redis",) if name != "hub" else ())),
        )
        for name in ("hub", "channels_redis", "channels_redis_pubsub")
    )


def _group_benchmark(members: int, messages: int, quick_messages: int) -> Benchmark:
    return Benchmark(
        name=f"redis-group-send-{members}",
        description=f"group_send through Redis to {members} receiving member(s), delivered msg/s",
        implementations=_implementations("benchmarks.redis_layer:group_send"),
        params={"members": members, "messages": messages, "capacity": 100, "max_seconds": 3.0},
        quick_params={
            "members": members,
            "messages": quick_messages,
            "capacity": 100,
            "max_seconds": 0.4,
        },
    )


BENCHMARKS = [
    Benchmark(
        name="redis-send-receive",
        description="send through Redis to one specific channel while a task receives, msg/s",
        implementations=_implementations("benchmarks.redis_layer:send_receive"),
        params={"messages": 50_000, "capacity": 100, "max_seconds": 3.0},
        quick_params={"messages": 2_000, "capacity": 100, "max_seconds": 0.4},
    ),
    _group_benchmark(1, messages=50_000, quick_messages=2_000),
    _group_benchmark(100, messages=2_000, quick_messages=100),
    _group_benchmark(1000, messages=200, quick_messages=20),
]
