"""HTTP/1.1 connections: httptools parses, one asyncio.Protocol per connection.

:class:`HttpProtocol` is the thin protocol: ``data_received`` feeds httptools,
whose callbacks collect the request head and body; a complete head becomes a
:class:`~protocols.http_ws.cycle.RequestResponseCycle`, the object that owns
the scope and the application's ``receive``/``send``.

Requests are answered in order (RFC 9112 section 9.3.2): the first cycle's
application runs; pipelined requests parsed behind it wait in ``pipeline``
with reading paused, and start when the response before them is complete.

Timers, one at a time per phase:

* idle between requests: ``keep_alive_timeout``, then close silently;
* reading a request head: ``request_head_timeout`` from its first byte, then 408;
* reading a body: ``request_body_timeout`` of silence, then 408 (or close if
  the response has started).

A WebSocket upgrade request is handed to
:class:`~protocols.http_ws.websocket.WebSocketProtocol`, which replaces this
protocol on the same transport.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

import httptools

from .cycle import RequestResponseCycle
from .flow import FlowControl
from .listener import ConnectionInfo, Listener
from .messages import ASGI_VERSION
from .websocket import WebSocketProtocol
from .wire import decode_path, error_response


class _Rejected(Exception):
    """Raised inside a parser callback to answer the request with an error status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _check_transfer_encoding(value: bytes, http_version: str) -> None:
    """Refuse request framing that an intermediary could read differently.

    RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing;
    6.3: chunked must be the final coding, else 400. httptools checks the rest
    (Content-Length next to Transfer-Encoding, chunked twice); codings other than
    chunked are not decoded here, so they are 501 (RFC 9112 6.1).
    """
    if http_version == "1.0":
        raise _Rejected(400, "Transfer-Encoding in an HTTP/1.0 request")
    codings = [coding.strip().lower() for coding in value.split(b",")]
    if codings[-1] != b"chunked":
        raise _Rejected(400, f"Transfer-Encoding {value[:100]!r} does not end with chunked")
    if len(codings) > 1 and any(coding != b"chunked" for coding in codings):
        raise _Rejected(501, f"Transfer-Encoding {value[:100]!r} not implemented")


