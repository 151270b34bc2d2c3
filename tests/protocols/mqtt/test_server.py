"""MqttServer with raw sockets (the codec as client) and plain ASGI apps."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from protocols.mqtt import (
    Connack,
    Connect,
    Disconnect,
    MqttConfig,
    MqttConnection,
    MqttServer,
    Pingreq,
    Pingresp,
    ProtocolVersion,
    Puback,
    Publish,
    QoS,
    ReasonCode,
    Role,
    Suback,
    Subscribe,
    Subscription,
    encode,
)

V5, V311 = ProtocolVersion.V5, ProtocolVersion.V311


class Peer:
    """A raw-socket MQTT client driven by the codec in the client role."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = MqttConnection(Role.CLIENT)
        self.packets: list[Any] = []

    async def send(self, packet: Any) -> None:
        self.writer.write(self.conn.send(packet))
        await self.writer.drain()

    async def receive(self) -> Any:
        async with asyncio.timeout(10):
            while not self.packets:
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.packets.extend(self.conn.receive_data(data))
        return self.packets.pop(0)

    async def closed(self) -> bool:
        async with asyncio.timeout(10):
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return True


async def start(app: Any, **options: Any) -> MqttServer:
    server = MqttServer(app, MqttConfig(port=0, **options))
    await server.start()
    return server


async def connect(server: MqttServer, version: ProtocolVersion = V5, **kwargs: Any) -> Peer:
    host, port = server.bound_addresses[0]
    peer = Peer(*await asyncio.open_connection(host, port))
    await peer.send(Connect(kwargs.pop("client_id", "dev"), version, **kwargs))
    return peer


def accepting(on_event: Any = None) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "mqtt.connack"})
        while True:
            event = await receive()
            if event["type"] == "mqtt.disconnect":
                return
            if on_event is not None:
                await on_event(event, send)

    return app


@pytest.fixture
async def servers():
    made: list[MqttServer] = []

    async def make(app: Any, **options: Any) -> MqttServer:
        server = await start(app, **options)
        made.append(server)
        return server

    yield make
    for server in made:
        await server.wait_closed(1)


class TestConnect:
    @pytest.mark.parametrize(
        ("version", "code", "wire"),
        [(V5, ReasonCode.NOT_AUTHORIZED, 0x87), (V311, ReasonCode.NOT_AUTHORIZED, 0x87)],
    )
    async def test_app_refusal_reaches_the_client(self, servers, version, code, wire):
        async def app(scope, receive, send):
            await receive()
            await send({"type": "mqtt.connack", "reason_code": code})

        peer = await connect(await servers(app), version)
        connack = await peer.receive()
        assert isinstance(connack, Connack)
        assert connack.reason_code == wire
        assert await peer.closed()

    async def test_crash_before_connack_refuses_with_0x80(self, servers, caplog):
        async def app(scope, receive, send):
            await receive()
            raise RuntimeError("boom")

        with caplog.at_level(logging.ERROR, "protocols.mqtt"):
            peer = await connect(await servers(app))
            connack = await peer.receive()
        assert connack.reason_code == ReasonCode.UNSPECIFIED_ERROR
        assert "application crashed: RuntimeError: boom" in caplog.text

    async def test_no_answer_within_timeout_refuses_with_server_unavailable(self, servers):
        async def app(scope, receive, send):
            await receive()
            await asyncio.Event().wait()

        peer = await connect(await servers(app, connect_answer_timeout=0.2))
        assert (await peer.receive()).reason_code == ReasonCode.SERVER_UNAVAILABLE

    async def test_wrong_message_before_connack_raises(self, servers):
        errors: list[str] = []

        async def app(scope, receive, send):
            await receive()
            try:
                await send({"type": "mqtt.publish", "topic": "a"})
            except RuntimeError as exc:
                errors.append(str(exc))
            await send({"type": "mqtt.connack", "reason_code": 0x87})

        peer = await connect(await servers(app))
        await peer.receive()
        assert errors == [
            "Expected ASGI message 'mqtt.connack' or 'mqtt.disconnect', but got 'mqtt.publish'"
        ]

    async def test_scope_describes_the_connect(self, servers):
        scopes: list[dict[str, Any]] = []

        async def app(scope, receive, send):
            scopes.append(scope)
            event = await receive()
            scopes.append(event)
            await send({"type": "mqtt.connack", "reason_code": 0x87})

        peer = await connect(await servers(app), client_id="", username="u", password=b"p")
        await peer.receive()
        scope, event = scopes
        assert scope["type"] == "mqtt"
        assert scope["protocol_version"] == 5
        assert scope["client_id_assigned"]
        assert scope["client_id"].startswith("hub-")
        assert scope["username"] == "u"
        assert "password" not in scope
        assert event == {"type": "mqtt.connect", "password": b"p"}

    async def test_over_max_connections_is_closed(self, servers):
        server = await servers(accepting(), max_connections=1)
        first = await connect(server)
        await first.receive()
        host, port = server.bound_addresses[0]
        reader, writer = await asyncio.open_connection(host, port)
        assert await Peer(reader, writer).closed()


