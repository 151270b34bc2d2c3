"""Encoders: one function per control packet, each next to its length computation.

``encode(packet, version) -> bytes`` is the whole API; :data:`ENCODERS`
maps each packet class to ``encoder(packet, v5) -> bytes``. For a 3.1.1
peer the MQTT 5.0-only fields (properties, reason codes of acknowledgements
and DISCONNECT) are left out, so one packet can be sent to peers of either
version; CONNACK and SUBACK codes become their 3.1.1 return codes.

The writer trusts the packet's types (mypy checks them) but not its values:
a string with U+0000, a wildcard in a PUBLISH topic, a Packet Identifier of
0, a number too large for its field or a packet over the 268,435,455-byte
Remaining Length raise :class:`~protocols.mqtt.errors.LocalProtocolError`
rather than putting a packet on the wire that the peer would call malformed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .codes import (
    SUBACK_FAILURE_V311,
    PacketType,
    PropertyId,
    ProtocolVersion,
    ReasonCode,
    connack_return_code,
)
from .errors import LocalProtocolError
from .fields import MAX_REMAINING_LENGTH
from .packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from .properties import EMPTY_PROPERTIES, PROPERTY_SPECS, Properties, WireType

_ONE_BYTE = [bytes((value,)) for value in range(256)]
_V5 = ProtocolVersion.V5  # bound once: the enum's lookup runs Python code on 3.11, per packet
_NO_PROPERTIES = b"\x00"


# -- Data representations (section 1.5) ---------------------------------------------


def encode_remaining_length(value: int) -> bytes:
    """The Variable Byte Integer for ``value`` (1.5.5): 1 to 4 bytes."""
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if value > MAX_REMAINING_LENGTH:
        raise LocalProtocolError(f"{value} is over the largest Variable Byte Integer")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _binary(data: bytes, what: str) -> bytes:
    if len(data) > 0xFFFF:
        raise LocalProtocolError(f"{what} of {len(data)} bytes, over 65535")
    return len(data).to_bytes(2, "big") + data


def _string(text: str, what: str) -> bytes:
    if "\x00" in text:
        raise LocalProtocolError(f"{what} {text!r} contains U+0000")
    return _binary(text.encode(), what)


def _packet(first_byte: int, body: bytes) -> bytes:
    """Fixed header + ``body``: the length computation every packet shares."""
    return _ONE_BYTE[first_byte] + encode_remaining_length(len(body)) + body


def _check_packet_id(packet_id: int, packet_type: PacketType) -> bytes:
    if not 0 < packet_id <= 0xFFFF:
        raise LocalProtocolError(f"{packet_type.name} Packet Identifier {packet_id}, not 1-65535")
    return packet_id.to_bytes(2, "big")


# -- Properties (v5 2.2.2) ----------------------------------------------------------

_SPECS = [(pid.value, name, wire_type) for pid, (name, wire_type) in PROPERTY_SPECS.items()]


def encode_properties(properties: Properties) -> bytes:
    """Property Length + properties, in identifier order; ``b"\\x00"`` when there are none."""
    if properties is EMPTY_PROPERTIES:
        return _NO_PROPERTIES
    out = bytearray()
    for pid, name, wire_type in _SPECS:
        value: Any = getattr(properties, name)
        if value is None or value == ():
            continue
        if pid == PropertyId.USER_PROPERTY:
            for key, item in value:
                out.append(pid)
                out += _string(key, "user property name") + _string(item, "user property value")
            continue
        if pid == PropertyId.SUBSCRIPTION_IDENTIFIER:
            for identifier in value:
                out.append(pid)
                out += encode_remaining_length(identifier)
            continue
        out.append(pid)
        if wire_type is WireType.BYTE:
            out.append(int(value))
        elif wire_type is WireType.TWO_BYTE_INTEGER:
            out += value.to_bytes(2, "big")
        elif wire_type is WireType.FOUR_BYTE_INTEGER:
            out += value.to_bytes(4, "big")
        elif wire_type is WireType.UTF8_STRING:
            out += _string(value, name)
        else:
            out += _binary(value, name)
    return encode_remaining_length(len(out)) + out


# -- CONNECT and CONNACK (3.1, 3.2) -------------------------------------------------


def encode_connect(packet: Connect, v5: bool) -> bytes:
    v5 = packet.protocol_version == ProtocolVersion.V5
    will = packet.will
    flags = 0x02 if packet.clean_start else 0
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if packet.password is not None:
        if packet.username is None and not v5:
            raise LocalProtocolError("MQTT 3.1.1 CONNECT with a password needs a user name")
        flags |= 0x40
    if packet.username is not None:
        flags |= 0x80
    parts = [
        b"\x00\x04MQTT",
        _ONE_BYTE[packet.protocol_version],
        _ONE_BYTE[flags],
        packet.keep_alive.to_bytes(2, "big"),
    ]
    if v5:
        parts.append(encode_properties(packet.properties))
    parts.append(_string(packet.client_id, "client identifier"))
    if will is not None:
        if v5:
            parts.append(encode_properties(will.properties))
        parts.append(_topic_name(will.topic, "will topic"))
        parts.append(_binary(will.payload, "will payload"))
    if packet.username is not None:
        parts.append(_string(packet.username, "user name"))
    if packet.password is not None:
        parts.append(_binary(packet.password, "password"))
    return _packet(0x10, b"".join(parts))


def encode_connack(packet: Connack, v5: bool) -> bytes:
    flags = _ONE_BYTE[1 if packet.session_present else 0]
    if not v5:
        return _packet(0x20, flags + _ONE_BYTE[connack_return_code(packet.reason_code)])
    body = flags + _ONE_BYTE[packet.reason_code] + encode_properties(packet.properties)
    return _packet(0x20, body)


# -- PUBLISH and its acknowledgements (3.3 - 3.7) -----------------------------------


def _topic_name(topic: str, what: str) -> bytes:
    if "+" in topic or "#" in topic:
        raise LocalProtocolError(f"{what} {topic!r} contains a wildcard")
    return _string(topic, what)


def encode_publish(packet: Publish, v5: bool) -> bytes:
    """PUBLISH, the hot path: one join, the length computed from the parts."""
    topic = packet.topic
    if "+" in topic or "#" in topic or "\x00" in topic:
        raise LocalProtocolError(f"PUBLISH topic {topic!r} contains a wildcard or U+0000")
    if not topic and (not v5 or packet.properties.topic_alias is None):
        raise LocalProtocolError("PUBLISH with an empty topic needs a Topic Alias (MQTT 5.0)")
    encoded_topic = topic.encode()
    qos = packet.qos
    if qos:
        packet_id = packet.packet_id
        if packet_id is None or not 0 < packet_id <= 0xFFFF:
            raise LocalProtocolError(
                f"PUBLISH QoS {qos} needs a Packet Identifier, not {packet_id}"
            )
        header = (
            len(encoded_topic).to_bytes(2, "big") + encoded_topic + packet_id.to_bytes(2, "big")
        )
    else:
        header = len(encoded_topic).to_bytes(2, "big") + encoded_topic
    if v5:
        properties = packet.properties
        header += (
            _NO_PROPERTIES if properties is EMPTY_PROPERTIES else encode_properties(properties)
        )
    payload = packet.payload
    length = len(header) + len(payload)
    first = 0x30 | (qos << 1) | (0x08 if packet.dup else 0) | (0x01 if packet.retain else 0)
    return b"".join((_ONE_BYTE[first], encode_remaining_length(length), header, payload))


#: Most entries :func:`encode_plain_publish` keeps: the messages of one burst
#: fanned out to many subscribers (each subscriber's consumer sends them in turn).
PLAIN_PUBLISH_CACHE_SIZE = 256
#: Largest payload :func:`encode_plain_publish` keeps: hashing a larger one for
#: the lookup costs about what encoding it again does.
PLAIN_PUBLISH_CACHE_MAX_PAYLOAD = 1024

_plain_publishes: dict[tuple[str, bytes, bool, bool], bytes] = {}


def encode_plain_publish(topic: str, payload: bytes, retain: bool, v5: bool) -> bytes:
    """A QoS 0 PUBLISH without properties, encoded once for every peer it goes to.

    The same bytes as ``encode_publish(Publish(topic, payload, retain=retain), v5)``;
    a message delivered to a hundred subscribers is one encoding and a hundred
    dictionary lookups (the topic's and payload's hashes are cached by Python).
    """
    if len(payload) > PLAIN_PUBLISH_CACHE_MAX_PAYLOAD:
        return _plain_publish(topic, payload, retain, v5)
    key = (topic, payload, retain, v5)
    data = _plain_publishes.get(key)
    if data is None:
        data = _plain_publish(topic, payload, retain, v5)
        if len(_plain_publishes) >= PLAIN_PUBLISH_CACHE_SIZE:
            _plain_publishes.clear()  # cheaper than evicting one by one; a burst refills it
        _plain_publishes[key] = data
    return data


def _plain_publish(topic: str, payload: bytes, retain: bool, v5: bool) -> bytes:
    """:func:`encode_publish` of a QoS 0 PUBLISH without properties, without the packet."""
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise LocalProtocolError(f"PUBLISH topic {topic!r} is empty, or has a wildcard or U+0000")
    encoded_topic = topic.encode()
    header = len(encoded_topic).to_bytes(2, "big") + encoded_topic
    if v5:
        header += _NO_PROPERTIES
    length = len(header) + len(payload)
    first = _ONE_BYTE[0x31 if retain else 0x30]
    return b"".join((first, encode_remaining_length(length), header, payload))


def encode_aliased_publish(topic: str, alias: int, payload: bytes, retain: bool) -> bytes:
    """A v5 QoS 0 PUBLISH whose only property is a Topic Alias (3.3.2.3.4).

    ``topic`` is the name the alias stands for when the peer is told the
    mapping, ``""`` once it knows it. Aliases belong to one connection, so
    these bytes are never shared or cached (:func:`encode_plain_publish` is).
    """
    if "+" in topic or "#" in topic or "\x00" in topic:
        raise LocalProtocolError(f"PUBLISH topic {topic!r} contains a wildcard or U+0000")
    encoded_topic = topic.encode()
    header = (
        len(encoded_topic).to_bytes(2, "big")
        + encoded_topic
        + _TOPIC_ALIAS_PROPERTY
        + alias.to_bytes(2, "big")
    )
    length = len(header) + len(payload)
    first = _ONE_BYTE[0x31 if retain else 0x30]
    return b"".join((first, encode_remaining_length(length), header, payload))


#: Property Length 3, then the Topic Alias identifier; its two-byte value follows.
_TOPIC_ALIAS_PROPERTY = bytes((3, PropertyId.TOPIC_ALIAS))


def _ack_encoder(packet_type: PacketType, first_byte: int) -> Callable[[Any, bool], bytes]:
    short_header = _ONE_BYTE[first_byte] + b"\x02"

    def encode_ack(packet: Puback | Pubrec | Pubrel | Pubcomp, v5: bool) -> bytes:
        packet_id = _check_packet_id(packet.packet_id, packet_type)
        if not v5 or (
            packet.reason_code is ReasonCode.SUCCESS and packet.properties is EMPTY_PROPERTIES
        ):
            return short_header + packet_id
        body = packet_id + _ONE_BYTE[packet.reason_code]
        if packet.properties is not EMPTY_PROPERTIES:
            body += encode_properties(packet.properties)
        return _packet(first_byte, body)

    encode_ack.__name__ = f"encode_{packet_type.name.lower()}"
    return encode_ack


# -- SUBSCRIBE, UNSUBSCRIBE and their acknowledgements (3.8 - 3.11) -----------------


def encode_subscribe(packet: Subscribe, v5: bool) -> bytes:
    if not packet.subscriptions:
        raise LocalProtocolError("SUBSCRIBE needs at least one subscription")
    parts = [_check_packet_id(packet.packet_id, PacketType.SUBSCRIBE)]
    if v5:
        parts.append(encode_properties(packet.properties))
    for subscription in packet.subscriptions:
        options = int(subscription.qos)
        if v5:
            options |= (
                (0x04 if subscription.no_local else 0)
                | (0x08 if subscription.retain_as_published else 0)
                | (subscription.retain_handling << 4)
            )
        parts.append(_string(subscription.topic_filter, "topic filter"))
        parts.append(_ONE_BYTE[options])
    return _packet(0x82, b"".join(parts))


def encode_suback(packet: Suback, v5: bool) -> bytes:
    body = _check_packet_id(packet.packet_id, PacketType.SUBACK)
    if v5:
        body += encode_properties(packet.properties) + bytes(packet.reason_codes)
    else:
        body += bytes(
            SUBACK_FAILURE_V311 if code >= SUBACK_FAILURE_V311 else code
            for code in packet.reason_codes
        )
    return _packet(0x90, body)


def encode_unsubscribe(packet: Unsubscribe, v5: bool) -> bytes:
    if not packet.topic_filters:
        raise LocalProtocolError("UNSUBSCRIBE needs at least one topic filter")
    parts = [_check_packet_id(packet.packet_id, PacketType.UNSUBSCRIBE)]
    if v5:
        parts.append(encode_properties(packet.properties))
    parts.extend(_string(topic_filter, "topic filter") for topic_filter in packet.topic_filters)
    return _packet(0xA2, b"".join(parts))


def encode_unsuback(packet: Unsuback, v5: bool) -> bytes:
    body = _check_packet_id(packet.packet_id, PacketType.UNSUBACK)
    if v5:
        body += encode_properties(packet.properties) + bytes(packet.reason_codes)
    return _packet(0xB0, body)


# -- PINGREQ, PINGRESP, DISCONNECT, AUTH (3.12 - 3.15) ------------------------------

_PINGREQ = b"\xc0\x00"
_PINGRESP = b"\xd0\x00"
_DISCONNECT = b"\xe0\x00"


def encode_pingreq(packet: Pingreq, v5: bool) -> bytes:
    return _PINGREQ


def encode_pingresp(packet: Pingresp, v5: bool) -> bytes:
    return _PINGRESP


def _reason_and_properties(first_byte: int, code: ReasonCode, properties: Properties) -> bytes:
    """DISCONNECT and AUTH: both may be empty, or a reason code alone (3.14.2.1, 3.15.2.1)."""
    if properties is EMPTY_PROPERTIES:
        if code is ReasonCode.SUCCESS:
            return _ONE_BYTE[first_byte] + b"\x00"
        return _packet(first_byte, _ONE_BYTE[code])
    return _packet(first_byte, _ONE_BYTE[code] + encode_properties(properties))


def encode_disconnect(packet: Disconnect, v5: bool) -> bytes:
    if not v5:
        return _DISCONNECT
    return _reason_and_properties(0xE0, packet.reason_code, packet.properties)


def encode_auth(packet: Auth, v5: bool) -> bytes:
    if not v5:
        raise LocalProtocolError("AUTH does not exist in MQTT 3.1.1")
    return _reason_and_properties(0xF0, packet.reason_code, packet.properties)


#: The encoder of each packet class.
ENCODERS: dict[type[Any], Callable[[Any, bool], bytes]] = {
    Connect: encode_connect,
    Connack: encode_connack,
    Publish: encode_publish,
    Puback: _ack_encoder(PacketType.PUBACK, 0x40),
    Pubrec: _ack_encoder(PacketType.PUBREC, 0x50),
    Pubrel: _ack_encoder(PacketType.PUBREL, 0x62),
    Pubcomp: _ack_encoder(PacketType.PUBCOMP, 0x70),
    Subscribe: encode_subscribe,
    Suback: encode_suback,
    Unsubscribe: encode_unsubscribe,
    Unsuback: encode_unsuback,
    Pingreq: encode_pingreq,
    Pingresp: encode_pingresp,
    Disconnect: encode_disconnect,
    Auth: encode_auth,
}


def encode(packet: Packet, version: ProtocolVersion = ProtocolVersion.V5) -> bytes:
    """``packet`` as it goes on the wire to a peer speaking ``version``.

    A CONNECT is always encoded in its own ``protocol_version``.

    Raises:
        LocalProtocolError: a value the spec forbids or a field too large
            for its encoding.
    """
    try:
        return ENCODERS[type(packet)](packet, version == _V5)
    except OverflowError as exc:
        raise LocalProtocolError(f"{type(packet).__name__}: a value is too large: {exc}") from None
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{type(packet).__name__}: text is not encodable: {exc}") from None
