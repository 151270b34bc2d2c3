"""MQTT over WebSocket: paho-mqtt with transport="websockets" against hub's HTTP listener."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
import websockets.sync.client
from django.urls import path
from paho.mqtt.enums import CallbackAPIVersion

from hub.generic.mqtt import BrokerConsumer, MemoryBrokerState
from hub.routing import ProtocolTypeRouter, URLRouter
from hub.testing.live import LiveHub
from protocols.mqtt.over_websocket import MqttOverWebSocket

WAIT = 10.0

SCOPES: queue.Queue[dict[str, Any]] = queue.Queue()


class Broker(BrokerConsumer):
    state = MemoryBrokerState()
    allow_anonymous = False

    async def authenticate(self, username: str, password: bytes | None) -> Any:
        SCOPES.put(dict(self.scope))
        return username if password == b"browser-secret" else None


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, int]]:
    application = ProtocolTypeRouter(
        {"websocket": URLRouter([path("mqtt", MqttOverWebSocket(Broker.as_asgi()))])}
    )
    hub = LiveHub(application, ["http"], shutdown_grace=2.0).start()
    yield hub.address("http")
    hub.stop()


class WsClient:
    """A blocking paho client over WebSocket that collects what it receives."""

    def __init__(self, address: tuple[str, int], client_id: str, password: str = "browser-secret"):
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[Any] = queue.Queue()
        self.subscribed = threading.Event()
        self.paho = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            transport="websockets",
        )
        self.paho.ws_set_options(path="/mqtt")
        self.paho.username_pw_set(client_id, password)
        self.paho.on_message = lambda _c, _u, message: self.messages.put(message)
        self.paho.on_connect = lambda _c, _u, _f, code, _p: self.connack.put(code)
        self.paho.on_subscribe = lambda *_: self.subscribed.set()
        self.paho.connect(*address)
        self.paho.loop_start()

    def code(self) -> Any:
        return self.connack.get(timeout=WAIT)

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        self.subscribed.clear()
        self.paho.subscribe(topic_filter, qos)
        assert self.subscribed.wait(WAIT)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.paho.publish(topic, payload, qos, retain).wait_for_publish(WAIT)

    def receive(self) -> paho.MQTTMessage:
        return self.messages.get(timeout=WAIT)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


class TestMqttOverWebSocket:
    def test_clients_connect_subscribe_and_publish(self, live) -> None:
        subscriber, publisher = WsClient(live, "ws-sub"), WsClient(live, "ws-pub")
        try:
            assert not subscriber.code().is_failure
            assert not publisher.code().is_failure
            subscriber.subscribe("chat/#", 1)
            publisher.publish("chat/room1", b"hello over websocket", 1)
            message = subscriber.receive()
            assert (message.topic, message.payload, message.qos) == (
                "chat/room1",
                b"hello over websocket",
                1,
            )
        finally:
            subscriber.close()
            publisher.close()

    def test_a_retained_message_reaches_a_later_subscriber(self, live) -> None:
        publisher = WsClient(live, "ws-retain-pub")
        assert not publisher.code().is_failure
        publisher.publish("status/door", b"open", 1, retain=True)
        publisher.close()
        subscriber = WsClient(live, "ws-retain-sub")
        try:
            assert not subscriber.code().is_failure
            subscriber.subscribe("status/#", 1)
            message = subscriber.receive()
            assert (message.topic, message.payload, message.retain) == (
                "status/door",
                b"open",
                True,
            )
        finally:
            subscriber.close()

    def test_the_consumer_authenticates_as_for_tcp(self, live) -> None:
        intruder = WsClient(live, "ws-intruder", password="wrong")
        try:
            assert intruder.code().value == 0x86
        finally:
            intruder.paho.loop_stop()

    def test_the_scope_is_the_mqtt_scope_with_the_websocket_request(self, live) -> None:
        while not SCOPES.empty():
            SCOPES.get()
        client = WsClient(live, "ws-scope")
        try:
            assert not client.code().is_failure
            scope = SCOPES.get(timeout=WAIT)
            assert (scope["type"], scope["mode"], scope["listener"]) == (
                "mqtt",
                "direct",
                "websocket",
            )
            assert scope["client_id"] == "ws-scope"
            assert scope["client"][0] == "127.0.0.1"
            assert scope["server"] == live
            assert scope["extensions"]["websocket"]["path"] == "/mqtt"
        finally:
            client.close()

    def test_a_websocket_without_the_mqtt_subprotocol_is_refused(self, live) -> None:
        with pytest.raises(websockets.exceptions.InvalidStatus):
            websockets.sync.client.connect(f"ws://{live[0]}:{live[1]}/mqtt", open_timeout=WAIT)

    def test_a_text_message_closes_the_connection(self, live) -> None:
        url = f"ws://{live[0]}:{live[1]}/mqtt"
        with websockets.sync.client.connect(url, subprotocols=["mqtt"]) as websocket:
            websocket.send("not mqtt")
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                websocket.recv(timeout=WAIT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003
