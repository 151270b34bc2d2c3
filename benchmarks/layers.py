"""In-memory channel layers: ``hub.layers.InMemoryChannelLayer`` against Channels'.

Both layers get the same arguments (``capacity=100``, the default of both) and
the same load, driven by the same code on one asyncio event loop:

- ``layer-send-receive``: a producer task sends to one channel while a
  consumer task, blocked in ``receive()``, takes the messages.
- ``layer-group-send-N``: N member channels in one group, each with a task
  blocked in ``receive()`` as a consumer's would be, and a producer calling
  ``group_send``. A delivery counts once every member has the message.

Load shape: the producer keeps at most ``WINDOW`` messages in flight (sent,
not yet received by everyone), then waits for the consumers. That is a busy
room rather than a flood: queues stay far below capacity, so nothing is
dropped with ``ChannelFull`` and latency measures the layer, not a backlog.
Latency is ``time.perf_counter()`` at receive minus the timestamp the
producer put in the message just before sending it.

Each message is ``{"type": "chat.message", "text": "hello"}`` plus the two
keys the measurement needs, ``seq`` and ``sent`` (an int and a float).
"""

from __future__ import annotations

import asyncio
import importlib
from time import perf_counter
from typing import Any

from benchmarks.harness import Benchmark, Implementation, LatencyHistogram, Sample

LAYERS = {
    "hub": "hub.layers.memory:InMemoryChannelLayer",
    "channels": "channels.layers:InMemoryChannelLayer",
}

#: Messages in flight at most: sent but not yet received by every recipient.
WINDOW = 10
#: Seconds without progress after which undelivered messages count as lost.
LOSS_TIMEOUT = 5.0
GROUP = "bench-room"


def configure_django() -> None:
    """The least Django needs for either layer to import and run."""
    from django.conf import settings

    if not settings.configured:
        settings.configure()


def make_layer(name: str, capacity: int) -> Any:
    configure_django()
    module_name, _, class_name = LAYERS[name].partition(":")
    layer_class = getattr(importlib.import_module(module_name), class_name)
    return layer_class(capacity=capacity)


class _Flight:
    """Counts deliveries of each message and lets the producer wait for room."""

    def __init__(self, recipients: int) -> None:
        self.recipients = recipients
        self.remaining: dict[int, int] = {}  # seq -> recipients still to receive it
        self.completed = 0  # messages every recipient has received
        self.last_completed_at = 0.0
        self.latencies = LatencyHistogram()
        self.progress = asyncio.Event()
        self.stuck = False

    def sending(self, seq: int) -> None:
        self.remaining[seq] = self.recipients

    def received(self, message: dict[str, Any]) -> None:
        now = perf_counter()
        self.latencies.record(now - message["sent"])
        seq = message["seq"]
        remaining = self.remaining[seq] - 1
        if remaining:
            self.remaining[seq] = remaining
        else:
            del self.remaining[seq]
            self.completed += 1
            self.last_completed_at = now
            self.progress.set()

    async def wait_until(self, completed: int) -> bool:
        """Wait until ``completed`` messages are fully delivered; False if stuck."""
        while self.completed < completed:
            if self.stuck:
                return False
            self.progress.clear()
            await self.progress.wait()
        return True

    async def watch(self) -> None:
        """Declare the flight stuck after ``LOSS_TIMEOUT`` s without a completed message.

        A watchdog rather than ``asyncio.wait_for`` around each wait, which
        would cost a task and a timer per wait inside the measured loop.
        """
        seen, since = self.completed, perf_counter()
        while True:
            await asyncio.sleep(LOSS_TIMEOUT / 10)
            if self.completed != seen or not self.remaining:
                seen, since = self.completed, perf_counter()
            elif perf_counter() - since > LOSS_TIMEOUT:
                self.stuck = True
                self.progress.set()


async def _fan_out(
    layer: Any, channels: list[str], messages: int, max_seconds: float, group: bool
) -> Sample:
    """Send up to ``messages`` to ``channels`` (by ``group_send`` if ``group``), receive all."""
    flight = _Flight(len(channels))

    async def consume(channel: str) -> None:
        receive, received = layer.receive, flight.received
        for _ in range(messages):
            received(await receive(channel))

    watchdog = asyncio.create_task(flight.watch())
    consumers = [asyncio.create_task(consume(channel)) for channel in channels]
    for _ in range(2):
        await asyncio.sleep(0)  # every consumer is now blocked in receive()

    send = layer.group_send if group else layer.send
    target = GROUP if group else channels[0]
    sent = 0
    start = perf_counter()
    deadline = start + max_seconds
    for seq in range(messages):
        if seq >= WINDOW and not await flight.wait_until(seq - WINDOW + 1):
            break
        if perf_counter() > deadline:
            break
        flight.sending(seq)
        message = {"type": "chat.message", "text": "hello", "seq": seq, "sent": perf_counter()}
        await send(target, message)
        sent += 1
    await flight.wait_until(sent)
    for task in [watchdog, *consumers]:
        task.cancel()
    await asyncio.gather(watchdog, *consumers, return_exceptions=True)
    return Sample(
        ops=flight.completed * len(channels),
        elapsed=flight.last_completed_at - start,
        latencies=flight.latencies,
        expected=sent * len(channels),
    )


def send_receive(params: dict[str, Any]) -> Sample:
    """One producer, one consumer, one channel."""

    async def main() -> Sample:
        layer = make_layer(params["layer"], params["capacity"])
        channel = await layer.new_channel()
        return await _fan_out(
            layer, [channel], params["messages"], params["max_seconds"], group=False
        )

    return asyncio.run(main())


def group_send(params: dict[str, Any]) -> Sample:
    """``group_send`` to a group of ``params["members"]`` waiting consumers."""

    async def main() -> Sample:
        layer = make_layer(params["layer"], params["capacity"])
        channels = [await layer.new_channel() for _ in range(params["members"])]
        for channel in channels:
            await layer.group_add(GROUP, channel)
        return await _fan_out(
            layer, channels, params["messages"], params["max_seconds"], group=True
        )

    return asyncio.run(main())


def _implementations(target: str) -> tuple[Implementation, ...]:
    return (
        Implementation("hub", target, {"layer": "hub"}),
        Implementation("channels", target, {"layer": "channels"}, requires=("channels",)),
    )


def _group_benchmark(members: int, messages: int, quick_messages: int) -> Benchmark:
    return Benchmark(
        name=f"layer-group-send-{members}",
        description=f"group_send to {members} receiving member(s), delivered messages/s",
        implementations=_implementations("benchmarks.layers:group_send"),
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
        name="layer-send-receive",
        description="send to one channel while a task receives, messages/s",
        implementations=_implementations("benchmarks.layers:send_receive"),
        params={"messages": 200_000, "capacity": 100, "max_seconds": 3.0},
        quick_params={"messages": 20_000, "capacity": 100, "max_seconds": 0.4},
    ),
    _group_benchmark(1, messages=200_000, quick_messages=20_000),
    _group_benchmark(100, messages=4_000, quick_messages=400),
    _group_benchmark(1000, messages=400, quick_messages=40),
]
