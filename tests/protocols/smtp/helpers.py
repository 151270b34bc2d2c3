"""A scriptable SMTP application, a running server, and a raw line client for the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from protocols.smtp import SmtpConfig, SmtpServer

Decide = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass
class ScriptedApp:
    """An ASGI SMTP app whose answers the test sets; it records every event.

    Each ``on_*`` returns the answer to send (``None``: the accept), or raises
    to make the application crash.
    """

    on_connect: Decide = lambda event: None
    on_rcpt: Decide = lambda event: None
    on_message: Decide = lambda event: None
    on_auth: Decide = lambda event: None
    on_mail: Decide = lambda event: None
    accept_mail: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event | None = None  # when set, message answers wait for it

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        while True:
            event = await receive()
            self.events.append(event)
            kind = event["type"]
            if kind == "smtp.disconnect":
                self.disconnected.set()
                return
            if kind == "smtp.message":
                self.messages.append(event)
                if self.gate is not None:
                    await self.gate.wait()
            decide = {
                "smtp.connect": self.on_connect,
                "smtp.rcpt": self.on_rcpt,
                "smtp.message": self.on_message,
                "smtp.auth": self.on_auth,
                "smtp.mail": self.on_mail,
            }[kind]
            answer = decide(event)
            if answer is None:
                accept = {"smtp.connect": "smtp.accept"}.get(kind, f"{kind}.accept")
                answer = {"type": accept}
                if kind == "smtp.connect":
                    answer["mail"] = self.accept_mail
            await send(answer)


@contextlib.asynccontextmanager
async def serve(app: Any, **options: Any) -> AsyncIterator[tuple[SmtpServer, int]]:
    """An ``SmtpServer`` on 127.0.0.1 and a free port; closed (grace 2 s) on exit."""
    options.setdefault("hostname", "hub.test")
    server = SmtpServer(app, SmtpConfig(host="127.0.0.1", port=0, **options))
    await server.start()
    try:
        yield server, server.bound_addresses[0][1]
    finally:
        await server.wait_closed(2.0)


class RawClient:
    """Lines over a socket, for what real clients will not send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, greet: bool = True) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        if greet:
            code, _ = await client.reply()
            assert code == 220
        return client

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: bytes) -> tuple[int, str]:
        await self.send(line + b"\r\n")
        return await self.reply()

    async def reply(self) -> tuple[int, str]:
        """One (possibly multi-line) reply: its code and its lines joined with newlines."""
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 5)
            if not line:
                raise ConnectionError(f"connection closed after {lines!r}")
            lines.append(line[4:].rstrip(b"\r\n").decode())
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    async def closed(self) -> bool:
        """Whether the server closed the connection (EOF within 5 s)."""
        return await asyncio.wait_for(self.reader.read(), 5) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
