"""The worked example of docs/tcp.md runs: its consumer, a real listener, a simulated tracker."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path
from typing import Any

from hub.layers import get_channel_layer
from hub.listeners import parse_listener
from hub.routing import ProtocolTypeRouter
from hub.server import Hub
from hub.tcp_routing import ListenerRouter

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "tcp.md"


@dataclasses.dataclass
class Device:
    """Stands in for the guide's Django model: ``Device.objects.filter(...).first()``."""

    device_id: str
    secret: str

    class objects:  # the model manager's name
        rows: list[Device] = []

        @classmethod
        def filter(cls, **lookups: Any) -> Any:
            found = [d for d in cls.rows if all(getattr(d, k) == v for k, v in lookups.items())]

            class QuerySet:
                def first(self) -> Device | None:
                    return found[0] if found else None

            return QuerySet()


def guide_example(name: str) -> dict[str, Any]:
    """Run the Python block after ``<!-- example: NAME -->`` in the guide."""
    text = GUIDE.read_text()
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, f"docs/tcp.md has no example {name!r}"
    namespace: dict[str, Any] = {"Device": Device}
    exec(compile(match.group(1), str(GUIDE), "exec"), namespace)
    return namespace


async def test_the_gps_tracker_of_the_guide_reports_positions_and_obeys_commands() -> None:
    Device.objects.rows = [Device("tracker-7", "s3cret")]
    consumer = guide_example("gps")["GpsTrackerConsumer"]
    application = ProtocolTypeRouter({"tcp": ListenerRouter({"gps": consumer.as_asgi()})})
    hub = Hub(application, [parse_listener("tcp", "gps=127.0.0.1:0?framing=line")], lifespan="off")
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add("positions", watcher)
    await hub.start()
    try:
        port = hub.servers[0][1].bound_addresses[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(5):
            writer.write(b"LOGIN tracker-7 s3cret\r\n$POS,tracker-7,52.37,4.89\r\n")
            assert await reader.readline() == b"OK\n"
            position = await layer.receive(watcher)
            assert position == {
                "type": "position",
                "device": "tracker-7",
                "lat": 52.37,
                "lon": 4.89,
            }
            await layer.group_send(
                "device.tracker-7", {"type": "device.command", "command": "PING"}
            )
            assert await reader.readline() == b"CMD PING\n"
            writer.write(b"ACK PING\n")
            ack = await layer.receive(watcher)
            assert ack == {"type": "ack", "device": "tracker-7", "command": "PING"}
        writer.close()
    finally:
        await hub.wait_closed(grace=2)
        await layer.group_discard("positions", watcher)


async def test_the_gps_tracker_of_the_guide_refuses_a_wrong_secret() -> None:
    Device.objects.rows = [Device("tracker-7", "s3cret")]
    consumer = guide_example("gps")["GpsTrackerConsumer"]
    hub = Hub(
        ListenerRouter({"gps": consumer.as_asgi()}),
        [parse_listener("tcp", "gps=127.0.0.1:0?framing=line")],
        lifespan="off",
    )
    await hub.start()
    try:
        port = hub.servers[0][1].bound_addresses[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"LOGIN tracker-7 guess\n")
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
    finally:
        await hub.wait_closed(grace=2)
