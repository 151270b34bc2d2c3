"""TCP listeners end to end: the runner's Hub, a real socket, routing, consumers, crashes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from hub.generic.tcp import AsyncLineConsumer
from hub.listeners import parse_listener
from hub.routing import ProtocolTypeRouter
from hub.server import Hub
from hub.tcp_routing import ListenerRouter


class Upper(AsyncLineConsumer):
    async def receive_line(self, line: str) -> None:
        if line == "crash":
            raise RuntimeError("asked to crash")
        await self.send_line(line.upper())


class Length(AsyncLineConsumer):
    framing = "length"


@contextlib.asynccontextmanager
async def running(*listeners: str) -> AsyncIterator[dict[str, int]]:
    application = ProtocolTypeRouter(
        {"tcp": ListenerRouter({"dev": Upper.as_asgi(), "bin": Upper.as_asgi()})}
    )
    hub = Hub(application, [parse_listener("tcp", text) for text in listeners], lifespan="off")
    await hub.start()
    try:
        yield {spec.name or "": server.bound_addresses[0][1] for spec, server in hub.servers}
    finally:
        await hub.wait_closed(grace=2)


async def exchange(port: int, line: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(line)
    try:
        async with asyncio.timeout(5):
            answer = await reader.readline()
    except ConnectionResetError:
        # Closing a socket with unread bytes (refused before reading) sends RST.
        answer = b""
    writer.close()
    return answer


class TestRunner:
    async def test_a_named_listener_from_the_command_line_serves_its_consumer(self) -> None:
        async with running("dev=127.0.0.1:0?framing=line") as ports:
            assert await exchange(ports["dev"], b"hello\n") == b"HELLO\n"

    async def test_listener_options_set_the_framing_and_limits(self) -> None:
        text = "dev=127.0.0.1:0?framing=line&delimiter=\\r\\n&max_frame_size=8"
        async with running(text) as ports:
            assert await exchange(ports["dev"], b"12345678\r\n") == b"12345678\r\n"
            assert await exchange(ports["dev"], b"123456789\r\n") == b""

    async def test_a_listener_the_router_does_not_know_is_closed(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        async with running("meters=127.0.0.1:0?framing=line") as ports:
            assert await exchange(ports["meters"], b"hello\n") == b""
        assert "No application for tcp listener 'meters' (ListenerRouter has: 'dev', 'bin')" in (
            caplog.text
        )

    async def test_a_consumer_crash_closes_only_its_connection(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        async with running("dev=127.0.0.1:0?framing=line") as ports:
            reader, writer = await asyncio.open_connection("127.0.0.1", ports["dev"])
            writer.write(b"before\n")
            assert await reader.readline() == b"BEFORE\n"
            assert await exchange(ports["dev"], b"crash\n") == b""
            writer.write(b"after\n")
            assert await reader.readline() == b"AFTER\n"
            writer.close()
        assert "Upper tcp dev from 127.0.0.1:" in caplog.text
        assert "RuntimeError: asked to crash" in caplog.text

    async def test_the_banner_shows_the_listener_name_and_scheme(self) -> None:
        application = ListenerRouter({})
        hub = Hub(application, [parse_listener("tcp", "dev=127.0.0.1:0")], lifespan="off")
        await hub.start()
        try:
            [(protocol, url)] = hub.urls()
            assert protocol == "tcp"
            assert url.startswith("dev=tcp://127.0.0.1:")
        finally:
            await hub.wait_closed(grace=1)

    def test_an_unknown_option_lists_the_valid_ones(self) -> None:
        spec = parse_listener("tcp", "dev=127.0.0.1:0?framming=line")
        with pytest.raises(ValueError, match="Unknown option\\(s\\) framming for tcp listener"):
            spec.build_config()