class TestMalformed:
    async def test_garbage_first_packet_closes_the_connection(self, servers):
        server = await servers(accepting())
        host, port = server.bound_addresses[0]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"\x30\x02\x00\x00")  # PUBLISH before CONNECT
        assert await Peer(reader, writer).closed()

    async def test_oversized_packet_gets_disconnect_0x95(self, servers):
        peer = await connect(await servers(accepting(), max_packet_size=128))
        await peer.receive()
        peer.writer.write(encode(Publish("a", b"x" * 200), V5))  # past what CONNACK allowed
        disconnect = await peer.receive()
        assert isinstance(disconnect, Disconnect)
        assert disconnect.reason_code == ReasonCode.PACKET_TOO_LARGE

    async def test_malformed_packet_after_connack_gets_disconnect_0x81(self, servers):
        peer = await connect(await servers(accepting()))
        await peer.receive()
        peer.writer.write(b"\x82\x02\x00\x01")  # SUBSCRIBE without a topic filter
        data = await peer.reader.read(100)
        assert data[0] == 0xE0
        assert data[2] in (0x81, 0x82)


class TestPublishAcknowledgement:
    async def test_qos1_is_acknowledged_after_the_app_answers(self, servers):
        seen: list[dict[str, Any]] = []

        async def on_event(event, send):
            seen.append(event)
            await send({"type": "mqtt.puback", "packet_id": event["packet_id"]})

        peer = await connect(await servers(accepting(on_event)))
        await peer.receive()
        await peer.send(Publish("t", b"v", QoS.AT_LEAST_ONCE, packet_id=5))
        puback = await peer.receive()
        assert isinstance(puback, Puback)
        assert puback.packet_id == 5
        assert seen[0]["payload"] == b"v"

    async def test_crash_does_not_acknowledge_the_message(self, servers):
        async def on_event(event, send):
            raise RuntimeError("handler failed")

        peer = await connect(await servers(accepting(on_event)))
        await peer.receive()
        await peer.send(Publish("t", b"v", QoS.AT_LEAST_ONCE, packet_id=5))
        answer = await peer.receive()
        assert isinstance(answer, Disconnect)
        assert answer.reason_code == ReasonCode.UNSPECIFIED_ERROR

    async def test_acknowledgements_leave_in_receive_order(self, servers):
        held: list[dict[str, Any]] = []

        async def on_event(event, send):
            held.append(event)
            if len(held) == 2:
                for item in reversed(held):
                    await send({"type": "mqtt.puback", "packet_id": item["packet_id"]})

        peer = await connect(await servers(accepting(on_event)))
        await peer.receive()
        await peer.send(Publish("t", b"1", QoS.AT_LEAST_ONCE, packet_id=1))
        await peer.send(Publish("t", b"2", QoS.AT_LEAST_ONCE, packet_id=2))
        assert [(await peer.receive()).packet_id for _ in range(2)] == [1, 2]


