"""Golden vectors: spec examples decoded and encoded byte for byte, both versions."""

from __future__ import annotations

import pytest

from protocols.mqtt import (
    EMPTY_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    LocalProtocolError,
    MalformedPacket,
    MqttConnection,
    OutgoingPacketTooLarge,
    Pingreq,
    Properties,
    ProtocolVersion,
    Puback,
    Publish,
    Pubrel,
    QoS,
    ReasonCode,
    RetainHandling,
    Role,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Will,
    decode_packet,
    encode,
)
from protocols.mqtt.connection import MAX_PACKET_SIZE
from protocols.mqtt.fields import read_remaining_length
from protocols.mqtt.writer import encode_plain_publish, encode_remaining_length

from .helpers import CONNECT_V5_WIRE, CONNECT_V311_WIRE

V311, V5 = ProtocolVersion.V311, ProtocolVersion.V5

CONNECT_PACKET = Connect(
    client_id="hub-1",
    protocol_version=V5,
    clean_start=True,
    keep_alive=10,
    username="alice",
    password=b"pw",
    will=Will("dev/gone", b"bye", QoS.AT_LEAST_ONCE, retain=False),
    properties=Properties(session_expiry_interval=10),
)

#: (packet, version, wire): each read both ways.
GOLDEN = [
    (CONNECT_PACKET, V5, CONNECT_V5_WIRE),
    (
        Connect(
            "hub-1",
            V311,
            keep_alive=10,
            username="alice",
            password=b"pw",
            will=Will("dev/gone", b"bye", QoS.AT_LEAST_ONCE),
        ),
        V311,
        CONNECT_V311_WIRE,
    ),
    (Connack(session_present=True), V311, bytes.fromhex("2002 0100")),
    (Connack(reason_code=ReasonCode.NOT_AUTHORIZED), V311, bytes.fromhex("2002 0005")),
    (Connack(reason_code=ReasonCode.NOT_AUTHORIZED), V5, bytes.fromhex("2003 0087 00")),
    (
        Connack(properties=Properties(topic_alias_maximum=10, maximum_qos=QoS.AT_LEAST_ONCE)),
        V5,
        bytes.fromhex("2008 0000 05 22000a 2401"),
    ),
    # 3.1.1 3.3 example: topic "a/b", Packet Identifier 10.
    (
        Publish("a/b", b"hi", QoS.AT_LEAST_ONCE, packet_id=10),
        V311,
        bytes.fromhex("3209 0003612f62 000a 6869"),
    ),
    (Publish("a/b", b"", retain=True), V5, bytes.fromhex("3106 0003612f62 00")),
    (
        Publish("a/b", b"x", QoS.EXACTLY_ONCE, packet_id=1, dup=True),
        V5,
        bytes.fromhex("3c09 0003612f62 0001 00 78"),
    ),
    (
        Publish("t", b"", properties=Properties(user_properties=(("k", "v"),))),
        V5,
        bytes.fromhex("300b 000174 07 2600016b000176"),
    ),
    (Puback(7), V311, bytes.fromhex("4002 0007")),
    (Puback(7), V5, bytes.fromhex("4002 0007")),
    (Puback(7, ReasonCode.NO_MATCHING_SUBSCRIBERS), V5, bytes.fromhex("4003 0007 10")),
    (Pubrel(7), V5, bytes.fromhex("6202 0007")),
    (
        Subscribe(
            3,
            (
                Subscription("a/+", QoS.AT_LEAST_ONCE),
                Subscription("b/#", QoS.EXACTLY_ONCE),
            ),
        ),
        V311,
        bytes.fromhex("820e 0003 0003612f2b 01 0003622f23 02"),
    ),
    (
        Subscribe(
            3,
            (
                Subscription(
                    "a",
                    QoS.AT_LEAST_ONCE,
                    no_local=True,
                    retain_as_published=True,
                    retain_handling=RetainHandling.DO_NOT_SEND,
                ),
            ),
            Properties(subscription_identifiers=(200,)),
        ),
        V5,
        bytes.fromhex("820a 0003 03 0bc801 000161 2d"),
    ),
    (
        Suback(3, (ReasonCode.GRANTED_QOS_1, ReasonCode.UNSPECIFIED_ERROR)),
        V311,
        bytes.fromhex("9004 0003 01 80"),
    ),
    (
        Suback(3, (ReasonCode.GRANTED_QOS_1, ReasonCode.NOT_AUTHORIZED)),
        V5,
        bytes.fromhex("9005 0003 00 01 87"),
    ),
    (Unsuback(4), V311, bytes.fromhex("b002 0004")),
    (Unsuback(4, (ReasonCode.NO_SUBSCRIPTION_EXISTED,)), V5, bytes.fromhex("b004 0004 00 11")),
    (Pingreq(), V311, bytes.fromhex("c000")),
    (Disconnect(), V311, bytes.fromhex("e000")),
    (Disconnect(), V5, bytes.fromhex("e000")),
    (Disconnect(ReasonCode.SERVER_SHUTTING_DOWN), V5, bytes.fromhex("e001 8b")),
    (
        Disconnect(ReasonCode.PACKET_TOO_LARGE, Properties(reason_string="x")),
        V5,
        bytes.fromhex("e006 95 04 1f000178"),
    ),
    (Auth(), V5, bytes.fromhex("f000")),
    (
        Auth(ReasonCode.CONTINUE_AUTHENTICATION, Properties(authentication_method="M")),
        V5,
        bytes.fromhex("f006 18 04 1500014d"),
    ),
]
GOLDEN_IDS = [f"{type(p).__name__}-{v.name}-{w[:6].hex()}" for p, v, w in GOLDEN]


