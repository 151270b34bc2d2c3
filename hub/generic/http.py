"""``AsyncHttpConsumer``: an HTTP endpoint as a consumer (long polling, server-sent events)."""

from __future__ import annotations

from typing import Any

from hub.consumer import AsyncConsumer
from hub.exceptions import StopConsumer
from hub.types import Message


class AsyncHttpConsumer(AsyncConsumer):
    """Collects the request body, then calls ``handle(body)``; respond with ``send_*``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.body: list[bytes] = []

    async def send_headers(
        self,
        *,
        status: int = 200,
        headers: list[tuple[bytes, bytes]] | dict[bytes, bytes] | None = None,
    ) -> None:
        """Start the response; the server sends it with the first body part."""
        if headers is None:
            headers = []
        elif isinstance(headers, dict):
            headers = list(headers.items())
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        """Send part of the body; ``more_body=False`` (the default) ends the response."""
        if not isinstance(body, bytes):
            raise TypeError(f"send_body() takes bytes, got {type(body).__name__}")
        await self.send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def send_response(self, status: int, body: bytes, **kwargs: Any) -> None:
        """Send a whole response; call it once."""
        await self.send_headers(status=status, **kwargs)
        await self.send_body(body)

    async def handle(self, body: bytes) -> None:
        """Called with the complete request body; subclasses must respond."""
        raise NotImplementedError(f"{type(self).__name__} must define handle(body)")

    async def disconnect(self) -> None:
        """Called when the request is over or the client has gone; do not send from here."""

    async def http_request(self, message: Message) -> None:
        if "body" in message:
            self.body.append(message["body"])
        if not message.get("more_body"):
            try:
                await self.handle(b"".join(self.body))
            finally:
                await self.disconnect()
            raise StopConsumer

    async def http_disconnect(self, message: Message) -> None:
        await self.disconnect()
        raise StopConsumer
