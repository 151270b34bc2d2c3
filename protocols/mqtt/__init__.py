"""hub's sans-I/O MQTT codec: MQTT 3.1.1 and 5.0, bytes in, packets out.

No sockets, no asyncio, no clock: the asyncio server (and the broker on top
of it) feeds bytes in and writes bytes out. One connection::

    from protocols.mqtt import MqttConnection, Role, Connack, Publish, ProtocolError

    conn = MqttConnection(Role.SERVER, max_packet_size=1024 * 1024)
    try:
        for packet in conn.receive_data(data):  # partial data and many packets are fine
            ...                                  # Connect, Publish, Subscribe, ...
    except ProtocolError as error:             # the peer broke the protocol
        transport.write(error.data_to_send)    # CONNACK/DISCONNECT with the right code, or b""
        transport.close()

    transport.write(conn.send(Connack(session_present=False)))
    conn.receive_data(b"")                     # packets pipelined behind CONNECT, now due
    transport.write(conn.send(Publish("sensors/1/temp", b"21.5", QoS.AT_LEAST_ONCE,
                                      packet_id=1)))

Modules, one idea each:

- :mod:`.codes`: enums with the specs' names (``PacketType``, ``QoS``,
  ``ProtocolVersion``, ``ReasonCode``, ``ConnackReturnCode``,
  ``PropertyId``, ``RetainHandling``), which reason codes each packet may
  carry, and the v5 -> 3.1.1 CONNACK code mapping.
- :mod:`.packets`: one frozen dataclass per control packet (``Connect``,
  ``Connack``, ``Publish``, ``Puback``, ``Pubrec``, ``Pubrel``,
  ``Pubcomp``, ``Subscribe`` with ``Subscription`` options, ``Suback``,
  ``Unsubscribe``, ``Unsuback``, ``Pingreq``, ``Pingresp``,
  ``Disconnect``, ``Auth``; ``Will``). One class serves both versions;
  v5-only fields are dropped when encoding for 3.1.1.
- :mod:`.properties`: the typed ``Properties`` of v5 packets (why typed:
  see there); ``EMPTY_PROPERTIES`` is shared by every packet without any.
- :mod:`.reader` / :mod:`.writer`: one decoder / encoder per packet, plus
  ``decode_packet(data, version)`` and ``encode(packet, version)`` for
  single packets outside a connection.
- :mod:`.topics`: topic name and filter validation, ``topic_matches``
  (with the ``$``-topic rule), ``parse_shared_subscription``.
- :mod:`.errors`: the error tree; every peer error carries its v5 reason
  code, its 3.1.1 CONNACK return code or "just close", and the bytes to send.
- :mod:`.connection`: ``MqttConnection``, the state machine as a table,
  limits, the version learnt from CONNECT, topic alias resolution.

The asyncio server around the codec (``docs/specs/mqtt.md`` is its ASGI
interface): :mod:`.config` (``MqttConfig``, every limit), :mod:`.server`
(``MqttServer`` and the per-listener client ids and sessions),
:mod:`.protocol` (one connection and its application instance),
:mod:`.flow` (QoS flows, windows and requests after CONNACK),
:mod:`.auth` (enhanced authentication: the AUTH exchange with the app),
:mod:`.session` (wire state that outlives a connection),
:mod:`.messages` (the ASGI vocabulary). Logger: ``protocols.mqtt``.

What the codec leaves to its server: keep-alive timing, Packet Identifier
allocation and in-flight windows (Receive Maximum), QoS retransmission,
sessions, will delivery, and choosing every CONNACK/SUBACK answer.

This package never imports Django or ``hub``.
"""

from .codes import (
    ConnackReturnCode,
    PacketType,
    PropertyId,
    ProtocolVersion,
    QoS,
    ReasonCode,
    RetainHandling,
    connack_return_code,
)
from .config import MqttConfig
from .connection import DEFAULT_MAX_PACKET_SIZE, MqttConnection, Role, State
from .errors import (
    ClientIdentifierNotValid,
    LocalProtocolError,
    MalformedPacket,
    MqttError,
    OutgoingPacketTooLarge,
    PacketTooLarge,
    ProtocolError,
    ProtocolViolation,
    TopicAliasInvalid,
    TopicFilterInvalid,
    TopicNameInvalid,
    UnsupportedProtocolVersion,
)
from .messages import PeerDisconnected
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
)
from .properties import EMPTY_PROPERTIES, Properties
from .reader import decode_packet
from .server import MqttServer
from .topics import (
    SharedSubscription,
    is_valid_topic_filter,
    is_valid_topic_name,
    parse_shared_subscription,
    topic_matches,
)
from .writer import encode

__all__ = [
    "DEFAULT_MAX_PACKET_SIZE",
    "EMPTY_PROPERTIES",
    "Auth",
    "ClientIdentifierNotValid",
    "Connack",
    "ConnackReturnCode",
    "Connect",
    "Disconnect",
    "LocalProtocolError",
    "MalformedPacket",
    "MqttConfig",
    "MqttConnection",
    "MqttError",
    "MqttServer",
    "OutgoingPacketTooLarge",
    "Packet",
    "PacketTooLarge",
    "PacketType",
    "PeerDisconnected",
    "Pingreq",
    "Pingresp",
    "Properties",
    "PropertyId",
    "ProtocolError",
    "ProtocolVersion",
    "ProtocolViolation",
    "Puback",
    "Pubcomp",
    "Publish",
    "Pubrec",
    "Pubrel",
    "QoS",
    "ReasonCode",
    "RetainHandling",
    "Role",
    "SharedSubscription",
    "State",
    "Suback",
    "Subscribe",
    "Subscription",
    "TopicAliasInvalid",
    "TopicFilterInvalid",
    "TopicNameInvalid",
    "Unsuback",
    "Unsubscribe",
    "UnsupportedProtocolVersion",
    "Will",
    "connack_return_code",
    "decode_packet",
    "encode",
    "is_valid_topic_filter",
    "is_valid_topic_name",
    "parse_shared_subscription",
    "topic_matches",
]
