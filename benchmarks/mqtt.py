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
subscriber receives it; the run stops at ``max_seconds``.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
import tempfile
from time import perf_counter
from typing import Any

from benchmarks.harness import Benchmark, Implementation, LatencyHistogram, Sample

PAYLOAD_SIZE = 64
TOPIC = "bench/t"


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


async def _open(port: int, client_id: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    from protocols.mqtt import Connect, ProtocolVersion

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_encode(Connect(client_id, ProtocolVersion.V311, keep_alive=0)))
    connack = await reader.readexactly(4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"CONNACK refused: {connack!r}")
    return reader, writer


async def _subscriber(port: int, name: str, qos: int, stats: _Stats, ready: asyncio.Event) -> None:
    from protocols.mqtt import QoS, Subscribe, Subscription

    reader, writer = await _open(port, name)
    writer.write(_encode(Subscribe(1, (Subscription(TOPIC, QoS(qos)),))))
    suback = await reader.readexactly(5)
    if suback[0] != 0x90:
        raise ConnectionError(f"expected SUBACK, got {suback!r}")
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
    acks = asyncio.create_task(_read_acks(reader, in_flight)) if qos else None
    packet_id = 0
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
                        return
                    packet_id = packet_id % 65535 + 1
                    head = template[:pid_at] + packet_id.to_bytes(2, "big")
                else:
                    head = template[:time_at]
                chunks.append(head + pack_time(perf_counter()) + padding)
                stats.sent += 1
            if chunks:
                writer.write(b"".join(chunks))
            await writer.drain()
    finally:
        if acks is not None:
            acks.cancel()
        writer.close()


async def _read_acks(reader: asyncio.StreamReader, in_flight: asyncio.Semaphore | None) -> None:
    assert in_flight is not None
    pending = 0
    while True:
        data = await reader.read(65536)
        if not data:
            return
        pending += len(data)
        for _ in range(pending // 4):  # PUBACKs: 4 bytes each
            in_flight.release()
        pending %= 4


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
        for ready in readies:
            await ready.wait()
        start = perf_counter()
        deadline = start + params["max_seconds"]
        await asyncio.gather(
            *(
                _publisher(port, f"p{tag}{i}", qos, stats, params["window"], deadline)
                for i in range(params["publishers"])
            )
        )
        elapsed = perf_counter() - start
        for task in subscribers:
            task.cancel()
        await asyncio.gather(*subscribers, return_exceptions=True)
        return Sample(ops=stats.received, elapsed=elapsed, latencies=stats.histogram)

    return asyncio.run(main())


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
    server = MqttServer(app, MqttConfig(host="127.0.0.1", port=port))
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
]


if __name__ == "__main__":
    servers = {"hub": serve_hub, "amqtt": serve_amqtt}
    if len(sys.argv) != 4 or sys.argv[1] != "serve" or sys.argv[2] not in (*servers, "mosquitto"):
        sys.exit("usage: python -m benchmarks.mqtt serve hub|mosquitto|amqtt PORT")
    import logging

    logging.basicConfig(level=logging.WARNING)
    if sys.argv[2] == "mosquitto":
        exec_mosquitto(int(sys.argv[3]))
    asyncio.run(servers[sys.argv[2]](int(sys.argv[3])))
