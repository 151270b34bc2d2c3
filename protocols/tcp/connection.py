"""One raw TCP connection: the asyncio protocol and its application instance's receive/send.

A TCP connection has exactly one application instance, so one object is both
the asyncio protocol and the instance's ``receive``/``send``
(as :mod:`protocols.http_ws.websocket` does), which keeps an idle connection
small.

Phases, in order (``send()`` checks the application's messages against them):

- ``STARTING``: reading the PROXY header (from trusted peers) and doing the
  TLS handshake; no application yet.
- ``CONNECTING``: ``tcp.connect`` queued; reading is paused until the
  application answers ``tcp.accept`` or ``tcp.close``.
- ``OPEN``: frames flow both ways.
- ``WRITE_CLOSED``: the application half-closed (``tcp.send`` with ``eof``);
  frames still arrive.
- ``CLOSING``: the application sent ``tcp.close`` (or returned); pending
  writes are flushed.
- ``CLOSED``: the transport is gone; ``tcp.disconnect`` is queued.

On a listener that accepts the PROXY protocol, connections are
:class:`ProxiedTcpConnection`, which reads with ``get_buffer``/``buffer_updated``
so that the PROXY header is read exactly (the bytes after it, such as a TLS
ClientHello, stay in the socket). Other listeners' connections are
:class:`DirectTcpConnection`, an :class:`asyncio.Protocol`: the
event loop hands over a ``bytes`` object per read, one Python call per read
instead of two and no copy out of a shared buffer.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from protocols.http_ws.flow import FlowControl
from protocols.http_ws.tls import tls_extension

from .framing import FramingError, IncompleteFrame, LineFramer
from .messages import ASGI_VERSION, DisconnectReason, Message, PeerDisconnected, unexpected
from .proxy import ProxyHeader, ProxyHeaderParser, ProxyProtocolError

if TYPE_CHECKING:
    from .server import Listener

_CONNECT: Message = {"type": "tcp.connect"}
_EOF: Message = {"type": "tcp.eof"}
_BYTES_TYPES = (bytes, bytearray, memoryview)

#: Idle timeout checks per ``idle_timeout``: a close comes at most a tenth of the
#: timeout (and the deadlines' 0.1 s) after it is due.
IDLE_CHECKS = 10


class Phase(enum.Enum):
    STARTING = "starting"
    CONNECTING = "connecting"
    OPEN = "open"
    WRITE_CLOSED = "write_closed"
    CLOSING = "closing"
    CLOSED = "closed"


# The phases by name: on Python 3.11 ``Phase.OPEN`` runs the enum's descriptor
# (~100 ns), and a frame's path compares the phase several times.
STARTING, CONNECTING, OPEN, WRITE_CLOSED, CLOSING, CLOSED = Phase


#: What ``send()`` accepts in each phase; anything else is out of order.
EXPECTED: dict[Phase, tuple[str, ...]] = {
    CONNECTING: ("tcp.accept", "tcp.close"),
    OPEN: ("tcp.send", "tcp.close"),
    WRITE_CLOSED: ("tcp.close",),
}


class TcpConnection(asyncio.BaseProtocol):
    """One TCP connection, from accept to close, and its application instance."""

    # One per device, often idle for hours: slots keep it small.
    __slots__ = (
        "client",
        "config",
        "counted",
        "counted_host",
        "disconnect",
        "early",
        "encode",
        "flow",
        "framer",
        "line",
        "listener",
        "loop",
        "next",
        "peer",
        "peer_eof",
        "phase",
        "proxy",
        "proxy_parser",
        "queue",
        "quiet_since",
        "read",
        "reason",
        "reason_message",
        "scope",
        "server",
        "slot",
        "started",
        "timer",
        "tls",
        "transport",
        "waiter",
    )

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.config = listener.config
        self.loop = listener.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.phase = STARTING
        self.framer = listener.config.make_framer()
        self.encode = self.framer.encode
        # Line framing's usual cases, a read of exactly one whole line and a line
        # sent, are done here without calling the framer (benchmarks.instructions:
        # -1.3% and -1.9% of a line's instructions); anything else goes to it.
        self.line = self.framer if type(self.framer) is LineFramer else None
        self.peer = "unknown"
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int | None] | None = None
        self.counted_host: str | None = None
        self.counted = False
        self.proxy_parser: ProxyHeaderParser | None = None
        self.proxy: dict[str, Any] | None = None
        self.tls: dict[str, Any] | None = None
        # Messages the app has not taken: the first in ``next``, any others in
        # ``queue``, made when a second one waits and dropped when the app has taken
        # them all, so a connection served one frame at a time never makes one (a
        # deque is 760 bytes). An app already waiting in receive() is handed its
        # message through ``waiter`` and the inbox stays empty.
        self.next: Message | None = None
        self.queue: deque[Message] | None = None
        self.waiter: asyncio.Future[Message] | None = None
        self.disconnect: Message | None = None
        self.reason: DisconnectReason | None = None
        self.reason_message = ""
        self.early: list[bytes] = []
        self.peer_eof = False
        # Idle timeout: the last read happened by ``quiet_since`` (loop time), and
        # ``read`` says whether one came since (see deadline_reached).
        self.quiet_since = 0.0
        self.read = False
        # The PROXY header's timer; the idle timeout is in the listener's deadlines.
        self.timer: asyncio.TimerHandle | None = None
        self.slot = 0
        self.started = False

    # Starting: PROXY header, limits, TLS --------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport  # type: ignore[assignment]
        listener = self.listener
        listener.add(self)
        peername = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        if isinstance(peername, tuple):
            self.client = (str(peername[0]), int(peername[1]))
        if isinstance(sockname, tuple):
            self.server = (str(sockname[0]), int(sockname[1]))
        elif isinstance(sockname, str) and sockname:
            self.server = (sockname, None)
        self.peer = format_peer(self.client)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            # TLS done by the listening socket (a TLS listener without PROXY protocol).
            self.tls = tls_extension(ssl_object, listener.server_cert, listener.cipher_ids)
        if listener.closing:
            self.transport.abort()
            return
        if len(listener.connections) > self.config.max_connections:
            self.refuse(f"{self.config.max_connections} connections open (max_connections)")
            return
        host = self.client[0] if self.client else None
        if listener.proxy_peers and listener.proxy_peers.is_trusted(host):
            self.proxy_parser = ProxyHeaderParser()
            self.timer = self.loop.call_later(self.config.handshake_timeout, self.handshake_expired)
            return
        self.begin()

    def handshake_expired(self) -> None:
        self.timer = None
        if self.phase is STARTING and self.proxy_parser is not None:
            self.listener.log_info(
                self.peer,
                f"no PROXY header within {self.config.handshake_timeout} s (handshake_timeout)",
            )
            self.transport.abort()

    def receive_proxy_header(self, data: bytes) -> None:
        assert self.proxy_parser is not None
        try:
            header = self.proxy_parser.feed(data)
        except ProxyProtocolError as exc:
            self.listener.log_info(self.peer, f"bad PROXY header: {exc}")
            self.transport.abort()
            return
        if header is None:
            return
        self.proxy_parser = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.apply_proxy_header(header)
        self.begin()

    def apply_proxy_header(self, header: ProxyHeader) -> None:
        self.proxy = {"version": header.version, "peer": self.client, "tlvs": header.tlvs}
        if header.source is not None:
            self.client = header.source
            self.peer = f"{format_peer(header.source)} via {self.peer}"
        if header.destination is not None:
            self.server = header.destination

    def begin(self) -> None:
        """Check the per-client limit, then do the TLS handshake or start the app."""
        listener = self.listener
        if self.client is not None:
            host = self.client[0]
            count = listener.per_client.get(host, 0)
            limit = self.config.max_connections_per_client
            if count >= limit:
                self.refuse(f"{count} connections from {host} open (max_connections_per_client)")
                return
            listener.per_client[host] = count + 1
            self.counted_host = host
        self.counted = True
        if listener.start_tls:
            self.transport.pause_reading()
            listener.spawn(self.start_tls(listener.ssl_context))
        else:
            self.start_app()

    def refuse(self, reason: str) -> None:
        self.listener.log_warning(self.peer, f"connection refused: {reason}")
        self.transport.abort()

    async def start_tls(self, context: ssl.SSLContext | None) -> None:
        """TLS after a PROXY header: the handshake starts on the bytes that follow it."""
        assert context is not None
        if self.early:
            # uvloop reads once after connection_made even when paused there, so a
            # ClientHello can be taken before the handshake starts; it cannot be replayed.
            self.listener.log_error(self.peer, "TLS ClientHello read before the handshake")
            self.transport.abort()
            return
        try:
            transport = await self.loop.start_tls(
                self.transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.config.handshake_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            self.listener.log_info(self.peer, f"TLS handshake failed: {exc!r}")
            self.transport.abort()
            self.lost(None)
            return
        if transport is None or self.phase is not STARTING:
            self.lost(None)
            return
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.tls = tls_extension(
                ssl_object, self.listener.server_cert, self.listener.cipher_ids
            )
        self.start_app()

    def start_app(self) -> None:
        listener = self.listener
        transport = self.transport
        transport.set_write_buffer_limits(high=self.config.write_buffer_high_water)
        self.flow = FlowControl(transport)
        self.flow.pause_reading()
        extensions: dict[str, Any] = {}
        if self.tls is not None:
            extensions["tls"] = self.tls
        if self.proxy is not None:
            extensions["tcp.proxy"] = self.proxy
        self.scope: dict[str, Any] = {
            "type": "tcp",
            "asgi": ASGI_VERSION,
            "listener": listener.config.listener,
            "client": self.client,
            "server": self.server,
            # One dict for the listener's connections, as "asgi" is: read-only.
            "framing": listener.framing,
            "half_close": self.config.half_close,
            "extensions": extensions,
        }
        if listener.lifespan_state is not None:
            self.scope["state"] = listener.lifespan_state.copy()
        self.phase = CONNECTING
        self.started = True
        self.deliver(_CONNECT)
        # The instance's own coroutine is the task (no wrapper awaiting it): each
        # message it waits for resumes one frame less. app_finished() reports.
        try:
            instance = listener.app(self.scope, self.receive, self.send)
        except Exception as exc:
            self.app_crashed(exc)
            return
        if not asyncio.iscoroutine(instance):
            # ASGI asks for an awaitable, not a coroutine.
            instance = _awaited(instance)
        listener.spawn(instance).add_done_callback(self.app_finished)

    # asyncio.Protocol --------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase is not OPEN and phase is not WRITE_CLOSED:
            if phase is CONNECTING or phase is STARTING:
                # Read right after the TLS handshake, or before the pause took
                # effect; framed once the app has accepted.
                self.early.append(data)
            return
        self.read = True
        frames: list[bytes] | None = None
        line = self.line
        if line is not None and not line.pending:
            head, found, rest = data.partition(line.delimiter)
            if found and not rest and len(head) <= line.max_frame_size:
                frames = [head]
        if frames is None:
            try:
                frames = self.framer.receive_data(data)
            except Exception as exc:
                self.framing_failed(exc)
                return
            if not frames:
                return
        # deliver() inlined for the usual single frame: every frame passes here, and
        # calling it costs ~2% of a line's instructions (benchmarks.instructions).
        waiter = self.waiter
        if waiter is not None and len(frames) == 1:
            # The app waits in receive() (so the inbox is empty): hand it over.
            self.waiter = None
            if not waiter.done():
                waiter.set_result({"type": "tcp.receive", "bytes": frames[0]})
                return
        for frame in frames:
            self.put({"type": "tcp.receive", "bytes": frame})
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(self.take())
        if self.pending() >= self.config.max_queue:
            self.flow.pause_reading()

    def framing_failed(self, exc: Exception) -> None:
        if isinstance(exc, FramingError):
            self.reason = DisconnectReason(exc.reason)
            self.listener.log_warning(self.peer, f"closing: {exc}")
        else:
            self.reason = DisconnectReason.INVALID_FRAME
            self.listener.log_error(self.peer, f"framer raised {exc!r}", exc_info=True)
        self.reason_message = str(exc)
        # The framer stays failed: whatever still arrives goes to it (and fails).
        self.line = None
        self.transport.close()

    def eof_received(self) -> bool | None:
        self.peer_eof = True
        if self.phase is CONNECTING:
            # Keep what the peer sent for the app; accept() finishes the close.
            return True
        if self.phase not in (OPEN, WRITE_CLOSED):
            return None
        try:
            self.framer.receive_eof()
        except IncompleteFrame as exc:
            self.listener.log_info(self.peer, str(exc))
        except Exception as exc:
            self.framing_failed(exc)
            return None
        if self.config.half_close and self.phase is OPEN and self.tls is None:
            self.deliver(_EOF)
            return True
        if self.reason is None:
            self.reason = DisconnectReason.PEER_CLOSED
        return None

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost(exc)

    def lost(self, exc: Exception | None) -> None:
        """Forget the connection and tell the application; safe to call twice."""
        if self.phase is CLOSED:
            return
        self.phase = CLOSED
        listener = self.listener
        if self.counted_host is not None:
            remaining = listener.per_client[self.counted_host] - 1
            if remaining:
                listener.per_client[self.counted_host] = remaining
            else:
                del listener.per_client[self.counted_host]
            self.counted_host = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.slot:
            listener.deadlines.remove(self)
        if self.flow is not None:
            self.flow.resume_writing()
        if self.reason is None:
            self.reason = (
                DisconnectReason.ERROR if exc is not None else DisconnectReason.PEER_CLOSED
            )
            if exc is not None:
                self.reason_message = str(exc)
        if self.started:
            self.disconnect = {
                "type": "tcp.disconnect",
                "reason": self.reason.value,
                "message": self.reason_message,
            }
            if self.next is None:
                # An app waiting in receive() gets it now; otherwise after the inbox.
                waiter = self.waiter
                if waiter is not None:
                    self.waiter = None
                    if not waiter.done():
                        waiter.set_result(self.disconnect)
        listener.forget(self)

    # Timers and shutdown -----------------------------------------------------------

    def deadline_reached(self, now: float) -> None:
        """The listener's deadlines ask: close if nothing was read for ``idle_timeout``.

        Reads are not timed (a clock read per read was ~2% of a line's
        instructions): each sets ``read``, and this check, every tenth of the
        timeout (or 0.1 s, the deadlines' resolution), moves ``quiet_since`` to
        now when it finds it set. The last read came at most one check interval
        before ``quiet_since``, so a close is never early and at most that late.
        """
        timeout = self.config.idle_timeout
        assert timeout is not None
        if self.phase is CLOSED:
            return
        if self.read or self.flow.read_paused:
            # Read since the last check; or the app is behind: the peer is not idle,
            # we are not reading.
            self.read = False
            self.quiet_since = now
        elif now - self.quiet_since >= timeout:
            self.reason = DisconnectReason.TIMEOUT
            self.reason_message = f"nothing received for {timeout} s (idle_timeout)"
            self.listener.log_info(self.peer, f"closing: {self.reason_message}")
            self.transport.abort()
            return
        self.listener.deadlines.add(
            self, min(self.quiet_since + timeout, now + timeout / IDLE_CHECKS)
        )

    def shutdown(self) -> None:
        """Server shutdown: close now, the app gets ``tcp.disconnect`` "shutdown"."""
        if self.phase is CLOSED:
            return
        if self.reason is None:
            self.reason = DisconnectReason.SHUTDOWN
            self.reason_message = "server shutting down"
        if self.phase is STARTING:
            self.transport.abort()
        else:
            self.transport.close()

    def abort(self) -> None:
        if self.phase is not CLOSED:
            self.transport.abort()

    # The application instance ------------------------------------------------------

    def put(self, message: Message) -> None:
        if self.next is None:
            self.next = message
            return
        if self.queue is None:
            self.queue = deque()
        self.queue.append(message)

    def pending(self) -> int:
        """Messages the app has not taken yet."""
        if self.next is None:
            return 0
        return 1 + len(self.queue) if self.queue is not None else 1

    def take(self) -> Message:
        """The inbox's first message, removed (the inbox must not be empty)."""
        message = self.next
        assert message is not None
        queue = self.queue
        if queue:
            self.next = queue.popleft()
            if not queue:
                self.queue = None
        else:
            self.next = None
        return message

    def deliver(self, message: Message) -> None:
        """Give ``message`` to the app: to its receive() if it waits, else to the inbox."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(message)
                return
        self.put(message)

    def receive(self) -> asyncio.Future[Message]:
        """The ASGI ``receive``: a future of the next message (not a coroutine).

        A future, already done when a message waits: awaiting it is one frame less
        than a coroutine of this method's own, on every message (~5% of a line's
        instructions). A cancelled wait loses nothing: the message then waits in
        the inbox for the next call.
        """
        message = self.next
        if message is None:
            message = self.disconnect
            if message is None:
                # The app caught up: read again (paused at max_queue frames).
                if self.flow.read_paused and self.phase is not CONNECTING:
                    self.flow.resume_reading()
                waiter = self.waiter = self.loop.create_future()
                return waiter
        else:
            message = self.take()
        ready: asyncio.Future[Message] = self.loop.create_future()
        ready.set_result(message)
        return ready

    def send(self, message: Message) -> Awaitable[None]:
        """The ASGI ``send``: an awaitable, not a coroutine (as ``receive``).

        A frame written while the peer keeps up returns the listener's future that
        is already done: no coroutine made per frame (~1.5% of a line's
        instructions). A paused writer, and any other message, get a coroutine.
        """
        message_type = message.get("type")
        if message_type == "tcp.send" and self.phase is OPEN:
            data = message.get("bytes", b"")
            if type(data) is not bytes:
                if not isinstance(data, _BYTES_TYPES):
                    raise ValueError(
                        f"tcp.send 'bytes' must be a byte string, got {type(data).__name__}"
                    )
                data = bytes(data)
            if len(message) > 2:
                # "raw" or "eof" present: the less common path.
                if data:
                    self.transport.write(data if message.get("raw") else self.encode(data))
                if message.get("eof"):
                    self.half_close()
            elif data:
                line = self.line
                if (
                    line is not None
                    and line.byte >= 0
                    and line.byte not in data
                    and len(data) <= line.max_frame_size
                ):
                    # LineFramer.encode() of a line it accepts.
                    self.transport.write(data + line.delimiter)
                else:
                    self.transport.write(self.encode(data))
            if self.flow.write_paused:
                return self.flow.drain()
            return self.listener.written
        return self.send_other(message_type)

    async def send_other(self, message_type: object) -> None:
        """``send`` of anything but a frame on an open connection."""
        phase = self.phase
        if phase is CLOSED or phase is CLOSING:
            if message_type == "tcp.send":
                raise PeerDisconnected(f"connection closed ({self.reason_name()})")
            return
        if message_type == "tcp.close" and phase is not STARTING:
            self.close()
            return
        if message_type == "tcp.accept" and phase is CONNECTING:
            self.accept()
            return
        raise unexpected(EXPECTED.get(phase, ()), message_type)

    def accept(self) -> None:
        self.phase = OPEN
        timeout = self.config.idle_timeout
        if timeout is not None:
            now = self.quiet_since = self.loop.time()
            self.listener.deadlines.add(self, now + timeout / IDLE_CHECKS)
        early, self.early = self.early, []
        for data in early:
            if self.phase is OPEN:
                self.data_received(data)
        if self.phase is OPEN and self.pending() < self.config.max_queue:
            self.flow.resume_reading()
        if self.peer_eof and self.phase is OPEN and not self.eof_received():
            # The peer closed its side while the app decided.
            self.transport.close()

    def close(self) -> None:
        """The app is done: flush what it sent, then close."""
        if self.reason is None:
            self.reason = DisconnectReason.CLOSED
        self.phase = CLOSING
        self.transport.close()

    def half_close(self) -> None:
        transport = self.transport
        if self.peer_eof or not transport.can_write_eof():
            # Both sides are done (or TLS, which cannot half-close): close.
            self.close()
            return
        self.phase = WRITE_CLOSED
        transport.write_eof()

    def reason_name(self) -> str:
        return self.reason.value if self.reason is not None else "unknown"

    def app_finished(self, task: asyncio.Task[None]) -> None:
        """The application instance ended: report how, as the spec lists, and close."""
        if task.cancelled():
            self.abort()
            return
        exc = task.exception()
        if exc is not None:
            self.app_crashed(exc)
            return
        result: object = task.result()
        if result is not None:
            self.listener.log_error(
                self.peer, f"application returned a value (expected None): {result!r:.100}"
            )
        elif self.phase is CONNECTING:
            self.listener.log_error(
                self.peer, "application returned without accepting or closing the connection"
            )
        self.close_unless_done()

    def app_crashed(self, exc: BaseException) -> None:
        if not isinstance(exc, PeerDisconnected):
            self.listener.log_error(
                self.peer, f"application crashed: {type(exc).__name__}: {exc}", exc_info=exc
            )
        self.close_unless_done()

    def close_unless_done(self) -> None:
        if self.phase is not CLOSED and self.phase is not CLOSING:
            self.close()


async def _awaited(awaitable: Awaitable[None]) -> None:
    await awaitable


class DirectTcpConnection(TcpConnection, asyncio.Protocol):
    """A connection of a listener without PROXY protocol: reads with ``data_received``."""

    __slots__ = ()


class ProxiedTcpConnection(TcpConnection, asyncio.BufferedProtocol):
    """A connection of a PROXY protocol listener: reads the header exactly.

    Every connection of the listener reads into its one buffer:
    ``buffer_updated`` copies out what it needs before returning, and nothing
    else runs in between.
    """

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.proxy_parser is not None:
            return self.listener.read_buffer[: self.proxy_parser.bytes_needed]
        return self.listener.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(self.listener.read_buffer[:nbytes])
        if self.proxy_parser is not None:
            self.receive_proxy_header(data)
        else:
            self.data_received(data)


def format_peer(client: tuple[str, int] | None) -> str:
    """``host:port`` of a TCP peer, ``unix`` for a unix-socket peer."""
    if client is None:
        return "unix"
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
