"""The ASGI vocabulary this server speaks, named once.

Scopes and events of asgiref's ``specs/www.rst`` (HTTP & WebSocket, spec
version 2.5) and ``specs/lifespan.rst``, as ``TypedDict`` so that the server's
code and an application's type checker agree on every key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Literal, NotRequired, TypedDict

ASGI_VERSION = {"version": "3.0", "spec_version": "2.5"}
"""``scope["asgi"]``: ASGI 3 with the HTTP/WebSocket spec 2.5 (disconnect ``reason``)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Headers = Iterable[tuple[bytes, bytes]]


class HTTPRequestEvent(TypedDict):
    type: Literal["http.request"]
    body: bytes
    more_body: bool


class HTTPDisconnectEvent(TypedDict):
    type: Literal["http.disconnect"]


class HTTPResponseStartEvent(TypedDict):
    type: Literal["http.response.start"]
    status: int
    headers: NotRequired[Headers]
    trailers: NotRequired[bool]


class HTTPResponseBodyEvent(TypedDict):
    type: Literal["http.response.body"]
    body: NotRequired[bytes]
    more_body: NotRequired[bool]


class WebSocketConnectEvent(TypedDict):
    type: Literal["websocket.connect"]


class WebSocketAcceptEvent(TypedDict):
    type: Literal["websocket.accept"]
    subprotocol: NotRequired[str | None]
    headers: NotRequired[Headers]


class WebSocketReceiveEvent(TypedDict):
    type: Literal["websocket.receive"]
    bytes: NotRequired[bytes | None]
    text: NotRequired[str | None]


class WebSocketSendEvent(TypedDict):
    type: Literal["websocket.send"]
    bytes: NotRequired[bytes | None]
    text: NotRequired[str | None]


class WebSocketDisconnectEvent(TypedDict):
    type: Literal["websocket.disconnect"]
    code: int
    reason: str


class WebSocketCloseEvent(TypedDict):
    type: Literal["websocket.close"]
    code: NotRequired[int]
    reason: NotRequired[str | None]


class WebSocketResponseStartEvent(TypedDict):
    """Denial response extension: an HTTP response instead of the handshake."""

    type: Literal["websocket.http.response.start"]
    status: int
    headers: NotRequired[Headers]


class WebSocketResponseBodyEvent(TypedDict):
    type: Literal["websocket.http.response.body"]
    body: NotRequired[bytes]
    more_body: NotRequired[bool]


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the connection is closed (ASGI HTTP/WebSocket spec 2.4).

    The spec asks for "a server-specific subclass of OSError"; applications may
    catch it to clean up. The server catches it when it escapes the application
    and does not log it as an error.
    """


def unexpected(expected: tuple[str, ...], got: object) -> RuntimeError:
    """The error ``send()`` raises for a message out of order, naming what was expected."""
    names = " or ".join(f"'{name}'" for name in expected)
    return RuntimeError(f"Expected ASGI message {names}, but got {got!r}")
