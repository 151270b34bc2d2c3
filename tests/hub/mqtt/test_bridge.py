"""Bridge mode with hub's consumers: one consumer class in both modes, the publish helper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.generic.mqtt import AsyncMqttConsumer, TopicRouter, topic
from hub.mqtt.bridge import BridgeOutbox, bridge_channel, publish
from hub.routing import ProtocolTypeRouter
from protocols.mqtt import MqttConfig, MqttServer
from protocols.mqtt.bridge import MqttBridge, MqttBridgeConfig
from tests.mosquitto import Mosquitto, Subscriber, publish_messages, requires_mosquitto

pytestmark = requires_mosquitto

WAIT = 10.0

#: What the consumers saw, as (mode, event...) tuples; a fresh queue per test.
SEEN: asyncio.Queue[tuple[Any, ...]]


class Readings(AsyncMqttConsumer):
    """A device-facing consumer: devices must log in; no bridge-specific code."""

    allow_anonymous = False
    routes = TopicRouter([topic("sensors/<device>/temperature", "temperature")])

    async def authenticate(self, username: str, password: bytes | None) -> Any:
        return username if password == b"device-secret" else None

    async def connected(self) -> None:
        await SEEN.put((self.scope["mode"], "connected"))

    async def temperature(self, message: Any, device: str) -> None:
        if message.text == "crash":
            await SEEN.put((self.scope["mode"], "crash", message.dup))
            raise RuntimeError("sensor handler failed")
        await SEEN.put((self.scope["mode"], device, float(message.text), message.dup))

    async def disconnect(self, event: Any) -> None:
        await SEEN.put((self.scope["mode"], "disconnected", event["reason"]))


APP = ProtocolTypeRouter({"mqtt": BridgeOutbox(Readings.as_asgi())})


async def seen() -> tuple[Any, ...]:
    return await asyncio.wait_for(SEEN.get(), WAIT)


@pytest.fixture(autouse=True)
def fresh_queue() -> None:
    global SEEN
    SEEN = asyncio.Queue()


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    mosquitto = Mosquitto().start()
    yield mosquitto
    mosquitto.close()


@pytest.fixture
async def bridge(broker: Mosquitto) -> AsyncIterator[MqttBridge]:
    config = MqttBridgeConfig(
        url=f"{broker.url}/?client_id=hub-test&subscribe=sensors/%23&qos=1",
        reconnect_min=0.05,
        reconnect_max=0.2,
    )
    server = MqttBridge(APP, config)
    await server.start()
    await asyncio.wait_for(server.connected.wait(), WAIT)
    yield server
    await server.wait_closed(2)


def device_publish(port: int, topic_name: str, payload: bytes) -> None:
    """A device logging in to hub's own MQTT listener and publishing at QoS 1."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="device-1")
    client.username_pw_set("device-1", "device-secret")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic_name, payload, 1).wait_for_publish(WAIT)
    finally:
        client.disconnect()
        client.loop_stop()


class TestSameConsumerBothModes:
    async def test_one_consumer_class_serves_devices_and_the_broker(self, bridge, broker) -> None:
        assert await seen() == ("bridge", "connected")
        await asyncio.to_thread(
            publish_messages, broker.port, [("sensors/attic/temperature", b"19.5", 1)]
        )
        assert await seen() == ("bridge", "attic", 19.5, False)

        server = MqttServer(APP, MqttConfig(port=0))
        await server.start()
        try:
            port = server.bound_addresses[0][1]
            await asyncio.to_thread(device_publish, port, "sensors/kitchen/temperature", b"21.5")
            assert await seen() == ("direct", "connected")
            assert await seen() == ("direct", "kitchen", 21.5, False)
        finally:
            await server.wait_closed(2)

    async def test_consumer_sees_the_broker_connection_end(self, bridge) -> None:
        assert await seen() == ("bridge", "connected")
        await bridge.wait_closed(2)
        assert await seen() == ("bridge", "disconnected", "shutdown")

    async def test_a_handler_that_raises_gets_the_message_again(self, bridge, broker) -> None:
        assert await seen() == ("bridge", "connected")
        await asyncio.to_thread(
            publish_messages, broker.port, [("sensors/attic/temperature", b"crash", 1)]
        )
        assert await seen() == ("bridge", "crash", False)
        assert await seen() == ("bridge", "connected")  # reconnected, new instance
        assert await seen() == ("bridge", "crash", True)  # not acknowledged: sent again


class TestPublishHelper:
    async def test_publish_reaches_the_broker_through_the_bridge(self, bridge, broker) -> None:
        assert await seen() == ("bridge", "connected")
        subscriber = await asyncio.to_thread(Subscriber, broker.port, "commands/#")
        try:
            await publish("commands/attic", "heat on", qos=1)
            message = await asyncio.to_thread(subscriber.get)
            assert (message.topic, message.payload, message.qos) == (
                "commands/attic",
                b"heat on",
                1,
            )
        finally:
            subscriber.close()

    def test_each_bridge_has_its_own_channel(self) -> None:
        assert bridge_channel() == "mqtt-bridge.default"
        assert bridge_channel("eu west") == "mqtt-bridge.eu_west"
