"""Decoders: one function per control packet, each next to the rules it checks.

Every decoder has the signature ``decode(flags, buf, pos, end, v5) ->
Packet``: ``flags`` is the low nibble of the fixed header, the packet's
variable header and payload are ``buf[pos:end]`` (a ``bytes`` object, so
fields are sliced out without copying the packet first), and ``v5`` says
which version's layout to read. :data:`DECODERS` maps each packet type to
its decoder; :class:`~protocols.mqtt.connection.MqttConnection` cuts the
stream into packets and calls them, and :func:`decode_packet` does the same
for one complete packet.

Every rule breaks with the error that carries its reason code (see
:mod:`~protocols.mqtt.errors`): the bytes cannot be parsed (0x81), a value
the spec forbids (0x82), a wildcard in a topic name (0x90)...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .codes import (
    REASON_CODE_FOR_RETURN_CODE,
    REASON_CODES_BY_PACKET,
    ConnackReturnCode,
    PacketType,
    PropertyId,
    ProtocolVersion,
    QoS,
    ReasonCode,
    RetainHandling,
)
from .errors import (
    ClientIdentifierNotValid,
    MalformedPacket,
    ProtocolViolation,
    TopicAliasInvalid,
    TopicFilterInvalid,
    TopicNameInvalid,
    UnsupportedProtocolVersion,
)
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
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    new_publish,
)
from .properties import (
    ALLOWED_PROPERTIES,
    EMPTY_PROPERTIES,
    NONZERO_PROPERTIES,
    PROPERTY_SPECS,
    WILL,
    Properties,
    WireType,
)
from .topics import SHARED_PREFIX, is_valid_topic_filter, parse_shared_subscription

#: Largest Remaining Length: four bytes of seven bits (1.5.5, 2.2.3).
MAX_REMAINING_LENGTH = 268_435_455

_QOS = (QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE)
_REASON_BY_VALUE = {code.value: code for code in ReasonCode}
_PROPERTY_BY_VALUE = {pid.value: pid for pid in PropertyId}
_RETAIN_HANDLING = tuple(RetainHandling)

Decoder = Callable[[int, bytes, int, int, bool], Packet]


# -- Data representations (section 1.5) ---------------------------------------------


def read_remaining_length(buf: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """Decode the Variable Byte Integer at ``buf[pos:end]``: (value, position after it).

    Returns None when ``buf`` ends inside the integer.

    Raises:
        MalformedPacket: a fifth byte would be needed (1.5.5).
    """
    value = 0
    shift = 0
    for index in range(pos, min(end, pos + 4)):
        byte = buf[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    if end - pos >= 4:
        raise MalformedPacket("Variable Byte Integer longer than 4 bytes")
    return None


def _vbi(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    decoded = read_remaining_length(buf, pos, end)
    if decoded is None:
        raise MalformedPacket(f"{what}: packet ends inside a Variable Byte Integer")
    return decoded


def _u16(buf: bytes, pos: int, end: int, what: str) -> int:
    if pos + 2 > end:
        raise MalformedPacket(f"{what}: packet ends before a Two Byte Integer")
    return (buf[pos] << 8) | buf[pos + 1]


def _u32(buf: bytes, pos: int, end: int, what: str) -> int:
    if pos + 4 > end:
        raise MalformedPacket(f"{what}: packet ends before a Four Byte Integer")
    return int.from_bytes(buf[pos : pos + 4], "big")


def _byte(buf: bytes, pos: int, end: int, what: str) -> int:
    if pos >= end:
        raise MalformedPacket(f"{what}: packet ends before a byte")
    return buf[pos]


def _binary(buf: bytes, pos: int, end: int, what: str) -> tuple[bytes, int]:
    """Binary Data (1.5.6): two-byte length, then the bytes."""
    start = pos + 2
    stop = start + _u16(buf, pos, end, what)
    if stop > end:
        raise MalformedPacket(f"{what}: length {stop - start} runs past the packet's end")
    return buf[start:stop], stop


def _string(buf: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    """UTF-8 Encoded String (1.5.4): well-formed UTF-8 without U+0000 (MQTT-1.5.4-1, -2)."""
    data, pos = _binary(buf, pos, end, what)
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"{what} is not well-formed UTF-8: {exc.reason}") from None
    if "\x00" in text:
        raise MalformedPacket(f"{what} contains U+0000")
    return text, pos


def _packet_id(buf: bytes, pos: int, end: int, what: str) -> int:
    packet_id = _u16(buf, pos, end, what)
    if not packet_id:
        raise MalformedPacket(f"{what}: Packet Identifier 0 (must be 1-65535, 2.2.1)")
    return packet_id


def _reason_code(value: int, packet_type: PacketType) -> ReasonCode:
    code = _REASON_BY_VALUE.get(value)
    if code is None:
        raise MalformedPacket(f"{packet_type.name}: unknown Reason Code 0x{value:02X}")
    if code not in REASON_CODES_BY_PACKET[packet_type]:
        raise ProtocolViolation(f"{packet_type.name} cannot carry Reason Code {code.name}")
    return code


def _check_flags(flags: int, expected: int, packet_type: PacketType) -> None:
    if flags != expected:
        raise MalformedPacket(
            f"{packet_type.name}: fixed header flags 0x{flags:X}, must be 0x{expected:X} (2.1.3)"
        )


def _check_end(pos: int, end: int, packet_type: PacketType) -> None:
    if pos != end:
        raise MalformedPacket(
            f"{packet_type.name}: {end - pos} bytes after the last field"
            if pos < end
            else f"{packet_type.name}: fields run past the Remaining Length"
        )


# -- Properties (v5 2.2.2) ----------------------------------------------------------


def read_properties(
    buf: bytes, pos: int, end: int, context: PacketType | str
) -> tuple[Properties, int]:
    """Decode a Property Length and the properties after it.

    Raises:
        MalformedPacket: an identifier unknown or not allowed in ``context``,
            or a value that does not fit its type (2.2.2.2).
        ProtocolViolation: a property repeated, or a value the spec forbids.
        TopicAliasInvalid: a Topic Alias of 0.
    """
    what = f"{context.name if isinstance(context, PacketType) else context} properties"
    length, pos = _vbi(buf, pos, end, what)
    if not length:
        return EMPTY_PROPERTIES, pos
    stop = pos + length
    if stop > end:
        raise MalformedPacket(f"{what}: Property Length {length} runs past the packet's end")
    allowed = ALLOWED_PROPERTIES[context]
    values: dict[str, Any] = {}
    user_properties: list[tuple[str, str]] = []
    subscription_identifiers: list[int] = []
    while pos < stop:
        pid = _PROPERTY_BY_VALUE.get(buf[pos])
        if pid is None or pid not in allowed:
            raise MalformedPacket(f"{what}: property identifier 0x{buf[pos]:02X} not allowed")
        pos += 1
        name, wire_type = PROPERTY_SPECS[pid]
        value: Any
        if wire_type is WireType.BYTE:
            value = _byte(buf, pos, stop, name)
            pos += 1
            if value > 1:
                raise ProtocolViolation(f"{what}: {name} is {value}, must be 0 or 1")
            value = _QOS[value] if pid is PropertyId.MAXIMUM_QOS else bool(value)
        elif wire_type is WireType.TWO_BYTE_INTEGER:
            value = _u16(buf, pos, stop, name)
            pos += 2
        elif wire_type is WireType.FOUR_BYTE_INTEGER:
            value = _u32(buf, pos, stop, name)
            pos += 4
        elif wire_type is WireType.VARIABLE_BYTE_INTEGER:
            value, pos = _vbi(buf, pos, stop, name)
        elif wire_type is WireType.UTF8_STRING:
            value, pos = _string(buf, pos, stop, name)
        elif wire_type is WireType.BINARY_DATA:
            value, pos = _binary(buf, pos, stop, name)
        else:
            key, pos = _string(buf, pos, stop, "user property name")
            value, pos = _string(buf, pos, stop, "user property value")
            user_properties.append((key, value))
            continue
        if pid in NONZERO_PROPERTIES and not value:
            raise ProtocolViolation(f"{what}: {name} is 0")
        if pid is PropertyId.SUBSCRIPTION_IDENTIFIER:
            subscription_identifiers.append(value)
            continue
        if name in values:
            raise ProtocolViolation(f"{what}: {name} included more than once")
        values[name] = value
    if values.get("topic_alias") == 0:
        raise TopicAliasInvalid(f"{what}: Topic Alias 0 (3.3.2.3.4)")
    response_topic = values.get("response_topic")
    if response_topic is not None and ("+" in response_topic or "#" in response_topic):
        raise ProtocolViolation(f"{what}: Response Topic {response_topic!r} has a wildcard")
    if "authentication_data" in values and "authentication_method" not in values:
        raise ProtocolViolation(f"{what}: Authentication Data without Authentication Method")
    return Properties(
        **values,
        user_properties=tuple(user_properties),
        subscription_identifiers=tuple(subscription_identifiers),
    ), stop


# -- CONNECT and CONNACK (3.1, 3.2) -------------------------------------------------


def connect_protocol_version(buf: bytes, pos: int, end: int) -> ProtocolVersion | None:
    """The protocol version a CONNECT at ``buf[pos:end]`` names, if it names one we speak.

    Used to answer a broken CONNECT in its client's version.
    """
    if buf[pos : pos + 6] == b"\x00\x04MQTT" and pos + 6 < end:
        level = buf[pos + 6]
        if level in (ProtocolVersion.V311, ProtocolVersion.V5):
            return ProtocolVersion(level)
    return None


def decode_connect(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Connect:
    """CONNECT: the version comes from the packet itself (``v5`` is ignored)."""
    _check_flags(flags, 0, PacketType.CONNECT)
    name, pos = _string(buf, pos, end, "CONNECT protocol name")
    level = _byte(buf, pos, end, "CONNECT protocol level")
    if name != "MQTT":
        if name == "MQIsdp":
            raise UnsupportedProtocolVersion(f"CONNECT for MQTT 3.1 (MQIsdp, level {level})")
        raise MalformedPacket(f"CONNECT protocol name {name!r}, expected 'MQTT'")
    if level not in (ProtocolVersion.V311, ProtocolVersion.V5):
        raise UnsupportedProtocolVersion(
            f"CONNECT protocol level {level}, expected 4 (MQTT 3.1.1) or 5 (MQTT 5.0)"
        )
    v5 = level == ProtocolVersion.V5
    connect_flags = _byte(buf, pos + 1, end, "CONNECT flags")
    keep_alive = _u16(buf, pos + 2, end, "CONNECT keep alive")
    pos += 4
    if connect_flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag is 1 (3.1.2.3)")
    will_flag = connect_flags & 0x04
    will_qos = (connect_flags >> 3) & 0x03
    will_retain = bool(connect_flags & 0x20)
    if will_qos == 3:
        raise MalformedPacket("CONNECT Will QoS is 3")
    if not will_flag and (will_qos or will_retain):
        raise MalformedPacket("CONNECT Will QoS or Will Retain set without the Will Flag")
    has_password = connect_flags & 0x40
    has_username = connect_flags & 0x80
    if has_password and not has_username and not v5:
        raise MalformedPacket("CONNECT Password Flag without User Name Flag (MQTT-3.1.2-22)")
    properties = EMPTY_PROPERTIES
    if v5:
        properties, pos = read_properties(buf, pos, end, PacketType.CONNECT)
    client_id, pos = _string(buf, pos, end, "CONNECT client identifier")
    will = None
    if will_flag:
        will_properties = EMPTY_PROPERTIES
        if v5:
            will_properties, pos = read_properties(buf, pos, end, WILL)
        will_topic, pos = _string(buf, pos, end, "CONNECT will topic")
        if not will_topic or "+" in will_topic or "#" in will_topic:
            raise TopicNameInvalid(f"CONNECT will topic {will_topic!r} is not a topic name")
        will_payload, pos = _binary(buf, pos, end, "CONNECT will payload")
        will = Will(will_topic, will_payload, _QOS[will_qos], will_retain, will_properties)
    username = password = None
    if has_username:
        username, pos = _string(buf, pos, end, "CONNECT user name")
    if has_password:
        password, pos = _binary(buf, pos, end, "CONNECT password")
    _check_end(pos, end, PacketType.CONNECT)
    clean_start = bool(connect_flags & 0x02)
    if not client_id and not clean_start and not v5:
        raise ClientIdentifierNotValid("CONNECT with an empty client id and Clean Session 0")
    return Connect(
        client_id,
        ProtocolVersion.V5 if v5 else ProtocolVersion.V311,
        clean_start,
        keep_alive,
        username,
        password,
        will,
        properties,
    )


def decode_connack(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Connack:
    _check_flags(flags, 0, PacketType.CONNACK)
    ack_flags = _byte(buf, pos, end, "CONNACK flags")
    if ack_flags & 0xFE:
        raise MalformedPacket("CONNACK reserved flags are not 0 (3.2.2.1)")
    code = _byte(buf, pos + 1, end, "CONNACK code")
    pos += 2
    properties = EMPTY_PROPERTIES
    if v5:
        reason_code = _reason_code(code, PacketType.CONNACK)
        properties, pos = read_properties(buf, pos, end, PacketType.CONNACK)
    else:
        if code > ConnackReturnCode.NOT_AUTHORIZED:
            raise MalformedPacket(f"CONNACK return code {code} (3.1.1 defines 0-5)")
        reason_code = REASON_CODE_FOR_RETURN_CODE[ConnackReturnCode(code)]
    _check_end(pos, end, PacketType.CONNACK)
    return Connack(bool(ack_flags), reason_code, properties)


# -- PUBLISH and its acknowledgements (3.3 - 3.7) -----------------------------------


def decode_publish(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Publish:
    """PUBLISH, the hot path: fields are read inline, the payload sliced once."""
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH QoS is 3 (MQTT-3.3.1-4)")
    if pos + 2 > end:
        raise MalformedPacket("PUBLISH: packet ends before the topic name")
    start = pos + 2
    pos = start + ((buf[pos] << 8) | buf[pos + 1])
    if pos > end:
        raise MalformedPacket("PUBLISH: topic name runs past the packet's end")
    try:
        topic = buf[start:pos].decode()
    except UnicodeDecodeError as exc:
        raise MalformedPacket(
            f"PUBLISH topic name is not well-formed UTF-8: {exc.reason}"
        ) from None
    if "\x00" in topic:
        raise MalformedPacket("PUBLISH topic name contains U+0000")
    if "+" in topic or "#" in topic:
        raise TopicNameInvalid(f"PUBLISH topic name {topic!r} contains a wildcard (3.3.2.1)")
    if qos:
        if pos + 2 > end:
            raise MalformedPacket("PUBLISH: packet ends before the Packet Identifier")
        packet_id: int | None = (buf[pos] << 8) | buf[pos + 1]
        if not packet_id:
            raise MalformedPacket("PUBLISH: Packet Identifier 0 with QoS > 0 (2.2.1)")
        pos += 2
    elif flags & 0x08:
        raise MalformedPacket("PUBLISH: DUP flag set with QoS 0 (MQTT-3.3.1-2)")
    else:
        packet_id = None
    properties = EMPTY_PROPERTIES
    if v5:
        if pos >= end:
            raise MalformedPacket("PUBLISH: packet ends before the Property Length")
        if buf[pos]:
            properties, pos = read_properties(buf, pos, end, PacketType.PUBLISH)
        else:
            pos += 1
        if not topic and properties.topic_alias is None:
            raise ProtocolViolation("PUBLISH with an empty topic name and no Topic Alias")
    elif not topic:
        raise TopicNameInvalid("PUBLISH with an empty topic name (MQTT-4.7.3-1)")
    return new_publish(
        topic,
        buf[pos:end],
        _QOS[qos],
        bool(flags & 0x01),
        packet_id,
        bool(flags & 0x08),
        properties,
    )


def _ack_decoder(cls: type[Puback | Pubrec | Pubrel | Pubcomp], fixed_flags: int) -> Decoder:
    packet_type = cls.type

    def decode_ack(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Packet:
        _check_flags(flags, fixed_flags, packet_type)
        packet_id = _packet_id(buf, pos, end, packet_type.name)
        pos += 2
        if pos == end:
            return cls(packet_id)
        if not v5:
            _check_end(pos, end, packet_type)
        reason_code = _reason_code(buf[pos], packet_type)
        properties = EMPTY_PROPERTIES
        if pos + 1 < end:
            properties, pos = read_properties(buf, pos + 1, end, packet_type)
            _check_end(pos, end, packet_type)
        return cls(packet_id, reason_code, properties)

    decode_ack.__name__ = f"decode_{packet_type.name.lower()}"
    return decode_ack


# -- SUBSCRIBE, UNSUBSCRIBE and their acknowledgements (3.8 - 3.11) -----------------


def _topic_filter(buf: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    topic_filter, pos = _string(buf, pos, end, f"{what} topic filter")
    if not is_valid_topic_filter(topic_filter):
        raise TopicFilterInvalid(f"{what} topic filter {topic_filter!r} breaks 4.7.1")
    return topic_filter, pos


def decode_subscribe(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Subscribe:
    _check_flags(flags, 0x02, PacketType.SUBSCRIBE)
    packet_id = _packet_id(buf, pos, end, "SUBSCRIBE")
    pos += 2
    properties = EMPTY_PROPERTIES
    if v5:
        properties, pos = read_properties(buf, pos, end, PacketType.SUBSCRIBE)
        if len(properties.subscription_identifiers) > 1:
            raise ProtocolViolation("SUBSCRIBE with more than one Subscription Identifier")
    reserved = 0xC0 if v5 else 0xFC
    subscriptions = []
    while pos < end:
        topic_filter, pos = _topic_filter(buf, pos, end, "SUBSCRIBE")
        options = _byte(buf, pos, end, "SUBSCRIBE options")
        pos += 1
        if options & reserved:
            raise MalformedPacket(f"SUBSCRIBE options 0x{options:02X}: reserved bits set")
        qos = options & 0x03
        if qos == 3:
            raise MalformedPacket(f"SUBSCRIBE {topic_filter!r} with QoS 3 (MQTT-3-8.3-4)")
        retain_handling = options >> 4
        if retain_handling == 3:
            raise ProtocolViolation(f"SUBSCRIBE {topic_filter!r} with Retain Handling 3")
        no_local = bool(options & 0x04)
        if v5 and topic_filter.startswith(SHARED_PREFIX):
            try:
                parse_shared_subscription(topic_filter)
            except ValueError as exc:
                raise TopicFilterInvalid(str(exc)) from None
            if no_local:
                raise ProtocolViolation(f"No Local on shared subscription {topic_filter!r}")
        subscriptions.append(
            Subscription(
                topic_filter,
                _QOS[qos],
                no_local,
                bool(options & 0x08),
                _RETAIN_HANDLING[retain_handling],
            )
        )
    if not subscriptions:
        raise ProtocolViolation("SUBSCRIBE without a topic filter (MQTT-3.8.3-3)")
    return Subscribe(packet_id, tuple(subscriptions), properties)


def _ack_codes(buf: bytes, pos: int, end: int, packet_type: PacketType) -> list[ReasonCode]:
    if pos >= end:
        raise ProtocolViolation(f"{packet_type.name} without a reason code")
    return [_reason_code(value, packet_type) for value in buf[pos:end]]


_SUBACK_V311 = {0: ReasonCode.GRANTED_QOS_0, 1: ReasonCode.GRANTED_QOS_1}
_SUBACK_V311 |= {2: ReasonCode.GRANTED_QOS_2, 0x80: ReasonCode.UNSPECIFIED_ERROR}


def decode_suback(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Suback:
    _check_flags(flags, 0, PacketType.SUBACK)
    packet_id = _packet_id(buf, pos, end, "SUBACK")
    pos += 2
    if v5:
        properties, pos = read_properties(buf, pos, end, PacketType.SUBACK)
        return Suback(packet_id, tuple(_ack_codes(buf, pos, end, PacketType.SUBACK)), properties)
    codes = []
    for value in buf[pos:end]:
        if value not in _SUBACK_V311:
            raise MalformedPacket(f"SUBACK return code 0x{value:02X} (3.1.1: 0, 1, 2, 0x80)")
        codes.append(_SUBACK_V311[value])
    if not codes:
        raise ProtocolViolation("SUBACK without a return code")
    return Suback(packet_id, tuple(codes))


def decode_unsubscribe(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Unsubscribe:
    _check_flags(flags, 0x02, PacketType.UNSUBSCRIBE)
    packet_id = _packet_id(buf, pos, end, "UNSUBSCRIBE")
    pos += 2
    properties = EMPTY_PROPERTIES
    if v5:
        properties, pos = read_properties(buf, pos, end, PacketType.UNSUBSCRIBE)
    topic_filters = []
    while pos < end:
        topic_filter, pos = _topic_filter(buf, pos, end, "UNSUBSCRIBE")
        topic_filters.append(topic_filter)
    if not topic_filters:
        raise ProtocolViolation("UNSUBSCRIBE without a topic filter (MQTT-3.10.3-2)")
    return Unsubscribe(packet_id, tuple(topic_filters), properties)


def decode_unsuback(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Unsuback:
    _check_flags(flags, 0, PacketType.UNSUBACK)
    packet_id = _packet_id(buf, pos, end, "UNSUBACK")
    pos += 2
    if not v5:
        _check_end(pos, end, PacketType.UNSUBACK)
        return Unsuback(packet_id)
    properties, pos = read_properties(buf, pos, end, PacketType.UNSUBACK)
    codes = _ack_codes(buf, pos, end, PacketType.UNSUBACK)
    return Unsuback(packet_id, tuple(codes), properties)


# -- PINGREQ, PINGRESP, DISCONNECT, AUTH (3.12 - 3.15) ------------------------------

_PINGREQ = Pingreq()
_PINGRESP = Pingresp()
_DISCONNECT = Disconnect()


def decode_pingreq(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Pingreq:
    _check_flags(flags, 0, PacketType.PINGREQ)
    _check_end(pos, end, PacketType.PINGREQ)
    return _PINGREQ


def decode_pingresp(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Pingresp:
    _check_flags(flags, 0, PacketType.PINGRESP)
    _check_end(pos, end, PacketType.PINGRESP)
    return _PINGRESP


def decode_disconnect(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Disconnect:
    _check_flags(flags, 0, PacketType.DISCONNECT)
    if pos == end:
        return _DISCONNECT
    if not v5:
        _check_end(pos, end, PacketType.DISCONNECT)
    reason_code = _reason_code(buf[pos], PacketType.DISCONNECT)
    properties = EMPTY_PROPERTIES
    if pos + 1 < end:
        properties, pos = read_properties(buf, pos + 1, end, PacketType.DISCONNECT)
        _check_end(pos, end, PacketType.DISCONNECT)
    return Disconnect(reason_code, properties)


def decode_auth(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Auth:
    if not v5:
        raise MalformedPacket("packet type 15 is reserved in MQTT 3.1.1")
    _check_flags(flags, 0, PacketType.AUTH)
    if pos == end:
        return Auth()
    reason_code = _reason_code(buf[pos], PacketType.AUTH)
    properties = EMPTY_PROPERTIES
    if pos + 1 < end:
        properties, pos = read_properties(buf, pos + 1, end, PacketType.AUTH)
        _check_end(pos, end, PacketType.AUTH)
    return Auth(reason_code, properties)


#: The decoder of each packet type.
DECODERS: dict[int, Decoder] = {
    PacketType.CONNECT: decode_connect,
    PacketType.CONNACK: decode_connack,
    PacketType.PUBLISH: decode_publish,
    PacketType.PUBACK: _ack_decoder(Puback, 0),
    PacketType.PUBREC: _ack_decoder(Pubrec, 0),
    PacketType.PUBREL: _ack_decoder(Pubrel, 0x02),
    PacketType.PUBCOMP: _ack_decoder(Pubcomp, 0),
    PacketType.SUBSCRIBE: decode_subscribe,
    PacketType.SUBACK: decode_suback,
    PacketType.UNSUBSCRIBE: decode_unsubscribe,
    PacketType.UNSUBACK: decode_unsuback,
    PacketType.PINGREQ: decode_pingreq,
    PacketType.PINGRESP: decode_pingresp,
    PacketType.DISCONNECT: decode_disconnect,
    PacketType.AUTH: decode_auth,
}


def decode_packet(data: bytes, version: ProtocolVersion = ProtocolVersion.V5) -> Packet:
    """Decode exactly one complete packet (fixed header included).

    For a stream, use :class:`~protocols.mqtt.connection.MqttConnection`,
    which also applies the connection's limits and state rules.

    Raises:
        ProtocolError: any subclass; ``MalformedPacket`` also when ``data``
            holds less or more than one packet.
    """
    header = read_remaining_length(data, 1, len(data)) if data else None
    if header is None:
        raise MalformedPacket("incomplete fixed header")
    length, pos = header
    if pos + length != len(data):
        raise MalformedPacket(f"Remaining Length {length}, but {len(data) - pos} bytes follow")
    decoder = DECODERS.get(data[0] >> 4)
    if decoder is None:
        raise MalformedPacket("packet type 0 is reserved")
    return decoder(data[0] & 0x0F, data, pos, len(data), version == ProtocolVersion.V5)
