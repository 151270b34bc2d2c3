"""Every validation rule, with the reason code and the bytes the server answers with."""

from __future__ import annotations

import pytest

from protocols.mqtt import (
    ClientIdentifierNotValid,
    Connack,
    ConnackReturnCode,
    Disconnect,
    MalformedPacket,
    MqttConnection,
    PacketTooLarge,
    ProtocolVersion,
    ProtocolViolation,
    ReasonCode,
    Role,
    State,
    TopicAliasInvalid,
    TopicFilterInvalid,
    TopicNameInvalid,
    UnsupportedProtocolVersion,
)

from .helpers import MIN_CONNECT, connected_server, error_of, wire

V311, V5 = ProtocolVersion.V311, ProtocolVersion.V5
R = ReasonCode

#: (rule, packet after CONNECT/CONNACK, error class, v5 reason code); the same
#: bytes are valid framing in both versions unless the rule is v5-only.
AFTER_CONNECT = [
    ("malformed remaining length", "30ffffffff01", MalformedPacket, R.MALFORMED_PACKET),
    ("PUBACK reserved flags", "41|0001", MalformedPacket, R.MALFORMED_PACKET),
    ("PUBREL reserved flags", "60|0001", MalformedPacket, R.MALFORMED_PACKET),
    ("SUBSCRIBE reserved flags", "80|0001 P 000161 00", MalformedPacket, R.MALFORMED_PACKET),
    ("PINGREQ with a body", "c00100", MalformedPacket, R.MALFORMED_PACKET),
    ("invalid UTF-8 topic", "30|0002c32800", MalformedPacket, R.MALFORMED_PACKET),
    ("U+0000 in a topic", "30|000261000000", MalformedPacket, R.MALFORMED_PACKET),
    ("surrogate in a topic", "30|0003eda08000", MalformedPacket, R.MALFORMED_PACKET),
    ("'+' in a PUBLISH topic", "30|00032b2f6100", TopicNameInvalid, R.TOPIC_NAME_INVALID),
    ("'#' in a PUBLISH topic", "30|00012300", TopicNameInvalid, R.TOPIC_NAME_INVALID),
    ("PUBLISH QoS 3", "36|000161000100", MalformedPacket, R.MALFORMED_PACKET),
    ("packet id 0 at QoS 1", "32|000161000000", MalformedPacket, R.MALFORMED_PACKET),
    ("DUP at QoS 0", "38|00016100", MalformedPacket, R.MALFORMED_PACKET),
    ("PUBACK packet id 0", "40|0000", MalformedPacket, R.MALFORMED_PACKET),
    ("topic longer than the packet", "300400096100", MalformedPacket, R.MALFORMED_PACKET),
    ("second CONNECT", MIN_CONNECT[V5].hex(), ProtocolViolation, R.PROTOCOL_ERROR),
    ("CONNACK sent to a server", "20|0000", ProtocolViolation, R.PROTOCOL_ERROR),
    ("SUBACK sent to a server", "90|000100", ProtocolViolation, R.PROTOCOL_ERROR),
    ("reserved packet type 0", "0000", MalformedPacket, R.MALFORMED_PACKET),
    ("filter 'a/b#'", "82|0001 P 0004612f6223 00", TopicFilterInvalid, R.TOPIC_FILTER_INVALID),
    ("filter 'a+'", "82|0001 P 0003612b2f 00", TopicFilterInvalid, R.TOPIC_FILTER_INVALID),
    ("SUBSCRIBE without filters", "82|0001 P", ProtocolViolation, R.PROTOCOL_ERROR),
    ("SUBSCRIBE QoS 3", "82|0001 P 000161 03", MalformedPacket, R.MALFORMED_PACKET),
    ("UNSUBSCRIBE without filters", "a2|0001 P", ProtocolViolation, R.PROTOCOL_ERROR),
]

