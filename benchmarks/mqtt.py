"""MQTT brokers: hub's ``BrokerConsumer`` against mosquitto (Debian) and amqtt (PyPI).

Each broker runs in a process of its own (``python -m benchmarks.mqtt serve
hub|mosquitto|amqtt PORT``; mosquitto is exec'd with a temporary config, so
the RSS measured is its own):

- ``hub``: ``protocols.mqtt.MqttServer`` -> ``BrokerConsumer`` (anonymous
  allowed) on the in-memory channel layer, capacity 10,000 per channel;
- ``mosquitto``: ``/usr/sbin/mosquitto`` with ``allow_anonymous true``;
- ``amqtt``: ``amqtt.broker.Broker`` with anonymous auth.

Load: raw asyncio sockets speaking MQTT 3.1.1 with packets pre-encoded by
hub's codec (``protocols.mqtt.encode``) and a minimal PUBLISH parser, so the
load client is cheap next to any broker. Payloads are 64 bytes starting with
the send time (``perf_counter``, the subscriber is in the same process), so
latency is publish-to-delivery. Publishers are closed-loop: at most
``window`` deliveries outstanding (published but not yet received by every
subscriber), which keeps every broker below its queue limits, so the
delivered rate is what the broker sustains. A message counts when a
subscriber receives it; publishing stops at ``max_seconds``, then the run
waits for the messages still on their way (at most ``DRAIN_SECONDS`` without
progress), and a message that never arrived is reported as lost. p50/p99 are
publish-to-delivery latencies over every delivery.

``mqtt-idle-10k``: 10,000 device connections (MQTT 3.1.1, keep alive 60 s,
each subscribed to its own ``devices/<client id>/commands`` at QoS 1, as a
device waiting for commands is) stay idle; the number reported is the
broker's RSS growth per connection, in bytes (lower is better), measured as
``benchmarks/idle.py`` does for WebSockets (``VmRSS`` before the first
connection and ``SETTLE_SECONDS`` after the last SUBACK; the marginal cost
over the second half goes to ``$HUB_BENCH_CPU_LOG``). p50/p99 there are
CONNECT-to-SUBACK times with ``CONNECT_CONCURRENCY`` connections opening at
once. amqtt is left out of it (the issue compares with mosquitto).

The brokers' stderr is a pipe the harness reads only when they fail, so they
log warnings and errors only; hub's server must not log per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import sys
import tempfile
from time import perf_counter
from typing import Any

from benchmarks.harness import Benchmark, BenchmarkError, Implementation, LatencyHistogram, Sample

PAYLOAD_SIZE = 64
TOPIC = "bench/t"
#: Seconds without a delivery after publishing stopped before the rest counts as lost.
DRAIN_SECONDS = 1.0
#: Seconds to open one connection (CONNECT to CONNACK or SUBACK); past it the run
#: fails instead of hanging on a broker that stopped answering.
OPEN_TIMEOUT = 30.0
#: Connections opening at once in ``mqtt-idle-10k`` (as ``benchmarks.websocket``).
CONNECT_CONCURRENCY = 200
#: Keep Alive of the idle devices: 60 s, a common device default; the run is
#: far shorter than 1.5 x 60 s, so no PINGREQ is needed.
IDLE_KEEP_ALIVE = 60
#: Seconds between the last SUBACK and reading the broker's RSS.
SETTLE_SECONDS = 1.0


def _encode(packet: Any) -> bytes:
    from protocols.mqtt import ProtocolVersion, encode

    return encode(packet, ProtocolVersion.V311)


class _Stats:
    def __init__(self, subscribers: int) -> None:
        self.sent = 0
        self.received = 0
        self.subscribers = subscribers
        self.histogram = LatencyHistogram()
        self.room = asyncio.Event()
        self.room.set()


async def _open(
    port: int, client_id: str, keep_alive: int = 0, subscribe: tuple[str, int] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect (and subscribe); fail after ``OPEN_TIMEOUT`` rather than hang."""
    from protocols.mqtt import Connect, ProtocolVersion, QoS, Subscribe, Subscription

    async with asyncio.timeout(OPEN_TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_encode(Connect(client_id, ProtocolVersion.V311, keep_alive=keep_alive)))
        connack = await reader.readexactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"CONNACK refused: {connack!r}")
        if subscribe is not None:
            topic_filter, qos = subscribe
            writer.write(_encode(Subscribe(1, (Subscription(topic_filter, QoS(qos)),))))
            suback = await reader.readexactly(5)
            if suback[0] != 0x90 or suback[4] >= 0x80:
                raise ConnectionError(f"expected a granted SUBACK, got {suback!r}")
    return reader, writer


