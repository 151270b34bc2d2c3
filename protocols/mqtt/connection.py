"""The sans-I/O MQTT connection: a byte stream in, packets out; packets in, bytes out.

Everything that affects the connection's state lives in this module: the
table :data:`TRANSITIONS`, and the few rules a table cannot say, each next to
its spec section. No sockets, no clock: keep-alive timing, QoS windows,
retransmission and sessions belong to the server that drives this object.

**The state machine, as data.** ``TRANSITIONS[role][state][(direction,
packet type)]`` is the next state; a missing key is the error. For a
received packet that is a :class:`ProtocolViolation` (0x82; a 3.1.1 peer is
just disconnected), for a sent one a :class:`LocalProtocolError`.

- ``AWAITING_CONNECT``: nothing exchanged. The client's first packet MUST be
  CONNECT (MQTT-3.1.0-1); anything else is refused before it is decoded.
- ``CONNECTING``: CONNECT exchanged, CONNACK not yet. Only AUTH (v5
  enhanced authentication) flows. A server does not process anything the
  client pipelined behind its CONNECT until it has sent CONNACK (v5 3.1.4,
  MQTT-3.1.4-7): those bytes stay buffered; call ``receive_data(b"")``
  right after ``send(Connack(...))`` to get them.
- ``CONNECTED``: everything of the session; a second CONNECT is a Protocol
  Error (MQTT-3.1.0-2).
- ``CLOSED``: a DISCONNECT, or a refusing CONNACK, went either way. Nothing
  more may be sent, and bytes still arriving are ignored: the connection is
  to be closed.
- ``ERROR``: the peer broke the protocol. ``receive_data`` raises the same
  error again, ``send`` raises :class:`LocalProtocolError`.

**Rules outside the table.** A refusing CONNACK (0x80 and above) leads to
``CLOSED`` instead of ``CONNECTED``; a 3.1.1 server never sends DISCONNECT;
a client's PUBLISH carries no Subscription Identifier (MQTT-3.3.4-6);
Topic Aliases are resolved on receipt (v5 3.3.2.3.4).

**Outbound Topic Aliases (v5 3.3.2.3.4), when ``topic_aliases_out`` > 0.**
This side names the topics it sends by alias, up to the peer's Topic Alias
Maximum (capped by ``topic_aliases_out``): the first PUBLISH to a topic
carries the topic and a new alias, later ones an empty topic and the alias.
Aliases are numbered from 1 and never reassigned: once all are taken, new
topics go out in full. Replacing the least recently used one was the other
choice; with more live topics than aliases it thrashes, every PUBLISH then
carrying its full topic *and* an alias, and it costs bookkeeping per
message, while the peer's few steady topics (what aliases pay off for)
take the first aliases anyway. A mapping is recorded only once its PUBLISH
is encoded and within the peer's Maximum Packet Size, so the peer knows
every alias it is sent. A retransmission (``dup``) always carries its full
topic. A ``topic_alias`` the caller put in the PUBLISH is dropped when this
side assigns aliases (one owner per number space); otherwise it is sent as
given, checked against the peer's maximum. The table belongs to this object,
that is, to one network connection: a resumed session starts with none.

**Enhanced authentication (v5 4.12), server role.** AUTH flows only when the
CONNECT named an Authentication Method (MQTT-4.12.0-6, -7), always with that
method (MQTT-4.12.0-5, 4.12.1-1), and in turns kept in :class:`AuthTurn`:
the CONNECT, or a client's AUTH 0x19 Re-authenticate (only once connected),
gives the server the turn; the server's AUTH 0x18 Continue authentication
gives it to the client, whose answer must be AUTH 0x18 (MQTT-4.12.0-2); the
server ends the exchange with CONNACK, or, when re-authenticating, AUTH 0x00
Success. An accepting CONNACK carries the CONNECT's method, and only then.
"""

from __future__ import annotations

import enum
from dataclasses import replace

