"""Wire vectors and small drivers shared by the MQTT codec tests."""

from __future__ import annotations

from protocols.mqtt import (
    Connack,
    Connect,
    MqttConnection,
    Packet,
    ProtocolError,
    ProtocolVersion,
    Role,
)
from protocols.mqtt.writer import encode_remaining_length

#: The MQTT 5.0 CONNECT of the spec's variable header example (v5 3.1.2.12:
#: protocol name, level 5, flags 0xCE, keep alive 10, Session Expiry
#: Interval 10), completed with a payload: client id "hub-1", will topic
#: "dev/gone", will payload "bye", user name "alice", password "pw".
CONNECT_V5_WIRE = bytes.fromhex(
    "10 32"
    "0004 4d515454 05 ce 000a 05 11 0000000a"
    "0005 6875622d31"
    "00"
    "0008 6465762f676f6e65"
    "0003 627965"
    "0005 616c696365"
    "0002 7077"
)

#: The same CONNECT in MQTT 3.1.1 (3.1.1 3.1.2.10 example: level 4, flags 0xCE, keep alive 10).
CONNECT_V311_WIRE = bytes.fromhex(
    "10 2b"
    "0004 4d515454 04 ce 000a"
    "0005 6875622d31"
    "0008 6465762f676f6e65"
    "0003 627965"
    "0005 616c696365"
    "0002 7077"
)

#: Minimal CONNECTs: client id "c", clean start, keep alive 60.
MIN_CONNECT = {
    ProtocolVersion.V311: bytes.fromhex("100d 00044d515454 04 02 003c 0001 63"),
    ProtocolVersion.V5: bytes.fromhex("100e 00044d515454 05 02 003c 00 0001 63"),
}


def wire(text: str) -> bytes:
    """Bytes from hex; ``"30|0001 61"`` fills in the Remaining Length after the first byte."""
    first, bar, body = text.replace(" ", "").partition("|")
    if not bar:
        return bytes.fromhex(first)
    data = bytes.fromhex(body)
    return bytes.fromhex(first) + encode_remaining_length(len(data)) + data


def feed(conn: MqttConnection, wire: bytes) -> list[Packet]:
    """Feed ``wire``; answer a received CONNECT with a plain CONNACK, as a server does."""
    events = conn.receive_data(wire)
    if conn.role is Role.SERVER and any(isinstance(event, Connect) for event in events):
        conn.send(Connack())
        events += conn.receive_data(b"")
    return events


def connected_server(
    version: ProtocolVersion = ProtocolVersion.V5, **options: object
) -> MqttConnection:
    """A server connection past CONNECT and CONNACK."""
    conn = MqttConnection(Role.SERVER, **options)  # type: ignore[arg-type]
    feed(conn, MIN_CONNECT[version])
    return conn


def error_of(conn: MqttConnection, wire: bytes) -> ProtocolError:
    """The protocol error ``wire`` raises on ``conn``."""
    try:
        feed(conn, wire)
    except ProtocolError as error:
        return error
    raise AssertionError(f"{wire.hex()} was accepted")
