"""What every part of one MQTT client connection shares: its state, writes, close and log.

:class:`~protocols.mqtt.protocol.MqttProtocol` is made of three parts on this
base: the protocol itself (reading, timers), :mod:`.handshake` (CONNECT to
CONNACK) and :mod:`.instance` (the application instance). The base holds
every slot, so the parts add none, and the verbs they all use: :meth:`write`
(gathered per turn of the event loop), closing, and :meth:`log`.
"""

from __future__ import annotations

import asyncio
import enum
from typing import TYPE_CHECKING, Any

from protocols.http_ws.flow import FlowControl

from .auth import AuthExchange
from .codes import ReasonCode
from .connection import MqttConnection, Role
from .errors import ProtocolError
from .flow import WireFlow
from .messages import Message
from .packets import Connect, Disconnect, Packet
from .properties import Properties

if TYPE_CHECKING:
    from .server import Listener


class Phase(enum.Enum):
    """Where a connection is, from accept to close (see :mod:`protocols.mqtt.protocol`)."""

    AWAITING_CONNECT = "awaiting_connect"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


#: ``mqtt.disconnect`` ``reason`` words, by what ended the connection.
CLIENT, LOST, KEEP_ALIVE, TAKEN_OVER, PROTOCOL, CLOSED, SHUTDOWN = (
    "client",
    "connection_lost",
    "keep_alive_timeout",
    "taken_over",
    "protocol_error",
    "closed",
    "shutdown",
)


class ProtocolBase(asyncio.Protocol):
    """The state of one MQTT connection, and the verbs every part of it uses.

    Ten thousand idle devices are ten thousand of these: the attributes are
    slots, and what only some connections need (the event queue's storage,
    the write buffer) is created when first used.
    """

    __slots__ = (
        "auth",
        "backlog",
        "client",
        "client_id",
        "config",
        "conn",
        "connect",
        "counted",
        "deadline",
        "disconnect",
        "flow",
        "head",
        "last_read",
        "listener",
        "loop",
        "out",
        "out_size",
        "phase",
        "publish_will",
        "queue",
        "reason",
        "reason_code",
        "scope",
        "server",
        "session_expiry",
        "slot",
        "started",
        "transport",
        "v5",
        "waiter",
        "wire",
    )

    #: The application's scope, made of the CONNECT (by ``handle_connect``).
    scope: dict[str, Any]

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.config = listener.config
        self.loop = listener.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.phase = Phase.AWAITING_CONNECT
        config = self.config
        self.conn = MqttConnection(
            Role.SERVER,
            max_packet_size=config.max_packet_size,
            topic_aliases_out=config.topic_alias_out_maximum if config.topic_alias_out else 0,
        )
        self.client_id = "-"
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int | None] | None = None
        self.connect: Connect | None = None
        self.v5 = False
        #: Events for the application: ``queue[head:]`` (a list, 56 bytes when empty,
        #: where a deque takes 600; it is cleared whenever the app caught up).
        self.queue: list[Message] = []
        self.head = 0
        #: Packets written in this turn of the event loop, not yet given to the transport.
        self.out: list[bytes] | None = None
        self.out_size = 0
        self.waiter: asyncio.Future[None] | None = None
        self.disconnect: Message | None = None
        self.reason: str | None = None
        self.reason_code = ReasonCode.UNSPECIFIED_ERROR
        self.publish_will = True
        self.session_expiry = 0
        #: Loop time of the CONNECT (then of the application's answer) deadline;
        #: checked by the listener's :class:`~protocols.deadlines.Deadlines`, in ``slot``.
        self.deadline = 0.0
        self.slot = 0
        self.last_read = 0.0
        self.wire: WireFlow | None = None
        #: The enhanced authentication exchange, when the CONNECT named a method.
        self.auth: AuthExchange | None = None
        #: Packets read but held back while the publish rate is over its limit.
        self.backlog: list[Packet] | None = None
        self.started = False
        self.counted = False

    @property
    def peer(self) -> str:
        """The client's address for log lines (made when logged, not kept)."""
        if self.client is None:
            return "unix" if self.transport is not None else "unknown"
        host, port = self.client
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def log(self, level: str, reason: str, exc_info: bool = False) -> None:
        """One line naming listener, peer, client id and reason."""
        self.listener.log(level, f"{self.peer} {self.client_id}: {reason}", exc_info)

    # Writing ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write ``data`` at the end of this turn of the event loop, with the rest of the turn's.

        A subscriber is often sent many messages in one turn (a publisher's
        packets arrive together, and fan out to every subscriber): one
        ``send()`` system call for all of them instead of one each. Past
        ``write_buffer_high_water`` bytes they are written at once, so the
        transport's flow control (``pause_writing``) still applies.
        """
        out = self.out
        if out is None:
            self.out = [data]
            self.out_size = len(data)
            self.loop.call_soon(self.end_turn)
            if len(data) >= self.config.write_buffer_high_water:
                self.flush()
            return
        out.append(data)
        self.out_size += len(data)
        if self.out_size >= self.config.write_buffer_high_water:
            self.flush()

    def flush(self) -> None:
        """Give the transport what :meth:`write` gathered."""
        out = self.out
        if not out:
            return
        self.out = []  # not None: the flush already scheduled for this turn will run
        self.out_size = 0
        if not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def end_turn(self) -> None:
        self.flush()
        self.out = None

    def close_transport(self) -> None:
        """Close after writing what was gathered (the last packets come before the FIN)."""
        self.flush()
        self.transport.close()

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # Closing ------------------------------------------------------------------------

    def protocol_failed(self, error: ProtocolError) -> None:
        self.log("info", f"protocol error, closing: {error} ({error.reason_code:#04x})")
        self.reason = PROTOCOL
        self.reason_code = error.reason_code
        if error.data_to_send:
            self.write(error.data_to_send)
        self.close_transport()

    def close_with(
        self, code: ReasonCode, reason: str, *, reason_string: str | None = None
    ) -> None:
        """Close an open connection: v5 DISCONNECT ``code`` first; 3.1.1 just closes."""
        if self.phase is Phase.CLOSED:
            return
        if self.reason is None:
            self.reason, self.reason_code = reason, code
        if self.phase is Phase.OPEN and self.v5:
            properties = Properties(reason_string=reason_string) if reason_string else Properties()
            try:
                self.write(self.conn.send(Disconnect(code, properties)))
            except Exception:
                self.log("debug", "could not send DISCONNECT")
        self.close_transport()

    def abort(self) -> None:
        if self.phase is not Phase.CLOSED:
            self.transport.abort()