class TestSubscribe:
    async def test_filters_over_max_subscriptions_get_quota_exceeded(self, servers):
        async def on_event(event, send):
            codes = [s["qos"] for s in event["subscriptions"]]
            await send({"type": "mqtt.suback", "reason_codes": codes})

        peer = await connect(await servers(accepting(on_event), max_subscriptions=1))
        await peer.receive()
        await peer.send(Subscribe(1, (Subscription("a", QoS.AT_LEAST_ONCE), Subscription("b"))))
        suback = await peer.receive()
        assert isinstance(suback, Suback)
        assert suback.reason_codes == (ReasonCode.GRANTED_QOS_1, ReasonCode.QUOTA_EXCEEDED)


class TestServerDuties:
    async def test_keep_alive_timeout_disconnects_with_0x8d(self, servers):
        peer = await connect(await servers(accepting()), keep_alive=1)
        await peer.receive()
        disconnect = await peer.receive()
        assert disconnect.reason_code == ReasonCode.KEEP_ALIVE_TIMEOUT

    async def test_a_connection_without_connect_is_closed_after_connect_timeout(self, servers):
        server = await servers(accepting(), connect_timeout=0.2)
        host, port = server.bound_addresses[0]
        peer = Peer(*await asyncio.open_connection(host, port))
        assert await peer.closed()

    async def test_a_client_that_pings_stays_connected_past_its_keep_alive(self, servers):
        peer = await connect(await servers(accepting()), keep_alive=1)
        await peer.receive()
        for _ in range(4):  # 2 s: past the first 1.5 s deadline, which is pushed back
            await asyncio.sleep(0.5)
            await peer.send(Pingreq())
            assert isinstance(await peer.receive(), Pingresp)

    async def test_messages_written_in_one_turn_arrive_in_order(self, servers):
        async def on_event(event, send):
            for index in range(200):
                await send({"type": "mqtt.publish", "topic": "t", "payload": b"%d" % index})

        peer = await connect(await servers(accepting(on_event)))
        await peer.receive()
        await peer.send(Publish("go", b""))
        payloads = [(await peer.receive()).payload for _ in range(200)]
        assert payloads == [b"%d" % index for index in range(200)]

    async def test_shutdown_sends_disconnect_0x8b(self):
        server = await start(accepting())
        peer = await connect(server)
        await peer.receive()
        server.close()
        assert (await peer.receive()).reason_code == ReasonCode.SERVER_SHUTTING_DOWN
        await server.wait_closed(1)

    async def test_app_publish_qos1_is_retransmitted_on_session_resume(self, servers):
        async def app(scope, receive, send):
            await receive()
            await send({"type": "mqtt.connack", "session_present": not scope["clean_start"]})
            if scope["clean_start"]:
                await send({"type": "mqtt.publish", "topic": "cmd", "payload": b"go", "qos": 1})
            while (await receive())["type"] != "mqtt.disconnect":
                pass

        from protocols.mqtt import Properties

        server = await servers(app)
        props = Properties(session_expiry_interval=60)
        first = await connect(server, client_id="d", properties=props)
        await first.receive()
        publish = await first.receive()
        assert publish.packet_id
        assert not publish.dup
        first.writer.close()  # no PUBACK: the message stays in flight
        second = await connect(server, client_id="d", clean_start=False, properties=props)
        connack = await second.receive()
        assert connack.session_present
        again = await second.receive()
        assert (again.payload, again.dup, again.packet_id) == (b"go", True, publish.packet_id)


def test_v311_encoding_helper_is_the_codec():
    assert encode(Disconnect(), V311) == b"\xe0\x00"
