"""Errors of the MQTT codec, each carrying the answer the wire expects.

Two kinds of mistakes, as h11 splits them: the peer broke the protocol
(:class:`ProtocolError`: answer, then close the connection), or this side
asked the codec to send something the spec or the connection state forbids
(:class:`LocalProtocolError`: a bug in the caller; nothing was sent and the
connection is unchanged)::

    Exception
    └── MqttError
        ├── LocalProtocolError              this side tried to send what it must not
        │   └── OutgoingPacketTooLarge      over the peer's Maximum Packet Size: drop it
        └── ProtocolError                   the peer broke the protocol        reason  3.1.1
            ├── MalformedPacket             cannot be parsed as the spec says   0x81   close
            ├── ProtocolViolation           parsed, but not allowed here        0x82   close
            ├── UnsupportedProtocolVersion  CONNECT of a level we don't speak   0x84   0x01
            ├── ClientIdentifierNotValid    CONNECT client id refused           0x85   0x02
            ├── TopicFilterInvalid          SUBSCRIBE/UNSUBSCRIBE filter        0x8F   close
            ├── TopicNameInvalid            PUBLISH or will topic               0x90   close
            ├── TopicAliasInvalid           alias 0 or over the maximum         0x94   close
            └── PacketTooLarge              over max_packet_size                0x95   close

Every :class:`ProtocolError` says what the server answers:

- ``reason_code``: the MQTT 5.0 reason code, for a CONNACK when the error
  happens before the connection is accepted, for a DISCONNECT after;
- ``return_code``: the MQTT 3.1.1 CONNACK return code when 3.1.1 answers a
  bad CONNECT with a CONNACK (3.1.1 section 3.1.4), or ``None`` when a 3.1.1
  server must simply close the connection (3.1.1 section 4.8);
- ``answer`` and ``data_to_send``: filled in by
  :class:`~protocols.mqtt.connection.MqttConnection`, which knows the
  version and the state: the packet to send before closing (or ``None``) and
  its bytes (``b""`` when there is nothing to send). The server writes
  ``data_to_send`` and closes; it never has to choose a code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .codes import ConnackReturnCode, ReasonCode

if TYPE_CHECKING:
    from .packets import Connack, Disconnect


class MqttError(Exception):
    """Base class of every error the MQTT codec raises."""


class LocalProtocolError(MqttError):
    """This side asked to send a packet the spec or the connection state forbids.

    Raised by ``MqttConnection.send()`` and the encoders before anything is
    produced: the connection state is unchanged and nothing must be written.
    """


class OutgoingPacketTooLarge(LocalProtocolError):
    """The encoded packet exceeds the Maximum Packet Size the peer announced.

    MQTT 5.0 3.1.2.11.4: the server MUST NOT send it; a PUBLISH is discarded
    as if delivered, other packets can be sent again without their Reason
    String and User Properties.
    """

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        #: Size of the encoded packet, in bytes.
        self.size = size
        #: The peer's Maximum Packet Size.
        self.limit = limit


class ProtocolError(MqttError):
    """The peer broke the MQTT protocol; answer with ``data_to_send`` and close."""

    #: MQTT 5.0 reason code for the CONNACK or DISCONNECT that answers this error.
    reason_code: ClassVar[ReasonCode] = ReasonCode.UNSPECIFIED_ERROR
    #: MQTT 3.1.1 CONNACK return code, or None: a 3.1.1 server just closes.
    return_code: ClassVar[ConnackReturnCode | None] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: The packet to send before closing, chosen by the connection (None: just close).
        self.answer: Connack | Disconnect | None = None
        #: ``answer`` encoded for the connection's protocol version (b"" when None).
        self.data_to_send = b""


class MalformedPacket(ProtocolError):
    """The bytes cannot be parsed as the spec says (v5 1.2 "Malformed Packet")."""

    reason_code = ReasonCode.MALFORMED_PACKET


class ProtocolViolation(ProtocolError):
    """A well-formed packet the protocol forbids here (v5 1.2 "Protocol Error", 0x82).

    Named apart from :class:`ProtocolError`, the base of every peer error.
    """

    reason_code = ReasonCode.PROTOCOL_ERROR


class UnsupportedProtocolVersion(ProtocolError):
    """CONNECT names a protocol level this connection does not speak."""

    reason_code = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION
    return_code = ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION


class ClientIdentifierNotValid(ProtocolError):
    """CONNECT's client identifier is refused (3.1.1: empty with Clean Session 0)."""

    reason_code = ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    return_code = ConnackReturnCode.IDENTIFIER_REJECTED


class TopicFilterInvalid(ProtocolError):
    """A SUBSCRIBE or UNSUBSCRIBE topic filter breaks the rules of 4.7."""

    reason_code = ReasonCode.TOPIC_FILTER_INVALID


class TopicNameInvalid(ProtocolError):
    """A PUBLISH or will topic name is empty or holds a wildcard (4.7.3)."""

    reason_code = ReasonCode.TOPIC_NAME_INVALID


class TopicAliasInvalid(ProtocolError):
    """A Topic Alias of 0 or over the Topic Alias Maximum (v5 3.3.2.3.4)."""

    reason_code = ReasonCode.TOPIC_ALIAS_INVALID


class PacketTooLarge(ProtocolError):
    """A packet's size exceeds the connection's ``max_packet_size``."""

    reason_code = ReasonCode.PACKET_TOO_LARGE