from .codes import REASON_CODES_BY_PACKET, PacketType, ProtocolVersion, ReasonCode
from .errors import (
    LocalProtocolError,
    MalformedPacket,
    OutgoingPacketTooLarge,
    PacketTooLarge,
    ProtocolError,
    ProtocolViolation,
    TopicAliasInvalid,
    UnsupportedProtocolVersion,
)
from .fields import read_remaining_length
from .packets import Auth, Connack, Connect, Disconnect, Packet, Puback, Publish
from .properties import EMPTY_PROPERTIES
from .reader import DECODERS, connect_protocol_version
from .writer import encode, encode_aliased_publish, encode_plain_publish

#: Largest packet the spec allows: a 5-byte fixed header and the largest
#: Remaining Length (v5 2.2.3, 3.1.2.11.4).
MAX_PACKET_SIZE = 268_435_455 + 5

#: Default largest packet a connection accepts, fixed header included. A
#: sensor reading or a device command is a few hundred bytes; 1 MiB leaves
#: room for images and firmware chunks while bounding what one client can
#: make the server buffer (the spec's own ceiling is 256 MiB).
DEFAULT_MAX_PACKET_SIZE = 1024 * 1024


class Role(enum.Enum):
    """Which end of the connection this object is."""

    SERVER = "server"
    CLIENT = "client"


class State(enum.Enum):
    """Where the connection is; see the module docstring."""

    AWAITING_CONNECT = "awaiting_connect"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"
    ERROR = "error"


class AuthTurn(enum.Enum):
    """Who must send the next AUTH of an enhanced authentication exchange (server role)."""

    NONE = "none"  # no exchange running
    SERVER = (
        "server"  # the server answers (CONNACK, AUTH 0x18, or AUTH 0x00 when re-authenticating)
    )
    CLIENT = "client"  # the server sent AUTH 0x18: the client answers AUTH 0x18


class Direction(enum.Enum):
    RECEIVED = "received"
    SENT = "sent"


_P = PacketType
_PUBACK = bytes((_P.PUBACK << 4, 2))  # fixed header of a 4-byte PUBACK
# Plain ints and names, bound once: on Python 3.11 ``PacketType.AUTH`` and ``.name`` run
# the enum's descriptors (~1,000 instructions each), and these are used per packet.
_AUTH, _CONNACK, _DISCONNECT = int(_P.AUTH), int(_P.CONNACK), int(_P.DISCONNECT)
_NAMES = {packet_type: packet_type.name for packet_type in _P}
_RECEIVED, _SENT = Direction.RECEIVED, Direction.SENT
_CONNECTED, _CONNECTING, _CLOSED = State.CONNECTED, State.CONNECTING, State.CLOSED
_PUBLISH_FLOW = (_P.PUBLISH, _P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP)
_FROM_CLIENT = (*_PUBLISH_FLOW, _P.SUBSCRIBE, _P.UNSUBSCRIBE, _P.PINGREQ, _P.AUTH)
_FROM_SERVER = (*_PUBLISH_FLOW, _P.SUBACK, _P.UNSUBACK, _P.PINGRESP, _P.AUTH)

