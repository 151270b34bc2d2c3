"""The codec's rules for AUTH (v5 4.12), server role: methods and turns."""

from __future__ import annotations

import pytest

from protocols.mqtt import (
    Auth,
    Connack,
    Connect,
    LocalProtocolError,
    MqttConnection,
    ProtocolViolation,
    ReasonCode,
    Role,
)
from protocols.mqtt.connection import AuthTurn
from protocols.mqtt.properties import Properties

CONTINUE, REAUTH = ReasonCode.CONTINUE_AUTHENTICATION, ReasonCode.RE_AUTHENTICATE


def method(name: str = "M", data: bytes | None = None) -> Properties:
    return Properties(authentication_method=name, authentication_data=data)


def client_bytes(*packets: object) -> bytes:
    client = MqttConnection(Role.CLIENT)
    return b"".join(client.send(packet) for packet in packets)  # type: ignore[arg-type]


def server(properties: Properties | None = None) -> MqttConnection:
    properties = method() if properties is None else properties
    conn = MqttConnection(Role.SERVER)
    conn.receive_data(client_bytes(Connect("c", properties=properties)))
    return conn


class TestTurns:
    def test_a_connect_with_a_method_gives_the_server_the_turn(self) -> None:
        assert server().auth_turn is AuthTurn.SERVER
        assert server(Properties()).auth_turn is AuthTurn.NONE

    def test_a_challenge_then_the_clients_answer_then_connack(self) -> None:
        conn = server()
        conn.send(Auth(CONTINUE, method(data=b"n")))
        assert conn.auth_turn is AuthTurn.CLIENT
        wire = MqttConnection(Role.CLIENT)
        wire.send(Connect("c", properties=method()))
        [answer] = conn.receive_data(wire.send(Auth(CONTINUE, method(data=b"a"))))
        assert answer.properties.authentication_data == b"a"
        assert conn.auth_turn is AuthTurn.SERVER
        conn.send(Connack(properties=method()))
        assert conn.auth_turn is AuthTurn.NONE

    def test_the_client_may_not_answer_out_of_turn(self) -> None:
        conn = server()
        wire = MqttConnection(Role.CLIENT)
        wire.send(Connect("c", properties=method()))
        with pytest.raises(ProtocolViolation, match="turn"):
            conn.receive_data(wire.send(Auth(CONTINUE, method())))

    def test_the_server_may_not_challenge_twice_in_a_row(self) -> None:
        conn = server()
        conn.send(Auth(CONTINUE, method()))
        with pytest.raises(LocalProtocolError, match="turn"):
            conn.send(Auth(CONTINUE, method()))

    def test_success_auth_before_connack_is_refused(self) -> None:
        with pytest.raises(LocalProtocolError, match="before CONNACK"):
            server().send(Auth(ReasonCode.SUCCESS, method()))


class TestMethods:
    def test_an_accepting_connack_must_carry_the_connects_method(self) -> None:
        with pytest.raises(LocalProtocolError, match="CONNACK with Authentication Method None"):
            server().send(Connack())
        server().send(Connack(reason_code=ReasonCode.BAD_AUTHENTICATION_METHOD))  # refusing: fine

    def test_a_connack_may_not_name_a_method_the_connect_did_not(self) -> None:
        with pytest.raises(LocalProtocolError, match="Authentication Method 'M'"):
            server(Properties()).send(Connack(properties=method()))

    def test_the_server_may_not_send_auth_without_a_method(self) -> None:
        with pytest.raises(LocalProtocolError, match=r"was None \(MQTT-4\.12\.0-5, -6\)"):
            server(Properties()).send(Auth(CONTINUE, method()))

    def test_reauthentication_starts_once_connected_with_the_same_method(self) -> None:
        conn = server()
        conn.send(Connack(properties=method()))
        wire = MqttConnection(Role.CLIENT)
        wire.send(Connect("c", properties=method()))
        wire.receive_data(b"\x20\x03\x00\x00\x00")
        conn.receive_data(wire.send(Auth(REAUTH, method())))
        assert conn.auth_turn is AuthTurn.SERVER
        conn.send(Auth(ReasonCode.SUCCESS, method()))
        assert conn.auth_turn is AuthTurn.NONE
        with pytest.raises(ProtocolViolation, match=r"MQTT-4\.12\.0-5"):
            conn.receive_data(wire.send(Auth(REAUTH, method("X"))))


class TestBeforeConnack:
    """MQTT-3.1.2-30: only AUTH (in turn) or DISCONNECT before CONNACK, and nothing piles up."""

    def test_a_publish_during_the_exchange_is_a_protocol_violation(self) -> None:
        conn = server()
        conn.send(Auth(CONTINUE, method(data=b"n")))
        with pytest.raises(ProtocolViolation, match="before CONNACK"):
            conn.receive_data(b"\x30" + b"\xff" * 1000)

    def test_a_client_without_a_method_may_still_pipeline_before_connack(self) -> None:
        conn = server(Properties())
        assert conn.receive_data(b"\x30\x05\x00\x01t") == []
