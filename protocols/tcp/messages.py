"""The ASGI vocabulary of the TCP extension spec (``docs/specs/tcp.md``), named once.

Scope and events as ``TypedDict`` so that the server's code and an
application's type checker agree on every key.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal, NotRequired, TypedDict

ASGI_VERSION = {"version": "3.0", "spec_version": "1.0"}
"""``scope["asgi"]``: ASGI 3 with the TCP extension spec 1.0."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class DisconnectReason(enum.Enum):
    """``tcp.disconnect`` ``reason``: why a connection ended."""

    PEER_CLOSED = "peer_closed"
    CLOSED = "closed"
    TIMEOUT = "timeout"
    ERROR = "error"
    SHUTDOWN = "shutdown"
    FRAME_TOO_LARGE = "frame_too_large"
    INVALID_FRAME = "invalid_frame"


class TcpScope(TypedDict):
    type: Literal["tcp"]
    asgi: dict[str, str]
    listener: str
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    framing: dict[str, Any]
    half_close: bool
    state: NotRequired[dict[str, Any]]
    extensions: dict[str, Any]


class TcpConnectEvent(TypedDict):
    type: Literal["tcp.connect"]


class TcpAcceptEvent(TypedDict):
    type: Literal["tcp.accept"]


class TcpReceiveEvent(TypedDict):
    type: Literal["tcp.receive"]
    bytes: bytes


class TcpEofEvent(TypedDict):
    type: Literal["tcp.eof"]


class TcpSendEvent(TypedDict):
    type: Literal["tcp.send"]
    bytes: NotRequired[bytes]
    raw: NotRequired[bool]
    eof: NotRequired[bool]


class TcpCloseEvent(TypedDict):
    type: Literal["tcp.close"]


class TcpDisconnectEvent(TypedDict):
    type: Literal["tcp.disconnect"]
    reason: str
    message: NotRequired[str]


class PeerDisconnected(OSError):
    """Raised by ``send()`` of ``tcp.send`` once the connection is closed.

    The spec asks for a server-specific subclass of ``OSError``, as the ASGI
    WebSocket spec does; applications may catch it to clean up. The server
    catches it when it escapes the application and does not log it as an error.
    """


def unexpected(expected: tuple[str, ...], got: object) -> RuntimeError:
    """The error ``send()`` raises for a message out of order, naming what was expected."""
    names = " or ".join(f"'{name}'" for name in expected)
    return RuntimeError(f"Expected ASGI message {names}, but got {got!r}")
