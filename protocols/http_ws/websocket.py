"""WebSocket connections (RFC 6455, RFC 7692): websockets' sans-I/O protocol, ASGI around it.

:class:`WebSocketProtocol` takes over the transport from
:class:`~protocols.http_ws.http.HttpProtocol` once a request asks for the
upgrade. :mod:`protocols.http_ws.handshake` validates the request before the
application hears of it and writes the HTTP answer the application chooses;
this module runs the connection after that.

Frames, masking, fragmentation rules, close codes, UTF-8 of close reasons,
``max_size`` (1009) and permessage-deflate belong to websockets; this module
reassembles fragmented messages, checks UTF-8 of text messages (1007: the
sans-I/O ``ServerProtocol`` does not, its asyncio layer does), sends
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

from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from .flow import FlowControl
from .handshake import (
    Handshake,
    HandshakeRefused,
    accept_response,
    denial_head,
    open_handshake,
    refusal_response,
)
from .listener import ConnectionInfo, Listener, access_logger
from .messages import ASGI_VERSION, ClientDisconnected, Message, unexpected
from .wire import decode_path, error_response

_TEXT, _BINARY, _CONT, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG
_CONNECT: Message = {"type": "websocket.connect"}


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    DENIAL = "denial"
    OPEN = "open"
    DONE = "done"


# The phases (and websockets' OPEN state) by name: on Python 3.11 ``Phase.OPEN``
# runs the enum's descriptor (~100 ns), and every message's path compares them.
HANDSHAKE, DENIAL, OPEN, DONE = Phase
_STATE_OPEN = State.OPEN


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
        self.handshake: Handshake | None = None
        # The denial response's head, held until its first body message.
        self._denial_head: bytes | None = None
        self.scope: dict[str, Any] = {}
        self.phase = HANDSHAKE
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
        try:
            handshake = open_handshake(config, method, target, http_version, headers)
        except HandshakeRefused as refused:
            self.listener.log_info(self.info.peer, f"WebSocket handshake refused: {refused}")
            listener = self.listener
            transport.write(
                refusal_response(
                    refused.status, refused.headers, listener.server_line, listener.date.line()
                )
            )
            self._finish()
            return
        self.handshake = handshake
        self.protocol = handshake.protocol
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
            "path": config.root_path + decode_path(handshake.raw_path),
            "raw_path": handshake.raw_path,
            "query_string": handshake.query_string,
            "root_path": config.root_path,
            "headers": headers,
            "client": client,
            "server": self.info.server,
            "subprotocols": handshake.subprotocols,
            "state": self.listener.state_copy(),
            "extensions": extensions_scope,
        }
        # Nothing may be read until the app has answered the handshake.
        self.flow.pause_reading()
        self.queue.append(_CONNECT)
        self.listener.spawn(self.run_asgi())

    def _finish(self) -> None:
        self.phase = DONE
        self.transport.close()

    # asyncio.Protocol --------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.phase is not OPEN:
            if self.phase is HANDSHAKE:
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
        self.listener.forget(self)
        self._cancel_timers()
        self.phase = DONE
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
            return 1006, ""  # CloseCode.ABNORMAL_CLOSURE, as the plain int the spec names
        return int(close.code), close.reason

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
        if self.protocol.state is _STATE_OPEN:
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
        if self.protocol.state is not _STATE_OPEN:
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
        if self.phase is HANDSHAKE:
            listener.log_error(peer, "ASGI callable returned without accepting or closing")
            self._app_failed(CloseCode.INTERNAL_ERROR)
        elif self.phase is DENIAL:
            listener.log_error(peer, "ASGI callable returned without completing the response")
            self._finish()
        elif self.phase is OPEN:
            # The app is done with the connection: close it normally.
            self._close(CloseCode.NORMAL_CLOSURE, "")

    def _app_failed(self, code: int) -> None:
        if self.phase is HANDSHAKE or (self.phase is DENIAL and self._denial_head is not None):
            # Nothing written yet: the denial response can still become a 500.
            listener = self.listener
            self.transport.write(error_response(500, listener.server_line, listener.date.line()))
            self._finish()
        elif self.phase is DENIAL:
            self._finish()
        elif self.phase is OPEN:
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
        if flow.read_paused and self.phase is OPEN and len(queue) < self.config.ws_max_queue:
            flow.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        message_type = message.get("type")
        phase = self.phase
        if phase is OPEN:
            protocol = self.protocol
            if protocol.state is not _STATE_OPEN:
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
        elif phase is HANDSHAKE:
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
        elif phase is DENIAL:
            if message_type != "websocket.http.response.body":
                raise unexpected(("websocket.http.response.body",), message_type)
            more_body = message.get("more_body", False)
            self._denial_body(message.get("body", b""), more_body)
            flow = self.flow
            if flow.write_paused:
                await flow.drain()
                if self.closed and more_body:
                    raise ClientDisconnected(f"client {self.info.peer} disconnected")
        else:
            raise ClientDisconnected(f"WebSocket {self.info.peer} is closed")

    def _accept(self, message: Message) -> None:
        handshake = self.handshake
        assert handshake is not None
        self.transport.write(accept_response(handshake, message, self.listener.server_line))
        self.handshake = None
        self.phase = OPEN
        self._log_access(101)
        # Reading resumes even when closing at once: the peer's close frame must be read.
        self.flow.resume_reading()
        if self.listener.closing:
            self._close(CloseCode.GOING_AWAY, "server shutting down")
        else:
            self._schedule_ping()
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self.data_received(early)

    def _deny_403(self) -> None:
        listener = self.listener
        self.transport.write(refusal_response(403, b"", listener.server_line, listener.date.line()))
        self._log_access(403)
        self._finish()

    def _start_denial(self, message: Message) -> None:
        listener = self.listener
        self._denial_head = denial_head(message, listener.server_line, listener.date.line())
        self.handshake = None
        self._early = bytearray()
        self.phase = DENIAL
        self._log_access(message["status"])

    def _denial_body(self, body: bytes, more_body: bool) -> None:
        head, self._denial_head = self._denial_head, None
        data = head + body if head is not None else body
        if data:
            self.transport.write(data)
        if not more_body:
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
        if self.phase is OPEN:
            self._close(CloseCode.GOING_AWAY, "server shutting down")

    def abort(self) -> None:
        self.transport.abort()