class TestGoldenVectors:
    @pytest.mark.parametrize(("packet", "version", "wire"), GOLDEN, ids=GOLDEN_IDS)
    def test_a_packet_encodes_to_its_spec_bytes(self, packet, version, wire) -> None:
        assert encode(packet, version) == wire

    @pytest.mark.parametrize(("packet", "version", "wire"), GOLDEN, ids=GOLDEN_IDS)
    def test_spec_bytes_decode_to_the_packet(self, packet, version, wire) -> None:
        assert decode_packet(wire, version) == packet

    def test_the_spec_connect_is_read_by_a_server_split_at_every_offset(self) -> None:
        for cut in range(len(CONNECT_V5_WIRE) + 1):
            conn = MqttConnection(Role.SERVER)
            events = conn.receive_data(CONNECT_V5_WIRE[:cut])
            events += conn.receive_data(CONNECT_V5_WIRE[cut:])
            assert events == [CONNECT_PACKET], cut
            assert conn.protocol_version is V5

    def test_packets_without_properties_share_the_empty_properties(self) -> None:
        assert decode_packet(bytes.fromhex("3006 0003612f62 00"), V5).properties is EMPTY_PROPERTIES


#: Remaining Length boundaries of 1.5.5 (Table 1.1) and their encodings.
REMAINING_LENGTHS = [
    (0, "00"),
    (127, "7f"),
    (128, "8001"),
    (16_383, "ff7f"),
    (16_384, "808001"),
    (2_097_151, "ffff7f"),
    (2_097_152, "80808001"),
    (268_435_455, "ffffff7f"),
]