class _IgnoredUpgradeBody:
    """httptools callbacks that hand a body to the connection, then stop it parsing."""

    __slots__ = ("conn",)

    def __init__(self, conn: HttpProtocol) -> None:
        self.conn = conn

    def on_body(self, body: bytes) -> None:
        self.conn.on_body(body)

    def on_message_complete(self) -> None:
        self.conn.on_message_complete()
        self.conn._parser_done = True


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: parser in, cycles out, responses in request order."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.config = listener.config
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.info: ConnectionInfo = None  # type: ignore[assignment]
        # The cycle whose application is running, and the complete heads behind it.
        self.cycle: RequestResponseCycle | None = None
        self.pipeline: deque[RequestResponseCycle] = deque()
        # The cycle whose body the parser is reading (the active one or the last queued).
        self.reading: RequestResponseCycle | None = None
        self.closed = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._in_head = False
        self._websocket_upgrade = False
        self._parser_done = False
        self._pending_error: tuple[int, str] | None = None
        # Framing of the body of a request whose Upgrade is ignored, until it is read.
        self._ignored_upgrade_framing: bytes | None = None
        self._keep_alive_timer: asyncio.TimerHandle | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0

    # asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack alike.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.config.write_buffer_high_water)
        self.flow = FlowControl(transport)
        self.info = self.listener.connection_info(transport)
        self.listener.add(self)
        if self.listener.closing:
            transport.close()
            return
        self._start_keep_alive_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.forget(self)
        self._cancel_timers()
        for cycle in (self.cycle, self.reading):
            if cycle is not None:
                cycle.disconnect()
        self.pipeline.clear()
        self.flow.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self._parser_done:
            return
        if self._body_timer is not None:
            self._last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._parser_done = True
            trailing = data[exc.args[0] :] if exc.args else b""
            if self._websocket_upgrade:
                self._upgrade(trailing)
                return
            if self._ignored_upgrade_framing is not None:
                self._read_ignored_upgrade_body(trailing)
                return
            if self.reading is not None and not self.reading.request_complete:
                # CONNECT or an upgrade we do not serve: no body follows the head.
                self.reading.complete_request()
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if not isinstance(cause, _Rejected):
                raise
            self._reject(cause.status, cause.reason)
        except httptools.HttpParserError as exc:
            self._reject(400, f"invalid HTTP request: {exc}")
        else:
            if self._in_head:
                # httptools buffers a header line until it ends; bound that buffer too.
                self._head_size += len(data)
                if self._head_size > self.config.max_head_size:
                    self._reject(431, f"request head over {self.config.max_head_size} bytes")
        self.update_reading()

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # httptools callbacks -----------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._in_head = True
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None
        self._head_timer = self.loop.call_later(
            self.config.request_head_timeout, self._on_head_timeout
        )

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > self.config.max_head_size:
            raise _Rejected(431, f"request head over {self.config.max_head_size} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self.config.max_head_size:
            raise _Rejected(431, f"request head over {self.config.max_head_size} bytes")
        if len(self._headers) >= self.config.max_header_count:
            raise _Rejected(431, f"more than {self.config.max_header_count} header fields")
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        parser = self.parser
        headers = self._headers
        http_version = parser.get_http_version()
        if http_version != "1.1" and http_version != "1.0":
            raise _Rejected(505, f"HTTP version {http_version} not served")
        content_length = 0
        hosts = 0
        transfer_encoding: bytes | None = None
        expect_continue = False
        for name, value in headers:
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                content_length = int(value) if value.isdigit() else 0
            elif name == b"transfer-encoding":
                transfer_encoding = value
            elif name == b"expect" and value.lower() == b"100-continue":
                expect_continue = http_version == "1.1"
        if hosts != 1 and (hosts or http_version == "1.1"):
            # RFC 9112 3.2: "MUST respond with a 400" to an HTTP/1.1 request without
            # Host and to any request with more than one.
            raise _Rejected(400, f"{hosts} Host header fields")
        if transfer_encoding is not None:
            _check_transfer_encoding(transfer_encoding, http_version)
        method = parser.get_method().decode("ascii")
        upgrade = parser.should_upgrade()
        if upgrade and self._is_websocket(headers):
            if self.cycle is not None or self.pipeline:
                raise _Rejected(400, "WebSocket upgrade pipelined behind another request")
            self._websocket_upgrade = True
            return
        try:
            url = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            if self._url != b"*":
                raise _Rejected(400, f"invalid request target {self._url[:100]!r}") from None
            raw_path, query = b"*", b""
        else:
            raw_path, query = url.path or b"/", url.query or b""
        client, scheme = self.info.client, self.info.scheme
        if self.info.proxied:
            client, scheme = self.listener.trusted_proxies.resolve(headers, client, scheme)
        if content_length > self.config.max_body_size:
            raise _Rejected(
                413, f"Content-Length {content_length} over {self.config.max_body_size}"
            )
        root_path = self.config.root_path
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": http_version,
            "method": method,
            "scheme": scheme,
            "path": root_path + decode_path(raw_path),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": root_path,
            "headers": headers,
            "client": client,
            "server": self.info.server,
            "state": self.listener.state_copy(),
            "extensions": {"tls": self.info.tls} if self.info.tls is not None else {},
        }
        # A request that asked to switch to a protocol we do not serve is answered
        # as plain HTTP; the connection cannot carry another request after it.
        keep_alive = parser.should_keep_alive() and not upgrade
        if upgrade and (transfer_encoding is not None or content_length):
            # httptools ends such a request at its head (MagicStack/httptools#124);
            # its body is read by a second parser once the first one stops.
            self._ignored_upgrade_framing = (
                b"transfer-encoding: chunked\r\n"
                if transfer_encoding is not None
                else b"content-length: %d\r\n" % content_length
            )
        cycle = RequestResponseCycle(self, scope, keep_alive, expect_continue, method == "HEAD")
        self.reading = cycle
        if self.cycle is None:
            self._run(cycle)
        else:
            self.pipeline.append(cycle)
        if not cycle.request_complete:
            self._last_read = self.loop.time()
            self._body_timer = self.loop.call_later(
                self.config.request_body_timeout, self._on_body_timeout
            )

    def on_body(self, body: bytes) -> None:
        cycle = self.reading
        if cycle is None or cycle.request_complete:
            return
        cycle.received += len(body)
        if cycle.received > self.config.max_body_size:
            raise _Rejected(413, f"request body over {self.config.max_body_size} bytes")
        cycle.feed_body(body)

    def on_message_complete(self) -> None:
        if self._ignored_upgrade_framing is not None:
            return  # httptools stopped at the head; the body is still to come.
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self.reading is not None:
            self.reading.complete_request()

    # Cycles ------------------------------------------------------------------

    def _run(self, cycle: RequestResponseCycle) -> None:
        self.cycle = cycle
        self.listener.spawn(cycle.run_asgi(self.listener.app))

    def response_complete(self, cycle: RequestResponseCycle) -> None:
        """Called by the active cycle once its last body byte is written."""
        self.cycle = None
        if self.closed:
            return
        if self.listener.closing or not cycle.keep_alive or not cycle.request_complete:
            # Unread body bytes would be parsed as the next request: close instead.
            self.transport.close()
            return
        if self.pipeline:
            self._run(self.pipeline.popleft())
        elif self._pending_error is not None:
            self._write_error(*self._pending_error)
        elif not self._in_head:
            self.reading = None
            self._start_keep_alive_timer()
        self.update_reading()

    def update_reading(self) -> None:
        """Pause reading while requests queue up or a body waits for its app."""
        reading = self.reading
        if (
            self.pipeline
            or self._pending_error is not None
            or (reading is not None and len(reading.body) > self.config.read_buffer_high_water)
        ):
            self.flow.pause_reading()
        else:
            self.flow.resume_reading()

    # Errors, timeouts, shutdown ------------------------------------------------

    def _reject(self, status: int, reason: str) -> None:
        """Answer a bad request with ``status`` and close, after earlier responses."""
        self.listener.log_info(self.info.peer, f"{status} {reason}")
        self._parser_done = True
        self._in_head = False
        reading = self.reading
        if reading is not None and not reading.request_complete:
            # The request being read is the broken one: it gets the error, not its app.
            if reading is self.cycle:
                if reading.head_written:
                    self.transport.close()
                else:
                    reading.abandon()
                    self._write_error(status, reason)
                reading.disconnect()
                return
            if reading in self.pipeline:
                self.pipeline.remove(reading)
        if self.cycle is None and not self.pipeline:
            self._write_error(status, reason)
        else:
            self._pending_error = (status, reason)

    def _write_error(self, status: int, reason: str) -> None:
        del reason
        listener = self.listener
        self.transport.write(error_response(status, listener.server_line, listener.date.line()))
        self.transport.close()

    def _is_websocket(self, headers: list[tuple[bytes, bytes]]) -> bool:
        if not self.config.websocket:
            return False
        for name, value in headers:
            if name == b"upgrade":
                return b"websocket" in value.lower()
        return False

    def _read_ignored_upgrade_body(self, trailing: bytes) -> None:
        """Read the body of a request whose ``Upgrade`` we ignore (RFC 9110 7.8).

        A fresh parser is given a made-up head with the request's framing, then the
        bytes after the real head; its body callbacks are this protocol's. The
        connection closes after the response, so nothing after the body is parsed.
        """
        framing, self._ignored_upgrade_framing = self._ignored_upgrade_framing, None
        assert framing is not None
        self.parser = httptools.HttpRequestParser(_IgnoredUpgradeBody(self))
        self.parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n")
        self._parser_done = False
        self.data_received(trailing)

    def _upgrade(self, trailing: bytes) -> None:
        """Hand the transport to a WebSocket protocol for the request just parsed."""
        self._cancel_timers()
        self.listener.forget(self)
        protocol = WebSocketProtocol(self.listener, self.info)
        self.transport.set_protocol(protocol)
        protocol.start(
            self.transport,
            self.parser.get_method().decode("ascii"),
            self._url,
            self.parser.get_http_version(),
            self._headers,
        )
        if trailing:
            protocol.data_received(trailing)

    def _start_keep_alive_timer(self) -> None:
        self._keep_alive_timer = self.loop.call_later(
            self.config.keep_alive_timeout, self._on_keep_alive_timeout
        )

    def _on_keep_alive_timeout(self) -> None:
        self._keep_alive_timer = None
        if self.cycle is None and not self._in_head:
            self.transport.close()

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        self._reject(408, f"request head not received within {self.config.request_head_timeout}s")

    def _on_body_timeout(self) -> None:
        self._body_timer = None
        timeout = self.config.request_body_timeout
        silent = self.loop.time() - self._last_read
        if silent < timeout:
            self._body_timer = self.loop.call_later(timeout - silent, self._on_body_timeout)
            return
        self._reject(408, f"request body stalled for {timeout}s")

    def _cancel_timers(self) -> None:
        for timer in (self._keep_alive_timer, self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._keep_alive_timer = self._head_timer = self._body_timer = None

    def shutdown(self) -> None:
        """Close now if idle; otherwise after the response in progress."""
        self.pipeline.clear()
        if self.cycle is None:
            self.transport.close()
        else:
            self.cycle.keep_alive = False

    def abort(self) -> None:
        self.transport.abort()