async def _subscriber(port: int, name: str, qos: int, stats: _Stats, ready: asyncio.Event) -> None:
    reader, writer = await _open(port, name, subscribe=(TOPIC, qos))
    ready.set()
    buffer = b""
    histogram = stats.histogram
    unpack_time = struct.Struct("!d").unpack_from
    while True:
        data = await reader.read(262144)
        if not data:
            return
        buffer += data
        pos, end = 0, len(buffer)
        acks = []
        now = perf_counter()
        while pos + 2 <= end:
            first = buffer[pos]
            length, shift, index = 0, 0, pos + 1
            while index < end and index < pos + 5:
                byte = buffer[index]
                length |= (byte & 0x7F) << shift
                index += 1
                if byte < 0x80:
                    break
                shift += 7
            else:
                break  # remaining length not complete yet
            if index + length > end:
                break
            body, pos = index, index + length
            if first >> 4 == 3:
                topic_length = (buffer[body] << 8) | buffer[body + 1]
                start = body + 2 + topic_length
                if first & 0x06:
                    acks.append(b"\x40\x02" + buffer[start : start + 2])
                    start += 2
                histogram.record(now - unpack_time(buffer, start)[0])
                stats.received += 1
        buffer = buffer[pos:]
        if acks:
            writer.write(b"".join(acks))
        stats.room.set()


async def _publisher(
    port: int, name: str, qos: int, stats: _Stats, window: int, deadline: float
) -> None:
    from protocols.mqtt import Publish, QoS

    reader, writer = await _open(port, name)
    padding = b"x" * (PAYLOAD_SIZE - 8)
    pack_time = struct.Struct("!d").pack
    template = _encode(
        Publish(TOPIC, pack_time(0.0) + padding, QoS(qos), packet_id=1 if qos else None)
    )
    time_at = len(template) - PAYLOAD_SIZE
    pid_at = time_at - 2
    in_flight = asyncio.Semaphore(20) if qos else None
    acked = _Acks()
    acks = asyncio.create_task(_read_acks(reader, in_flight, acked)) if qos else None
    packet_id = 0
    published = 0
    batch = 32
    fanout = stats.subscribers
    try:
        while perf_counter() < deadline:
            while stats.sent * fanout - stats.received >= window:
                stats.room.clear()
                try:
                    await asyncio.wait_for(stats.room.wait(), 0.05)
                except TimeoutError:
                    if perf_counter() >= deadline:
                        return
            chunks = []
            for _ in range(batch):
                if in_flight is not None:
                    if in_flight.locked() and chunks:
                        writer.write(b"".join(chunks))  # the window is full: send what we have
                        chunks.clear()
                    try:
                        await asyncio.wait_for(in_flight.acquire(), deadline - perf_counter())
                    except TimeoutError:
                        break  # the deadline passed: send what was counted, then stop
                    packet_id = packet_id % 65535 + 1
                    head = template[:pid_at] + packet_id.to_bytes(2, "big")
                else:
                    head = template[:time_at]
                chunks.append(head + pack_time(perf_counter()) + padding)
                stats.sent += 1
                published += 1
            if chunks:
                writer.write(b"".join(chunks))
            await writer.drain()
        if qos:
            await acked.wait_for(published)  # closing earlier would abandon messages in flight
    finally:
        if acks is not None:
            acks.cancel()
        writer.close()


