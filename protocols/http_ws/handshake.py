"""The WebSocket opening handshake (RFC 6455 section 4), from upgrade request to HTTP answer.

No asyncio here: :class:`~protocols.http_ws.websocket.WebSocketProtocol` calls
:func:`open_handshake` when httptools has parsed an upgrade request, then turns
the application's answer into bytes with :func:`accept_response` (101),
:func:`refusal_response` (an error, also for ``websocket.close`` before accept:
403) or :func:`denial_head` (the denial response extension).

Checks, in order, each refusing before the application is called:

* method ``GET``, else 405 with ``Allow: GET`` (RFC 6455 4.1, item 2);
* HTTP/1.1, else 505 (RFC 6455 4.1, item 2);
* ``Sec-WebSocket-Version: 13``, else 426 naming 13 (RFC 6455 4.2.2, item 4;
  websockets would answer 400);
* ``Sec-WebSocket-Key``, ``Upgrade`` and ``Connection`` tokens by websockets'
  ``ServerProtocol.accept()``, which also negotiates permessage-deflate.

websockets checks method and version itself only from version 16, so they are
checked here for every version the package allows.

The application picks the subprotocol among those the client offered (RFC 6455
4.2.2: the server's choice "MUST be one of the values the client sent") and may
add headers, but not ones the handshake owns: those would contradict the
server's own ``Sec-WebSocket-Accept`` or negotiated extensions.
"""

from __future__ import annotations

import dataclasses

import httptools
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from .config import HttpWsConfig
from .deflate import LazyServerPerMessageDeflateFactory
from .messages import Message
from .wire import error_response, header_line, status_line

SUPPORTED_VERSION = b"13"

# Response headers the handshake writes itself; an application may not add them.
HANDSHAKE_HEADERS = frozenset(
    {
        b"connection",
        b"upgrade",
        b"sec-websocket-accept",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-version",
    }
)


class HandshakeRefused(Exception):
    """The upgrade request is answered with an HTTP error; the application never runs."""

    def __init__(self, status: int, reason: str, headers: bytes = b"") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        # Extra ``name: value\r\n`` lines the answer needs (Allow, Sec-WebSocket-Version).
        self.headers = headers


@dataclasses.dataclass(slots=True)
class Handshake:
    """A valid upgrade request, waiting for the application's answer."""

    protocol: ServerProtocol
    # websockets' 101 response: Sec-WebSocket-Accept and negotiated extensions.
    response: Response
    raw_path: bytes
    query_string: bytes
    subprotocols: list[str]


def open_handshake(
    config: HttpWsConfig,
    method: str,
    target: bytes,
    http_version: str,
    headers: list[tuple[bytes, bytes]],
) -> Handshake:
    """Validate an upgrade request and prepare the connection's sans-I/O protocol.

    Raises:
        HandshakeRefused: with the status to answer (405, 505, 426 or 400).
    """
    if method != "GET":
        raise HandshakeRefused(405, f"WebSocket upgrade with method {method}", b"allow: GET\r\n")
    if http_version != "1.1":
        raise HandshakeRefused(505, f"WebSocket upgrade over HTTP/{http_version}")
    version = b""
    subprotocols: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-version":
            version = value.strip()
        elif name == b"sec-websocket-protocol":
            subprotocols += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
    if version != SUPPORTED_VERSION:
        raise HandshakeRefused(
            426,
            f"unsupported Sec-WebSocket-Version {version!r}",
            b"upgrade: websocket\r\nsec-websocket-version: 13\r\n",
        )
    extensions = None
    if config.ws_per_message_deflate:
        extensions = [
            LazyServerPerMessageDeflateFactory(
                server_max_window_bits=config.ws_deflate_window_bits,
                client_max_window_bits=config.ws_deflate_window_bits,
                compress_settings={"memLevel": config.ws_deflate_mem_level},
            )
        ]
    protocol = ServerProtocol(
        extensions=extensions, max_size=config.ws_max_message_size, state=State.OPEN
    )
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        raise HandshakeRefused(400, f"invalid request target {target[:100]!r}") from None
    request = Request(
        target.decode("latin-1"),
        Headers([(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]),
    )
    response = protocol.accept(request)
    if response.status_code != 101:
        reason = str(protocol.handshake_exc or response.reason_phrase)
        extra = b"upgrade: websocket\r\n" if response.status_code == 426 else b""
        raise HandshakeRefused(response.status_code, reason, extra)
    return Handshake(protocol, response, url.path or b"/", url.query or b"", subprotocols)


def accept_response(handshake: Handshake, message: Message, server_line: bytes) -> bytes:
    """The 101 response for a ``websocket.accept`` message.

    Raises:
        RuntimeError: for a subprotocol the client did not offer, or a header that
            is invalid or belongs to the handshake. Nothing is written then, so
            the application may send a corrected message.
    """
    lines = []
    subprotocol = message.get("subprotocol")
    if subprotocol is not None:
        if subprotocol not in handshake.subprotocols:
            raise RuntimeError(
                f"Subprotocol {subprotocol!r} was not offered by the client "
                f"(offered: {handshake.subprotocols!r})"
            )
        lines.append(b"Sec-WebSocket-Protocol: %s\r\n" % subprotocol.encode("latin-1"))
    has_server = False
    for name, value in message.get("headers") or ():
        line = header_line(name, value)
        lowered = name.lower()
        if lowered == b"sec-websocket-protocol":
            raise RuntimeError("Use 'subprotocol' in 'websocket.accept', not a header")
        if lowered in HANDSHAKE_HEADERS:
            raise RuntimeError(f"Header {name!r} in 'websocket.accept' belongs to the handshake")
        has_server = has_server or lowered == b"server"
        lines.append(line)
    if not has_server:
        lines.append(server_line)
    head = handshake.response.serialize()
    # serialize() ends the head with an empty line and no body: insert before it.
    return b"".join((head[:-2], *lines, b"\r\n"))


def refusal_response(
    status: int, extra_headers: bytes, server_line: bytes, date_line: bytes
) -> bytes:
    """An HTTP error answering the upgrade request, with ``extra_headers`` after the status."""
    response = error_response(status, server_line, date_line)
    line_end = response.index(b"\r\n") + 2
    return response[:line_end] + extra_headers + response[line_end:]


def denial_head(message: Message, server_line: bytes, date_line: bytes) -> bytes:
    """The head of a denial response (``websocket.http.response.start``).

    The body is delimited by closing the connection (RFC 9112 6.3, rule 8), so
    the application's own framing headers are dropped.

    Raises:
        RuntimeError: for an invalid status or header.
    """
    lines = [status_line(message["status"])]
    has_server = has_date = False
    for name, value in message.get("headers", ()):
        lowered = name.lower()
        if lowered == b"transfer-encoding" or lowered == b"connection":
            continue
        has_server = has_server or lowered == b"server"
        has_date = has_date or lowered == b"date"
        lines.append(header_line(name, value))
    if not has_server:
        lines.append(server_line)
    if not has_date:
        lines.append(date_line)
    lines.append(b"connection: close\r\n\r\n")
    return b"".join(lines)
