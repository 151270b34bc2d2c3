"""A browser's MQTT.js client and a Python paho-mqtt client, talking through hub.

Chromium loads a page (``mqtt_js/index.html``) that connects the vendored
MQTT.js browser bundle (``mqtt_js/mqtt.min.js``, MIT, see ``mqtt_js/LICENSE.md``)
to hub's HTTP listener at ``/mqtt`` with the ``mqtt`` WebSocket subprotocol.
paho-mqtt connects to the same listener the same way; hub's ``BrokerConsumer``
routes messages between them in both directions.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from django.urls import path
from paho.mqtt.enums import CallbackAPIVersion
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from hub.generic.mqtt import BrokerConsumer, MemoryBrokerState
from hub.routing import ProtocolTypeRouter, URLRouter
from hub.testing.live import LiveHub
from hub.types import Receive, Scope, Send
from protocols.mqtt.over_websocket import MqttOverWebSocket

#: Seconds the browser or paho may take for a page load or a message round trip.
WAIT = 20

PAGE_DIRECTORY = Path(__file__).parent / "mqtt_js"

#: URL path -> (file in ``mqtt_js/``, content type).
FILES = {
    "/": ("index.html", b"text/html; charset=utf-8"),
    "/mqtt.min.js": ("mqtt.min.js", b"text/javascript; charset=utf-8"),
}


async def serve_files(scope: Scope, receive: Receive, send: Send) -> None:
    """The page and the bundle; 404 for anything else."""
    await receive()  # http.request (GET: no body)
    name, content_type = FILES.get(scope["path"], (None, b"text/plain"))
    status, body = (200, (PAGE_DIRECTORY / name).read_bytes()) if name else (404, b"not found")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Broker(BrokerConsumer):
    state = MemoryBrokerState()
    allow_anonymous = True


@pytest.fixture(scope="module")
def live() -> Iterator[LiveHub]:
    mqtt = MqttOverWebSocket(Broker.as_asgi())
    routes = URLRouter([path("mqtt", mqtt)])  # type: ignore[arg-type]
    application = ProtocolTypeRouter({"http": serve_files, "websocket": routes})
    hub = LiveHub(application, ["http"], shutdown_grace=2.0).start()
    yield hub
    hub.stop()


class PahoOverWebSocket:
    """A blocking paho-mqtt client on hub's ``/mqtt`` WebSocket, collecting what arrives."""

    def __init__(self, address: tuple[str, int], client_id: str) -> None:
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            transport="websockets",
        )
        self.client.ws_set_options(path="/mqtt")
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.connect(*address)
        self.client.loop_start()
        assert self.connected.wait(WAIT), "paho could not connect over WebSocket"

    def subscribe(self, topic_filter: str) -> None:
        self.client.subscribe(topic_filter, 1)
        assert self.subscribed.wait(WAIT), f"paho could not subscribe to {topic_filter!r}"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, 1).wait_for_publish(WAIT)

    def receive(self) -> paho.MQTTMessage:
        return self.messages.get(timeout=WAIT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def paho_client(live: LiveHub) -> Iterator[PahoOverWebSocket]:
    client = PahoOverWebSocket(live.address("http"), "paho-in-test")
    yield client
    client.close()


def wait_for_text(browser: Any, element_id: str, text: str) -> None:
    located = (By.ID, element_id)
    WebDriverWait(browser, WAIT).until(
        expected_conditions.text_to_be_present_in_element(located, text),
        f"#{element_id} never showed {text!r}",
    )


def open_page(browser: Any, live: LiveHub) -> None:
    """Load the page and wait until MQTT.js is connected and subscribed to ``to-browser/#``."""
    browser.get(live.url("http") + "/")
    wait_for_text(browser, "status", "subscribed")


class TestMqttJsInChromium:
    def test_the_page_serves_the_vendored_bundle_with_its_licence(
        self, live: LiveHub, browser: Any
    ) -> None:
        browser.get(live.url("http") + "/mqtt.min.js")
        assert "MIT License" in browser.page_source

    def test_a_message_the_page_publishes_reaches_a_paho_subscriber(
        self, live: LiveHub, browser: Any, paho_client: PahoOverWebSocket
    ) -> None:
        paho_client.subscribe("from-browser/#")
        open_page(browser, live)
        browser.find_element(By.ID, "payload").send_keys("hello from chromium")
        browser.find_element(By.CSS_SELECTOR, "#publish button").click()
        message = paho_client.receive()
        assert (message.topic, message.payload) == ("from-browser/hello", b"hello from chromium")

    def test_a_message_paho_publishes_appears_on_the_page(
        self, live: LiveHub, browser: Any, paho_client: PahoOverWebSocket
    ) -> None:
        open_page(browser, live)
        paho_client.publish("to-browser/news", b"hello from paho")
        wait_for_text(browser, "messages", "to-browser/news hello from paho")