class _Acks:
    """PUBACKs a QoS 1 publisher received."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()

    async def wait_for(self, count: int) -> None:
        """Until ``count`` arrived, or ``DRAIN_SECONDS`` passed without one."""
        while self.count < count:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), DRAIN_SECONDS)
            except TimeoutError:
                return


async def _read_acks(
    reader: asyncio.StreamReader, in_flight: asyncio.Semaphore | None, acked: _Acks
) -> None:
    assert in_flight is not None
    pending = 0
    while True:
        data = await reader.read(65536)
        if not data:
            return
        pending += len(data)
        for _ in range(pending // 4):  # PUBACKs: 4 bytes each
            in_flight.release()
        acked.count += pending // 4
        acked.changed.set()
        pending %= 4


async def _all_ready(readies: list[asyncio.Event], subscribers: list[asyncio.Task[None]]) -> None:
    """Wait until every subscriber holds its SUBACK; a subscriber that failed fails the run."""
    waiting = [asyncio.ensure_future(ready.wait()) for ready in readies]
    done, _ = await asyncio.wait(
        [asyncio.gather(*waiting), *subscribers], return_when=asyncio.FIRST_COMPLETED
    )
    for task in subscribers:
        if task in done:
            for future in waiting:
                future.cancel()
            task.result()  # raises what the subscriber raised
            raise BenchmarkError("a subscriber's connection closed before publishing began")


async def _drain(stats: _Stats) -> None:
    """Wait for the deliveries still on their way, until ``DRAIN_SECONDS`` pass without one."""
    expected = stats.sent * stats.subscribers
    while stats.received < expected:
        before = stats.received
        stats.room.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stats.room.wait(), DRAIN_SECONDS)
        if stats.received == before:
            return


def deliver(params: dict[str, Any]) -> Sample:
    """One repetition: publishers -> subscribers on one topic for ``max_seconds``."""

    async def main() -> Sample:
        port, qos = params["port"], params["qos"]
        stats = _Stats(params["subscribers"])
        tag = os.urandom(3).hex()
        readies = [asyncio.Event() for _ in range(params["subscribers"])]
        subscribers = [
            asyncio.create_task(_subscriber(port, f"s{tag}{i}", qos, stats, ready))
            for i, ready in enumerate(readies)
        ]
        try:
            await _all_ready(readies, subscribers)
            start = perf_counter()
            deadline = start + params["max_seconds"]
            await asyncio.gather(
                *(
                    _publisher(port, f"p{tag}{i}", qos, stats, params["window"], deadline)
                    for i in range(params["publishers"])
                )
            )
            await _drain(stats)
            elapsed = perf_counter() - start
        finally:
            for task in subscribers:
                task.cancel()
            await asyncio.gather(*subscribers, return_exceptions=True)
        return Sample(
            ops=stats.received,
            elapsed=elapsed,
            latencies=stats.histogram,
            expected=stats.sent * stats.subscribers,
        )

    return asyncio.run(main())


# Idle device connections


def idle(params: dict[str, Any]) -> Sample:
    """Open ``connections`` idle devices; the sample's ops are bytes of broker RSS each."""
    from benchmarks.websocket import run_client

    return run_client(lambda: _idle(params))


async def _idle(params: dict[str, Any]) -> Sample:
    from benchmarks.websocket import log_run, rss_bytes, server_pid

    port, count = params["port"], params["connections"]
    pid = server_pid(port)
    latencies = LatencyHistogram()
    tag = os.urandom(3).hex()
    before = rss_bytes(pid)
    half = count // 2
    connections = await _open_devices(port, f"d{tag}-", 0, half, latencies)
    try:
        await asyncio.sleep(SETTLE_SECONDS)
        middle = rss_bytes(pid)
        connections += await _open_devices(port, f"d{tag}-", half, count, latencies)
        await asyncio.sleep(SETTLE_SECONDS)
        after = rss_bytes(pid)
        lost = sum(reader.at_eof() for reader, _ in connections)
    finally:
        for _, writer in connections:
            writer.close()
    if lost:
        raise BenchmarkError(f"the broker closed {lost} of {count} idle connections")
    per_connection = (after - before) / count
    log_run(
        params,
        connections=count,
        rss_before=before,
        rss_after=after,
        bytes_per_connection=round(per_connection),
        marginal_bytes_per_connection=round((after - middle) / (count - half)),
    )
    return Sample(ops=round(per_connection), elapsed=1.0, latencies=latencies)


