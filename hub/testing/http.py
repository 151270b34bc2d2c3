"""``HttpCommunicator``: test an HTTP application or consumer without a server."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlparse

from hub.testing.application import ApplicationCommunicator
from hub.testing.login import login_headers
from hub.types import ASGIApp


class HttpCommunicator(ApplicationCommunicator):
    """Runs ``application`` on one HTTP request.

    Args:
        application: the ASGI application.
        method: the request method.
        path: the request path, with an optional query string.
        body: the request body.
        headers: request headers as ``(name, value)`` byte pairs.
        user: a Django user to log in as (see ``WebsocketCommunicator``).
    """

    def __init__(
        self,
        application: ASGIApp,
        method: str,
        path: str,
        body: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        user: Any = None,
    ) -> None:
        parsed = urlparse(path)
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": unquote(parsed.path),
            "raw_path": parsed.path.encode("latin-1"),
            "query_string": parsed.query.encode("utf-8"),
            "root_path": "",
            "headers": list(headers or []),
            "client": ("127.0.0.1", 51000),
            "server": ("testserver", 80),
            "state": {},
        }
        if body:
            self.scope["headers"].append((b"content-length", str(len(body)).encode()))
        super().__init__(application, self.scope)
        self.body = body
        self.user = user
        self.sent_request = False

    async def get_response(self, timeout: float = 1) -> dict[str, Any]:
        """Send the request and collect the whole response.

        Returns:
            ``{"status": int, "headers": [(name, value), ...], "body": bytes}``.
        """
        if not self.sent_request:
            if self.user is not None:
                self.scope["headers"] = await login_headers(self.scope["headers"], self.user)
            self.sent_request = True
            await self.send_input({"type": "http.request", "body": self.body})
        start = await self.receive_output(timeout)
        if start["type"] != "http.response.start":
            raise AssertionError(f"Expected 'http.response.start', got {start!r:.200}")
        response: dict[str, Any] = {
            "status": start["status"],
            "headers": list(start.get("headers", [])),
            "body": b"",
        }
        while True:
            part = await self.receive_output(timeout)
            if part["type"] != "http.response.body":
                raise AssertionError(f"Expected 'http.response.body', got {part!r:.200}")
            response["body"] += part.get("body", b"")
            if not part.get("more_body", False):
                break
        await self.wait(timeout)
        return response
