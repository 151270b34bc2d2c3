"""MQTT protocol numbers, named as in the specifications.

MQTT 3.1.1 (OASIS Standard, 2014) and MQTT 5.0 (OASIS Standard, 2019) share
the packet types and QoS levels; MQTT 5.0 adds reason codes in most
acknowledgements and properties. Names follow the spec tables: section 2.1.2
(packet types), 2.4 (v5 reason codes), 2.2.2.2 (v5 property identifiers),
3.2.2.3 of 3.1.1 (CONNACK return codes).

A 3.1.1 peer never sees a :class:`ReasonCode`: the writer maps the few
3.1.1 answers that carry a code (CONNACK, SUBACK) with
:func:`connack_return_code` and ``0x80`` (SUBACK Failure).
"""

from __future__ import annotations

import enum


class ProtocolVersion(enum.IntEnum):
    """The Protocol Level byte of CONNECT (3.1.2.2 of both specs)."""

    V311 = 4
    V5 = 5


class PacketType(enum.IntEnum):
    """The MQTT Control Packet type: high nibble of the fixed header's first byte."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15  # MQTT 5.0 only; reserved in 3.1.1


class QoS(enum.IntEnum):
    """Quality of Service levels (4.3)."""

    AT_MOST_ONCE = 0
    AT_LEAST_ONCE = 1
    EXACTLY_ONCE = 2


class RetainHandling(enum.IntEnum):
    """SUBSCRIBE option bits 4-5: when retained messages are sent (v5 3.8.3.1)."""

    SEND_ON_SUBSCRIBE = 0
    SEND_ON_NEW_SUBSCRIBE = 1
    DO_NOT_SEND = 2


class ConnackReturnCode(enum.IntEnum):
    """MQTT 3.1.1 CONNACK Connect Return codes (3.1.1 section 3.2.2.3)."""

    ACCEPTED = 0x00
    UNACCEPTABLE_PROTOCOL_VERSION = 0x01
    IDENTIFIER_REJECTED = 0x02
    SERVER_UNAVAILABLE = 0x03
    BAD_USER_NAME_OR_PASSWORD = 0x04
    NOT_AUTHORIZED = 0x05


class ReasonCode(enum.IntEnum):
    """MQTT 5.0 Reason Codes (v5 section 2.4), every one with its spec name.

    ``0x00`` has three names in the spec (Success, Normal disconnection,
    Granted QoS 0); they are aliases of one member, so
    ``ReasonCode.NORMAL_DISCONNECTION is ReasonCode.SUCCESS``. Codes of
    ``0x80`` and above are failures.
    """

    SUCCESS = 0x00
    NORMAL_DISCONNECTION = 0x00
    GRANTED_QOS_0 = 0x00
    GRANTED_QOS_1 = 0x01
    GRANTED_QOS_2 = 0x02
    DISCONNECT_WITH_WILL_MESSAGE = 0x04
    NO_MATCHING_SUBSCRIBERS = 0x10
    NO_SUBSCRIPTION_EXISTED = 0x11
    CONTINUE_AUTHENTICATION = 0x18
    RE_AUTHENTICATE = 0x19
    UNSPECIFIED_ERROR = 0x80
    MALFORMED_PACKET = 0x81
    PROTOCOL_ERROR = 0x82
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83
    UNSUPPORTED_PROTOCOL_VERSION = 0x84
    CLIENT_IDENTIFIER_NOT_VALID = 0x85
    BAD_USER_NAME_OR_PASSWORD = 0x86
    NOT_AUTHORIZED = 0x87
    SERVER_UNAVAILABLE = 0x88
    SERVER_BUSY = 0x89
    BANNED = 0x8A
    SERVER_SHUTTING_DOWN = 0x8B
    BAD_AUTHENTICATION_METHOD = 0x8C
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_NAME_INVALID = 0x90
    PACKET_IDENTIFIER_IN_USE = 0x91
    PACKET_IDENTIFIER_NOT_FOUND = 0x92
    RECEIVE_MAXIMUM_EXCEEDED = 0x93
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    MESSAGE_RATE_TOO_HIGH = 0x96
    QUOTA_EXCEEDED = 0x97
    ADMINISTRATIVE_ACTION = 0x98
    PAYLOAD_FORMAT_INVALID = 0x99
    RETAIN_NOT_SUPPORTED = 0x9A
    QOS_NOT_SUPPORTED = 0x9B
    USE_ANOTHER_SERVER = 0x9C
    SERVER_MOVED = 0x9D
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
    CONNECTION_RATE_EXCEEDED = 0x9F
    MAXIMUM_CONNECT_TIME = 0xA0
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2

    @property
    def is_failure(self) -> bool:
        """True for codes of 0x80 and above (v5 2.4: "indicates failure")."""
        return self >= 0x80


class PropertyId(enum.IntEnum):
    """MQTT 5.0 property identifiers (v5 section 2.2.2.2)."""

    PAYLOAD_FORMAT_INDICATOR = 0x01
    MESSAGE_EXPIRY_INTERVAL = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_IDENTIFIER = 0x0B
    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTHENTICATION_METHOD = 0x15
    AUTHENTICATION_DATA = 0x16
    REQUEST_PROBLEM_INFORMATION = 0x17
    WILL_DELAY_INTERVAL = 0x18
    REQUEST_RESPONSE_INFORMATION = 0x19
    RESPONSE_INFORMATION = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A


_R = ReasonCode

#: Which reason codes each packet may carry (the tables of v5 sections 3.2.2.2,
#: 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1).
#: Anything else is a Protocol Error.
REASON_CODES_BY_PACKET: dict[PacketType, frozenset[ReasonCode]] = {
    PacketType.CONNACK: frozenset(
        (
            _R.SUCCESS,
            _R.UNSPECIFIED_ERROR,
            _R.MALFORMED_PACKET,
            _R.PROTOCOL_ERROR,
            _R.IMPLEMENTATION_SPECIFIC_ERROR,
            _R.UNSUPPORTED_PROTOCOL_VERSION,
            _R.CLIENT_IDENTIFIER_NOT_VALID,
            _R.BAD_USER_NAME_OR_PASSWORD,
            _R.NOT_AUTHORIZED,
            _R.SERVER_UNAVAILABLE,
            _R.SERVER_BUSY,
            _R.BANNED,
            _R.BAD_AUTHENTICATION_METHOD,
            _R.TOPIC_NAME_INVALID,
            _R.PACKET_TOO_LARGE,
            _R.QUOTA_EXCEEDED,
            _R.PAYLOAD_FORMAT_INVALID,
            _R.RETAIN_NOT_SUPPORTED,
            _R.QOS_NOT_SUPPORTED,
            _R.USE_ANOTHER_SERVER,
            _R.SERVER_MOVED,
            _R.CONNECTION_RATE_EXCEEDED,
        )
    ),
    PacketType.PUBACK: frozenset(
        (
            _R.SUCCESS,
            _R.NO_MATCHING_SUBSCRIBERS,
            _R.UNSPECIFIED_ERROR,
            _R.IMPLEMENTATION_SPECIFIC_ERROR,
            _R.NOT_AUTHORIZED,
            _R.TOPIC_NAME_INVALID,
            _R.PACKET_IDENTIFIER_IN_USE,
            _R.QUOTA_EXCEEDED,
            _R.PAYLOAD_FORMAT_INVALID,
        )
    ),
    PacketType.PUBREL: frozenset((_R.SUCCESS, _R.PACKET_IDENTIFIER_NOT_FOUND)),
    PacketType.PUBCOMP: frozenset((_R.SUCCESS, _R.PACKET_IDENTIFIER_NOT_FOUND)),
    PacketType.SUBACK: frozenset(
        (
            _R.GRANTED_QOS_0,
            _R.GRANTED_QOS_1,
            _R.GRANTED_QOS_2,
            _R.UNSPECIFIED_ERROR,
            _R.IMPLEMENTATION_SPECIFIC_ERROR,
            _R.NOT_AUTHORIZED,
            _R.TOPIC_FILTER_INVALID,
            _R.PACKET_IDENTIFIER_IN_USE,
            _R.QUOTA_EXCEEDED,
            _R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            _R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
            _R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        )
    ),
    PacketType.UNSUBACK: frozenset(
        (
            _R.SUCCESS,
            _R.NO_SUBSCRIPTION_EXISTED,
            _R.UNSPECIFIED_ERROR,
            _R.IMPLEMENTATION_SPECIFIC_ERROR,
            _R.NOT_AUTHORIZED,
            _R.TOPIC_FILTER_INVALID,
            _R.PACKET_IDENTIFIER_IN_USE,
        )
    ),
    PacketType.DISCONNECT: frozenset(
        (
            _R.NORMAL_DISCONNECTION,
            _R.DISCONNECT_WITH_WILL_MESSAGE,
            _R.UNSPECIFIED_ERROR,
            _R.MALFORMED_PACKET,
            _R.PROTOCOL_ERROR,
            _R.IMPLEMENTATION_SPECIFIC_ERROR,
            _R.NOT_AUTHORIZED,
            _R.SERVER_BUSY,
            _R.SERVER_SHUTTING_DOWN,
            _R.KEEP_ALIVE_TIMEOUT,
            _R.SESSION_TAKEN_OVER,
            _R.TOPIC_FILTER_INVALID,
            _R.TOPIC_NAME_INVALID,
            _R.RECEIVE_MAXIMUM_EXCEEDED,
            _R.TOPIC_ALIAS_INVALID,
            _R.PACKET_TOO_LARGE,
            _R.MESSAGE_RATE_TOO_HIGH,
            _R.QUOTA_EXCEEDED,
            _R.ADMINISTRATIVE_ACTION,
            _R.PAYLOAD_FORMAT_INVALID,
            _R.RETAIN_NOT_SUPPORTED,
            _R.QOS_NOT_SUPPORTED,
            _R.USE_ANOTHER_SERVER,
            _R.SERVER_MOVED,
            _R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            _R.CONNECTION_RATE_EXCEEDED,
            _R.MAXIMUM_CONNECT_TIME,
            _R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
            _R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        )
    ),
    PacketType.AUTH: frozenset((_R.SUCCESS, _R.CONTINUE_AUTHENTICATION, _R.RE_AUTHENTICATE)),
}
# PUBREC carries the same codes as PUBACK (v5 3.5.2.1).
REASON_CODES_BY_PACKET[PacketType.PUBREC] = REASON_CODES_BY_PACKET[PacketType.PUBACK]

#: The 3.1.1 CONNACK answer for each v5 CONNACK reason code. The five 3.1.1
#: refusals map both ways; the other v5 refusals go to their nearest 3.1.1
#: meaning (an authentication failure is "bad user name or password", a
#: ban or policy refusal "not authorized", everything else "server unavailable").
_CONNACK_V311: dict[ReasonCode, ConnackReturnCode] = {
    _R.SUCCESS: ConnackReturnCode.ACCEPTED,
    _R.UNSUPPORTED_PROTOCOL_VERSION: ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION,
    _R.CLIENT_IDENTIFIER_NOT_VALID: ConnackReturnCode.IDENTIFIER_REJECTED,
    _R.SERVER_UNAVAILABLE: ConnackReturnCode.SERVER_UNAVAILABLE,
    _R.BAD_USER_NAME_OR_PASSWORD: ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD,
    _R.NOT_AUTHORIZED: ConnackReturnCode.NOT_AUTHORIZED,
    _R.BAD_AUTHENTICATION_METHOD: ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD,
    _R.BANNED: ConnackReturnCode.NOT_AUTHORIZED,
    _R.QUOTA_EXCEEDED: ConnackReturnCode.NOT_AUTHORIZED,
    _R.CONNECTION_RATE_EXCEEDED: ConnackReturnCode.NOT_AUTHORIZED,
}

#: The v5 reason code a 3.1.1 CONNACK return code stands for (decoding).
REASON_CODE_FOR_RETURN_CODE: dict[ConnackReturnCode, ReasonCode] = {
    ConnackReturnCode.ACCEPTED: _R.SUCCESS,
    ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION: _R.UNSUPPORTED_PROTOCOL_VERSION,
    ConnackReturnCode.IDENTIFIER_REJECTED: _R.CLIENT_IDENTIFIER_NOT_VALID,
    ConnackReturnCode.SERVER_UNAVAILABLE: _R.SERVER_UNAVAILABLE,
    ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD: _R.BAD_USER_NAME_OR_PASSWORD,
    ConnackReturnCode.NOT_AUTHORIZED: _R.NOT_AUTHORIZED,
}


def connack_return_code(reason_code: ReasonCode) -> ConnackReturnCode:
    """The 3.1.1 CONNACK return code that says what ``reason_code`` says.

    Any v5 refusal without a 3.1.1 counterpart becomes Server unavailable
    (0x03), the one 3.1.1 code that tells a client to retry later.
    """
    return _CONNACK_V311.get(reason_code, ConnackReturnCode.SERVER_UNAVAILABLE)


#: The 3.1.1 SUBACK Failure return code (3.1.1 section 3.9.3); every v5
#: SUBACK failure reason code is sent to a 3.1.1 client as this.
SUBACK_FAILURE_V311 = 0x80