#: ``TRANSITIONS[role][state][(direction, packet type)] -> next state``.
TRANSITIONS: dict[Role, dict[State, dict[tuple[Direction, PacketType], State]]] = {
    Role.SERVER: {
        State.AWAITING_CONNECT: {(_RECEIVED, _P.CONNECT): _CONNECTING},
        State.CONNECTING: {
            (_RECEIVED, _P.AUTH): _CONNECTING,
            (_SENT, _P.AUTH): _CONNECTING,
            (_SENT, _P.CONNACK): _CONNECTED,
        },
        State.CONNECTED: {
            **{(_RECEIVED, packet_type): _CONNECTED for packet_type in _FROM_CLIENT},
            **{(_SENT, packet_type): _CONNECTED for packet_type in _FROM_SERVER},
            (_RECEIVED, _P.DISCONNECT): _CLOSED,
            (_SENT, _P.DISCONNECT): _CLOSED,
        },
        State.CLOSED: {},
        State.ERROR: {},
    },
    Role.CLIENT: {
        State.AWAITING_CONNECT: {(_SENT, _P.CONNECT): _CONNECTING},
        State.CONNECTING: {
            # A client need not wait for CONNACK before sending (v5 3.1.4).
            **{(_SENT, packet_type): _CONNECTING for packet_type in _FROM_CLIENT},
            (_SENT, _P.DISCONNECT): _CLOSED,
            (_RECEIVED, _P.AUTH): _CONNECTING,
            (_RECEIVED, _P.CONNACK): _CONNECTED,
        },
        State.CONNECTED: {
            **{(_SENT, packet_type): _CONNECTED for packet_type in _FROM_CLIENT},
            **{(_RECEIVED, packet_type): _CONNECTED for packet_type in _FROM_SERVER},
            (_RECEIVED, _P.DISCONNECT): _CLOSED,
            (_SENT, _P.DISCONNECT): _CLOSED,
        },
        State.CLOSED: {},
        State.ERROR: {},
    },
}

# The same table split by direction and keyed by the packet type's number,
# for the per-packet lookups of receive_data() and send().
_BY_DIRECTION: dict[tuple[Role, State, Direction], dict[int, State]] = {
    (role, state, direction): {
        packet_type.value: next_state
        for (way, packet_type), next_state in steps.items()
        if way is direction
    }
    for role, states in TRANSITIONS.items()
    for state, steps in states.items()
    for direction in Direction
}


