"""WebSocket connections (RFC 6455, RFC 7692): websockets' sans-I/O protocol, ASGI around it.

:class:`WebSocketProtocol` takes over the transport from
:class:`~protocols.http_ws.http.HttpProtocol` once a request asks for the
upgrade. The handshake is validated by ``websockets.server.ServerProtocol``
(``accept()`` returns the 101 response, or the 400/405/505 answer to a bad
request) before the application hears of it; a ``Sec-WebSocket-Version``
other than 13 is answered 426 with the version we speak (RFC 6455 4.2.2).

Frames, masking, fragmentation rules, close codes, UTF-8 of close reasons,
``max_size`` (1009) and permessage-deflate belong to websockets; this module
reassembles fragmented messages, checks UTF-8 of text messages (1007), sends
keepalive pings, and maps everything to ASGI events. The object is both the
asyncio protocol and the application instance's ``receive``/``send``: a
WebSocket connection has exactly one application instance, so one object
keeps the per-connection memory small.

Phases: ``HANDSHAKE`` (``websocket.connect`` sent, waiting for the app),
``DENIAL`` (the app is sending an HTTP response instead, denial-response
extension), ``OPEN`` (accepted; websockets' own state then says whether
frames may still flow), ``DONE`` (nothing more may be sent).
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections import deque
from typing import Any

import httptools
from websockets.datastructures import Headers
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from .deflate import LazyServerPerMessageDeflateFactory
from .flow import FlowControl
from .listener import ConnectionInfo, Listener, access_logger
from .messages import ASGI_VERSION, ClientDisconnected, Message, unexpected
from .wire import decode_path, error_response, header_lines, status_line

_SUPPORTED_VERSION = b"13"
_TEXT, _BINARY, _CONT, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG
_CONNECT: Message = {"type": "websocket.connect"}


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    DENIAL = "denial"
    OPEN = "open"
    DONE = "done"


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection and its application instance."""

    def __init__(self, listener: Listener, info: ConnectionInfo) -> None:
        self.listener = listener
        self.config = listener.config
        self.info = info
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.protocol: ServerProtocol = None  # type: ignore[assignment]
        self.response: Response | None = None
        self.scope: dict[str, Any] = {}
        self.phase = Phase.HANDSHAKE
        self.queue: deque[Message] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.disconnect_queued = False
        self._early = bytearray()
        self._fragments: list[bytes | bytearray | memoryview] = []
        self._fragment_opcode: Opcode | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    # Handshake -------------------------------------------------------------------

    def start(
        self,
        transport: asyncio.Transport,
        method: str,
        target: bytes,
        http_version: str,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Validate the upgrade request parsed by the HTTP protocol; run the app if valid."""
        self.transport = transport
        self.flow = FlowControl(transport)
        self.listener.add(self)
        config = self.config
        version = b""
        subprotocols: list[str] = []
        for name, value in headers:
            if name == b"sec-websocket-version":
                version = value.strip()
            elif name == b"sec-websocket-protocol":
                subprotocols += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
        if version != _SUPPORTED_VERSION:
            self._refuse(
                426,
                b"upgrade: websocket\r\nsec-websocket-version: 13\r\n",
                f"unsupported Sec-WebSocket-Version {version!r}",
            )
            return
        extensions = None
        if config.ws_per_message_deflate:
            extensions = [
                LazyServerPerMessageDeflateFactory(
                    server_max_window_bits=config.ws_deflate_window_bits,
                    client_max_window_bits=config.ws_deflate_window_bits,
                    compress_settings={"memLevel": config.ws_deflate_mem_level},
                )
            ]
        self.protocol = ServerProtocol(
            extensions=extensions, max_size=config.ws_max_message_size, state=State.OPEN
        )
        request = Request(
            target.decode("latin-1"),
            Headers([(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]),
            method=method,
            protocol=f"HTTP/{http_version}",
        )
        response = self.protocol.accept(request)
        if response.status_code != 101:
            reason = str(self.protocol.handshake_exc or response.reason_phrase)
            self.listener.log_info(self.info.peer, f"WebSocket handshake refused: {reason}")
            transport.write(response.serialize())
            self._finish()
            return
        self.response = response
        try:
            url = httptools.parse_url(target)
            raw_path, query = url.path or b"/", url.query or b""
        except httptools.HttpParserInvalidURLError:
            self._refuse(400, b"", f"invalid request target {target[:100]!r}")
            return
        client, scheme = self.info.client, self.info.scheme
        if self.info.proxied:
            client, scheme = self.listener.trusted_proxies.resolve(headers, client, scheme)
        extensions_scope: dict[str, Any] = {"websocket.http.response": {}}
        if self.info.tls is not None:
            extensions_scope["tls"] = self.info.tls
        self.scope = {
            "type": "websocket",
            "asgi": ASGI_VERSION,
            "http_version": http_version,
            "scheme": "wss" if scheme == "https" else "ws",
            "path": config.root_path + decode_path(raw_path),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": config.root_path,
            "headers": headers,
            "client": client,
            "server": self.info.server,
            "subprotocols": subprotocols,
            "state": self.listener.state_copy(),
            "extensions": extensions_scope,
        }
        # Nothing may be read until the app has answered the handshake.
        self.flow.pause_reading()
        self.queue.append(_CONNECT)
        self.listener.spawn(self.run_asgi())

    def _refuse(self, status: int, extra_headers: bytes, reason: str) -> None:
        """Answer the upgrade request with an HTTP error and close."""
        self.listener.log_info(self.info.peer, f"WebSocket handshake refused: {reason}")
        response = error_response(status, self.listener.server_line, self.listener.date.line())
        line_end = response.index(b"\r\n") + 2
        self.transport.write(response[:line_end] + extra_headers + response[line_end:])
        self._finish()

    def _finish(self) -> None:
        self.phase = Phase.DONE
        self.transport.close()

    # asyncio.Protocol --------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.phase is not Phase.OPEN:
            if self.phase is Phase.HANDSHAKE:
                # Sent before our 101; reading is paused, so at most one read's worth.
                self._early += data
            return
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        writes = protocol.data_to_send()
        if writes:
            self._write(writes)
        for frame in events:
            self._handle_frame(frame)  # type: ignore[arg-type]  # a server gets only frames
        if len(self.queue) >= self.config.ws_max_queue:
            self.flow.pause_reading()

    def _handle_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if not frame.fin:
                self._fragment_opcode = opcode
                self._fragments = [frame.data]
                return
            data = frame.data
        elif opcode is _CONT:
            self._fragments.append(frame.data)
            if not frame.fin:
                return
            data, self._fragments = b"".join(self._fragments), []
            opcode = self._fragment_opcode  # type: ignore[assignment]
        elif opcode is _PONG:
            if self._pong_timer is not None:
                self._pong_timer.cancel()
                self._pong_timer = None
            return
        else:
            # PING is answered and CLOSE echoed by websockets; the disconnect event
            # is queued when the TCP connection ends.
            return
        if opcode is _TEXT:
            try:
                text = str(data, "utf-8")
            except UnicodeDecodeError as exc:
                self._fail(CloseCode.INVALID_DATA, f"invalid UTF-8 at position {exc.start}")
                return
            message: Message = {"type": "websocket.receive", "text": text}
        else:
            message = {"type": "websocket.receive", "bytes": bytes(data)}
        self._deliver(message)

    def _deliver(self, message: Message) -> None:
        self.queue.append(message)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.discard(self)
        self._cancel_timers()
        if self.phase is not Phase.DENIAL:
            self.phase = Phase.DONE
        if not self.disconnect_queued and self.protocol is not None:
            self.disconnect_queued = True
            code, reason = self._close_code()
            self._deliver({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.flow.resume_writing()

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def _close_code(self) -> tuple[int, str]:
        """The code the app sees: the peer's close frame, else ours, else 1006."""
        protocol = self.protocol
        close = protocol.close_rcvd or protocol.close_sent
        if close is None:
            return CloseCode.ABNORMAL_CLOSURE, ""
        return close.code, close.reason

    # Writing ---------------------------------------------------------------------

    def _write(self, writes: list[bytes]) -> None:
        """Write what websockets produced; its empty bytes mean "close the TCP connection"."""
        eof = not writes[-1]
        data = b"".join(writes) if len(writes) > 1 else writes[0]
        if data:
            self.transport.write(data)
        if eof:
            self.transport.close()
            self._start_close_timer()

    def _fail(self, code: int, reason: str) -> None:
        self.listener.log_info(self.info.peer, f"WebSocket closed {code}: {reason}")
        self.protocol.fail(code, reason)
        self._write(self.protocol.data_to_send())

    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake; drop the TCP connection if the peer never answers."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self._write(self.protocol.data_to_send())
            self._start_close_timer()

    def _start_close_timer(self) -> None:
        if self._close_timer is None and not self.closed:
            self._close_timer = self.loop.call_later(self.config.ws_close_timeout, self.abort)

    # Keepalive ---------------------------------------------------------------------

    def _schedule_ping(self) -> None:
        interval = self.config.ws_ping_interval
        if interval is not None:
            self._ping_timer = self.loop.call_later(interval, self._ping)

    def _ping(self) -> None:
        if self.protocol.state is not State.OPEN:
            return
        if self._pong_timer is None:
            self.protocol.send_ping(os.urandom(4))
            self._write(self.protocol.data_to_send())
            self._pong_timer = self.loop.call_later(
                self.config.ws_ping_timeout, self._on_ping_timeout
            )
        self._schedule_ping()

    def _on_ping_timeout(self) -> None:
        self._pong_timer = None
        self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        # The peer is not reading: a graceful close would wait for it forever.
        self.transport.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._ping_timer, self._pong_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = self._close_timer = None

    # Application side ----------------------------------------------------------------

    async def run_asgi(self) -> None:
        listener, peer = self.listener, self.info.peer
        try:
            result = await listener.app(self.scope, self.receive, self.send)  # type: ignore[func-returns-value]
        except ClientDisconnected:
            return
        except Exception:
            listener.log_error(peer, "exception in ASGI application", exc_info=True)
            self._app_failed(CloseCode.INTERNAL_ERROR)
            return
        if result is not None:
            listener.log_error(peer, f"ASGI callable returned {result!r}; it must return None")
        if self.phase is Phase.HANDSHAKE:
            listener.log_error(peer, "ASGI callable returned without accepting or closing")
            self._app_failed(CloseCode.INTERNAL_ERROR)
        elif self.phase is Phase.DENIAL:
            listener.log_error(peer, "ASGI callable returned without completing the response")
            self._finish()
        elif self.phase is Phase.OPEN:
            # The app is done with the connection: close it normally.
            self._close(CloseCode.NORMAL_CLOSURE, "")

    def _app_failed(self, code: int) -> None:
        if self.phase is Phase.HANDSHAKE:
            listener = self.listener
            self.transport.write(error_response(500, listener.server_line, listener.date.line()))
            self._finish()
        elif self.phase is Phase.DENIAL:
            self._finish()
        elif self.phase is Phase.OPEN:
            self._close(code, "")

    async def receive(self) -> Message:
        queue = self.queue
        if not queue:
            if self.disconnect_queued:
                code, reason = self._close_code()
                return {"type": "websocket.disconnect", "code": code, "reason": reason}
            waiter = self.waiter = self.loop.create_future()
            await waiter
        message = queue.popleft()
        flow = self.flow
        if flow.read_paused and self.phase is Phase.OPEN and len(queue) < self.config.ws_max_queue:
            flow.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        message_type = message.get("type")
        phase = self.phase
        if phase is Phase.OPEN:
            protocol = self.protocol
            if protocol.state is not State.OPEN:
                raise ClientDisconnected(f"WebSocket {self.info.peer} is closed")
            if message_type == "websocket.send":
                text = message.get("text")
                data = message.get("bytes")
                if text is not None and data is None:
                    protocol.send_text(text.encode())
                elif data is not None and text is None:
                    protocol.send_binary(data)
                else:
                    raise RuntimeError(
                        "Expected exactly one of 'bytes' or 'text' in 'websocket.send', "
                        f"but got bytes={data!r:.40} and text={text!r:.40}"
                    )
                self._write(protocol.data_to_send())
                flow = self.flow
                if flow.write_paused:
                    await flow.drain()
            elif message_type == "websocket.close":
                self._close(message.get("code", 1000), message.get("reason") or "")
            else:
                raise unexpected(("websocket.send", "websocket.close"), message_type)
        elif phase is Phase.HANDSHAKE:
            if message_type == "websocket.accept":
                self._accept(message)
            elif message_type == "websocket.close":
                # Close before accept: "close the connection with a HTTP 403" (www.rst).
                self._deny_403()
            elif message_type == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise unexpected(
                    ("websocket.accept", "websocket.close", "websocket.http.response.start"),
                    message_type,
                )
        elif phase is Phase.DENIAL:
            if message_type != "websocket.http.response.body":
                raise unexpected(("websocket.http.response.body",), message_type)
            self._denial_body(message)
        else:
            raise ClientDisconnected(f"WebSocket {self.info.peer} is closed")

    def _accept(self, message: Message) -> None:
        response = self.response
        assert response is not None
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        for name, value in message.get("headers") or ():
            header_lines(((name, value),))
            if name.lower() == b"sec-websocket-protocol":
                raise RuntimeError("Use 'subprotocol' in 'websocket.accept', not a header")
            response.headers[name.decode("latin-1")] = value.decode("latin-1")
        if self.config.server_header and "Server" not in response.headers:
            response.headers["Server"] = self.config.server_header
        self.transport.write(response.serialize())
        self.response = None
        self.phase = Phase.OPEN
        self._log_access(101)
        if self.listener.closing:
            self._close(CloseCode.GOING_AWAY, "server shutting down")
            return
        self._schedule_ping()
        self.flow.resume_reading()
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self.data_received(early)

    def _deny_403(self) -> None:
        listener = self.listener
        self.transport.write(error_response(403, listener.server_line, listener.date.line()))
        self._log_access(403)
        self._finish()

    def _start_denial(self, message: Message) -> None:
        status = message["status"]
        head = [status_line(status), *header_lines(message.get("headers", ()))]
        head += (self.listener.server_line, self.listener.date.line(), b"connection: close\r\n\r\n")
        self._early = bytearray(b"".join(head))
        self.phase = Phase.DENIAL
        self._log_access(status)

    def _denial_body(self, message: Message) -> None:
        # Delimited by closing the connection (RFC 9112 6.3 rule 8): no length needed.
        self._early += message.get("body", b"")
        if len(self._early) >= self.config.write_buffer_high_water or not message.get(
            "more_body", False
        ):
            self.transport.write(bytes(self._early))
            self._early = bytearray()
        if not message.get("more_body", False):
            self._finish()

    def _log_access(self, status: int) -> None:
        if self.config.access_log and access_logger.isEnabledFor(20):
            scope = self.scope
            access_logger.info(
                '%s %s - "WebSocket %s" %d',
                self.listener.name,
                self.info.peer,
                scope["path"],
                status,
            )

    # Shutdown ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Close an open WebSocket with 1001 (going away); a pending handshake follows on accept."""
        if self.phase is Phase.OPEN:
            self._close(CloseCode.GOING_AWAY, "server shutting down")

    def abort(self) -> None:
        self.transport.abort()
