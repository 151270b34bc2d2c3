"""One MQTT client connection: the asyncio protocol and its application instance's receive/send.

A connection has exactly one application instance, so one object is both the
:class:`asyncio.Protocol` and the instance's ``receive``/``send`` (as
:mod:`protocols.tcp.connection` does), which keeps an idle connection small.

Phases, in order (``send()`` checks the application's messages against them):

- ``AWAITING_CONNECT``: no CONNECT yet; no application yet. Closed after
  ``connect_timeout``.
- ``CONNECTING``: CONNECT received, ``mqtt.connect`` queued; reading is paused
  (the codec keeps pipelined packets until CONNACK) until the application
  answers ``mqtt.connack`` or ``mqtt.disconnect``.
- ``OPEN``: packets flow both ways; the wire duties of
  :mod:`protocols.mqtt.flow` run.
- ``CLOSED``: the transport is gone; ``mqtt.disconnect`` is queued.

``data_received`` cannot raise: a :class:`ProtocolError` from the codec is
answered with its ``data_to_send`` and the connection closed.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from typing import TYPE_CHECKING, Any, cast

from protocols.http_ws.flow import FlowControl
from protocols.http_ws.tls import tls_extension

from .auth import AuthExchange
from .codes import ProtocolVersion, ReasonCode
from .connection import MqttConnection, Role
from .errors import ProtocolError
from .flow import WireFlow
from .messages import (
    ASGI_VERSION,
    NEVER_EXPIRES,
    Message,
    PeerDisconnected,
    properties_to_dict,
    reason_properties,
    unexpected,
)
from .packets import Auth, Connack, Connect, Disconnect, Packet
from .properties import Properties

if TYPE_CHECKING:
    from .server import Listener


class Phase(enum.Enum):
    AWAITING_CONNECT = "awaiting_connect"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


#: What ``send()`` accepts in each phase; anything else is out of order.
EXPECTED: dict[Phase, tuple[str, ...]] = {
    Phase.CONNECTING: ("mqtt.connack", "mqtt.disconnect"),
    Phase.OPEN: ("mqtt.publish", "mqtt.puback", "mqtt.suback", "mqtt.unsuback", "mqtt.disconnect"),
}

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

#: Connect properties copied to ``scope["properties"]`` (the rest have scope keys).
_SCOPE_PROPERTY_SKIP = ("session_expiry_interval",)


def _address(name: tuple[Any, ...]) -> tuple[str, int]:
    """``(host, port)`` of a socket address; the transport's own tuple when it is one."""
    if len(name) == 2 and type(name[0]) is str and type(name[1]) is int:
        return cast(tuple[str, int], name)  # kept by the transport anyway: no copy
    return (str(name[0]), int(name[1]))


