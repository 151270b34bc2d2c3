"""MqttConnection: stream reassembly, the state machine, version learning, limits both ways."""

from __future__ import annotations

import pytest

from protocols.mqtt import (
    Connack,
    Connect,
    Disconnect,
    LocalProtocolError,
    MqttConnection,
    OutgoingPacketTooLarge,
    Pingreq,
    Pingresp,
    Properties,
    ProtocolVersion,
    Puback,
    Publish,
    QoS,
    ReasonCode,
    Role,
    State,
    Suback,
    Subscribe,
    Subscription,
    encode,
)

from .helpers import MIN_CONNECT, connected_server, feed, wire

V311, V5 = ProtocolVersion.V311, ProtocolVersion.V5

SESSION = [
    Publish("sensors/1/temp", b"21.5", QoS.AT_LEAST_ONCE, packet_id=1),
    Subscribe(2, (Subscription("cmd/#", QoS.EXACTLY_ONCE),)),
    Pingreq(),
    Puback(9),
    Disconnect(),
]


def session_wire(version: ProtocolVersion) -> bytes:
    return MIN_CONNECT[version] + b"".join(encode(packet, version) for packet in SESSION)


class TestStreamReassembly:
    @pytest.mark.parametrize("version", [V311, V5], ids=lambda v: v.name)
    def test_a_session_split_at_every_offset_yields_the_same_packets(self, version) -> None:
        data = session_wire(version)
        for cut in range(len(data) + 1):
            conn = MqttConnection()
            events = feed(conn, data[:cut]) + feed(conn, data[cut:])
            assert events[1:] == SESSION, cut
            assert conn.state is State.CLOSED

    def test_a_session_fed_one_byte_at_a_time_yields_the_same_packets(self) -> None:
        data = session_wire(V5)
        conn = MqttConnection()
        events = [
            event for index in range(len(data)) for event in feed(conn, data[index : index + 1])
        ]
        assert events[1:] == SESSION

    def test_memoryview_and_bytearray_chunks_are_accepted(self) -> None:
        conn = MqttConnection()
        data = session_wire(V311)
        events = feed(conn, bytearray(data[:5])) + feed(conn, memoryview(data)[5:])
        assert events[1:] == SESSION


class TestVersionLearning:
    def test_the_version_is_learnt_from_connect(self) -> None:
        conn = MqttConnection()
        assert conn.protocol_version is None
        conn.receive_data(MIN_CONNECT[V311])
        assert conn.protocol_version is V311

    def test_packets_are_encoded_for_the_negotiated_version(self) -> None:
        conn = connected_server(V311)
        packet = Publish("a", b"x", properties=Properties(content_type="text/plain"))
        assert conn.send(packet) == wire("30|000161 78")

    def test_a_client_learns_the_version_from_the_connect_it_sends(self) -> None:
        client = MqttConnection(Role.CLIENT)
        client.send(Connect("c", V311))
        assert client.protocol_version is V311


