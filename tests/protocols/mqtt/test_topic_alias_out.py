"""Outbound Topic Aliases (v5 3.3.2.3.4): the server names the topics it sends by alias.

The sans-I/O tests read the bytes ``MqttConnection`` writes; the socket tests
run ``MqttServer`` with ``topic_alias_out`` against hub's codec as client, and
against paho-mqtt, which (2.2) passes a received alias through untouched: the
test resolves it from the PUBLISH's properties, as the spec asks a client to.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from protocols.mqtt import (
    Connack,
    Connect,
    MqttConfig,
    MqttConnection,
    MqttServer,
    OutgoingPacketTooLarge,
    ProtocolVersion,
    Publish,
    QoS,
    Role,
    encode,
)
from protocols.mqtt.fields import read_remaining_length
from protocols.mqtt.properties import Properties
from protocols.mqtt.reader import DECODERS

from .helpers import MIN_CONNECT, wire

V5, V311 = ProtocolVersion.V5, ProtocolVersion.V311
TOPIC = "sensors/t"
TOPIC_HEX = "0009 73656e736f72732f74"


def server(client_maximum: int = 2, aliases_out: int = 10, **connect: Any) -> MqttConnection:
    """A server connection past CONNACK whose client announced ``client_maximum`` aliases."""
    conn = MqttConnection(Role.SERVER, topic_aliases_out=aliases_out)
    properties = Properties(topic_alias_maximum=client_maximum or None, **connect)
    conn.receive_data(encode(Connect("c", V5, properties=properties), V5))
    conn.send(Connack())
    return conn


def raw_publishes(data: bytes) -> list[Publish]:
    """The complete PUBLISH packets in ``data`` as on the wire: aliases left as they are."""
    packets: list[Publish] = []
    pos = 0
    while pos + 1 < len(data):
        header = read_remaining_length(data, pos + 1, len(data))
        if header is None or sum(header) > len(data):
            break  # the rest is still on its way
        length, body = header
        if data[pos] >> 4 == 3:
            packets.append(DECODERS[3](data[pos] & 0x0F, data, body, body + length, True))
        pos = body + length
    return packets


class TestAliasAssignment:
    def test_the_first_publish_to_a_topic_carries_it_with_a_new_alias(self) -> None:
        conn = server()
        assert conn.send_plain_publish(TOPIC, b"1") == wire(f"30|{TOPIC_HEX} 03 230001 31")

    def test_later_publishes_carry_an_empty_topic_and_the_alias(self) -> None:
        conn = server()
        conn.send_plain_publish(TOPIC, b"1")
        assert conn.send_plain_publish(TOPIC, b"2") == wire("30|0000 03 230001 32")
        assert conn.send_plain_publish(TOPIC, b"3", retain=True) == wire("31|0000 03 230001 33")

    def test_qos_1_publishes_are_aliased_too(self) -> None:
        conn = server()
        first = conn.send(Publish(TOPIC, b"1", QoS.AT_LEAST_ONCE, packet_id=1))
        later = conn.send(Publish(TOPIC, b"2", QoS.AT_LEAST_ONCE, packet_id=2))
        assert first == wire(f"32|{TOPIC_HEX} 0001 03 230001 31")
        assert later == wire("32|0000 0002 03 230001 32")

    def test_the_plain_and_the_full_path_share_one_table(self) -> None:
        conn = server()
        conn.send_plain_publish(TOPIC, b"1")
        later = conn.send(Publish(TOPIC, b"2", properties=Properties(content_type="t")))
        assert raw_publishes(later)[0].topic == ""
        assert raw_publishes(later)[0].properties.topic_alias == 1

    def test_no_more_aliases_than_the_client_allows_then_topics_go_in_full(self) -> None:
        conn = server(client_maximum=2)
        conn.send_plain_publish("a", b"")
        conn.send_plain_publish("b", b"")
        assert conn.send_plain_publish("c", b"x") == wire("30|0001 63 00 78")
        assert conn.send_plain_publish("c", b"x") == wire("30|0001 63 00 78")
        assert conn.send_plain_publish("b", b"x") == wire("30|0000 03 230002 78")

    def test_no_more_aliases_than_the_listener_allows(self) -> None:
        conn = server(client_maximum=100, aliases_out=1)
        conn.send_plain_publish("a", b"")
        assert conn.send_plain_publish("b", b"x") == wire("30|0001 62 00 78")

    def test_a_retransmission_carries_its_full_topic(self) -> None:
        conn = server()
        conn.send(Publish(TOPIC, b"1", QoS.AT_LEAST_ONCE, packet_id=1))
        again = conn.send(Publish(TOPIC, b"1", QoS.AT_LEAST_ONCE, packet_id=1, dup=True))
        assert again == wire(f"3a|{TOPIC_HEX} 0001 03 230001 31")

    def test_an_application_alias_gives_way_to_the_servers(self) -> None:
        conn = server(client_maximum=2)
        data = conn.send(Publish(TOPIC, b"1", properties=Properties(topic_alias=2)))
        assert raw_publishes(data)[0].properties.topic_alias == 1

    def test_a_publish_too_large_for_the_client_defines_no_alias(self) -> None:
        conn = server(maximum_packet_size=64)
        with pytest.raises(OutgoingPacketTooLarge):
            conn.send_plain_publish(TOPIC, b"x" * 100)
        with pytest.raises(OutgoingPacketTooLarge):
            conn.send(Publish(TOPIC, b"x" * 100, QoS.AT_LEAST_ONCE, packet_id=1))
        assert conn.send_plain_publish(TOPIC, b"1") == wire(f"30|{TOPIC_HEX} 03 230001 31")

    def test_a_publish_that_fits_only_without_a_new_alias_goes_without_one(self) -> None:
        plain = encode(Publish(TOPIC, b"x" * 20), V5)
        conn = server(maximum_packet_size=len(plain))
        assert conn.send_plain_publish(TOPIC, b"x" * 20) == plain
        assert conn.send(Publish(TOPIC, b"x" * 20)) == plain
        assert conn.send_plain_publish(TOPIC, b"1") == wire(f"30|{TOPIC_HEX} 03 230001 31")

    def test_a_client_decodes_every_topic(self) -> None:
        conn = server(client_maximum=2)
        client = MqttConnection(Role.CLIENT)
        client.send(Connect("c", V5, properties=Properties(topic_alias_maximum=2)))
        client.receive_data(encode(Connack(), V5))
        topics = ["a", "b", "a", "c", "b", "c", "a"]
        data = b"".join(conn.send_plain_publish(topic, b"") for topic in topics)
        assert [packet.topic for packet in client.receive_data(data)] == topics  # type: ignore[attr-defined]


class TestAliasesStayOnTheirConnection:
    def test_a_new_connection_starts_without_aliases(self) -> None:
        server().send_plain_publish(TOPIC, b"1")
        assert server().send_plain_publish(TOPIC, b"1") == wire(f"30|{TOPIC_HEX} 03 230001 31")

    def test_the_shared_encoding_never_holds_an_alias(self) -> None:
        server().send_plain_publish(TOPIC, b"1")
        plain = server(client_maximum=0)
        assert plain.send_plain_publish(TOPIC, b"1") == wire(f"30|{TOPIC_HEX} 00 31")
        assert plain.send_plain_publish(TOPIC, b"1") == wire(f"30|{TOPIC_HEX} 00 31")


class TestAliasesOff:
    def test_by_default_topics_go_in_full_whatever_the_client_allows(self) -> None:
        conn = server(client_maximum=10, aliases_out=0)
        conn.send_plain_publish(TOPIC, b"1")
        assert conn.send_plain_publish(TOPIC, b"1") == wire(f"30|{TOPIC_HEX} 00 31")

    def test_a_client_that_allows_no_alias_gets_none(self) -> None:
        conn = server(client_maximum=0)
        conn.send(Publish(TOPIC, b"1"))
        assert conn.send(Publish(TOPIC, b"1")) == wire(f"30|{TOPIC_HEX} 00 31")

    def test_a_311_client_gets_none(self) -> None:
        conn = MqttConnection(Role.SERVER, topic_aliases_out=10)
        conn.receive_data(MIN_CONNECT[V311])
        conn.send(Connack())
        conn.send_plain_publish(TOPIC, b"1")
        assert conn.send_plain_publish(TOPIC, b"1") == wire(f"30|{TOPIC_HEX} 31")

    def test_an_application_alias_is_sent_as_given(self) -> None:
        conn = server(client_maximum=5, aliases_out=0)
        data = conn.send(Publish(TOPIC, b"1", properties=Properties(topic_alias=4)))
        assert raw_publishes(data)[0].properties.topic_alias == 4


# -- Over sockets ---------------------------------------------------------------------


def app_publishing(messages: list[tuple[str, int]]) -> Any:
    """Accept; after the client's first PUBLISH (or SUBSCRIBE), send ``messages`` (topic, qos)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "mqtt.connack", "session_present": not scope["clean_start"]})
        while True:
            event = await receive()
            if event["type"] == "mqtt.disconnect":
                return
            if event["type"] == "mqtt.subscribe":
                await send({"type": "mqtt.suback", "reason_codes": [0]})
            if event["type"] in ("mqtt.subscribe", "mqtt.publish") and scope["clean_start"]:
                for index, (topic, qos) in enumerate(messages):
                    payload = b"%d" % index
                    await send(
                        {"type": "mqtt.publish", "topic": topic, "payload": payload, "qos": qos}
                    )

    return app