class MqttProtocol(asyncio.Protocol):
    """One MQTT connection, from accept to close, and its application instance.

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
        #: checked by the listener's :class:`~.deadlines.Deadlines`, in ``slot``.
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

    # Accepting ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast, don't check.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        listener = self.listener
        peername = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        if isinstance(peername, tuple):
            self.client = _address(peername)
        if isinstance(sockname, tuple):
            self.server = _address(sockname)
        elif isinstance(sockname, str) and sockname:
            self.server = (sockname, None)
        if listener.closing:
            transport.abort()
            return
        if len(listener.connections) >= self.config.max_connections:
            self.log(
                "warning",
                f"connection refused: {self.config.max_connections} "
                "connections open (max_connections)",
            )
            transport.abort()
            return
        listener.connections.add(self)
        self.counted = True
        transport.set_write_buffer_limits(high=self.config.write_buffer_high_water)
        self.flow = FlowControl(transport)
        self.deadline = self.loop.time() + self.config.connect_timeout
        listener.deadlines.add(self, self.deadline)

    def deadline_reached(self, now: float) -> None:
        """The listener's timer wheel asks: act on the deadline of this phase, if it passed."""
        if self.phase is Phase.OPEN:
            self.check_keep_alive(now)
        elif self.phase is not Phase.CLOSED:
            if now < self.deadline:
                self.listener.deadlines.add(self, self.deadline)
            elif self.phase is Phase.AWAITING_CONNECT:
                self.connect_expired()
            else:
                self.connect_answer_expired()

    def connect_expired(self) -> None:
        if self.phase is Phase.AWAITING_CONNECT:
            self.log("info", f"no CONNECT within {self.config.connect_timeout} s (connect_timeout)")
            self.transport.abort()

    # asyncio.Protocol ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        try:
            packets = self.conn.receive_data(data)
        except ProtocolError as error:
            self.protocol_failed(error)
            return
        if packets:
            if self.backlog is not None:  # read before the pause took effect: keep the order
                self.backlog.extend(packets)
            else:
                self.handle_packets(packets)

    def handle_packets(self, packets: list[Packet]) -> None:
        wire = self.wire
        for index, packet in enumerate(packets):
            if wire is not None:
                if not wire.handle(packet):
                    return
                if wire.hold:  # over max_publish_rate: the rest waits for the next second
                    self.backlog = packets[index + 1 :]
                    return
            elif isinstance(packet, Connect):
                self.handle_connect(packet)
            elif isinstance(packet, Auth) and self.auth is not None:
                self.auth.client_auth(packet)  # the codec let it through: the client's turn

    def handle_backlog(self) -> None:
        """Handle the packets held back by the publish rate (they may be held again)."""
        packets, self.backlog = self.backlog, None
        if packets and self.phase is Phase.OPEN:
            self.handle_packets(packets)

    def protocol_failed(self, error: ProtocolError) -> None:
        self.log("info", f"protocol error, closing: {error} ({error.reason_code:#04x})")
        self.reason = PROTOCOL
        self.reason_code = error.reason_code
        if error.data_to_send:
            self.write(error.data_to_send)
        self.close_transport()

    def eof_received(self) -> bool | None:
        return None

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

    def connection_lost(self, exc: Exception | None) -> None:
        if self.phase is Phase.CLOSED:
            return
        was_open = self.phase is Phase.OPEN
        self.phase = Phase.CLOSED
        listener = self.listener
        if self.slot:
            listener.deadlines.remove(self)
        self.out = None
        if self.flow is not None:
            self.flow.resume_writing()
        if self.counted:
            listener.forget(self)
        if self.wire is not None:
            self.wire.close()
        if self.auth is not None:
            self.auth.close()
        if was_open:
            listener.release(self, self.session_expiry)
        if self.reason is None:
            self.reason = LOST
        if self.started:
            self.disconnect = {
                "type": "mqtt.disconnect",
                "reason_code": int(self.reason_code),
                "reason": self.reason,
                "publish_will": self.publish_will
                and self.connect is not None
                and self.connect.will is not None,
                "session_expiry_interval": self.session_expiry,
            }
            self.wake()

    # CONNECT ------------------------------------------------------------------------

    def handle_connect(self, packet: Connect) -> None:
        self.flow.pause_reading()
        self.connect = packet
        self.v5 = packet.protocol_version is ProtocolVersion.V5
        assigned = not packet.client_id
        self.client_id = packet.client_id or f"hub-{secrets.token_hex(8)}"
        if self.v5:
            expiry = packet.properties.session_expiry_interval or 0
        else:
            expiry = 0 if packet.clean_start else NEVER_EXPIRES
        self.session_expiry = min(expiry, self.config.max_session_expiry)
        properties = properties_to_dict(packet.properties)
        for name in _SCOPE_PROPERTY_SKIP:
            properties.pop(name, None)
        will = packet.will
        extensions: dict[str, Any] = {}
        ssl_object = self.transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            extensions["tls"] = tls_extension(
                ssl_object, self.listener.server_cert, self.listener.cipher_ids
            )
        self.scope: dict[str, Any] = {
            "type": "mqtt",
            "asgi": ASGI_VERSION,
            "mode": "direct",
            "listener": self.config.listener,
            "protocol_version": int(packet.protocol_version),
            "client_id": self.client_id,
            "client_id_assigned": assigned,
            "username": packet.username,
            "keep_alive": packet.keep_alive,
            "clean_start": packet.clean_start,
            "session_expiry_interval": expiry,
            "will": None
            if will is None
            else {
                "topic": will.topic,
                "payload": will.payload,
                "qos": int(will.qos),
                "retain": will.retain,
                "properties": properties_to_dict(will.properties),
            },
            "properties": properties,
            "client": self.client,
            "server": self.server,
            "extensions": extensions,
        }
        if self.listener.lifespan_state is not None:
            self.scope["state"] = self.listener.lifespan_state.copy()
        event: Message = {"type": "mqtt.connect", "password": packet.password}
        method = packet.properties.authentication_method
        if method is not None:
            self.auth = AuthExchange(self, method)
            event["authentication_method"] = method
            event["authentication_data"] = packet.properties.authentication_data
        self.phase = Phase.CONNECTING
        self.started = True
        self.queue.append(event)
        self.deadline = self.loop.time() + self.config.connect_answer_timeout
        self.listener.deadlines.add(self, self.deadline)
        self.listener.spawn(self.run_asgi())

    def connect_answer_expired(self) -> None:
        if self.phase is Phase.CONNECTING and self.auth is not None and self.auth.turn == "client":
            self.auth.client_expired()
        elif self.phase is Phase.CONNECTING:
            self.log(
                "error",
                f"application did not answer mqtt.connect within "
                f"{self.config.connect_answer_timeout} s (connect_answer_timeout)",
            )
            self.refuse(ReasonCode.SERVER_UNAVAILABLE)

    def refuse(self, code: ReasonCode, properties: Properties | None = None) -> None:
        """Answer CONNECT with a refusing CONNACK and close."""
        if not code.is_failure:
            code = ReasonCode.UNSPECIFIED_ERROR
        self.reason, self.reason_code, self.publish_will = CLOSED, code, False
        packet = Connack(reason_code=code, properties=properties or Properties())
        try:
            self.write(self.conn.send(packet))
        except Exception:
            self.write(self.conn.send(Connack(reason_code=code)))
        self.close_transport()

    def accept(self, message: Message) -> None:
        """The application accepted: take the client id over, CONNACK, resume the session.

        Raises:
            ValueError: the ``mqtt.connack`` names another Authentication Method
                than the CONNECT (see :mod:`.auth`).
        """
        auth = Properties()
        if self.auth is not None:
            auth = self.auth.connack_properties(message)
        elif message.get("authentication_method") is not None:
            raise ValueError(
                "mqtt.connack 'authentication_method' for a CONNECT without one (MQTT-4.12.0-6)"
            )
        listener = self.listener
        session_present = bool(message.get("session_present", False))
        session = listener.claim(self, session_present)
        assert self.connect is not None
        connect = self.connect
        config = self.config
        properties = Properties()
        if self.v5:
            given = reason_properties(message)
            requested = connect.properties.session_expiry_interval or 0
            properties = Properties(
                reason_string=given.reason_string,
                user_properties=given.user_properties,
                session_expiry_interval=self.session_expiry
                if self.session_expiry != requested
                else None,
                assigned_client_identifier=self.client_id
                if self.scope["client_id_assigned"]
                else None,
                receive_maximum=config.receive_maximum,
                maximum_packet_size=config.max_packet_size,
                topic_alias_maximum=config.topic_alias_maximum or None,
                authentication_method=auth.authentication_method,
                authentication_data=auth.authentication_data,
            )
        self.phase = Phase.OPEN
        self.publish_will = True
        self.wire = WireFlow(self, session)
        self.write(self.conn.send(Connack(session_present=session_present, properties=properties)))
        keep_alive = connect.keep_alive
        if keep_alive:
            listener.deadlines.add(self, self.loop.time() + keep_alive * 1.5)
        self.wire.resume()
        try:
            pipelined = self.conn.receive_data(b"")
        except ProtocolError as error:
            self.protocol_failed(error)
            return
        if pipelined:
            self.handle_packets(pipelined)
        if self.phase is Phase.OPEN and self.queued() < config.max_queue:
            self.flow.resume_reading()

    # Timers, takeover, shutdown -----------------------------------------------------

    def check_keep_alive(self, now: float) -> None:
        if self.phase is not Phase.OPEN:
            return
        assert self.connect is not None
        limit = self.connect.keep_alive * 1.5
        if not limit:
            return  # Keep Alive 0: no deadline (this was the CONNECT's)
        if self.flow.read_paused:
            self.last_read = now  # we are not reading: the client is not idle
        deadline = self.last_read + limit
        if deadline > now:
            self.listener.deadlines.add(self, deadline)
            return
        self.log("info", f"nothing received for {limit:g} s (1.5 x keep alive), closing")
        self.close_with(ReasonCode.KEEP_ALIVE_TIMEOUT, KEEP_ALIVE)

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

    def take_over(self) -> None:
        """Another connection with this client id was accepted (v5 DISCONNECT 0x8E)."""
        self.log("info", "session taken over by a new connection")
        self.close_with(ReasonCode.SESSION_TAKEN_OVER, TAKEN_OVER)

    def shutdown(self) -> None:
        """Server shutdown: v5 DISCONNECT 0x8B, close; the app gets reason "shutdown"."""
        if self.phase is Phase.AWAITING_CONNECT:
            self.transport.abort()
            return
        if self.phase is Phase.CONNECTING:
            self.reason = SHUTDOWN
            self.refuse(ReasonCode.SERVER_UNAVAILABLE)
            self.reason = SHUTDOWN
            return
        self.close_with(ReasonCode.SERVER_SHUTTING_DOWN, SHUTDOWN)

    def abort(self) -> None:
        if self.phase is not Phase.CLOSED:
            self.transport.abort()

    # The application instance -------------------------------------------------------

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def deliver(self, message: Message) -> None:
        """Queue an event for the application; pause reading past ``max_queue``."""
        queue = self.queue
        queue.append(message)
        self.wake()
        if len(queue) - self.head >= self.config.max_queue:
            self.flow.pause_reading()

    def queued(self) -> int:
        """Events queued for the application and not received yet."""
        return len(self.queue) - self.head

    async def receive(self) -> Message:
        queue = self.queue
        while self.head >= len(queue):
            if self.disconnect is not None:
                return self.disconnect
            if self.flow.read_paused and self.phase is Phase.OPEN and self.wire is not None:
                self.wire.maybe_resume_reading()
            waiter = self.waiter = self.loop.create_future()
            await waiter
        head = self.head
        message = queue[head]
        if head + 1 < len(queue):
            self.head = head + 1
        else:  # caught up: drop the list's storage, an idle connection keeps none
            queue.clear()
            self.head = 0
        return message

    async def send(self, message: Message) -> None:
        message_type = message.get("type")
        phase = self.phase
        if phase is Phase.OPEN and self.transport.is_closing():
            # Closed (by us, or a failed socket write) but connection_lost() has not
            # run yet: the bytes would be dropped, and asyncio logs a warning per
            # write past the fifth. Behave as after the close.
            phase = Phase.CLOSED
        if phase is Phase.OPEN:
            wire = self.wire
            assert wire is not None
            if message_type == "mqtt.publish":
                wire.app_publish(message)
                if self.flow.write_paused:
                    await self.flow.drain()
                return
            if message_type == "mqtt.puback":
                wire.app_puback(message)
                return
            if message_type == "mqtt.suback":
                wire.app_suback(message)
                return
            if message_type == "mqtt.unsuback":
                wire.app_unsuback(message)
                return
            if message_type == "mqtt.disconnect":
                code = ReasonCode(int(message.get("reason_code", 0)))
                self.publish_will = True
                self.close_with(code, CLOSED, reason_string=message.get("reason_string"))
                return
            if message_type == "mqtt.auth" and self.auth is not None:
                self.auth.app_auth(message)
                return
        elif phase is Phase.CONNECTING:
            if message_type == "mqtt.connack":
                code = ReasonCode(int(message.get("reason_code", 0)))
                if code.is_failure:
                    self.log("info", f"CONNECT refused by the application ({code:#04x})")
                    self.refuse(code, reason_properties(message))
                elif self.auth is not None and "authentication_method" not in message:
                    self.log(
                        "info",
                        f"CONNECT refused: Authentication Method {self.auth.method!r} not "
                        "taken up by the application (its mqtt.connack names none) (0x8c)",
                    )
                    self.refuse(ReasonCode.BAD_AUTHENTICATION_METHOD)
                else:
                    self.accept(message)
                return
            if message_type == "mqtt.auth" and self.auth is not None:
                self.auth.app_auth(message)
                return
            if message_type == "mqtt.disconnect":
                code = ReasonCode(int(message.get("reason_code", ReasonCode.UNSPECIFIED_ERROR)))
                self.log("info", f"CONNECT refused by the application ({code:#04x})")
                self.refuse(code)
                return
        elif phase is Phase.CLOSED:
            if message_type == "mqtt.publish":
                raise PeerDisconnected(f"connection closed ({self.reason or 'closing'})")
            return
        raise unexpected(EXPECTED.get(phase, ()), message_type)

    async def run_asgi(self) -> None:
        """Run the application instance; list its failure paths as the spec does."""
        try:
            result: object = await self.listener.app(  # type: ignore[func-returns-value]
                self.scope, self.receive, self.send
            )
        except PeerDisconnected:
            pass
        except asyncio.CancelledError:
            self.abort()
            raise
        except Exception as exc:
            self.log("error", f"application crashed: {type(exc).__name__}: {exc}", exc_info=True)
        else:
            if result is not None:
                self.log("error", f"application returned a value (expected None): {result!r:.100}")
            elif self.phase is Phase.CONNECTING:
                self.log("error", "application returned without answering mqtt.connect")
        if self.phase is Phase.CONNECTING:
            self.refuse(ReasonCode.UNSPECIFIED_ERROR)
        elif self.phase is Phase.OPEN:
            self.close_with(ReasonCode.UNSPECIFIED_ERROR, CLOSED)

    def log(self, level: str, reason: str, exc_info: bool = False) -> None:
        """One line naming listener, peer, client id and reason."""
        self.listener.log(level, f"{self.peer} {self.client_id}: {reason}", exc_info)
