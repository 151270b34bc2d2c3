"""``WebsocketCommunicator``: test a WebSocket consumer without a server."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlparse

from hub.testing.application import ApplicationCommunicator
from hub.testing.login import login_headers
from hub.types import ASGIApp, Message


class WebsocketCommunicator(ApplicationCommunicator):
    """Runs ``application`` on a WebSocket scope built from ``path``.

    Args:
        application: the ASGI application (a router, ``Consumer.as_asgi()``...).
        path: the request path, with an optional query string.
        headers: request headers as ``(name, value)`` byte pairs.
        subprotocols: the subprotocols the client offers.
        spec_version: the ASGI WebSocket spec version to announce.
        user: a Django user to log in as; a session is created and its cookie
            sent, so the application's auth middleware finds the user.
    """

    def __init__(
        self,
        application: ASGIApp,
        path: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        subprotocols: list[str] | None = None,
        spec_version: str | None = None,
        user: Any = None,
    ) -> None:
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, got {type(path).__name__}")
        parsed = urlparse(path)
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": spec_version or "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": unquote(parsed.path),
            "raw_path": parsed.path.encode("latin-1"),
            "query_string": parsed.query.encode("utf-8"),
            "root_path": "",
            "headers": list(headers or []),
            "client": ("127.0.0.1", 51000),
            "server": ("testserver", 80),
            "subprotocols": list(subprotocols or []),
            "state": {},
            "extensions": {"websocket.http.response": {}},
        }
        if spec_version:
            self.scope["spec_version"] = spec_version
        super().__init__(application, self.scope)
        self.user = user
        self.response_headers: list[tuple[bytes, bytes]] | None = None

    async def connect(self, timeout: float = 1) -> tuple[bool, Any]:
        """Open the connection.

        Returns:
            ``(True, subprotocol)`` when accepted, ``(False, close_code)`` when
            refused (``(False, status)`` when refused with a denial response).
        """
        if self.user is not None:
            self.scope["headers"] = await login_headers(self.scope["headers"], self.user)
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        if response["type"] == "websocket.http.response.start":
            return False, response["status"]
        if response["type"] != "websocket.accept":
            raise AssertionError(
                f"Expected 'websocket.accept' or 'websocket.close', got {response!r:.200}"
            )
        self.response_headers = response.get("headers", [])
        return True, response.get("subprotocol")

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send one message from the client."""
        if (text_data is None) == (bytes_data is None):
            raise TypeError("send_to() takes exactly one of text_data or bytes_data")
        if text_data is not None:
            if not isinstance(text_data, str):
                raise TypeError(f"text_data must be a str, got {type(text_data).__name__}")
            await self.send_input({"type": "websocket.receive", "text": text_data})
        else:
            if not isinstance(bytes_data, bytes):
                raise TypeError(f"bytes_data must be bytes, got {type(bytes_data).__name__}")
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})

    async def send_json_to(self, data: Any) -> None:
        """Send ``data`` encoded as a JSON text message."""
        await self.send_to(text_data=json.dumps(data))

    async def receive_from(self, timeout: float = 1) -> str | bytes:
        """The next message the application sent (str or bytes); fails on a close."""
        response = await self.receive_output(timeout)
        return _payload(response)

    async def receive_json_from(self, timeout: float = 1) -> Any:
        """The next message, decoded from JSON."""
        payload = await self.receive_from(timeout)
        if not isinstance(payload, str):
            raise AssertionError(f"Expected a JSON text message, got bytes: {payload!r:.200}")
        return json.loads(payload)

    async def receive_close(self, timeout: float = 1) -> int:
        """Wait for the application to close the connection; return the close code."""
        response = await self.receive_output(timeout)
        if response["type"] != "websocket.close":
            raise AssertionError(f"Expected 'websocket.close', got {response!r:.200}")
        code: int = response.get("code", 1000)
        return code

    async def disconnect(self, code: int = 1000, timeout: float = 1) -> None:
        """Close from the client side and wait for the application to finish."""
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


def _payload(response: Message) -> str | bytes:
    if response["type"] != "websocket.send":
        raise AssertionError(f"Expected 'websocket.send', got {response!r:.200}")
    if ("text" in response) == ("bytes" in response):
        raise AssertionError(f"Expected exactly one of 'text' or 'bytes' in {response!r:.200}")
    if "text" in response:
        text: str = response["text"]
        return text
    data: bytes = response["bytes"]
    return data