#: v5-only rules: properties, reason codes, options.
AFTER_CONNECT_V5 = [
    ("duplicate property", "30|0001610a02000000010200000002", ProtocolViolation, R.PROTOCOL_ERROR),
    ("property not allowed in PUBLISH", "30|00016103130001", MalformedPacket, R.MALFORMED_PACKET),
    ("unknown property", "30|000161027f00", MalformedPacket, R.MALFORMED_PACKET),
    ("property longer than its packet", "30|000161050200", MalformedPacket, R.MALFORMED_PACKET),
    ("payload format indicator 2", "30|000161020102", ProtocolViolation, R.PROTOCOL_ERROR),
    ("Topic Alias 0", "30|00016103230000", TopicAliasInvalid, R.TOPIC_ALIAS_INVALID),
    ("Topic Alias over the maximum", "30|00016103230001", TopicAliasInvalid, R.TOPIC_ALIAS_INVALID),
    ("empty topic without an alias", "30|000000", ProtocolViolation, R.PROTOCOL_ERROR),
    (
        "Subscription Identifier from a client",
        "30|000161020b01",
        ProtocolViolation,
        R.PROTOCOL_ERROR,
    ),
    ("unknown reason code", "40|000105", MalformedPacket, R.MALFORMED_PACKET),
    ("reason code wrong for PUBREL", "62|000110", ProtocolViolation, R.PROTOCOL_ERROR),
    ("Retain Handling 3", "82|00010000016130", ProtocolViolation, R.PROTOCOL_ERROR),
    ("reserved option bits", "82|00010000016140", MalformedPacket, R.MALFORMED_PACKET),
    (
        "No Local on a shared subscription",
        "82|0001 00 000a 2473686172652f672f61 04",
        ProtocolViolation,
        R.PROTOCOL_ERROR,
    ),
    (
        "shared subscription without filter",
        "82|0001 00 0008 2473686172652f67 00",
        TopicFilterInvalid,
        R.TOPIC_FILTER_INVALID,
    ),
    (
        "two Subscription Identifiers",
        "82|0001040b010b0200016100",
        ProtocolViolation,
        R.PROTOCOL_ERROR,
    ),
    ("Subscription Identifier 0", "82|0001020b0000016100", ProtocolViolation, R.PROTOCOL_ERROR),
]


def rule_id(rule: tuple[object, ...]) -> str:
    return str(rule[0])


class TestRulesAfterConnectV5:
    @pytest.mark.parametrize("rule", AFTER_CONNECT + AFTER_CONNECT_V5, ids=rule_id)
    def test_the_server_answers_disconnect_with_the_rules_reason_code(self, rule) -> None:
        _, data, error_class, reason_code = rule
        error = error_of(connected_server(V5), wire(data.replace("P", "00")))
        assert type(error) is error_class
        assert error.reason_code is reason_code
        assert error.answer == Disconnect(reason_code)
        assert error.data_to_send == bytes((0xE0, 1, reason_code))


class TestRulesAfterConnectV311:
    @pytest.mark.parametrize("rule", AFTER_CONNECT, ids=rule_id)
    def test_the_server_just_closes_a_311_connection(self, rule) -> None:
        _, data, error_class, _ = rule
        data = data.replace(MIN_CONNECT[V5].hex(), MIN_CONNECT[V311].hex()).replace("P", "")
        error = error_of(connected_server(V311), wire(data))
        assert type(error) is error_class
        assert error.answer is None
        assert error.data_to_send == b""

    def test_a_v5_reason_code_in_a_311_ack_is_malformed(self) -> None:
        error = error_of(connected_server(V311), wire("40|000110"))
        assert isinstance(error, MalformedPacket)

    def test_auth_does_not_exist_in_311(self) -> None:
        assert isinstance(error_of(connected_server(V311), wire("f000")), MalformedPacket)


