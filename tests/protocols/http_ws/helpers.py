"""Real sockets on 127.0.0.1 port 0: a running server, raw HTTP and raw WebSocket clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import struct
from collections.abc import AsyncIterator
from typing import Any

import h11

from protocols.http_ws import HttpWsConfig, HttpWsServer
from protocols.http_ws.messages import ASGIApp


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, **config: Any) -> AsyncIterator[HttpWsServer]:
    """A started server on a free port; shut down (grace 1 s) on exit."""
    config.setdefault("port", 0)
    state = config.pop("state", None)
    server = HttpWsServer(app, HttpWsConfig(**config), lifespan_state=state)
    await server.start()
    try:
        yield server
    finally:
        await server.wait_closed(1.0)


def address(server: HttpWsServer) -> tuple[str, int]:
    host, port = server.bound_addresses[0]
    return host, port


async def open_raw(server: HttpWsServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*address(server))


@dataclasses.dataclass
class Reply:
    status_code: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def read_response(reader: asyncio.StreamReader, method: str = "GET") -> Reply:
    """Read the next response on a connection with h11 (kept on the reader between calls)."""
    conn: h11.Connection | None = getattr(reader, "h11_connection", None)
    if conn is None:
        conn = h11.Connection(h11.CLIENT)
        reader.h11_connection = conn  # type: ignore[attr-defined]
    elif conn.our_state is h11.DONE and conn.their_state is h11.DONE:
        conn.start_next_cycle()
    conn.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
    conn.send(h11.EndOfMessage())
    response = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    assert response is not None
    return Reply(response.status_code, list(response.headers), body)


async def request(server: HttpWsServer, raw: bytes, method: str = "GET") -> Reply:
    """Send raw request bytes on a new connection and read one response."""
    reader, writer = await open_raw(server)
    writer.write(raw)
    try:
        return await read_response(reader, method)
    finally:
        writer.close()


def header(response: Reply, name: bytes) -> bytes | None:
    for key, value in response.headers:
        if key == name:
            return value
    return None


# Raw WebSocket --------------------------------------------------------------------


def handshake_request(path: str = "/", extra: bytes = b"") -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
        % (path.encode(), key, extra)
    )


async def raw_websocket(
    server: HttpWsServer,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket opened by hand, for sending frames no real client would."""
    reader, writer = await open_raw(server)
    writer.write(handshake_request())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    """Serialize one client frame (RFC 6455 5.2), valid or not."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, (0x80 if mask else 0) | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, length)
    else:
        head = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one unmasked server frame: ``(opcode, payload)``."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


async def read_close_code(reader: asyncio.StreamReader) -> int:
    """Skip frames until the server's close frame; return its code."""
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if payload else 1005
