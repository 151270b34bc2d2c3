"""Decoders of SUBSCRIBE, UNSUBSCRIBE and their acknowledgements (3.8 - 3.11).

The topic filters, subscription options and shared-subscription rules a
broker checks before it subscribes anyone; same signature as every decoder
of :mod:`~protocols.mqtt.reader`.
"""

from __future__ import annotations

from .codes import PacketType, ReasonCode, RetainHandling
from .errors import MalformedPacket, ProtocolViolation, TopicFilterInvalid
from .fields import (
    QOS_LEVELS,
    check_end,
    check_flags,
    read_byte,
    read_packet_id,
    read_properties,
    read_reason_code,
    read_string,
)
from .packets import Suback, Subscribe, Subscription, Unsuback, Unsubscribe
from .properties import EMPTY_PROPERTIES
from .topics import SHARED_PREFIX, is_valid_topic_filter, parse_shared_subscription

_RETAIN_HANDLING = tuple(RetainHandling)


def _topic_filter(buf: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    topic_filter, pos = read_string(buf, pos, end, f"{what} topic filter")
    if not is_valid_topic_filter(topic_filter):
        raise TopicFilterInvalid(f"{what} topic filter {topic_filter!r} breaks 4.7.1")
    return topic_filter, pos


def decode_subscribe(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Subscribe:
    check_flags(flags, 0x02, PacketType.SUBSCRIBE)
    packet_id = read_packet_id(buf, pos, end, "SUBSCRIBE")
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
        options = read_byte(buf, pos, end, "SUBSCRIBE options")
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
                QOS_LEVELS[qos],
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
    return [read_reason_code(value, packet_type) for value in buf[pos:end]]


_SUBACK_V311 = {0: ReasonCode.GRANTED_QOS_0, 1: ReasonCode.GRANTED_QOS_1}
_SUBACK_V311 |= {2: ReasonCode.GRANTED_QOS_2, 0x80: ReasonCode.UNSPECIFIED_ERROR}


def decode_suback(flags: int, buf: bytes, pos: int, end: int, v5: bool) -> Suback:
    check_flags(flags, 0, PacketType.SUBACK)
    packet_id = read_packet_id(buf, pos, end, "SUBACK")
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
    check_flags(flags, 0x02, PacketType.UNSUBSCRIBE)
    packet_id = read_packet_id(buf, pos, end, "UNSUBSCRIBE")
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
    check_flags(flags, 0, PacketType.UNSUBACK)
    packet_id = read_packet_id(buf, pos, end, "UNSUBACK")
    pos += 2
    if not v5:
        check_end(pos, end, PacketType.UNSUBACK)
        return Unsuback(packet_id)
    properties, pos = read_properties(buf, pos, end, PacketType.UNSUBACK)
    codes = _ack_codes(buf, pos, end, PacketType.UNSUBACK)
    return Unsuback(packet_id, tuple(codes), properties)
