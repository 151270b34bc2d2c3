"""MQTT over WebSocket: an ASGI websocket application that serves MQTT clients.

Browsers speak MQTT over WebSocket (MQTT.js, Eclipse Paho JavaScript), and so
does paho-mqtt with ``transport="websockets"``. Mount this in the websocket
router of any ASGI server (hub's HTTP listener included)::

    application = ProtocolTypeRouter({
        "websocket": URLRouter([path("mqtt", MqttOverWebSocket(BrokerConsumer.as_asgi()))]),
        "mqtt": BrokerConsumer.as_asgi(),
    })

It accepts the ``mqtt`` subprotocol (MQTT 5.0 section 6; ``mqttv3.1`` too,
for old clients), feeds each binary WebSocket message to the same per-connection
MQTT logic as the TCP server (:class:`~protocols.mqtt.protocol.MqttProtocol`:
codec, CONNECT, QoS flows, sessions, keep-alive, limits) through a small
transport-like adapter, and calls ``mqtt_app`` with the same ``mqtt`` scope
as a TCP connection: ``client``/``server`` are the WebSocket's, ``listener``
is the ``name`` option (``"websocket"`` by default), and
``extensions["websocket"]`` holds the request's ``path`` and ``headers``.
Auth, routing and broker semantics are therefore the TCP listener's.

One :class:`MqttOverWebSocket` is one MQTT listener: client ids, takeover and
kept sessions are shared by its connections (not with the TCP listener's,
as between two TCP listeners). Its options are :class:`MqttConfig`'s limits;
the address options are unused.

MQTT packets may span WebSocket messages and one message may hold several
(MQTT 5.0 6.0); a text message is a protocol error: the connection is closed
with 1003.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .config import MqttConfig
from .messages import ASGIApp, Message, Receive, Scope, Send
from .protocol import MqttProtocol
from .server import Listener

#: Subprotocols accepted, in order of preference (MQTT 5.0 6.0; 3.1 clients said ``mqttv3.1``).
SUBPROTOCOLS = ("mqtt", "mqttv3.1")

#: WebSocket close codes used here (RFC 6455 7.4.1).
NORMAL_CLOSURE = 1000
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003


class WebSocketTransport(asyncio.Transport):
    """What :class:`MqttProtocol` needs of a transport, written to an ASGI websocket ``send``.

    ``write()`` cannot await: bytes collect in a buffer that one writer task
    sends as binary messages (what one event loop turn wrote becomes one
    message). Past the high-water mark the protocol is told to pause writing,
    so its application's ``send()`` awaits, as on a socket.
    """

    def __init__(self, scope: Scope, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.scope = scope
        self.asgi_send = send
        self.loop = loop
        self.protocol: MqttProtocol | None = None
        self.buffer = bytearray()
        self.high_water = 64 * 1024
        self.write_paused = False
        self.closing = False
        self.lost = False
        self.close_code = NORMAL_CLOSURE
        self.reading = asyncio.Event()
        self.reading.set()
        self.wakeup = asyncio.Event()
        self.writer = loop.create_task(self.write_loop())

    # asyncio.Transport ------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing or self.lost:
            return
        self.buffer += data
        self.wakeup.set()
        if not self.write_paused and len(self.buffer) > self.high_water and self.protocol:
            self.write_paused = True
            self.protocol.pause_writing()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.wakeup.set()

    def abort(self) -> None:
        self.buffer.clear()
        self.close()

    def is_closing(self) -> bool:
        return self.closing or self.lost

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            client = self.scope.get("client")
            return tuple(client) if client else default
        if name == "sockname":
            server = self.scope.get("server")
            return tuple(server) if server else default
        return default

    def pause_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def is_reading(self) -> bool:
        return self.reading.is_set()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high_water = high if high is not None else 64 * 1024

    def get_write_buffer_size(self) -> int:
        return len(self.buffer)

    # Our side ---------------------------------------------------------------------

    async def write_loop(self) -> None:
        """Send the buffer as binary messages; on close, flush and close the WebSocket."""
        while not self.lost:
            await self.wakeup.wait()
            self.wakeup.clear()
            if self.buffer:
                data = bytes(self.buffer)
                self.buffer.clear()
                try:
                    await self.asgi_send({"type": "websocket.send", "bytes": data})
                except OSError:  # the client went away; its disconnect event follows
                    self.connection_lost()
                    return
                if self.write_paused and len(self.buffer) <= self.high_water // 4:
                    self.write_paused = False
                    if self.protocol is not None:
                        self.protocol.resume_writing()
                if self.buffer:
                    self.wakeup.set()
                    continue
            if self.closing and not self.buffer:
                with contextlib.suppress(OSError):
                    await self.asgi_send({"type": "websocket.close", "code": self.close_code})
                self.connection_lost()
                return

    def connection_lost(self) -> None:
        """The WebSocket is gone (closed by us, or the client): tell the protocol once."""
        if self.lost:
            return
        self.lost = True
        self.buffer.clear()
        self.reading.set()
        self.wakeup.set()
        if self.protocol is not None:
            self.protocol.connection_lost(None)


class WebSocketMqttProtocol(MqttProtocol):
    """:class:`MqttProtocol` with the WebSocket request in its scope."""

    def __init__(self, listener: Listener, websocket_scope: Scope) -> None:
        super().__init__(listener)
        self.websocket_scope = websocket_scope
        self.app_done = asyncio.Event()

    def handle_connect(self, packet: Any) -> None:
        super().handle_connect(packet)
        # The application task is spawned but has not run yet: the scope may still change.
        websocket = self.websocket_scope
        extensions = self.scope["extensions"]
        extensions["websocket"] = {
            "path": websocket.get("path", ""),
            "headers": list(websocket.get("headers", ())),
            "subprotocol": "mqtt",
        }
        tls = (websocket.get("extensions") or {}).get("tls")
        if tls is not None:
            extensions["tls"] = tls

    async def run_asgi(self) -> None:
        try:
            await super().run_asgi()
        finally:
            self.app_done.set()


class MqttOverWebSocket:
    """An ASGI websocket app serving ``mqtt_app`` to MQTT-over-WebSocket clients.

    Args:
        mqtt_app: the ASGI application for the ``mqtt`` scopes.
        config: the limits; ``MqttConfig(**options)`` when not given.
        options: :class:`MqttConfig` fields (``name`` defaults to ``"websocket"``).
    """

    def __init__(self, mqtt_app: ASGIApp, config: MqttConfig | None = None, **options: Any):
        if config is None:
            options.setdefault("name", "websocket")
            config = MqttConfig(**options)
        elif options:
            raise TypeError("give either config or MqttConfig options, not both")
        self.app = mqtt_app
        self.config = config
        self.listener: Listener | None = None

    def get_listener(self, scope: Scope) -> Listener:
        listener = self.listener
        if listener is None or listener.loop is not asyncio.get_running_loop():
            listener = Listener(self.app, self.config, scope.get("state"), None)
            listener.name = f"mqtt {self.config.listener} ws:{scope.get('path', '')}"
            self.listener = listener
        return listener

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError(f"MqttOverWebSocket serves websocket scopes, got {scope['type']!r}")
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        offered = scope.get("subprotocols") or ()
        chosen = next((name for name in SUBPROTOCOLS if name in offered), None)
        if chosen is None:
            await send({"type": "websocket.close", "code": PROTOCOL_ERROR})  # 403 before accept
            return
        await send({"type": "websocket.accept", "subprotocol": chosen})
        listener = self.get_listener(scope)
        loop = asyncio.get_running_loop()
        transport = WebSocketTransport(scope, send, loop)
        protocol = WebSocketMqttProtocol(listener, scope)
        transport.protocol = protocol
        protocol.connection_made(transport)
        try:
            await self.read(transport, protocol, receive)
            if protocol.started:
                await protocol.app_done.wait()
        finally:
            transport.writer.cancel()

    async def read(
        self, transport: WebSocketTransport, protocol: WebSocketMqttProtocol, receive: Receive
    ) -> None:
        """Feed binary messages to the protocol until the client's ``websocket.disconnect``.

        After the MQTT side closed (our close frame is out), messages still
        arriving are dropped until the client's close completes the handshake.
        """
        while True:
            if not transport.reading.is_set():
                await transport.reading.wait()
            message: Message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                transport.connection_lost()
                return
            if kind != "websocket.receive" or transport.is_closing():
                continue
            data = message.get("bytes")
            if data is None:  # MQTT 5.0 6.0: binary frames only
                protocol.log("info", "text WebSocket message received, closing (1003)")
                transport.close_code = UNSUPPORTED_DATA
                transport.abort()
                continue
            protocol.data_received(data)