class TestStateMachine:
    def test_packets_pipelined_behind_connect_wait_for_connack(self) -> None:
        conn = MqttConnection()
        events = conn.receive_data(MIN_CONNECT[V5] + wire("c000"))
        assert [type(event) for event in events] == [Connect]
        assert conn.state is State.CONNECTING
        conn.send(Connack())
        assert conn.receive_data(b"") == [Pingreq()]

    def test_the_server_cannot_send_before_connack(self) -> None:
        conn = MqttConnection()
        conn.receive_data(MIN_CONNECT[V5])
        with pytest.raises(LocalProtocolError, match="cannot send PUBLISH in state CONNECTING"):
            conn.send(Publish("a"))

    def test_the_server_cannot_send_anything_before_connect(self) -> None:
        with pytest.raises(LocalProtocolError, match="AWAITING_CONNECT"):
            MqttConnection().send(Pingresp())

    def test_a_refusing_connack_closes_the_connection(self) -> None:
        conn = MqttConnection()
        conn.receive_data(MIN_CONNECT[V5])
        assert conn.send(Connack(reason_code=ReasonCode.BANNED)) == wire("20|00 8a 00")
        assert conn.state is State.CLOSED
        assert conn.receive_data(wire("c000")) == []
        with pytest.raises(LocalProtocolError):
            conn.send(Pingresp())

    def test_a_311_server_never_sends_disconnect(self) -> None:
        with pytest.raises(LocalProtocolError, match=r"3\.1\.1 server"):
            connected_server(V311).send(Disconnect())

    def test_a_v5_server_disconnect_closes_the_connection(self) -> None:
        conn = connected_server(V5)
        assert conn.send(Disconnect(ReasonCode.SERVER_SHUTTING_DOWN)) == wire("e0|8b")
        assert conn.state is State.CLOSED

    def test_bytes_after_disconnect_are_ignored(self) -> None:
        conn = connected_server(V5)
        assert conn.receive_data(wire("e000 c000")) == [Disconnect()]
        assert conn.receive_data(wire("c000")) == []

    def test_a_local_error_leaves_the_state_unchanged(self) -> None:
        conn = connected_server(V5)
        with pytest.raises(LocalProtocolError):
            conn.send(Publish("a/+"))
        assert conn.state is State.CONNECTED
        assert conn.send(Pingresp()) == wire("d000")


class TestClientAndServerTogether:
    def test_a_client_and_a_server_talk(self) -> None:
        client, server = MqttConnection(Role.CLIENT), MqttConnection(Role.SERVER)
        assert server.receive_data(client.send(Connect("dev-1", V5))) == [Connect("dev-1", V5)]
        assert client.receive_data(server.send(Connack())) == [Connack()]
        subscribe = Subscribe(1, (Subscription("a/#", QoS.AT_LEAST_ONCE),))
        assert server.receive_data(client.send(subscribe)) == [subscribe]
        suback = Suback(1, (ReasonCode.GRANTED_QOS_1,))
        assert client.receive_data(server.send(suback)) == [suback]
        publish = Publish("a/b", b"on", QoS.AT_LEAST_ONCE, packet_id=1)
        assert client.receive_data(server.send(publish)) == [publish]
        assert client.state is server.state is State.CONNECTED


class TestTopicAliases:
    def aliased_server(self, maximum: int = 5) -> MqttConnection:
        conn = MqttConnection()
        conn.receive_data(MIN_CONNECT[V5])
        conn.send(Connack(properties=Properties(topic_alias_maximum=maximum)))
        return conn

    def test_an_alias_is_set_then_resolved_and_cleared_from_the_event(self) -> None:
        conn = self.aliased_server()
        [first] = conn.receive_data(wire("30|0003612f62 03 230002 31"))
        [second] = conn.receive_data(wire("30|0000 03 230002 32"))
        assert first == Publish("a/b", b"1")
        assert second == Publish("a/b", b"2")

    def test_an_unknown_alias_is_a_protocol_error(self) -> None:
        from protocols.mqtt import ProtocolViolation

        with pytest.raises(ProtocolViolation):
            self.aliased_server().receive_data(wire("30|0000 03 230002 32"))

    def test_a_sent_alias_must_be_within_the_peers_maximum(self) -> None:
        conn = connected_server(V5)
        with pytest.raises(LocalProtocolError, match="Topic Alias 1"):
            conn.send(Publish("a", properties=Properties(topic_alias=1)))


class TestPeerMaximumPacketSize:
    def test_a_packet_over_the_peers_maximum_is_refused_with_its_sizes(self) -> None:
        conn = MqttConnection()
        conn.receive_data(wire("10|00044d515454 05 02 003c 05 2700000010 0001 63"))
        conn.send(Connack())
        assert conn.peer_max_packet_size == 16
        conn.send(Publish("a", b"x" * 10))
        with pytest.raises(OutgoingPacketTooLarge) as caught:
            conn.send(Publish("a", b"x" * 11))
        assert (caught.value.size, caught.value.limit) == (17, 16)
