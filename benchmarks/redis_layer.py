"""Redis channel layers: ``hub.layers.redis.RedisChannelLayer`` against channels_redis's.

The load is ``benchmarks/layers.py``'s (same producer, same window of messages
in flight, same message), driven in one process and one event loop against a
redis-server that the harness starts for each implementation on a free port
(no persistence), so every layer meets an empty server of the same build:

- ``redis-send-receive``: a producer sends to one specific channel (a name
  from ``new_channel()``, as a consumer's is) while a task receives.
- ``redis-group-send-N``: N member channels, each with a task blocked in
  ``receive()``, and a producer calling ``group_send``.

- ``redis-group-send-N-4p``: the same ``group_send``, with the N members
  spread over 4 receiving processes (the sender is a fifth). Nothing paces
  the sender: the channels' capacity exceeds the messages sent, so nothing
  is dropped; throughput is deliveries over the time from the first send to
  the last receipt in any process (wall clock, one host).

Contenders: channels_redis's ``RedisChannelLayer`` (lists in sorted sets,
one receive loop per process for specific channels) and its
``RedisPubSubChannelLayer`` (Redis pub/sub, no capacity or expiry).

Two measurements that are not throughput races run on their own and print a
table (``python -m benchmarks.redis_layer commands|workers``):

- ``commands``: Redis commands per delivered message, for each layer and
  load: the commands the client sent (counted in redis-py) and the commands
  Redis executed (``INFO commandstats`` delta, including those run inside
  Lua scripts).
- ``workers``: WebSocket echo round trips/s through ``hub run --workers N``
  (N = 1, 2, 4) with the Redis layer (``benchmarks/apps/redis_echo.py``),
  echoing straight back and through the layer; the client is
  ``benchmarks/websocket.py``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from time import perf_counter
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


def make_layer(name: str, port: int, capacity: int, prefix: str | None = None) -> Any:
    configure_django()
    hosts = [f"redis://127.0.0.1:{port}/0"]
    prefix = prefix or f"bench{os.urandom(4).hex()}"  # a fresh key space per repetition
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


# group_send with receivers in several processes


def _receiver_process(params: dict[str, Any], members: int, ready: Any, results: Any) -> None:
    """One receiving process: join ``members`` channels, receive every message, report."""

    async def main() -> tuple[int, float]:
        layer = make_layer(params["layer"], params["port"], params["capacity"], params["prefix"])
        channels = [await layer.new_channel() for _ in range(members)]
        for channel in channels:
            await layer.group_add(GROUP, channel)
        last = 0.0
        received = 0

        async def consume(channel: str) -> None:
            nonlocal last, received
            for _ in range(params["messages"]):
                await layer.receive(channel)
                received += 1
                last = time.time()

        tasks = [asyncio.create_task(consume(channel)) for channel in channels]
        for _ in range(2):
            await asyncio.sleep(0)
        ready.put(os.getpid())
        await asyncio.wait(tasks, timeout=params["timeout"])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _close(layer)
        return received, last

    results.put(asyncio.run(main()))


def group_send_processes(params: dict[str, Any]) -> Sample:
    """``group_send`` from this process to members spread over ``params["processes"]``."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    params = {**params, "prefix": f"bench{os.urandom(4).hex()}", "capacity": params["messages"] + 1}
    count, members = params["processes"], params["members"]
    shares = [members // count + (index < members % count) for index in range(count)]
    processes = [
        context.Process(target=_receiver_process, args=(params, share, ready, results))
        for share in shares
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=120)

        async def send_all() -> float:
            layer = make_layer(params["layer"], params["port"], 100, params["prefix"])
            start = time.time()
            for seq in range(params["messages"]):
                await layer.group_send(GROUP, {"type": "chat.message", "text": "hello", "seq": seq})
            await _close(layer)
            return start

        start = asyncio.run(send_all())
        reports = [results.get(timeout=params["timeout"] + 60) for _ in processes]
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    delivered = sum(received for received, _ in reports)
    return Sample(
        ops=delivered,
        elapsed=max(last for _, last in reports) - start,
        expected=params["messages"] * members,
    )


def _group_processes_benchmark(members: int, messages: int, quick_messages: int) -> Benchmark:
    return Benchmark(
        name=f"redis-group-send-{members}-4p",
        description=(
            f"group_send through Redis to {members} members in 4 processes, delivered msg/s"
        ),
        implementations=_implementations("benchmarks.redis_layer:group_send_processes"),
        params={"members": members, "messages": messages, "processes": 4, "timeout": 60},
        quick_params={
            "members": members,
            "messages": quick_messages,
            "processes": 4,
            "timeout": 30,
        },
        repetitions=3,
        quick_repetitions=1,
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
    _group_processes_benchmark(100, messages=2_000, quick_messages=200),
    _group_processes_benchmark(1000, messages=200, quick_messages=20),
]


# Standalone measurements: python -m benchmarks.redis_layer commands|workers


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """A fresh redis-server on a free port (no persistence); yields its port."""
    from redis import Redis

    port = _free_port()
    command = [part.format(port=port) for part in REDIS_SERVER]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()
        yield port
    finally:
        process.terminate()
        process.wait(10)


class CommandCounter:
    """Commands redis-py sends (``pack_command`` calls) while it is installed."""

    def __init__(self) -> None:
        from redis.asyncio.connection import AbstractConnection

        self.owner = AbstractConnection
        self.original = AbstractConnection.pack_command
        self.count = 0

    def __enter__(self) -> CommandCounter:
        original = self.original

        def counting(connection: Any, *args: Any) -> Any:
            self.count += 1
            return original(connection, *args)

        self.owner.pack_command = counting  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        self.owner.pack_command = self.original  # type: ignore[method-assign]


def _server_commands(port: int) -> int:
    """Commands Redis executed so far, from ``INFO commandstats`` (without INFO itself)."""
    from redis import Redis

    with Redis(port=port) as client:
        stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",))


def commands_per_message() -> None:
    """Print the Redis commands per delivered message of each layer, for three loads."""
    loads = [("send/receive", 1, 2_000, False), ("group_send 100", 100, 200, True)]
    loads.append(("group_send 1000", 1000, 20, True))
    print("| load | layer | client commands/msg | Redis commands/msg (incl. Lua) |")
    print("|---|---|---:|---:|")
    for label, members, messages, group in loads:
        for name in ("hub", "channels_redis", "channels_redis_pubsub"):
            with redis_server() as port:
                delivered, client, server = asyncio.run(
                    _count_commands(name, port, members, messages, group)
                )
            print(
                f"| {label} | {name} | {client / delivered:.3f} | {server / delivered:.3f} |",
                flush=True,
            )


async def _count_commands(
    name: str, port: int, members: int, messages: int, group: bool
) -> tuple[int, int, int]:
    """``(delivered, client commands, Redis commands)`` of one fan-out run."""
    layer = make_layer(name, port, capacity=messages + 1)
    channels = [await layer.new_channel() for _ in range(members)]
    if group:
        for channel in channels:
            await layer.group_add(GROUP, channel)
    await asyncio.sleep(0.2)  # readers settled
    before = _server_commands(port)
    with CommandCounter() as counter:
        sample = await _fan_out(layer, channels, messages, 30.0, group=group)
    after = _server_commands(port)
    await _close(layer)
    return sample.ops, counter.count, after - before


def workers_echo(seconds: float = 3.0, clients: int = 100) -> None:
    """Print WebSocket echo round trips/s through ``hub run --workers N`` on the Redis layer."""
    from benchmarks.websocket import LAUNCH, PYTHON, run_client

    print("| path | workers | round trips/s | scaling vs 1 worker |")
    print("|---|---:|---:|---:|")
    for path in ("/echo/", "/layer-echo/"):
        base = None
        for workers in (1, 2, 4):
            with redis_server() as redis_port:
                port = _free_port()
                command = [
                    *LAUNCH, PYTHON, "-m", "hub", "run", "benchmarks.apps.redis_echo:application",
                    "--settings", "benchmarks.apps.redis_settings",
                    "--http", f"127.0.0.1:{port}?access_log=false",
                    "--workers", str(workers), "--loop", "uvloop", "--log-level", "warning",
                ]  # fmt: skip
                env = {**os.environ, "HUB_BENCH_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
                server = subprocess.Popen(
                    command, env=env, start_new_session=True, stdout=subprocess.DEVNULL
                )
                try:
                    rate = run_client(functools.partial(_echo_rate, port, path, clients, seconds))
                finally:
                    os.killpg(server.pid, 15)
                    server.wait(30)
            base = base or rate
            print(f"| {path} | {workers} | {rate:,.0f} | {rate / base:.2f}x |", flush=True)


async def _echo_rate(port: int, path: str, clients: int, seconds: float) -> float:
    from benchmarks.websocket import DRAIN_TIMEOUT, Run, open_connections

    deadline = time.monotonic() + 30
    while True:  # the workers are up once a handshake succeeds
        try:
            probe = await open_connections(port, path, 1)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    for connection in probe:
        await connection.close()
    run = Run()
    connections = await open_connections(port, path, clients, run=run)
    run.drained = asyncio.get_running_loop().create_future()
    run.running = True
    start = perf_counter()
    for connection in connections:
        connection.send_first()
    run.sent = run.in_flight = len(connections)
    await asyncio.sleep(seconds)
    run.running = False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(run.drained), DRAIN_TIMEOUT)
    for connection in connections:
        await connection.close()
    return run.received / ((run.last_completed_at or perf_counter()) - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_layer")
    parser.add_argument("measurement", choices=["commands", "workers"])
    parser.add_argument("--seconds", type=float, default=3.0, help="workers: seconds per run")
    args = parser.parse_args(argv)
    if args.measurement == "commands":
        commands_per_message()
    else:
        workers_echo(args.seconds)


if __name__ == "__main__":
    main(sys.argv[1:])
