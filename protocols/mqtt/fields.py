"""Field readers: the data representations (1.5) and properties (2.2.2) packets are made of.

Each reader takes ``buf[pos:end]`` (see :mod:`~protocols.mqtt.reader`) and
returns the value and the position after it, or checks a rule; every broken
rule raises the error carrying its reason code (see :mod:`~protocols.mqtt.errors`).
The packet decoders in :mod:`~protocols.mqtt.reader` and
:mod:`~protocols.mqtt.reader_subscriptions` are built of them.
"""

from __future__ import annotations

from typing import Any

from .codes import REASON_CODES_BY_PACKET, PacketType, PropertyId, QoS, ReasonCode
from .errors import MalformedPacket, ProtocolViolation, TopicAliasInvalid
from .properties import (
    ALLOWED_PROPERTIES,
    EMPTY_PROPERTIES,
    NONZERO_PROPERTIES,
    PROPERTY_SPECS,
    Properties,
    WireType,
)

#: Largest Remaining Length: four bytes of seven bits (1.5.5, 2.2.3).
MAX_REMAINING_LENGTH = 268_435_455

#: QoS levels by their number (2 bits on the wire).
QOS_LEVELS = (QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE)
_REASON_BY_VALUE = {code.value: code for code in ReasonCode}
_PROPERTY_BY_VALUE = {pid.value: pid for pid in PropertyId}

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


def read_vbi(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    decoded = read_remaining_length(buf, pos, end)
    if decoded is None:
        raise MalformedPacket(f"{what}: packet ends inside a Variable Byte Integer")
    return decoded


def read_u16(buf: bytes, pos: int, end: int, what: str) -> int:
    if pos + 2 > end:
        raise MalformedPacket(f"{what}: packet ends before a Two Byte Integer")
    return (buf[pos] << 8) | buf[pos + 1]


def read_u32(buf: bytes, pos: int, end: int, what: str) -> int:
    if pos + 4 > end:
        raise MalformedPacket(f"{what}: packet ends before a Four Byte Integer")
    return int.from_bytes(buf[pos : pos + 4], "big")


def read_byte(buf: bytes, pos: int, end: int, what: str) -> int:
    if pos >= end:
        raise MalformedPacket(f"{what}: packet ends before a byte")
    return buf[pos]


def read_binary(buf: bytes, pos: int, end: int, what: str) -> tuple[bytes, int]:
    """Binary Data (1.5.6): two-byte length, then the bytes."""
    start = pos + 2
    stop = start + read_u16(buf, pos, end, what)
    if stop > end:
        raise MalformedPacket(f"{what}: length {stop - start} runs past the packet's end")
    return buf[start:stop], stop


def read_string(buf: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    """UTF-8 Encoded String (1.5.4): well-formed UTF-8 without U+0000 (MQTT-1.5.4-1, -2)."""
    data, pos = read_binary(buf, pos, end, what)
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"{what} is not well-formed UTF-8: {exc.reason}") from None
    if "\x00" in text:
        raise MalformedPacket(f"{what} contains U+0000")
    return text, pos


def read_packet_id(buf: bytes, pos: int, end: int, what: str) -> int:
    packet_id = read_u16(buf, pos, end, what)
    if not packet_id:
        raise MalformedPacket(f"{what}: Packet Identifier 0 (must be 1-65535, 2.2.1)")
    return packet_id


def read_reason_code(value: int, packet_type: PacketType) -> ReasonCode:
    code = _REASON_BY_VALUE.get(value)
    if code is None:
        raise MalformedPacket(f"{packet_type.name}: unknown Reason Code 0x{value:02X}")
    if code not in REASON_CODES_BY_PACKET[packet_type]:
        raise ProtocolViolation(f"{packet_type.name} cannot carry Reason Code {code.name}")
    return code


def check_flags(flags: int, expected: int, packet_type: PacketType) -> None:
    if flags != expected:
        raise MalformedPacket(
            f"{packet_type.name}: fixed header flags 0x{flags:X}, must be 0x{expected:X} (2.1.3)"
        )


def check_end(pos: int, end: int, packet_type: PacketType) -> None:
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
    length, pos = read_vbi(buf, pos, end, what)
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
            value = read_byte(buf, pos, stop, name)
            pos += 1
            if value > 1:
                raise ProtocolViolation(f"{what}: {name} is {value}, must be 0 or 1")
            value = QOS_LEVELS[value] if pid is PropertyId.MAXIMUM_QOS else bool(value)
        elif wire_type is WireType.TWO_BYTE_INTEGER:
            value = read_u16(buf, pos, stop, name)
            pos += 2
        elif wire_type is WireType.FOUR_BYTE_INTEGER:
            value = read_u32(buf, pos, stop, name)
            pos += 4
        elif wire_type is WireType.VARIABLE_BYTE_INTEGER:
            value, pos = read_vbi(buf, pos, stop, name)
        elif wire_type is WireType.UTF8_STRING:
            value, pos = read_string(buf, pos, stop, name)
        elif wire_type is WireType.BINARY_DATA:
            value, pos = read_binary(buf, pos, stop, name)
        else:
            key, pos = read_string(buf, pos, stop, "user property name")
            value, pos = read_string(buf, pos, stop, "user property value")
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
