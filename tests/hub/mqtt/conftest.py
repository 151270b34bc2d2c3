"""Fixtures for MQTT end-to-end tests: the "mqtt" runner entry, a live broker, paho clients."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.generic.mqtt import BrokerConsumer, MemoryBrokerState
from hub.listeners import PROTOCOLS, ProtocolEntry
from hub.routing import ProtocolTypeRouter
from hub.testing.live import LiveHub
from hub.types import ASGIApp

#: Seconds a test waits for something a client should receive.
WAIT = 10.0

MQTT_ENTRY = ProtocolEntry(
    name="mqtt",
    server="protocols.mqtt:MqttServer",
    config="protocols.mqtt:MqttConfig",
    scheme="mqtt",
    tls_scheme="mqtts",
    default_port=1883,
    help="MQTT 3.1.1/5.0 listener HOST:PORT[?option=value&...]",
)


@pytest.fixture
def mqtt_protocol() -> Iterator[None]:
    """Register the runner entry the lead adds to hub/listeners.py, for this test."""
    saved = PROTOCOLS.get("mqtt")
    PROTOCOLS["mqtt"] = MQTT_ENTRY
    try:
        yield
    finally:
        if saved is None:
            del PROTOCOLS["mqtt"]
        else:
            PROTOCOLS["mqtt"] = saved


def serve(app: ASGIApp, options: str = "") -> LiveHub:
    return LiveHub(app, [f"mqtt://127.0.0.1:0{options}"], shutdown_grace=2.0).start()


@pytest.fixture
def broker_class() -> type[BrokerConsumer]:
    """A broker with its own state, allowing anonymous clients."""
    return type(
        "TestBroker", (BrokerConsumer,), {"state": MemoryBrokerState(), "allow_anonymous": True}
    )


@pytest.fixture
def broker(mqtt_protocol: None, broker_class: type[BrokerConsumer]) -> Iterator[tuple[str, int]]:
    """A live hub that is only ``ProtocolTypeRouter({"mqtt": BrokerConsumer})``."""
    live = serve(ProtocolTypeRouter({"mqtt": broker_class.as_asgi()}))
    try:
        yield live.address("mqtt")
    finally:
        live.stop()


class Client:
    """A blocking paho client that collects what it receives."""

    def __init__(
        self,
        address: tuple[str, int],
        client_id: str = "",
        *,
        version: int = paho.MQTTv311,
        clean: bool = True,
        **connect: Any,
    ) -> None:
        self.address = address
        self.version = version
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[Any] = queue.Queue()
        self.disconnects: queue.Queue[Any] = queue.Queue()
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": version}
        if version != paho.MQTTv5:
            kwargs["clean_session"] = clean
        self.paho = paho.Client(CallbackAPIVersion.VERSION2, **kwargs)
        self.paho.on_message = lambda _c, _u, message: self.messages.put(message)
        self.paho.on_connect = lambda _c, _u, flags, code, props: self.connack.put((flags, code))
        self.paho.on_disconnect = lambda _c, _u, _f, code, _p: self.disconnects.put(code)
        self.connect_kwargs = connect
        self.clean = clean
        self.subscribed = threading.Event()
        self.paho.on_subscribe = lambda *_: self.subscribed.set()

    def connect(self, expect_success: bool = True) -> Any:
        kwargs = dict(self.connect_kwargs)
        if self.version == paho.MQTTv5:
            kwargs.setdefault("clean_start", self.clean)
        self.paho.connect(*self.address, **kwargs)
        self.paho.loop_start()
        flags, code = self.connack.get(timeout=WAIT)
        if expect_success:
            assert not code.is_failure, code
        return flags, code

    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        self.subscribed.clear()
        self.paho.subscribe(*args, **kwargs)
        assert self.subscribed.wait(WAIT)

    def publish(self, topic: str, payload: bytes | str, qos: int = 0, **kwargs: Any) -> None:
        info = self.paho.publish(topic, payload, qos, **kwargs)
        info.wait_for_publish(WAIT)

    def receive(self) -> paho.MQTTMessage:
        return self.messages.get(timeout=WAIT)

    def nothing_received(self, probe: Client, topic: str) -> bool:
        """True if nothing arrived before a probe message ``probe`` sends to ``topic``.

        Messages are delivered in order per client, so once the probe arrives
        any earlier message would have too: no sleeping.
        """
        probe.publish(topic, b"probe", 1)
        message = self.receive()
        return message.topic == topic and message.payload == b"probe"

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()

    def drop(self) -> None:
        """End the connection without DISCONNECT (an abnormal close)."""
        self.paho.loop_stop()
        sock = self.paho.socket()
        if sock is not None:
            sock.close()