async def _open_devices(
    port: int, prefix: str, first: int, end: int, latencies: LatencyHistogram
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """Devices ``first`` to ``end - 1``: CONNECT, SUBSCRIBE to their command topic."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(index: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        client_id = f"{prefix}{index}"
        async with gate:
            started = perf_counter()
            opened = await _open(
                port, client_id, IDLE_KEEP_ALIVE, (f"devices/{client_id}/commands", 1)
            )
            latencies.record(perf_counter() - started)
            return opened

    results = await asyncio.gather(*(one(i) for i in range(first, end)), return_exceptions=True)
    opened = [r for r in results if isinstance(r, tuple)]
    failures = [r for r in results if not isinstance(r, tuple)]
    if failures:
        for _, writer in opened:
            writer.close()
        raise BenchmarkError(
            f"{len(failures)} of {end - first} connections failed: {failures[0]!r}"
        )
    return opened


# The servers


async def serve_hub(port: int) -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            CHANNEL_LAYERS={
                "default": {
                    "BACKEND": "hub.layers.InMemoryChannelLayer",
                    "CONFIG": {"capacity": 10_000},
                }
            }
        )
    from hub.generic.mqtt import BrokerConsumer
    from hub.routing import ProtocolTypeRouter
    from protocols.mqtt import MqttConfig, MqttServer

    class Broker(BrokerConsumer):
        allow_anonymous = True

    app = ProtocolTypeRouter({"mqtt": Broker.as_asgi()})
    # max_connections above the default 10,000: the idle benchmark opens exactly
    # 10,000 right after its warm-up closed 1,000, which may not all be gone yet.
    server = MqttServer(app, MqttConfig(host="127.0.0.1", port=port, max_connections=20_000))
    await server.start()
    await asyncio.Event().wait()


def exec_mosquitto(port: int) -> None:
    config = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)  # noqa: SIM115
    config.write(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\n"
        "persistence false\nlog_dest none\n"
    )
    config.close()
    os.execv("/usr/sbin/mosquitto", ["mosquitto", "-c", config.name])


async def serve_amqtt(port: int) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
        "topic-check": {"enabled": False},
    }
    broker = Broker(config)
    await broker.start()
    await asyncio.Event().wait()


def _implementations() -> tuple[Implementation, ...]:
    def serve(name: str, requires: tuple[str, ...] = ()) -> Implementation:
        argv = (sys.executable, "-m", "benchmarks.mqtt", "serve", name, "{port}")
        return Implementation(name, "benchmarks.mqtt:deliver", server=argv, requires=requires)

    return (
        serve("hub"),
        serve("mosquitto", ("/usr/sbin/mosquitto",)),
        serve("amqtt", ("amqtt",)),
    )


def _benchmark(name: str, description: str, **shape: Any) -> Benchmark:
    return Benchmark(
        name=name,
        description=description,
        implementations=_implementations(),
        params={**shape, "max_seconds": 3.0},
        quick_params={**shape, "max_seconds": 0.5},
        timeout=240.0,
    )


def _idle_benchmark() -> Benchmark:
    def implementation(name: str, requires: tuple[str, ...] = ()) -> Implementation:
        argv = (sys.executable, "-m", "benchmarks.mqtt", "serve", name, "{port}")
        return Implementation(
            name, "benchmarks.mqtt:idle", {"impl": name}, server=argv, requires=requires
        )

    return Benchmark(
        name="mqtt-idle-10k",
        description="10,000 idle MQTT devices, each subscribed to its command topic: "
        "broker RSS per connection (lower wins)",
        implementations=(
            implementation("hub"),
            implementation("mosquitto", ("/usr/sbin/mosquitto",)),
        ),
        params={"name": "mqtt-idle-10k", "connections": 10_000},
        quick_params={"name": "mqtt-idle-10k", "connections": 1_000},
        unit="B/conn",
        repetitions=1,
        quick_repetitions=1,
        timeout=240.0,
    )


BENCHMARKS = [
    _benchmark(
        "mqtt-4to1-qos0",
        "4 publishers -> 1 subscriber, QoS 0, 64-byte payloads, delivered msg/s",
        publishers=4,
        subscribers=1,
        qos=0,
        window=500,
    ),
    _benchmark(
        "mqtt-4to1-qos1",
        "4 publishers -> 1 subscriber, QoS 1, 64-byte payloads, delivered msg/s",
        publishers=4,
        subscribers=1,
        qos=1,
        window=500,
    ),
    _benchmark(
        "mqtt-1to100-qos0",
        "1 publisher -> 100 subscribers, QoS 0, 64-byte payloads, delivered msg/s",
        publishers=1,
        subscribers=100,
        qos=0,
        window=5000,
    ),
    _idle_benchmark(),
]


if __name__ == "__main__":
    servers = {"hub": serve_hub, "amqtt": serve_amqtt}
    if len(sys.argv) != 4 or sys.argv[1] != "serve" or sys.argv[2] not in (*servers, "mosquitto"):
        sys.exit("usage: python -m benchmarks.mqtt serve hub|mosquitto|amqtt PORT")
    import logging

    from benchmarks.apps.launch import raise_open_files_limit

    logging.basicConfig(level=logging.WARNING)
    raise_open_files_limit()  # 10,000 connections; inherited by mosquitto through exec
    if sys.argv[2] == "mosquitto":
        exec_mosquitto(int(sys.argv[3]))
    asyncio.run(servers[sys.argv[2]](int(sys.argv[3])))