class MqttConnection:
    """One MQTT connection, either end, without I/O.

    Args:
        role: ``Role.SERVER`` (reads CONNECT first) or ``Role.CLIENT``.
        max_packet_size: largest packet accepted from the peer, fixed header
            included, checked as soon as the Remaining Length is decoded. A
            ``maximum_packet_size`` property in the CONNECT or CONNACK this
            side sends replaces it: the peer is told that limit.
        protocol_versions: the versions a server accepts; a CONNECT for
            another is refused with CONNACK 0x84 (v5) or 0x01 (3.1.1).
        topic_aliases_out: most Topic Aliases this side assigns to the
            topics it sends (v5; also capped by the peer's Topic Alias
            Maximum); 0, the default, sends every topic in full.

    Use:
        ``receive_data(data) -> list[Packet]`` for every chunk read (partial
        packets are kept, many packets per chunk are fine);
        ``send(packet) -> bytes`` for every packet to write.
    """

    __slots__ = (
        "_alias_out_max",
        "_error",
        "_needed",
        "_out_aliases",
        "_pending",
        "_pending_size",
        "_receivable",
        "_sendable",
        "_state",
        "_topic_aliases",
        "_v5",
        "auth_turn",
        "connect",
        "max_packet_size",
        "peer_max_packet_size",
        "peer_topic_alias_maximum",
        "protocol_version",
        "protocol_versions",
        "role",
        "topic_alias_maximum",
        "topic_aliases_out",
    )

    def __init__(
        self,
        role: Role = Role.SERVER,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        protocol_versions: tuple[ProtocolVersion, ...] = (ProtocolVersion.V311, ProtocolVersion.V5),
        topic_aliases_out: int = 0,
    ) -> None:
        if not 2 <= max_packet_size <= MAX_PACKET_SIZE:
            raise ValueError(f"max_packet_size={max_packet_size}, must be 2-{MAX_PACKET_SIZE}")
        if not 0 <= topic_aliases_out <= 0xFFFF:
            raise ValueError(f"topic_aliases_out={topic_aliases_out}, must be 0-65535")
        self.role = role
        self._receivable: dict[int, State] = {}
        self._sendable: dict[int, State] = {}
        #: Largest packet accepted from the peer (bytes, fixed header included).
        self.max_packet_size = max_packet_size
        self.protocol_versions = protocol_versions
        self.state = State.AWAITING_CONNECT
        #: The version spoken, once CONNECT was received (server) or sent (client).
        self.protocol_version: ProtocolVersion | None = None
        #: The CONNECT of this connection, once exchanged.
        self.connect: Connect | None = None
        #: Largest packet the peer accepts (its Maximum Packet Size), None: no limit.
        self.peer_max_packet_size: int | None = None
        #: Topic Alias Maximum this side announced (aliases the peer may use).
        self.topic_alias_maximum = 0
        #: Topic Alias Maximum the peer announced (aliases this side may use).
        self.peer_topic_alias_maximum = 0
        self._topic_aliases: dict[int, str] | None = None  # made by the first alias
        #: Most aliases this side assigns to topics it sends (see the module docstring).
        self.topic_aliases_out = topic_aliases_out
        # Aliases in use for sending: the smaller of topic_aliases_out and the peer's
        # maximum once known (v5), else 0; and the table, topic -> alias.
        self._alias_out_max = 0
        self._out_aliases: dict[str, int] = {}
        #: Whose turn it is in an enhanced authentication exchange (server role).
        self.auth_turn = AuthTurn.NONE
        self._v5 = False
        self._error: ProtocolError | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._needed = 0  # bytes the pending packet needs before parsing is worth trying

    @property
    def state(self) -> State:
        """Where the connection is (see the module docstring)."""
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        # The transitions of the new state, looked up once here rather than per packet.
        self._state = state
        self._receivable = _BY_DIRECTION[self.role, state, _RECEIVED]
        self._sendable = _BY_DIRECTION[self.role, state, _SENT]

    # -- Receiving ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Packet]:
        """Feed bytes read from the peer; return the packets they complete, in order.

        Packets decoded before an error in the same call are discarded with
        the connection.

        Raises:
            ProtocolError: the peer broke the protocol. Write
                ``error.data_to_send``, then close the connection. Every
                later call raises the same error.
        """
        if self._error is not None:
            raise self._error
        if self._state is _CLOSED:
            return []
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._needed:
                return []
            data = b"".join(self._pending)
            self._pending.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        try:
            events, pos, needed = self._parse(data)
        except ProtocolError as error:
            self._fail(error, data)
            raise
        remaining = len(data) - pos
        if remaining:
            self._pending.append(data[pos:] if pos else data)
        self._pending_size = remaining
        self._needed = needed - pos
        return events

    def _parse(self, buf: bytes) -> tuple[list[Packet], int, int]:
        """Decode the complete packets at the start of ``buf``.

        Returns the packets, where the unparsed rest starts, and how many
        bytes of ``buf`` are needed before the next packet can be parsed.
        """
        events: list[Packet] = []
        end = len(buf)
        pos = 0
        receivable = self._receivable
        v5 = self._v5
        max_size = self.max_packet_size
        while pos < end:
            first = buf[pos]
            packet_type = first >> 4
            next_state = receivable.get(packet_type)
            if next_state is None:
                if self.state is _CONNECTING and self.role is Role.SERVER:
                    if self.auth_turn is not AuthTurn.NONE:
                        # Reading runs during an AUTH exchange: nothing may pile up.
                        self._check_during_exchange(packet_type, end - pos, max_size)
                    return events, pos, 0  # deferred until CONNACK is sent
                raise self._unexpected(packet_type)
            if pos + 1 >= end:
                return events, pos, pos + 2
            length = buf[pos + 1]
            if length < 0x80:
                body = pos + 2
            else:
                header = read_remaining_length(buf, pos + 1, end)
                if header is None:
                    return events, pos, pos + 3
                length, body = header
            stop = body + length
            if stop - pos > max_size:
                raise PacketTooLarge(
                    f"{_P(packet_type).name} of {stop - pos} bytes, "
                    f"over the maximum packet size of {max_size} bytes"
                )
            if stop > end:
                return events, pos, stop
            packet = DECODERS[packet_type](first & 0x0F, buf, body, stop, v5)
            pos = stop
            if type(packet) is Publish:
                if v5 and packet.properties is not EMPTY_PROPERTIES:
                    packet = self._received_publish(packet)
            elif next_state is not self._state or packet_type in (_CONNACK, _AUTH):
                self._received_transition(packet, next_state)
                receivable = self._receivable
                v5 = self._v5
                max_size = self.max_packet_size
                if self.state is _CLOSED:
                    events.append(packet)
                    return events, end, end  # the peer must send nothing after this
            events.append(packet)
        return events, pos, pos

    def _unexpected(self, packet_type: int) -> ProtocolError:
        name = _P(packet_type).name if packet_type else "reserved type 0"
        if self.state is State.AWAITING_CONNECT:
            return ProtocolViolation(f"{name} before CONNECT (MQTT-3.1.0-1)")
        if packet_type == _P.CONNECT:
            return ProtocolViolation("a second CONNECT (MQTT-3.1.0-2)")
        if not packet_type:
            return MalformedPacket("packet type 0 is reserved")
        return ProtocolViolation(f"{self.role.value} received {name} in state {self.state.name}")

    def _received_transition(self, packet: Packet, next_state: State) -> None:
        if isinstance(packet, Connect):
            if packet.protocol_version not in self.protocol_versions:
                raise UnsupportedProtocolVersion(
                    f"CONNECT for protocol level {packet.protocol_version.value}, "
                    f"this listener accepts {[int(v) for v in self.protocol_versions]}"
                )
            self._set_version(packet.protocol_version)
            self.connect = packet
            self.peer_max_packet_size = packet.properties.maximum_packet_size
            self.peer_topic_alias_maximum = packet.properties.topic_alias_maximum or 0
            self._alias_out_max = min(self.topic_aliases_out, self.peer_topic_alias_maximum)
            if packet.properties.authentication_method is not None:
                self.auth_turn = AuthTurn.SERVER
        elif isinstance(packet, Auth):
            if self.role is Role.SERVER:
                self._received_auth(packet)
        elif isinstance(packet, Connack):
            if packet.reason_code.is_failure:
                next_state = _CLOSED
            self.peer_max_packet_size = packet.properties.maximum_packet_size
            self.peer_topic_alias_maximum = packet.properties.topic_alias_maximum or 0
            self._alias_out_max = min(self.topic_aliases_out, self.peer_topic_alias_maximum)
        elif isinstance(packet, Disconnect) and self.role is Role.CLIENT and not self._v5:
            raise ProtocolViolation("DISCONNECT from an MQTT 3.1.1 server")
        self.state = next_state

    def _received_auth(self, packet: Auth) -> None:
        """Check a client's AUTH against the exchange (see the module docstring)."""
        assert self.connect is not None
        method = self.connect.properties.authentication_method
        if method is None:
            raise ProtocolViolation(
                "AUTH from a client whose CONNECT had no Authentication Method (MQTT-4.12.0-7)"
            )
        if packet.properties.authentication_method != method:
            raise ProtocolViolation(
                f"AUTH with Authentication Method {packet.properties.authentication_method!r}, "
                f"the CONNECT's was {method!r} (MQTT-4.12.0-5)"
            )
        code = packet.reason_code
        answer = code is ReasonCode.CONTINUE_AUTHENTICATION and self.auth_turn is AuthTurn.CLIENT
        start = (
            code is ReasonCode.RE_AUTHENTICATE
            and self.state is _CONNECTED
            and self.auth_turn is AuthTurn.NONE
        )
        if answer or start:
            self.auth_turn = AuthTurn.SERVER
        else:
            raise ProtocolViolation(
                f"AUTH {code:#04x} in state {self.state.name} when the turn is "
                f"{self.auth_turn.value}'s (v5 4.12)"
            )

    def _sent_auth(self, packet: Auth | Connack) -> None:
        """Check the server's AUTH or CONNACK against the exchange; nothing changes on error."""
        assert self.connect is not None
        method = self.connect.properties.authentication_method
        if isinstance(packet, Connack):
            if packet.reason_code.is_failure:
                return
            given = packet.properties.authentication_method
            if given != method:
                raise LocalProtocolError(
                    f"CONNACK with Authentication Method {given!r}, "
                    f"the CONNECT's was {method!r} (v5 3.2.2.3.17)"
                )
            if self.auth_turn is AuthTurn.CLIENT:
                raise LocalProtocolError("CONNACK while the client's AUTH is awaited")
            return
        if method is None or packet.properties.authentication_method != method:
            raise LocalProtocolError(
                f"AUTH with Authentication Method {packet.properties.authentication_method!r}, "
                f"the CONNECT's was {method!r} (MQTT-4.12.0-5, -6)"
            )
        code = packet.reason_code
        if self.auth_turn is not AuthTurn.SERVER or code not in (
            ReasonCode.CONTINUE_AUTHENTICATION,
            ReasonCode.SUCCESS,
        ):
            raise LocalProtocolError(
                f"AUTH {code:#04x} when the turn is {self.auth_turn.value}'s (v5 4.12)"
            )
        if code is ReasonCode.SUCCESS and self.state is not _CONNECTED:
            raise LocalProtocolError("AUTH 0x00 before CONNACK: accept with CONNACK (v5 4.12)")

    def _received_publish(self, packet: Publish) -> Publish:
        """Resolve a v5 PUBLISH's Topic Alias; refuse a client's Subscription Identifier."""
        properties = packet.properties
        if properties.subscription_identifiers and self.role is Role.SERVER:
            raise ProtocolViolation("PUBLISH from a client with a Subscription Identifier")
        alias = properties.topic_alias
        if alias is None:
            return packet
        if alias > self.topic_alias_maximum:
            raise TopicAliasInvalid(
                f"Topic Alias {alias}, over the Topic Alias Maximum {self.topic_alias_maximum}"
            )
        topic = packet.topic
        aliases = self._topic_aliases
        if topic:
            if aliases is None:
                aliases = self._topic_aliases = {}
            aliases[alias] = topic
        else:
            topic = aliases.get(alias, "") if aliases is not None else ""
            if not topic:
                raise ProtocolViolation(f"PUBLISH with Topic Alias {alias}, which has no topic")
        return replace(packet, topic=topic, properties=replace(properties, topic_alias=None))

    def _fail(self, error: ProtocolError, buf: bytes) -> None:
        """Enter ERROR and fill in the error's answer for this version and state.

        Before CONNECT is decoded the version is unknown: it is read from the
        start of ``buf`` (the CONNECT is the stream's first packet), so that a
        broken v5 CONNECT is still answered with a v5 CONNACK.
        """
        version = self.protocol_version
        answer: Connack | Disconnect | None = None
        if self.role is Role.SERVER and self.state in (State.AWAITING_CONNECT, _CONNECTING):
            if version is None and len(buf) > 1 and buf[0] >> 4 == _P.CONNECT:
                header = read_remaining_length(buf, 1, len(buf))
                if header is not None:
                    version = connect_protocol_version(buf, header[1], len(buf))
            code = error.reason_code
            if version is ProtocolVersion.V5:
                if code not in REASON_CODES_BY_PACKET[_P.CONNACK]:
                    code = ReasonCode.PROTOCOL_ERROR
                answer = Connack(reason_code=code)
            elif error.return_code is not None:
                version = ProtocolVersion.V311
                answer = Connack(reason_code=code)
        elif self._v5 and self.state in (_CONNECTING, _CONNECTED):
            code = error.reason_code
            if code not in REASON_CODES_BY_PACKET[_P.DISCONNECT]:
                code = ReasonCode.PROTOCOL_ERROR
            answer = Disconnect(code)
        error.answer = answer
        if answer is not None and version is not None:
            error.data_to_send = encode(answer, version)
        self.state = State.ERROR
        self._error = error
        self._pending.clear()

    # -- Sending --------------------------------------------------------------------

    def send(self, packet: Packet) -> bytes:
        """The bytes to write for ``packet``, in the connection's protocol version.

        Raises:
            LocalProtocolError: the packet is not allowed in this state or
                version, or a value cannot be encoded; nothing changed.
            OutgoingPacketTooLarge: it exceeds the peer's Maximum Packet Size.
        """
        packet_type = packet.type
        next_state = self._sendable.get(packet_type)
        if next_state is None:
            raise LocalProtocolError(
                f"{self.role.value} cannot send {packet_type.name} in state {self.state.name}"
            )
        if isinstance(packet, Connect):
            version = packet.protocol_version
        else:
            # The table lets nothing but CONNECT be sent before the version is known.
            assert self.protocol_version is not None
            version = self.protocol_version
        if (
            packet_type == _DISCONNECT
            and self.role is Role.SERVER
            and version is ProtocolVersion.V311
        ):
            raise LocalProtocolError("an MQTT 3.1.1 server closes the connection, no DISCONNECT")
        new_alias = 0
        if type(packet) is Publish:
            if self._alias_out_max:
                new_topic = packet.topic
                packet, new_alias = self._alias_publish(packet)
            else:
                alias = packet.properties.topic_alias
                if alias is not None and not 0 < alias <= self.peer_topic_alias_maximum:
                    raise LocalProtocolError(
                        f"Topic Alias {alias}, the peer accepts 1-{self.peer_topic_alias_maximum}"
                    )
        data = encode(packet, version)
        if new_alias and self._too_large(data):
            # Defining the alias takes 3 bytes more: the plain form may still fit.
            new_alias = 0
            assert isinstance(packet, Publish)  # only a PUBLISH defines an alias
            packet = replace(packet, properties=replace(packet.properties, topic_alias=None))
            data = encode(packet, version)
        self._check_size(_NAMES[packet_type], data)
        if new_alias:
            # Only now: the peer learns the mapping from exactly these bytes.
            self._out_aliases[new_topic] = new_alias
        if next_state is not self._state or packet_type in (_CONNACK, _AUTH):
            if self.role is Role.SERVER and isinstance(packet, Auth | Connack):
                self._sent_auth(packet)
            self._sent_transition(packet, next_state)
        return data

    def _alias_publish(self, packet: Publish) -> tuple[Publish, int]:
        """``packet`` as sent with outbound aliases on, and the alias it would define (or 0).

        See the module docstring; :meth:`send` records the new alias once
        the bytes are known to go out.
        """
        topic = packet.topic
        properties = packet.properties
        alias = self._out_aliases.get(topic)
        if alias is not None:
            if packet.dup:  # a retransmission: the full topic, with the same mapping
                return replace(packet, properties=replace(properties, topic_alias=alias)), 0
            return replace(packet, topic="", properties=replace(properties, topic_alias=alias)), 0
        if topic and len(self._out_aliases) < self._alias_out_max:
            alias = len(self._out_aliases) + 1  # never reassigned: 1, 2, ... in order
            return replace(packet, properties=replace(properties, topic_alias=alias)), alias
        if properties.topic_alias is not None:
            return replace(packet, properties=replace(properties, topic_alias=None)), 0
        return packet, 0

    def send_plain_publish(self, topic: str, payload: bytes, retain: bool = False) -> bytes:
        """``send(Publish(topic, payload, retain=retain))``: QoS 0, no properties.

        The fan-out path: the bytes are shared by every connection of the
        process that sends this message (:func:`~.writer.encode_plain_publish`),
        except when this connection names topics by alias: those bytes are
        its own (:func:`~.writer.encode_aliased_publish`).
        """
        if self._state is not _CONNECTED:
            return self.send(Publish(topic, payload, retain=retain))
        if self._alias_out_max:
            return self._send_aliased_plain_publish(topic, payload, retain)
        try:
            data = encode_plain_publish(topic, payload, retain, self._v5)
        except (OverflowError, UnicodeEncodeError) as exc:
            raise LocalProtocolError(f"Publish: a value cannot be encoded: {exc}") from None
        self._check_size("PUBLISH", data)
        return data

    def _send_aliased_plain_publish(self, topic: str, payload: bytes, retain: bool) -> bytes:
        """:meth:`send_plain_publish` when this connection names topics by alias."""
        aliases = self._out_aliases
        alias = aliases.get(topic)
        new_alias = 0
        try:
            if alias is not None:
                data = encode_aliased_publish("", alias, payload, retain)
            elif topic and len(aliases) < self._alias_out_max:
                new_alias = len(aliases) + 1  # never reassigned: 1, 2, ... in order
                data = encode_aliased_publish(topic, new_alias, payload, retain)
            else:  # all aliases taken: the full topic, and the shared bytes will do
                data = encode_plain_publish(topic, payload, retain, True)
            if new_alias and self._too_large(data):
                # Defining the alias takes 3 bytes more: the plain form may still fit.
                new_alias = 0
                data = encode_plain_publish(topic, payload, retain, True)
        except (OverflowError, UnicodeEncodeError) as exc:
            raise LocalProtocolError(f"Publish: a value cannot be encoded: {exc}") from None
        self._check_size("PUBLISH", data)
        if new_alias:
            aliases[topic] = new_alias  # only now: the peer learns it from these bytes
        return data

    def _too_large(self, data: bytes) -> bool:
        limit = self.peer_max_packet_size
        return limit is not None and len(data) > limit

    @staticmethod
    def _check_during_exchange(packet_type: int, pending: int, max_size: int) -> None:
        """Before CONNACK, a client authenticating with a method sends only AUTH or DISCONNECT.

        MQTT-3.1.2-30: anything else is a Protocol Error; an AUTH out of turn
        too. A DISCONNECT waits for the CONNACK, within one packet's size.
        """
        if packet_type != _P.DISCONNECT:
            raise ProtocolViolation(
                f"{_P(packet_type).name} before CONNACK from a client authenticating "
                "with a method (MQTT-3.1.2-30)"
            )
        if pending > max_size:
            raise PacketTooLarge(
                f"{pending} bytes pending before CONNACK, "
                f"over the maximum packet size of {max_size} bytes"
            )

    def _check_size(self, what: str, data: bytes) -> None:
        """Refuse to send ``data`` over the peer's Maximum Packet Size."""
        limit = self.peer_max_packet_size
        if limit is not None and len(data) > limit:
            raise OutgoingPacketTooLarge(
                f"{what} of {len(data)} bytes, over the peer's maximum of {limit}",
                len(data),
                limit,
            )

    def send_puback(self, packet_id: int) -> bytes:
        """``send(Puback(packet_id))``: a successful QoS 1 acknowledgement.

        Once per QoS 1 message received: its four bytes without building the
        packet (both versions: v5 leaves out a Success reason code, 3.4.2.1).
        """
        limit = self.peer_max_packet_size
        if self._state is not _CONNECTED or (limit is not None and limit < 4):
            return self.send(Puback(packet_id))
        return _PUBACK + packet_id.to_bytes(2, "big")

    def _sent_transition(self, packet: Packet, next_state: State) -> None:
        if isinstance(packet, Connect | Connack):
            if isinstance(packet, Connect):
                self._set_version(packet.protocol_version)
                self.connect = packet
            elif packet.reason_code.is_failure:
                next_state = _CLOSED
            else:
                self.auth_turn = AuthTurn.NONE
            properties = packet.properties
            if properties.maximum_packet_size is not None:
                self.max_packet_size = properties.maximum_packet_size
            self.topic_alias_maximum = properties.topic_alias_maximum or 0
        elif isinstance(packet, Auth) and self.role is Role.SERVER:
            continuing = packet.reason_code is ReasonCode.CONTINUE_AUTHENTICATION
            self.auth_turn = AuthTurn.CLIENT if continuing else AuthTurn.NONE
        self.state = next_state

    def _set_version(self, version: ProtocolVersion) -> None:
        self.protocol_version = version
        self._v5 = version is ProtocolVersion.V5