@pytest.fixture
async def servers():
    made: list[MqttServer] = []

    async def make(app: Any, **options: Any) -> MqttServer:
        server = MqttServer(app, MqttConfig(port=0, **options))
        await server.start()
        made.append(server)
        return server

    yield make
    for server in made:
        await server.wait_closed(1)


async def read_publishes(
    server: MqttServer, count: int, client_maximum: int, **connect: Any
) -> tuple[list[Publish], asyncio.StreamWriter]:
    """Connect with hub's codec, trigger the app with a PUBLISH, read ``count`` raw PUBLISH."""
    host, port = server.bound_addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    properties = Properties(topic_alias_maximum=client_maximum or None, session_expiry_interval=60)
    writer.write(encode(Connect("d", V5, properties=properties, **connect), V5))
    writer.write(encode(Publish("go"), V5))
    data = b""
    async with asyncio.timeout(10):
        while len(raw_publishes(data)) < count:
            chunk = await reader.read(65536)
            assert chunk, "connection closed"
            data += chunk
    return raw_publishes(data), writer


class TestOverSockets:
    async def test_the_server_aliases_topics_when_the_option_is_on(self, servers) -> None:
        topics = [(TOPIC, 0), (TOPIC, 0), ("other", 1), (TOPIC, 1)]
        server = await servers(app_publishing(topics), topic_alias_out=True)
        publishes, writer = await read_publishes(server, 4, client_maximum=5)
        writer.close()
        wire_form = [(p.topic, p.properties.topic_alias) for p in publishes]
        assert wire_form == [(TOPIC, 1), ("", 1), ("other", 2), ("", 1)]

    async def test_the_option_off_sends_no_alias(self, servers) -> None:
        server = await servers(app_publishing([(TOPIC, 0), (TOPIC, 1)]))
        publishes, writer = await read_publishes(server, 2, client_maximum=5)
        writer.close()
        assert [(p.topic, p.properties.topic_alias) for p in publishes] == [(TOPIC, None)] * 2

    async def test_a_resumed_session_resends_with_full_topics(self, servers) -> None:
        server = await servers(app_publishing([(TOPIC, 1), (TOPIC, 1)]), topic_alias_out=True)
        first, writer = await read_publishes(server, 2, client_maximum=5)
        assert [p.topic for p in first] == [TOPIC, ""]
        writer.close()  # no PUBACK: both stay in flight
        again, writer = await read_publishes(server, 2, client_maximum=5, clean_start=False)
        writer.close()
        assert [(p.topic, p.dup) for p in again] == [(TOPIC, True), (TOPIC, True)]
        assert [p.packet_id for p in again] == [p.packet_id for p in first]

    async def test_a_paho_subscriber_gets_the_right_topic_on_every_message(self, servers) -> None:
        topics = ["devices/42/temperature", "devices/42/humidity"] * 3
        server = await servers(app_publishing([(t, 0) for t in topics]), topic_alias_out=True)
        port = server.bound_addresses[0][1]
        received = await asyncio.to_thread(paho_subscribe, port, len(topics))
        assert [alias for _, alias in received] == [1, 2] * 3
        resolved: dict[int, str] = {}
        seen = []
        for topic, alias in received:
            if topic:
                resolved[alias] = topic
            seen.append(resolved[alias])
        assert seen == topics
        assert [topic for topic, _ in received] == topics[:2] + [""] * 4


def paho_subscribe(port: int, count: int) -> list[tuple[str, int]]:
    """Subscribe paho-mqtt (v5, Topic Alias Maximum 10) to ``#``; (topic, alias) of ``count``."""
    done = threading.Event()
    received: list[tuple[str, int]] = []

    def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, props: Any) -> None:
        client.subscribe("#")

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        received.append((message.topic, message.properties.TopicAlias))
        if len(received) == count:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, "sub", protocol=paho.MQTTv5)
    client.on_connect = on_connect
    client.on_message = on_message
    properties = PahoProperties(PacketTypes.CONNECT)
    properties.TopicAliasMaximum = 10
    client.connect("127.0.0.1", port, properties=properties)
    client.loop_start()
    try:
        assert done.wait(10), f"{len(received)} of {count} messages"
    finally:
        client.disconnect()
        client.loop_stop()
    return received
