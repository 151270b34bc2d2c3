"""MQTT 5.0 properties: one typed, frozen object, and the table that drives its codec.

Why a typed :class:`Properties` object rather than a dict keyed by
:class:`~protocols.mqtt.codes.PropertyId`: every property has one fixed
type (an int, a string, bytes, a flag), so typed attributes let mypy check
``props.session_expiry_interval`` and its ``int | None`` where a dict would
hand out ``object``; absent is ``None`` (``()`` for the two repeatable ones),
never a missing key; and the object is frozen and hashable like the packets
that hold it. Packets without properties, by far the most common case
(every 3.1.1 packet, most v5 PUBLISH), share :data:`EMPTY_PROPERTIES`, so the
hot path neither builds nor encodes anything for them.

The table :data:`PROPERTY_SPECS` (v5 section 2.2.2.2) gives each identifier
its attribute name and wire type, and :data:`ALLOWED_PROPERTIES` which
packet may carry it; ``fields.py`` and ``writer.py`` are driven by them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import NamedTuple

from .codes import PacketType, PropertyId, QoS


class WireType(enum.Enum):
    """Data representations of v5 section 1.5, as used by properties."""

    BYTE = "byte"  # 0 or 1 here, except Maximum QoS: a flag -> bool, QoS -> QoS
    TWO_BYTE_INTEGER = "two_byte_integer"
    FOUR_BYTE_INTEGER = "four_byte_integer"
    VARIABLE_BYTE_INTEGER = "variable_byte_integer"
    UTF8_STRING = "utf8_string"
    BINARY_DATA = "binary_data"
    UTF8_STRING_PAIR = "utf8_string_pair"


class PropertySpec(NamedTuple):
    """One row of the property table: attribute of :class:`Properties`, and wire type."""

    name: str
    wire_type: WireType


@dataclass(frozen=True, slots=True, repr=False)
class Properties:
    """The properties of one MQTT 5.0 packet (or of a will); ``None`` when absent.

    Byte properties whose only values are 0 and 1 are ``bool``. Two
    properties may repeat: ``user_properties`` keeps every (name, value)
    pair in wire order, duplicates included (v5 3.1.2.11.8), and
    ``subscription_identifiers`` holds the identifiers of a PUBLISH (several
    when overlapping subscriptions matched) or the one of a SUBSCRIBE.
    """

    payload_format_indicator: bool | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: bool | None = None
    will_delay_interval: int | None = None
    request_response_information: bool | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: QoS | None = None
    retain_available: bool | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: bool | None = None
    subscription_identifier_available: bool | None = None
    shared_subscription_available: bool | None = None

    def __bool__(self) -> bool:
        """True when at least one property is present."""
        return self != EMPTY_PROPERTIES

    def __repr__(self) -> str:
        present = (
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) not in (None, ())
        )
        return f"Properties({', '.join(present)})"


#: The properties of a packet that has none; shared, compare with ``is``.
EMPTY_PROPERTIES = Properties()

_I = PropertyId
_T = WireType

#: Every property: its :class:`Properties` attribute and wire type (v5 2.2.2.2).
PROPERTY_SPECS: dict[PropertyId, PropertySpec] = {
    _I.PAYLOAD_FORMAT_INDICATOR: PropertySpec("payload_format_indicator", _T.BYTE),
    _I.MESSAGE_EXPIRY_INTERVAL: PropertySpec("message_expiry_interval", _T.FOUR_BYTE_INTEGER),
    _I.CONTENT_TYPE: PropertySpec("content_type", _T.UTF8_STRING),
    _I.RESPONSE_TOPIC: PropertySpec("response_topic", _T.UTF8_STRING),
    _I.CORRELATION_DATA: PropertySpec("correlation_data", _T.BINARY_DATA),
    _I.SUBSCRIPTION_IDENTIFIER: PropertySpec("subscription_identifiers", _T.VARIABLE_BYTE_INTEGER),
    _I.SESSION_EXPIRY_INTERVAL: PropertySpec("session_expiry_interval", _T.FOUR_BYTE_INTEGER),
    _I.ASSIGNED_CLIENT_IDENTIFIER: PropertySpec("assigned_client_identifier", _T.UTF8_STRING),
    _I.SERVER_KEEP_ALIVE: PropertySpec("server_keep_alive", _T.TWO_BYTE_INTEGER),
    _I.AUTHENTICATION_METHOD: PropertySpec("authentication_method", _T.UTF8_STRING),
    _I.AUTHENTICATION_DATA: PropertySpec("authentication_data", _T.BINARY_DATA),
    _I.REQUEST_PROBLEM_INFORMATION: PropertySpec("request_problem_information", _T.BYTE),
    _I.WILL_DELAY_INTERVAL: PropertySpec("will_delay_interval", _T.FOUR_BYTE_INTEGER),
    _I.REQUEST_RESPONSE_INFORMATION: PropertySpec("request_response_information", _T.BYTE),
    _I.RESPONSE_INFORMATION: PropertySpec("response_information", _T.UTF8_STRING),
    _I.SERVER_REFERENCE: PropertySpec("server_reference", _T.UTF8_STRING),
    _I.REASON_STRING: PropertySpec("reason_string", _T.UTF8_STRING),
    _I.RECEIVE_MAXIMUM: PropertySpec("receive_maximum", _T.TWO_BYTE_INTEGER),
    _I.TOPIC_ALIAS_MAXIMUM: PropertySpec("topic_alias_maximum", _T.TWO_BYTE_INTEGER),
    _I.TOPIC_ALIAS: PropertySpec("topic_alias", _T.TWO_BYTE_INTEGER),
    _I.MAXIMUM_QOS: PropertySpec("maximum_qos", _T.BYTE),
    _I.RETAIN_AVAILABLE: PropertySpec("retain_available", _T.BYTE),
    _I.USER_PROPERTY: PropertySpec("user_properties", _T.UTF8_STRING_PAIR),
    _I.MAXIMUM_PACKET_SIZE: PropertySpec("maximum_packet_size", _T.FOUR_BYTE_INTEGER),
    _I.WILDCARD_SUBSCRIPTION_AVAILABLE: PropertySpec("wildcard_subscription_available", _T.BYTE),
    _I.SUBSCRIPTION_IDENTIFIER_AVAILABLE: PropertySpec(
        "subscription_identifier_available", _T.BYTE
    ),
    _I.SHARED_SUBSCRIPTION_AVAILABLE: PropertySpec("shared_subscription_available", _T.BYTE),
}

#: Properties whose values must not be zero: Protocol Error when they are
#: (v5 3.1.2.11.3 Receive Maximum, 3.1.2.11.4 Maximum Packet Size,
#: 3.8.2.1.2 Subscription Identifier). Topic Alias 0 is its own error (0x94).
NONZERO_PROPERTIES = frozenset(
    (_I.RECEIVE_MAXIMUM, _I.MAXIMUM_PACKET_SIZE, _I.SUBSCRIPTION_IDENTIFIER)
)

#: Key of :data:`ALLOWED_PROPERTIES` for the will properties of a CONNECT.
WILL = "will"

_USER = (_I.USER_PROPERTY,)
_ACK = (_I.REASON_STRING, _I.USER_PROPERTY)

#: Which properties each packet may carry (v5 2.2.2.2, last column). Any
#: other identifier makes the packet malformed.
ALLOWED_PROPERTIES: dict[PacketType | str, frozenset[PropertyId]] = {
    PacketType.CONNECT: frozenset(
        (
            _I.SESSION_EXPIRY_INTERVAL,
            _I.RECEIVE_MAXIMUM,
            _I.MAXIMUM_PACKET_SIZE,
            _I.TOPIC_ALIAS_MAXIMUM,
            _I.REQUEST_RESPONSE_INFORMATION,
            _I.REQUEST_PROBLEM_INFORMATION,
            _I.USER_PROPERTY,
            _I.AUTHENTICATION_METHOD,
            _I.AUTHENTICATION_DATA,
        )
    ),
    WILL: frozenset(
        (
            _I.WILL_DELAY_INTERVAL,
            _I.PAYLOAD_FORMAT_INDICATOR,
            _I.MESSAGE_EXPIRY_INTERVAL,
            _I.CONTENT_TYPE,
            _I.RESPONSE_TOPIC,
            _I.CORRELATION_DATA,
            _I.USER_PROPERTY,
        )
    ),
    PacketType.CONNACK: frozenset(
        (
            _I.SESSION_EXPIRY_INTERVAL,
            _I.RECEIVE_MAXIMUM,
            _I.MAXIMUM_QOS,
            _I.RETAIN_AVAILABLE,
            _I.MAXIMUM_PACKET_SIZE,
            _I.ASSIGNED_CLIENT_IDENTIFIER,
            _I.TOPIC_ALIAS_MAXIMUM,
            _I.REASON_STRING,
            _I.USER_PROPERTY,
            _I.WILDCARD_SUBSCRIPTION_AVAILABLE,
            _I.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            _I.SHARED_SUBSCRIPTION_AVAILABLE,
            _I.SERVER_KEEP_ALIVE,
            _I.RESPONSE_INFORMATION,
            _I.SERVER_REFERENCE,
            _I.AUTHENTICATION_METHOD,
            _I.AUTHENTICATION_DATA,
        )
    ),
    PacketType.PUBLISH: frozenset(
        (
            _I.PAYLOAD_FORMAT_INDICATOR,
            _I.MESSAGE_EXPIRY_INTERVAL,
            _I.TOPIC_ALIAS,
            _I.RESPONSE_TOPIC,
            _I.CORRELATION_DATA,
            _I.USER_PROPERTY,
            _I.SUBSCRIPTION_IDENTIFIER,
            _I.CONTENT_TYPE,
        )
    ),
    PacketType.PUBACK: frozenset(_ACK),
    PacketType.PUBREC: frozenset(_ACK),
    PacketType.PUBREL: frozenset(_ACK),
    PacketType.PUBCOMP: frozenset(_ACK),
    PacketType.SUBSCRIBE: frozenset((_I.SUBSCRIPTION_IDENTIFIER, *_USER)),
    PacketType.SUBACK: frozenset(_ACK),
    PacketType.UNSUBSCRIBE: frozenset(_USER),
    PacketType.UNSUBACK: frozenset(_ACK),
    PacketType.DISCONNECT: frozenset((_I.SESSION_EXPIRY_INTERVAL, _I.SERVER_REFERENCE, *_ACK)),
    PacketType.AUTH: frozenset((_I.AUTHENTICATION_METHOD, _I.AUTHENTICATION_DATA, *_ACK)),
}

assert {spec.name for spec in PROPERTY_SPECS.values()} == {f.name for f in fields(Properties)}
