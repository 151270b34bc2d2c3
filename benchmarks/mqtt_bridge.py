"""MQTT bridge mode: messages/s hub consumes from mosquitto, against a bare paho subscriber.

Each repetition starts its own mosquitto (``tests.mosquitto.Mosquitto``) and
the consumer side as a separate process:

- ``hub``: ``hub run benchmarks.mqtt_bridge:application --mqtt-bridge URL``,
  an :class:`AsyncMqttConsumer` whose handler counts (QoS 1, acknowledged to
  the broker after the handler, as in production);
- ``hub-2-workers``: the same with ``--workers 2`` and ``share=hub``, so the
  broker splits ``$share/hub/bench/data`` between two processes;
- ``paho``: ``python -m benchmarks.mqtt_bridge paho PORT``, a bare paho-mqtt
  subscriber (QoS 1, paho's automatic PUBACK after ``on_message``): the
  ceiling of a Python client of the broker.

Every ``ACK_EVERY`` messages a consumer publishes its process id to
``ACK_TOPIC``. The load generator (this process) publishes QoS 1 messages
with raw MQTT 3.1.1 packets, keeping at most ``window`` messages published
but not yet counted as consumed (so the broker never drops, and a fast
publisher does not steal the consumers' CPU), and counts the acks. The clock
starts once every consumer process has reported (all are subscribed and
consuming), and the run lasts ``max_seconds``: the sample is the messages
consumed in that window.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from time import perf_counter
from typing import Any, ClassVar

from benchmarks.harness import Benchmark, BenchmarkError, Implementation, Sample

#: Topic the load is published to, and the one consumers report on.
DATA_TOPIC = "bench/data"
ACK_TOPIC = "bench/acks"
#: Messages a consumer counts before it reports (one report = this many consumed).
ACK_EVERY = 100
#: Payload bytes of each message.
PAYLOAD_SIZE = 64
#: QoS 1 PUBLISH packets the load generator keeps unacknowledged by mosquitto.
PUBLISH_IN_FLIGHT = 1000
#: Seconds the consumer processes get to start and report their first messages.
START_TIMEOUT = 30.0
#: Seconds without a report, before every consumer reported, after which unconsumed
#: messages count as dropped by the broker (published before the consumers subscribed).
STARTUP_PAUSE = 0.2
#: Seconds a consumer process gets to exit after SIGTERM.
STOP_TIMEOUT = 10.0
#: mosquitto's QoS 1 in-flight window per client (its default, 20, would be the bottleneck).
MAX_INFLIGHT = 100


# The hub application (loaded by ``hub run`` through the module __getattr__)


def _build_application() -> Any:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            CHANNEL_LAYERS={"default": {"BACKEND": "hub.layers.InMemoryChannelLayer"}}
        )
    from hub.generic.mqtt import AsyncMqttConsumer
    from hub.mqtt.messages import MqttMessage
    from hub.routing import ProtocolTypeRouter

    report = str(os.getpid()).encode()

    class Counter(AsyncMqttConsumer):
        """Counts messages; reports every ``ACK_EVERY`` through the bridge."""

        allow_anonymous = True
        consumed: ClassVar[int] = 0

        async def receive(self, message: MqttMessage) -> None:
            Counter.consumed += 1
            if Counter.consumed % ACK_EVERY == 0:
                await self.publish(ACK_TOPIC, report, 0)

    return ProtocolTypeRouter({"mqtt": Counter.as_asgi()})


def __getattr__(name: str) -> Any:
    if name == "application":
        application = _build_application()
        globals()["application"] = application
        return application
    raise AttributeError(name)


# The bare paho-mqtt subscriber (the ceiling)


def run_paho_subscriber(port: int) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    report = str(os.getpid()).encode()
    consumed = 0
    client = paho.Client(CallbackAPIVersion.VERSION2, "bench-paho", protocol=paho.MQTTv5)

    def on_connect(client: paho.Client, *_: Any) -> None:
        client.subscribe(DATA_TOPIC, 1)

    def on_message(client: paho.Client, _userdata: Any, _message: paho.MQTTMessage) -> None:
        nonlocal consumed
        consumed += 1
        if consumed % ACK_EVERY == 0:
            client.publish(ACK_TOPIC, report, 0)

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_forever()


# The load generator and the run


def _consumer_argv(params: dict[str, Any], port: int) -> list[str]:
    if params["impl"] == "paho":
        return [sys.executable, "-m", "benchmarks.mqtt_bridge", "paho", str(port)]
    url = f"mqtt://127.0.0.1:{port}/?client_id=bench-hub&subscribe={DATA_TOPIC}&qos=1"
    if params.get("share"):
        url += f"&share={params['share']}"
    argv = [sys.executable, "-m", "hub", "run", "benchmarks.mqtt_bridge:application"]
    argv += ["--mqtt-bridge", url]
    if params["workers"] > 1:
        argv += ["--workers", str(params["workers"])]
    return argv


class _Counts:
    def __init__(self) -> None:
        self.consumed = 0
        self.reporters: set[bytes] = set()
        self.changed = asyncio.Event()


async def _read_reports(reader: asyncio.StreamReader, counts: _Counts) -> None:
    """Count the QoS 0 PUBLISH packets on ``ACK_TOPIC``; remember who sent them."""
    buffer = b""
    while data := await reader.read(65536):
        buffer += data
        pos, end = 0, len(buffer)
        while pos + 2 <= end:
            length, shift, index = 0, 0, pos + 1
            while index < end and index < pos + 5:
                byte = buffer[index]
                length |= (byte & 0x7F) << shift
                index += 1
                if byte < 0x80:
                    break
                shift += 7
            else:
                break
            if index + length > end:
                break
            if buffer[pos] >> 4 == 3:
                topic_length = (buffer[index] << 8) | buffer[index + 1]
                counts.reporters.add(buffer[index + 2 + topic_length : index + length])
                counts.consumed += ACK_EVERY
            pos = index + length
        buffer = buffer[pos:]
        counts.changed.set()


async def _load(port: int, params: dict[str, Any]) -> Sample:
    from benchmarks.mqtt import _encode, _open
    from protocols.mqtt import Publish, QoS

    counts = _Counts()
    monitor_reader, monitor_writer = await _open(port, f"monitor-{os.getpid()}", 0, (ACK_TOPIC, 0))
    monitor = asyncio.create_task(_read_reports(monitor_reader, counts))
    reader, writer = await _open(port, f"load-{os.getpid()}")
    in_flight = asyncio.Semaphore(PUBLISH_IN_FLIGHT)

    async def read_pubacks() -> None:
        pending = 0
        while data := await reader.read(65536):
            pending += len(data)
            for _ in range(pending // 4):  # PUBACK: 4 bytes
                in_flight.release()
            pending %= 4

    pubacks = asyncio.create_task(read_pubacks())
    template = _encode(Publish(DATA_TOPIC, b"x" * PAYLOAD_SIZE, QoS.AT_LEAST_ONCE, packet_id=1))
    pid_at = len(template) - PAYLOAD_SIZE - 2
    head, tail = template[:pid_at], template[pid_at + 2 :]
    packet_id = sent = 0
    window, workers = params["window"], params["workers"]
    start: float | None = None
    at_start = 0
    deadline = perf_counter() + START_TIMEOUT
    try:
        while True:
            now = perf_counter()
            if start is None and len(counts.reporters) >= workers:
                start, at_start = now, counts.consumed
                deadline = start + params["max_seconds"]
            if now >= deadline:
                break
            if sent - counts.consumed >= window:
                counts.changed.clear()
                # Before every consumer is subscribed the broker drops what nobody takes:
                # forget the outstanding messages after a pause, and publish again.
                pause = deadline - now if start is not None else STARTUP_PAUSE
                try:
                    await asyncio.wait_for(counts.changed.wait(), pause)
                except TimeoutError:
                    if start is not None or now + pause >= deadline:
                        break
                    sent = counts.consumed
                continue
            chunks = []
            for _ in range(min(64, window - (sent - counts.consumed))):
                await in_flight.acquire()
                packet_id = packet_id % 65535 + 1
                chunks.append(head + packet_id.to_bytes(2, "big") + tail)
            sent += len(chunks)
            writer.write(b"".join(chunks))
            await writer.drain()
        if start is None:
            raise BenchmarkError(
                f"{len(counts.reporters)} of {workers} consumer processes reported "
                f"within {START_TIMEOUT} s"
            )
        return Sample(ops=counts.consumed - at_start, elapsed=perf_counter() - start)
    finally:
        for task in (monitor, pubacks):
            task.cancel()
        writer.close()
        monitor_writer.close()


def consume(params: dict[str, Any]) -> Sample:
    """One repetition: a fresh mosquitto, the consumer process(es), ``max_seconds`` of load."""
    from tests.mosquitto import Mosquitto

    broker = Mosquitto(max_inflight_messages=MAX_INFLIGHT, max_queued_messages=100_000).start()
    consumer: subprocess.Popen[bytes] | None = None
    try:
        consumer = subprocess.Popen(
            _consumer_argv(params, broker.port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # the supervisor and its workers stop together
        )
        return asyncio.run(_load(broker.port, params))
    finally:
        if consumer is not None:
            consumer.terminate()
            try:
                consumer.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                consumer.kill()
                consumer.wait()
        broker.close()


def _implementation(name: str, **params: Any) -> Implementation:
    return Implementation(
        name, "benchmarks.mqtt_bridge:consume", params, requires=("/usr/sbin/mosquitto",)
    )


BENCHMARKS = [
    Benchmark(
        name="mqtt-bridge-consume",
        description="QoS 1 messages/s consumed from mosquitto: hub bridge mode "
        "(1 process; 2 workers on $share/hub) vs a bare paho-mqtt subscriber",
        implementations=(
            _implementation("hub", impl="hub", workers=1),
            _implementation("paho", impl="paho", workers=1),
            _implementation("hub-2-workers", impl="hub", workers=2, share="hub"),
        ),
        params={"max_seconds": 3.0, "window": 2000},
        quick_params={"max_seconds": 1.0, "window": 2000},
        repetitions=3,
        quick_repetitions=2,
        timeout=300.0,
    ),
]


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "paho":
        sys.exit("usage: python -m benchmarks.mqtt_bridge paho PORT")
    run_paho_subscriber(int(sys.argv[2]))
