"""Decoders: one function per control packet, each next to the rules it checks.

Every decoder has the signature ``decode(flags, buf, pos, end, v5) ->
Packet``: ``flags`` is the low nibble of the fixed header, the packet's
variable header and payload are ``buf[pos:end]`` (a ``bytes`` object, so
fields are sliced out without copying the packet first), and ``v5`` says
which version's layout to read. :data:`DECODERS` maps each packet type to
its decoder; :class:`~protocols.mqtt.connection.MqttConnection` cuts the
stream into packets and calls them, and :func:`decode_packet` does the same
for one complete packet.

The decoders of SUBSCRIBE, UNSUBSCRIBE and their acknowledgements are in
:mod:`~protocols.mqtt.reader_subscriptions`; the field readers they are all
built of, in :mod:`~protocols.mqtt.fields`.

Every rule breaks with the error that carries its reason code (see
:mod:`~protocols.mqtt.errors`): the bytes cannot be parsed (0x81), a value
the spec forbids (0x82), a wildcard in a topic name (0x90)...
"""

from __future__ import annotations

from collections.abc import Callable

from .codes import REASON_CODE_FOR_RETURN_CODE, ConnackReturnCode, PacketType, ProtocolVersion
from .errors import (
    ClientIdentifierNotValid,
    MalformedPacket,
    ProtocolViolation,
    TopicNameInvalid,
    UnsupportedProtocolVersion,
)
from .fields import (
    QOS_LEVELS,
    check_end,
    check_flags,
    read_binary,
    read_byte,
    read_packet_id,
    read_properties,
    read_reason_code,
    read_remaining_length,
    read_string,
    read_u16,
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
    Will,
    new_ack,
    new_publish,
)
from .properties import EMPTY_PROPERTIES, WILL
from .reader_subscriptions import (
    decode_suback,
    decode_subscribe,
    decode_unsuback,
    decode_unsubscribe,
)

Decoder = Callable[[int, bytes, int, int, bool], Packet]

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
    check_flags(flags, 0, PacketType.CONNECT)
    name, pos = read_string(buf, pos, end, "CONNECT protocol name")
    level = read_byte(buf, pos, end, "CONNECT protocol level")
    if name != "MQTT":
        if name == "MQIsdp":
            raise UnsupportedProtocolVersion(f"CONNECT for MQTT 3.1 (MQIsdp, level {level})")
        raise MalformedPacket(f"CONNECT protocol name {name!r}, expected 'MQTT'")
    if level not in (ProtocolVersion.V311, ProtocolVersion.V5):
        raise UnsupportedProtocolVersion(
            f"CONNECT protocol level {level}, expected 4 (MQTT 3.1.1) or 5 (MQTT 5.0)"
        )
    v5 = level == ProtocolVersion.V5
    connect_flags = read_byte(buf, pos + 1, end, "CONNECT flags")
    keep_alive = read_u16(buf, pos + 2, end, "CONNECT keep alive")
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
    client_id, pos = read_string(buf, pos, end, "CONNECT client identifier")
    will = None
    if will_flag:
        will_properties = EMPTY_PROPERTIES
        if v5:
            will_properties, pos = read_properties(buf, pos, end, WILL)
        will_topic, pos = read_string(buf, pos, end, "CONNECT will topic")
        if not will_topic or "+" in will_topic or "#" in will_topic:
            raise TopicNameInvalid(f"CONNECT will topic {will_topic!r} is not a topic name")
        will_payload, pos = read_binary(buf, pos, end, "CONNECT will payload")
        will = Will(will_topic, will_payload, QOS_LEVELS[will_qos], will_retain, will_properties)
    username = password = None
    if has_username:
        username, pos = read_string(buf, pos, end, "CONNECT user name")
    if has_password:
        password, pos = read_binary(buf, pos, end, "CONNECT password")
    check_end(pos, end, PacketType.CONNECT)
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
    check_flags(flags, 0, PacketType.CONNACK)
    ack_flags = read_byte(buf, pos, end, "CONNACK flags")
    if ack_flags & 0xFE:
        raise MalformedPacket("CONNACK reserved flags are not 0 (3.2.2.1)")
    code = read_byte(buf, pos + 1, end, "CONNACK code")
    pos += 2
    properties = EMPTY_PROPERTIES
    if v5:
        reason_code = read_reason_code(code, PacketType.CONNACK)
        properties, pos = read_properties(buf, pos, end, PacketType.CONNACK)
    else:
        if code > ConnackReturnCode.NOT_AUTHORIZED:
            raise MalformedPacket(f"CONNACK return code {code} (3.1.1 defines 0-5)")
        reason_code = REASON_CODE_FOR_RETURN_CODE[ConnackReturnCode(code)]
    check_end(pos, end, PacketType.CONNACK)
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
        QOS_LEVELS[qos],
        bool(flags & 0x01),
        packet_id,
        bool(flags & 0x08),
        properties,
    )


def _ack_decoder(cls: type[Puback | Pubrec | Pubrel | Pubcomp], fixed_flags: int) -> Decoder:
    packet_type = cls.type
    name = packet_type.name  # once: the enum's .name runs Python code, and acks are per message

    def decode_ack(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Packet:
        check_flags(flags, fixed_flags, packet_type)
        packet_id = read_packet_id(buf, pos, end, name)
        pos += 2
        if pos == end:
            return new_ack(cls, packet_id)
        if not v5:
            check_end(pos, end, packet_type)
        reason_code = read_reason_code(buf[pos], packet_type)
        properties = EMPTY_PROPERTIES
        if pos + 1 < end:
            properties, pos = read_properties(buf, pos + 1, end, packet_type)
            check_end(pos, end, packet_type)
        return cls(packet_id, reason_code, properties)

    decode_ack.__name__ = f"decode_{packet_type.name.lower()}"
    return decode_ack


# -- PINGREQ, PINGRESP, DISCONNECT, AUTH (3.12 - 3.15) ------------------------------

_PINGREQ = Pingreq()
_PINGRESP = Pingresp()
_DISCONNECT = Disconnect()


def decode_pingreq(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Pingreq:
    check_flags(flags, 0, PacketType.PINGREQ)
    check_end(pos, end, PacketType.PINGREQ)
    return _PINGREQ


def decode_pingresp(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Pingresp:
    check_flags(flags, 0, PacketType.PINGRESP)
    check_end(pos, end, PacketType.PINGRESP)
    return _PINGRESP


def decode_disconnect(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Disconnect:
    check_flags(flags, 0, PacketType.DISCONNECT)
    if pos == end:
        return _DISCONNECT
    if not v5:
        check_end(pos, end, PacketType.DISCONNECT)
    reason_code = read_reason_code(buf[pos], PacketType.DISCONNECT)
    properties = EMPTY_PROPERTIES
    if pos + 1 < end:
        properties, pos = read_properties(buf, pos + 1, end, PacketType.DISCONNECT)
        check_end(pos, end, PacketType.DISCONNECT)
    return Disconnect(reason_code, properties)


def decode_auth(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Auth:
    if not v5:
        raise MalformedPacket("packet type 15 is reserved in MQTT 3.1.1")
    check_flags(flags, 0, PacketType.AUTH)
    if pos == end:
        return Auth()
    reason_code = read_reason_code(buf[pos], PacketType.AUTH)
    properties = EMPTY_PROPERTIES
    if pos + 1 < end:
        properties, pos = read_properties(buf, pos + 1, end, PacketType.AUTH)
        check_end(pos, end, PacketType.AUTH)
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