class TestRemainingLength:
    @pytest.mark.parametrize(("value", "wire"), REMAINING_LENGTHS)
    def test_boundary_values_encode_as_the_spec_table(self, value: int, wire: str) -> None:
        assert encode_remaining_length(value) == bytes.fromhex(wire)

    @pytest.mark.parametrize(("value", "wire"), REMAINING_LENGTHS)
    def test_boundary_values_decode_as_the_spec_table(self, value: int, wire: str) -> None:
        data = bytes.fromhex(wire)
        assert read_remaining_length(data, 0, len(data)) == (value, len(data))

    @pytest.mark.parametrize(("value", "wire"), REMAINING_LENGTHS[1:7])
    def test_a_publish_of_each_boundary_length_is_read_split_anywhere_in_its_header(
        self, value: int, wire: str
    ) -> None:
        packet = Publish("t", b"p" * (value - 3))
        data = encode(packet, V311)
        assert data[1 : 1 + len(wire) // 2] == bytes.fromhex(wire)
        for cut in range(1, 2 + len(wire) // 2):
            conn = MqttConnection(Role.CLIENT, max_packet_size=MAX_PACKET_SIZE)
            conn.send(Connect("c", V311))
            conn.receive_data(bytes.fromhex("20020000"))
            assert conn.receive_data(data[:cut]) + conn.receive_data(data[cut:]) == [packet]

    def test_the_largest_remaining_length_waits_for_its_payload(self) -> None:
        conn = MqttConnection(Role.CLIENT, max_packet_size=MAX_PACKET_SIZE)
        conn.send(Connect("c", V311))
        conn.receive_data(bytes.fromhex("20020000"))
        assert conn.receive_data(bytes.fromhex("30ffffff7f")) == []

    def test_a_fifth_length_byte_is_malformed(self) -> None:
        with pytest.raises(MalformedPacket) as caught:
            read_remaining_length(bytes.fromhex("ffffffff01"), 0, 5)
        assert caught.value.reason_code == ReasonCode.MALFORMED_PACKET

    def test_one_over_the_largest_cannot_be_encoded(self) -> None:
        with pytest.raises(LocalProtocolError):
            encode_remaining_length(268_435_456)


class TestVersionDifferences:
    def test_a_311_peer_never_sees_v5_fields(self) -> None:
        packet = Publish("a", b"", properties=Properties(message_expiry_interval=5))
        assert encode(packet, V311) == bytes.fromhex("3003 000161")

    def test_a_311_ack_leaves_out_the_reason_code(self) -> None:
        assert encode(Puback(1, ReasonCode.QUOTA_EXCEEDED), V311) == bytes.fromhex("40020001")

    def test_a_v5_connack_refusal_without_311_counterpart_is_server_unavailable(self) -> None:
        assert encode(Connack(reason_code=ReasonCode.SERVER_BUSY), V311) == bytes.fromhex(
            "20020003"
        )

    def test_every_suback_failure_reaches_a_311_client_as_0x80(self) -> None:
        packet = Suback(1, (ReasonCode.NOT_AUTHORIZED, ReasonCode.TOPIC_FILTER_INVALID))
        assert encode(packet, V311) == bytes.fromhex("9004 0001 80 80")

    def test_auth_cannot_be_sent_to_a_311_peer(self) -> None:
        with pytest.raises(LocalProtocolError, match="AUTH"):
            encode(Auth(), V311)


class TestWriterRefusesWhatThePeerWouldCallMalformed:
    @pytest.mark.parametrize(
        "packet",
        [
            Publish("a/+", b""),
            Publish("a\x00", b""),
            Publish("", b""),
            Publish("a", b"", QoS.AT_LEAST_ONCE),
            Publish("a", b"", QoS.AT_LEAST_ONCE, packet_id=0),
            Puback(70_000),
            Connect("c", V5, keep_alive=70_000),
            Subscribe(1, ()),
            Connect("c", V311, password=b"p"),
        ],
        ids=repr,
    )
    def test_the_writer_raises_local_protocol_error(self, packet) -> None:
        version = packet.protocol_version if isinstance(packet, Connect) else V5
        with pytest.raises(LocalProtocolError):
            encode(packet, version)


class TestPlainPublish:
    """A QoS 0 PUBLISH without properties, encoded once for all the peers it goes to."""

    @pytest.mark.parametrize("version", [ProtocolVersion.V311, ProtocolVersion.V5])
    @pytest.mark.parametrize(
        ("topic", "payload", "retain"),
        [("a/b", b"21.5", False), ("été/x", b"", True), ("t", b"z" * 5000, False)],
    )
    def test_the_bytes_are_those_of_the_packet(self, version, topic, payload, retain):
        v5 = version is ProtocolVersion.V5
        expected = encode(Publish(topic, payload, retain=retain), version)
        assert encode_plain_publish(topic, payload, retain, v5) == expected

    def test_a_message_to_many_peers_is_encoded_once(self):
        payload = b"fan-out"
        first = encode_plain_publish("alerts/fire", payload, False, False)
        assert encode_plain_publish("alerts/fire", payload, False, False) is first
        assert encode_plain_publish("alerts/fire", payload, False, True) != first  # v5 bytes

    @pytest.mark.parametrize("topic", ["", "a/#", "a/+/b", "a\x00b"])
    def test_a_topic_that_is_not_a_topic_name_is_refused(self, topic):
        with pytest.raises(LocalProtocolError):
            encode_plain_publish(topic, b"x", False, False)

    def test_the_connection_respects_the_peers_maximum_packet_size(self):
        server = MqttConnection(Role.SERVER)
        server.receive_data(
            encode(Connect("c", ProtocolVersion.V5, properties=Properties(maximum_packet_size=20)))
        )
        server.send(Connack())
        assert server.send_plain_publish("t", b"x" * 10) == encode(
            Publish("t", b"x" * 10), ProtocolVersion.V5
        )
        with pytest.raises(OutgoingPacketTooLarge):
            server.send_plain_publish("t", b"x" * 20)


class TestSuccessfulPuback:
    @pytest.mark.parametrize("version", [ProtocolVersion.V311, ProtocolVersion.V5])
    def test_the_bytes_are_those_of_the_packet(self, version):
        server = MqttConnection(Role.SERVER)
        server.receive_data(encode(Connect("c", version), version))
        server.send(Connack())
        assert server.send_puback(513) == encode(Puback(513), version)
