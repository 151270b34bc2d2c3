"""One HTTP request and its response: the application instance's ``receive`` and ``send``.

A :class:`RequestResponseCycle` owns the scope, buffers the request body until
the application asks for it, and turns ``http.response.*`` messages into
bytes on the transport:

* the head is held until the first body message (the spec allows it), so a
  response sent in one body message gets a ``Content-Length`` instead of
  chunked framing, and a failure between start and body can still be a 500;
* with no ``Content-Length`` and more body to come, HTTP/1.1 responses are
  chunked and HTTP/1.0 responses are delimited by closing the connection;
* HEAD responses and 1xx/204/304 statuses carry no body bytes;
* ``Expect: 100-continue`` is answered when the application first calls
  ``receive()``, so an application that rejects a large upload never asks
  the client to send it.

Failure paths of the application (:meth:`run_asgi`), each with one log line:
it raised before the head was written (500); it raised after (connection
closed, so the client sees a truncated response); it returned a value; it
returned without starting a response (500); it returned before the last body
message (connection closed).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from .listener import access_logger
from .messages import ASGIApp, ClientDisconnected, Message, unexpected
from .wire import error_response, header_line, status_line

if TYPE_CHECKING:
    from .http import HttpProtocol

_DISCONNECT: Message = {"type": "http.disconnect"}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CHUNKED = b"transfer-encoding: chunked\r\n"
_CLOSE = b"connection: close\r\n"
_KEEP_ALIVE = b"connection: keep-alive\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class RequestResponseCycle:
    """The ASGI side of one request: scope, ``receive``, ``send``, ``run_asgi``."""

    __slots__ = (
        "body",
        "chunked",
        "conn",
        "disconnected",
        "expect_continue",
        "final_body_delivered",
        "head_written",
        "is_head",
        "keep_alive",
        "no_body",
        "pending_head",
        "received",
        "remaining",
        "request_complete",
        "response_complete",
        "response_started",
        "scope",
        "status",
        "waiter",
    )

    def __init__(
        self,
        conn: HttpProtocol,
        scope: dict[str, Any],
        keep_alive: bool,
        expect_continue: bool,
        is_head: bool,
    ) -> None:
        self.conn = conn
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.is_head = is_head
        self.body = bytearray()
        self.received = 0
        self.request_complete = False
        self.final_body_delivered = False
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self.head_written = False
        self.pending_head: list[bytes] | None = None
        self.chunked = False
        self.no_body = False
        self.remaining: int | None = None
        self.status = 0
        self.waiter: asyncio.Future[None] | None = None

    # Connection side -----------------------------------------------------------

    def feed_body(self, body: bytes) -> None:
        self.body += body
        self._wake()

    def complete_request(self) -> None:
        self.request_complete = True
        self._wake()

    def disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    def abandon(self) -> None:
        """The server answered this request itself; the app's messages are ignored."""
        self.response_started = self.response_complete = self.head_written = True

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # Application side ----------------------------------------------------------

    async def run_asgi(self, app: ASGIApp) -> None:
        conn = self.conn
        listener = conn.listener
        peer = conn.info.peer
        sync_threads = listener.sync_threads
        # Django's sync code for this request runs on a pooled thread (threads.py).
        lease = sync_threads.enter()
        try:
            result = await app(self.scope, self.receive, self.send)  # type: ignore[func-returns-value]
        except ClientDisconnected:
            # Raised by our send() after the client left: not an error (spec 2.4).
            return
        except Exception:
            if self.head_written:
                listener.log_error(peer, "exception in ASGI application after response start", True)
                self._close()
            else:
                listener.log_error(peer, "exception in ASGI application", True)
                self._send_500()
            return
        finally:
            busy = sync_threads.leave(lease)
            if busy is not None:
                # Wait for the sync code left behind; its outcome is its caller's, not ours.
                with contextlib.suppress(Exception):
                    await busy
        if result is not None:
            listener.log_error(peer, f"ASGI callable returned {result!r}; it must return None")
        if self.disconnected:
            return
        if not self.head_written and not self.response_complete:
            listener.log_error(peer, "ASGI callable returned without sending a response")
            self._send_500()
        elif not self.response_complete:
            listener.log_error(peer, "ASGI callable returned without completing the response")
            self._close()

    async def receive(self) -> Message:
        if self.expect_continue:
            self.expect_continue = False
            if not self.response_started and not self.disconnected:
                self.conn.transport.write(_CONTINUE)
        if (
            not self.disconnected
            and not self.response_complete
            and not self.body
            and (self.final_body_delivered or not self.request_complete)
        ):
            self.conn.update_reading()
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            await waiter
        if self.disconnected or self.response_complete:
            return _DISCONNECT
        body = bytes(self.body)
        self.body.clear()
        if self.request_complete:
            self.final_body_delivered = True
        else:
            self.conn.update_reading()
        return {"type": "http.request", "body": body, "more_body": not self.request_complete}

    async def send(self, message: Message) -> None:
        if self.disconnected:
            raise ClientDisconnected(f"client {self.conn.info.peer} disconnected")
        message_type = message.get("type")
        if self.response_complete:
            # "any further messages on the channel will be ignored" (www.rst).
            return
        if not self.response_started:
            if message_type != "http.response.start":
                raise unexpected(("http.response.start",), message_type)
            self._start(message)
            return
        if message_type != "http.response.body":
            raise unexpected(("http.response.body",), message_type)
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        self._write_body(body, more_body)
        flow = self.conn.flow
        if flow.write_paused:
            await flow.drain()
            if self.disconnected and more_body:
                raise ClientDisconnected(f"client {self.conn.info.peer} disconnected")

    # Response bytes --------------------------------------------------------------

    def _start(self, message: Message) -> None:
        status = message["status"]
        head = [status_line(status)]
        listener = self.conn.listener
        has_server = has_date = close = False
        remaining = None
        # Nothing is stored until every header is valid: the app may retry after an error.
        for name, value in message.get("headers", ()):
            # The spec asks apps for lowercase names, but Django sends "Content-Length".
            lowered = name.lower()
            if lowered == b"content-length":
                length = value.strip()
                if not length.isdigit():
                    raise RuntimeError(f"Invalid Content-Length {value!r} in response")
                remaining = int(length)
                if status < 200 or status == 204:
                    # RFC 9110 8.6: "A server MUST NOT send a Content-Length header
                    # field in any response with a status code of 1xx or 204".
                    continue
            elif lowered == b"transfer-encoding":
                # "You may send a Transfer-Encoding header [...] but the server must ignore it."
                continue
            elif lowered == b"connection":
                close = close or b"close" in value.lower()
                continue
            elif lowered == b"server":
                has_server = True
            elif lowered == b"date":
                has_date = True
            head.append(header_line(name, value))
        if not has_server:
            head.append(listener.server_line)
        if not has_date:
            head.append(listener.date.line())
        if close:
            self.keep_alive = False
        self.remaining = remaining
        self.status = status
        self.no_body = self.is_head or status < 200 or status in (204, 304)
        self.response_started = True
        self.pending_head = head

    def _write_body(self, body: bytes, more_body: bool) -> None:
        no_body = self.no_body
        if body and not no_body and self.remaining is not None:
            # Checked before anything is written: a first body message that
            # overflows can still become a 500.
            self.remaining -= len(body)
            if self.remaining < 0:
                self.keep_alive = False
                raise RuntimeError(
                    f"Response content longer than Content-Length by {-self.remaining} bytes"
                )
        parts = self.pending_head
        if parts is not None:
            self.pending_head = None
            self._frame(parts, len(body), more_body)
        else:
            parts = []
        if body and not no_body:
            if self.chunked:
                parts += (b"%x\r\n" % len(body), body, b"\r\n")
            else:
                parts.append(body)
        if not more_body:
            if self.chunked:
                parts.append(_LAST_CHUNK)
            self.response_complete = True
        if parts:
            self.conn.transport.write(parts[0] if len(parts) == 1 else b"".join(parts))
        if not more_body:
            self._wake()
            if self.remaining and not self.no_body:
                self.keep_alive = False
                self.conn.response_complete(self)
                raise RuntimeError(
                    f"Response content shorter than Content-Length by {self.remaining} bytes"
                )
            self.conn.response_complete(self)

    def _frame(self, head: list[bytes], first_length: int, more_body: bool) -> None:
        """Choose the body framing (RFC 9112 section 6.3) and finish the head."""
        http_10 = self.scope["http_version"] == "1.0"
        if self.remaining is None and not self.no_body:
            if not more_body:
                head.append(b"content-length: %d\r\n" % first_length)
            elif http_10:
                self.keep_alive = False
            else:
                self.chunked = True
                head.append(_CHUNKED)
        if not self.keep_alive or self.conn.listener.closing:
            head.append(_CLOSE)
        elif http_10:
            head.append(_KEEP_ALIVE)
        head.append(b"\r\n")
        self.head_written = True
        if self.conn.config.access_log and access_logger.isEnabledFor(20):
            scope = self.scope
            query = scope["query_string"]
            access_logger.info(
                '%s %s - "%s %s%s HTTP/%s" %d',
                self.conn.listener.name,
                self.conn.info.peer,
                scope["method"],
                scope["path"],
                "?" + query.decode("latin-1") if query else "",
                scope["http_version"],
                self.status,
            )

    def _send_500(self) -> None:
        if self.head_written:
            self._close()
            return
        self.response_started = self.response_complete = self.head_written = True
        listener = self.conn.listener
        if not self.conn.closed:
            self.conn.transport.write(
                error_response(500, listener.server_line, listener.date.line())
            )
        self._close()

    def _close(self) -> None:
        self.keep_alive = False
        self.disconnected = True
        self._wake()
        if not self.conn.closed:
            self.conn.transport.close()
