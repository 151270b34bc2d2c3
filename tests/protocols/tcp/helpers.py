"""Real TCP servers on 127.0.0.1 port 0 for the tests, and small ASGI apps to serve."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from protocols.tcp import TcpConfig, TcpServer
from protocols.tcp.connection import TcpConnection


@contextlib.asynccontextmanager
async def serve(app: Any, **options: Any) -> AsyncIterator[tuple[TcpServer, int]]:
    """A started :class:`TcpServer` for ``app`` and its port; stopped on exit."""
    options.setdefault("name", "test")
    server = TcpServer(app, TcpConfig(host="127.0.0.1", port=0, **options))
    await server.start()
    try:
        yield server, server.bound_addresses[0][1]
    finally:
        await server.wait_closed(grace_seconds=2)


def connections(server: TcpServer) -> list[TcpConnection]:
    assert server._listener is not None
    return list(server._listener.connections)


class Recorder:
    """An app that accepts, echoes every frame, and records scopes and disconnects."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.disconnects: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.received: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        assert (await receive())["type"] == "tcp.connect"
        await send({"type": "tcp.accept"})
        while True:
            message = await receive()
            if message["type"] == "tcp.receive":
                self.received.append(message["bytes"])
                await self.on_frame(message["bytes"], send)
            elif message["type"] == "tcp.disconnect":
                await self.disconnects.put(message)
                return

    async def on_frame(self, frame: bytes, send: Any) -> None:
        await send({"type": "tcp.send", "bytes": frame})

    async def next_disconnect(self) -> dict[str, Any]:
        async with asyncio.timeout(5):
            return await self.disconnects.get()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes the connection."""
    async with asyncio.timeout(5):
        return await reader.read()