class TestConnectRefusals:
    @pytest.mark.parametrize(
        ("data", "answer"),
        [
            ("10|00044d5154540602003c000163", "20|0001"),  # level 6: 3.1.1 form, 0x01
            ("10|00064d51497364700302003c000163", "20|0001"),  # MQTT 3.1 (MQIsdp)
        ],
    )
    def test_an_unknown_protocol_level_gets_connack_unacceptable_protocol_version(
        self, data: str, answer: str
    ) -> None:
        error = error_of(MqttConnection(), wire(data))
        assert isinstance(error, UnsupportedProtocolVersion)
        assert error.reason_code is R.UNSUPPORTED_PROTOCOL_VERSION
        assert error.return_code is ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION
        assert error.data_to_send == wire(answer)

    def test_a_v5_client_on_a_311_only_listener_gets_connack_0x84(self) -> None:
        conn = MqttConnection(protocol_versions=(V311,))
        error = error_of(conn, MIN_CONNECT[V5])
        assert isinstance(error, UnsupportedProtocolVersion)
        assert error.answer == Connack(reason_code=R.UNSUPPORTED_PROTOCOL_VERSION)
        assert error.data_to_send == wire("20|008400")

    def test_a_311_empty_client_id_without_clean_session_gets_identifier_rejected(self) -> None:
        error = error_of(MqttConnection(), wire("10|00044d5154540400003c0000"))
        assert isinstance(error, ClientIdentifierNotValid)
        assert error.data_to_send == wire("20|0002")

    def test_a_v5_empty_client_id_without_clean_start_is_accepted(self) -> None:
        conn = MqttConnection()
        [connect] = conn.receive_data(wire("10|00044d5154540500003c000000"))
        assert connect.client_id == ""

    @pytest.mark.parametrize(
        ("rule", "data", "error_class"),
        [
            ("reserved flag", "10|00044d5154540503003c00000163", MalformedPacket),
            ("will QoS without will flag", "10|00044d515454050a003c00000163", MalformedPacket),
            ("will QoS 3", "10|00044d515454051e003c00000163", MalformedPacket),
            ("invalid UTF-8 client id", "10|00044d5154540502003c000001ff", MalformedPacket),
            ("U+0000 client id", "10|00044d5154540502003c00000100", MalformedPacket),
            ("fields past the end", "100d 00044d515454 05 02 003c 00 0002 63", MalformedPacket),
            (
                "duplicate property",
                "10|00044d5154540502003c0a11000000011100000001000163",
                ProtocolViolation,
            ),
            ("Receive Maximum 0", "10|00044d5154540502003c03210000000163", ProtocolViolation),
            (
                "auth data without method",
                "10|00044d5154540502003c0416000178000163",
                ProtocolViolation,
            ),
            (
                "will topic with wildcard",
                "10|00044d5154540506003c00000163000001230000",
                TopicNameInvalid,
            ),
        ],
        ids=lambda value: value if isinstance(value, str) and "|" not in value else "",
    )
    def test_a_bad_v5_connect_gets_connack_with_its_reason_code(
        self, rule: str, data: str, error_class: type
    ) -> None:
        error = error_of(MqttConnection(), wire(data))
        assert type(error) is error_class, rule
        assert error.answer == Connack(reason_code=error_class.reason_code)

    def test_a_bad_311_connect_is_closed_without_connack(self) -> None:
        error = error_of(MqttConnection(), wire("10|00044d5154540403003c000163"))
        assert isinstance(error, MalformedPacket)
        assert error.data_to_send == b""

    def test_a_311_password_without_user_name_is_malformed(self) -> None:
        data = wire("10|00044d5154540442003c0001630000")
        assert isinstance(error_of(MqttConnection(), data), MalformedPacket)

    def test_a_packet_before_connect_is_closed_without_answer(self) -> None:
        error = error_of(MqttConnection(), wire("c000"))
        assert isinstance(error, ProtocolViolation)
        assert error.data_to_send == b""


class TestPacketTooLarge:
    def test_a_packet_of_exactly_max_packet_size_is_accepted(self) -> None:
        conn = connected_server(V311, max_packet_size=20)
        assert len(conn.receive_data(wire("30|000161" + "62" * 15))) == 1

    def test_one_byte_over_max_packet_size_gets_0x95(self) -> None:
        conn = connected_server(V5, max_packet_size=20)
        error = error_of(conn, wire("30|000161 00" + "62" * 15))
        assert isinstance(error, PacketTooLarge)
        assert error.data_to_send == wire("e0|95")
        assert "21 bytes" in str(error)
        assert "20 bytes" in str(error)

    def test_the_size_is_refused_from_the_fixed_header_before_the_payload_arrives(self) -> None:
        conn = connected_server(V5, max_packet_size=1000)
        with pytest.raises(PacketTooLarge):
            conn.receive_data(wire("30ffff03"))

    def test_a_too_large_v5_connect_gets_connack_0x95(self) -> None:
        error = error_of(MqttConnection(max_packet_size=10), MIN_CONNECT[V5])
        assert error.data_to_send == wire("20|009500")

    def test_the_limit_advertised_in_connack_becomes_the_limit(self) -> None:
        from protocols.mqtt import Properties

        conn = MqttConnection(max_packet_size=1000)
        conn.receive_data(MIN_CONNECT[V5])
        conn.send(Connack(properties=Properties(maximum_packet_size=10)))
        assert conn.max_packet_size == 10


class TestErrorState:
    def test_after_an_error_the_connection_stays_in_error(self) -> None:
        conn = connected_server(V5)
        first = error_of(conn, wire("0000"))
        assert conn.state is State.ERROR
        with pytest.raises(MalformedPacket) as again:
            conn.receive_data(wire("c000"))
        assert again.value is first

    def test_nothing_can_be_sent_after_an_error(self) -> None:
        from protocols.mqtt import LocalProtocolError, Pingresp

        conn = connected_server(V5)
        error_of(conn, wire("0000"))
        with pytest.raises(LocalProtocolError):
            conn.send(Pingresp())

    def test_a_client_answers_a_v5_server_error_with_disconnect(self) -> None:
        from protocols.mqtt import Connect

        conn = MqttConnection(Role.CLIENT)
        conn.send(Connect("c"))
        conn.receive_data(wire("20|000000"))
        error = error_of(conn, wire("c000"))
        assert error.data_to_send == wire("e0|82")
