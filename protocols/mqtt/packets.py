"""The MQTT control packets as plain data: one frozen dataclass per packet.

Named as in the specs (section 3 of 3.1.1 and 5.0). The same classes serve
both versions: fields that only MQTT 5.0 has (``properties``, the reason
codes of acknowledgements and DISCONNECT) default to what a 3.1.1 packet
means, and the writer leaves them out when encoding for a 3.1.1 peer, so a
broker can forward one :class:`Publish` to clients of either version.

Packets validate nothing when constructed: the reader checks every rule of
the spec on what arrives, the writer checks what it must on what leaves, and
nothing is checked twice on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .codes import PacketType, ProtocolVersion, QoS, ReasonCode, RetainHandling
from .properties import EMPTY_PROPERTIES, Properties


@dataclass(frozen=True, slots=True)
class Will:
    """The Will Message of a CONNECT (3.1.2.5 - 3.1.2.7, 3.1.3.2 - 3.1.3.4)."""

    topic: str
    payload: bytes
    qos: QoS = QoS.AT_MOST_ONCE
    retain: bool = False
    #: Will Properties (v5 3.1.3.2): will delay, message expiry, content type...
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT: the client's first packet (3.1).

    ``clean_start`` is 3.1.1's Clean Session flag under its v5 name. An empty
    ``client_id`` asks the server to assign one (3.1.1 only with
    ``clean_start``). ``password`` is binary data in both versions.
    """

    type = PacketType.CONNECT
    client_id: str
    protocol_version: ProtocolVersion = ProtocolVersion.V5
    clean_start: bool = True
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Connack:
    """CONNACK: the server's answer to CONNECT (3.2).

    ``reason_code`` is the v5 Reason Code; for a 3.1.1 client the writer
    sends :func:`~protocols.mqtt.codes.connack_return_code` of it, and the
    reader maps a 3.1.1 return code back to its v5 equivalent.
    """

    type = PacketType.CONNACK
    session_present: bool = False
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH: an application message, either direction (3.3).

    ``packet_id`` is None for QoS 0 and 1-65535 otherwise. A received v5
    PUBLISH that used a Topic Alias arrives with ``topic`` resolved and
    ``properties.topic_alias`` cleared: aliases belong to one connection.
    """

    type = PacketType.PUBLISH
    topic: str
    payload: bytes = b""
    qos: QoS = QoS.AT_MOST_ONCE
    retain: bool = False
    packet_id: int | None = None
    dup: bool = False
    properties: Properties = EMPTY_PROPERTIES


class _UnfrozenPublish:
    """:class:`Publish`'s slots without the frozen ``__setattr__``: see :func:`new_publish`."""

    __slots__ = Publish.__slots__  # the same layout, so an instance can become a Publish


_new_object = object.__new__


def new_publish(
    topic: str,
    payload: bytes,
    qos: QoS,
    retain: bool,
    packet_id: int | None,
    dup: bool,
    properties: Properties,
) -> Publish:
    """``Publish(topic, payload, qos, retain, packet_id, dup, properties)``, in a third of the time.

    A frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, and even its slots' own ``__set__`` is a call; a
    twin class with the same slots is set by the interpreter's specialized
    slot stores, then made a :class:`Publish`. For the per-message paths
    (the reader, the server's outbound QoS 1/2), every field given.
    """
    publish: Any = _new_object(_UnfrozenPublish)
    publish.topic = topic
    publish.payload = payload
    publish.qos = qos
    publish.retain = retain
    publish.packet_id = packet_id
    publish.dup = dup
    publish.properties = properties
    publish.__class__ = Publish  # allowed: same slots, same layout
    made: Publish = publish
    return made


@dataclass(frozen=True, slots=True)
class Puback:
    """PUBACK: QoS 1 acknowledgement (3.4)."""

    type = PacketType.PUBACK
    packet_id: int
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pubrec:
    """PUBREC: QoS 2 delivery, part 1 (3.5)."""

    type = PacketType.PUBREC
    packet_id: int
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pubrel:
    """PUBREL: QoS 2 delivery, part 2 (3.6)."""

    type = PacketType.PUBREL
    packet_id: int
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pubcomp:
    """PUBCOMP: QoS 2 delivery, part 3 (3.7)."""

    type = PacketType.PUBCOMP
    packet_id: int
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


class _UnfrozenAck:
    """The slots the four acknowledgements share, without the frozen ``__setattr__``."""

    __slots__ = Puback.__slots__  # Pubrec's, Pubrel's and Pubcomp's too


_SUCCESS = ReasonCode.SUCCESS  # bound once: the enum's lookup runs Python code on 3.11


def new_ack(
    cls: type[Puback | Pubrec | Pubrel | Pubcomp], packet_id: int
) -> Puback | Pubrec | Pubrel | Pubcomp:
    """``cls(packet_id)``, a successful acknowledgement, made as :func:`new_publish` makes one.

    For the reader: a QoS 1 message sent is a PUBACK received.
    """
    ack: Any = _new_object(_UnfrozenAck)
    ack.packet_id = packet_id
    ack.reason_code = _SUCCESS
    ack.properties = EMPTY_PROPERTIES
    ack.__class__ = cls  # allowed: the four have the same slots, the same layout
    made: Puback | Pubrec | Pubrel | Pubcomp = ack
    return made


@dataclass(frozen=True, slots=True)
class Subscription:
    """One topic filter of a SUBSCRIBE and its Subscription Options (v5 3.8.3.1).

    ``topic_filter`` is as on the wire, ``$share/group/filter`` included
    (see :func:`~protocols.mqtt.topics.parse_shared_subscription`). 3.1.1
    has only ``qos``; the other options keep their defaults there.
    """

    topic_filter: str
    qos: QoS = QoS.AT_MOST_ONCE
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: RetainHandling = RetainHandling.SEND_ON_SUBSCRIBE


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE: one or more subscriptions (3.8)."""

    type = PacketType.SUBSCRIBE
    packet_id: int
    subscriptions: tuple[Subscription, ...]
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Suback:
    """SUBACK: one reason code per subscription, in order (3.9).

    Use ``GRANTED_QOS_0/1/2`` or a failure code; a 3.1.1 client receives
    every failure as 0x80.
    """

    type = PacketType.SUBACK
    packet_id: int
    reason_codes: tuple[ReasonCode, ...]
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """UNSUBSCRIBE: one or more topic filters (3.10)."""

    type = PacketType.UNSUBSCRIBE
    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsuback:
    """UNSUBACK (3.11): in v5 one reason code per filter; 3.1.1 has none (``()``)."""

    type = PacketType.UNSUBACK
    packet_id: int
    reason_codes: tuple[ReasonCode, ...] = ()
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pingreq:
    """PINGREQ: the client is alive (3.12)."""

    type = PacketType.PINGREQ


@dataclass(frozen=True, slots=True)
class Pingresp:
    """PINGRESP: the server is alive (3.13)."""

    type = PacketType.PINGRESP


@dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT (3.14): from the client in 3.1.1; from either side in v5, with a reason."""

    type = PacketType.DISCONNECT
    reason_code: ReasonCode = ReasonCode.NORMAL_DISCONNECTION
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH: an enhanced authentication exchange, v5 only (3.15)."""

    type = PacketType.AUTH
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


#: Any MQTT control packet.
Packet = (
    Connect
    | Connack
    | Publish
    | Puback
    | Pubrec
    | Pubrel
    | Pubcomp
    | Subscribe
    | Suback
    | Unsubscribe
    | Unsuback
    | Pingreq
    | Pingresp
    | Disconnect
    | Auth
)
