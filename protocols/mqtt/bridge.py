"""Bridge mode: hub as a paho-mqtt client of an external broker, served as ASGI.

When devices connect to a broker (a mosquitto, EMQX or HiveMQ cluster), hub
processes consume from it. Each broker connection is one ASGI scope (``type:
"mqtt"``, ``mode: "bridge"``) and each message the broker delivers is the same
``mqtt.publish`` event a device's PUBLISH is in direct mode, so one consumer
class serves both modes (``docs/specs/mqtt.md``, "Bridge mode")::

    bridge = MqttBridge(app, MqttBridgeConfig(
        url="mqtt://hub:secret@broker:1883/?subscribe=sensors/%23&qos=1&share=hub"))
    await bridge.start()          # first connection attempt made (it may have failed)
    ...
    bridge.close()                # DISCONNECT, the session stays on the broker
    await bridge.wait_closed()

It has the shape of the listening servers so the runner drives it alike:
``start()``, ``bound_addresses`` (the broker's address, for the banner),
``close()``, ``wait_closed(grace_seconds)``.

What it guarantees:

- **Acknowledged after the handler.** QoS 1/2 messages are acknowledged to
  the broker only once the application's ``mqtt.puback`` says they were
  handled (:mod:`.bridge_connection`). An application instance that crashes
  or returns ends the broker connection without acknowledging what it had
  not handled; the bridge reconnects and the broker sends those messages
  again. QoS 2 messages paho already answered with PUBREC are kept here
  and delivered again to the next instance (within this process: after PUBREC
  the receiver owns a QoS 2 message, MQTT 4.3.3, and hub keeps no disk).
- **Persistent session** (``clean_start=False``, ``session_expiry``): what
  was published while hub was away is delivered when it is back.
- **Shared subscriptions** (``share``): ``$share/<group>/<filter>``, one
  client id per worker (``worker``), so N hub workers split the messages.
- **Reconnect** with exponential backoff and jitter, then resubscribe; one
  log line per event (``mqtt-bridge default mqtt://broker:1883 hub-1: ...``).

paho's network loop runs on the asyncio loop through its socket callbacks
(:mod:`.bridge_loop`); only the blocking connect runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties
from paho.mqtt.reasoncodes import ReasonCode as PahoReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from .bridge_config import MqttBridgeConfig
from .bridge_connection import BridgeConnection, Phase
from .bridge_loop import PahoLoop
from .messages import ASGIApp

__all__ = ["MqttBridge", "MqttBridgeConfig"]

logger = logging.getLogger("protocols.mqtt.bridge")

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

#: v5 reason codes the bridge reports in ``mqtt.disconnect``.
NORMAL_DISCONNECTION = 0x00
UNSPECIFIED_ERROR = 0x80
KEEP_ALIVE_TIMEOUT = 0x8D
SERVER_SHUTTING_DOWN = 0x8B


class MqttBridge:
    """Serve one ASGI application with the messages of one broker connection."""

    def __init__(
        self,
        app: ASGIApp,
        config: MqttBridgeConfig | None = None,
        *,
        lifespan_state: dict[str, Any] | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        """Args:
        app: any ASGI 3 application that speaks the MQTT extension spec.
        config: broker, session, subscriptions; defaults to ``MqttBridgeConfig()``.
        lifespan_state: the lifespan ``state``; a copy goes into every scope.
        sock: ignored (a bridge listens on nothing); accepted for the runner's shape.
        """
        self.config = config or MqttBridgeConfig()
        self.app = app
        self.lifespan_state = lifespan_state
        self.name = f"mqtt-bridge {self.config.listener} {self.config.broker_url}"
        self.client_id = self.config.effective_client_id
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.client: paho.Client = None  # type: ignore[assignment]
        self.paho: PahoLoop = None  # type: ignore[assignment]
        self.connection: BridgeConnection | None = None
        #: QoS 2 messages delivered (PUBREC sent) whose PUBCOMP awaits the application.
        self.unreleased: dict[int, paho.MQTTMessage] = {}
        #: Of those, the ones delivered again to a later connection's instance.
        self.redelivered: set[int] = set()
        self.closing = False
        #: Set while a broker connection is up and its subscriptions are confirmed.
        self.connected = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._connack: asyncio.Future[int] | None = None
        self._ended: asyncio.Future[None] | None = None
        self._end_reason: str | None = None

    # The server shape ---------------------------------------------------------------

    async def start(self) -> None:
        """Make the first connection attempt, then keep the connection up in the background.

        A broker that is down does not stop hub from starting: the attempt is
        logged and retried with backoff.

        Raises:
            OSError / ssl.SSLError: the TLS files cannot be loaded.
        """
        self.loop = asyncio.get_running_loop()
        self.client = self.make_client()
        self.paho = PahoLoop(self.client, self.loop)
        first = self.loop.create_future()
        self._task = self.loop.create_task(self.run(first))
        await asyncio.shield(first)

    @property
    def bound_addresses(self) -> list[Any]:
        """The broker's ``(host, port)`` (or unix path): a bridge listens on nothing."""
        config = self.config
        return [config.uds] if config.uds else [(config.host, config.port)]

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return ()

    def close(self) -> None:
        """Stop reconnecting; DISCONNECT from the broker (the session stays there)."""
        if self.closing:
            return
        self.closing = True
        self._wake.set()
        if self.connection is not None and self.connection.phase is not Phase.CLOSED:
            self.end_connection(self.connection, "shutdown")
        elif self._connack is not None and not self._connack.done():
            self._connack.cancel()

    async def wait_closed(self, grace_seconds: float | None = None) -> None:
        """Wait for the application to finish, then cancel what is left."""
        if self._task is None:
            return
        self.close()
        grace = self.config.shutdown_grace if grace_seconds is None else grace_seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.wait({self._task, *self.tasks})
        pending = {task for task in (self._task, *self.tasks) if not task.done()}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self.paho.close()
        if self.client.socket() is not None:
            self.client.disconnect()

    # The connection loop ------------------------------------------------------------

    def make_client(self) -> paho.Client:
        config = self.config
        v5 = config.version == 5
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if v5 else config.clean_start,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            transport="unix" if config.uds else "tcp",
            reconnect_on_failure=False,
            manual_ack=True,
        )
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        context = config.create_ssl_context()
        if context is not None:
            client.tls_set_context(context)
            client.tls_insecure_set(config.tls_insecure)
        client.max_inflight_messages_set(config.max_inflight)
        client.max_queued_messages_set(config.max_queued_messages)
        client.connect_timeout = config.connect_timeout
        properties = None
        if v5:
            properties = PahoProperties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = config.session_expiry
            properties.ReceiveMaximum = config.receive_maximum
        client.connect_async(
            config.uds or config.host,
            config.port,
            config.keep_alive,
            clean_start=config.clean_start if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        client.on_connect = self.on_connect
        client.on_disconnect = self.on_disconnect
        client.on_message = self.on_message
        client.on_subscribe = self.on_subscribe
        return client

    async def run(self, first: asyncio.Future[None]) -> None:
        """Connect, serve until the connection ends, wait, reconnect; until closed."""
        failures = 0
        try:
            while not self.closing:
                served = await self.serve_once(first)
                if self.closing:
                    break
                failures = 0 if served else failures + 1
                delay = self.backoff(failures)
                self.log("info", f"reconnecting in {delay:.1f} s")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        finally:
            if not first.done():
                first.set_result(None)

    def backoff(self, failures: int) -> float:
        """Seconds before the next attempt: doubling from ``reconnect_min``, plus jitter."""
        config = self.config
        delay = min(config.reconnect_max, config.reconnect_min * 2.0 ** max(failures - 1, 0))
        return delay + random.uniform(0, delay * config.reconnect_jitter)

    async def serve_once(self, first: asyncio.Future[None]) -> bool:
        """One connection; True if it was up and the broker's side ended it (backoff resets)."""
        loop = self.loop
        self._connack = loop.create_future()
        self._ended = loop.create_future()
        self._end_reason = None
        self.log("info", f"connecting as {self.client_id}")
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                await self.paho.connect()
                code = await self._connack
        except (OSError, TimeoutError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not self.closing:
                raise
            if not self.closing:
                reason = "timed out (connect_timeout)" if isinstance(exc, TimeoutError) else exc
                self.log("warning", f"cannot connect: {reason}")
            self.paho.close()
            if self.client.socket() is not None:
                self.client.disconnect()
            return False
        finally:
            if not first.done():
                first.set_result(None)
        if code >= 0x80:
            return False
        await self._ended
        # The application closed or crashed (reason "closed"): back off as after a
        # failure, so a message that crashes every handler is not retried in a spin.
        return self._end_reason is None

    # paho callbacks (on the loop thread) --------------------------------------------

    def on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: PahoReasonCode,
        properties: PahoProperties | None,
    ) -> None:
        code = int(reason_code.value)
        if self._connack is None or self._connack.done():
            return
        if reason_code.is_failure:
            self.log("error", f"broker refused CONNECT: {reason_code} ({code:#04x})")
            self._connack.set_result(code)
            return
        session_present = bool(flags.session_present)
        filters = self.config.topic_filters
        self.log(
            "info",
            f"connected (session present: {'yes' if session_present else 'no'}); "
            + (f"subscribing to {', '.join(filters)}" if filters else "no subscriptions"),
        )
        if filters:
            qos = self.config.qos
            if self.config.version == 5:
                client.subscribe(
                    [(topic_filter, SubscribeOptions(qos=qos)) for topic_filter in filters]
                )
            else:
                client.subscribe([(topic_filter, qos) for topic_filter in filters])
        connection = BridgeConnection(self, session_present)
        self.connection = connection
        self.paho.drained = connection.written
        self.loop.call_later(self.config.connect_answer_timeout, self.answer_expired, connection)
        task = self.loop.create_task(connection.run_asgi())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if not filters:
            self.connected.set()
        self._connack.set_result(code)

    def on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[PahoReasonCode],
        properties: PahoProperties | None,
    ) -> None:
        for topic_filter, code in zip(self.config.topic_filters, reason_codes, strict=False):
            if code.is_failure:
                self.log(
                    "error",
                    f"broker refused the subscription to {topic_filter!r}: "
                    f"{code} ({int(code.value):#04x})",
                )
            else:
                self.log("debug", f"subscribed to {topic_filter!r} (QoS {int(code.value)})")
        if self.connection is not None and self.connection.phase is not Phase.CLOSED:
            self.connected.set()

    def on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        connection = self.connection
        if connection is None or connection.phase is Phase.CLOSED:
            return  # not acknowledged: the broker sends it again on the next connection
        if message.qos == 2:
            self.unreleased[message.mid] = message
        connection.deliver_publish(message)

    def on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: PahoReasonCode,
        properties: PahoProperties | None,
    ) -> None:
        self.paho.close()
        self.connected.clear()
        code = int(reason_code.value)
        reason = self._end_reason
        if reason is None:
            if flags.is_disconnect_packet_from_server:
                reason = "broker"
                self.log("warning", f"broker disconnected hub: {reason_code} ({code:#04x})")
            elif code == KEEP_ALIVE_TIMEOUT or reason_code == "Keep alive timeout":
                reason = "keep_alive_timeout"
                self.log("warning", "broker did not answer PINGREQ, connection closed")
            else:
                reason = "connection_lost"
                code = UNSPECIFIED_ERROR
                self.log("warning", "connection to the broker lost")
        elif reason == "shutdown":
            code = SERVER_SHUTTING_DOWN
            self.log("info", "disconnected (shutdown); the session stays on the broker")
        else:
            code = NORMAL_DISCONNECTION
        connection = self.connection
        if connection is not None:
            connection.lost(code, reason)
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(ConnectionError("connection closed before CONNACK"))
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    # From the connection ------------------------------------------------------------

    def accepted(self, connection: BridgeConnection) -> None:
        """The application accepted: deliver again the QoS 2 messages still unreleased."""
        for mid, message in list(self.unreleased.items()):
            if mid not in connection.pending:
                self.redelivered.add(mid)
                connection.deliver_publish(message, dup=True)

    def answer_expired(self, connection: BridgeConnection) -> None:
        if connection.phase is Phase.CONNECTING:
            self.log(
                "error",
                f"application did not answer mqtt.connect within "
                f"{self.config.connect_answer_timeout} s (connect_answer_timeout)",
            )
            self.end_connection(connection, "closed")

    def end_connection(self, connection: BridgeConnection, reason: str) -> None:
        """Close the broker connection of ``connection`` (DISCONNECT; the session stays)."""
        if connection is not self.connection or connection.phase is Phase.CLOSED:
            return
        self._end_reason = reason
        if self.client.socket() is None:
            self.on_disconnect(
                self.client,
                None,
                paho.DisconnectFlags(False),
                PahoReasonCode(PacketTypes.DISCONNECT),
                None,
            )
            return
        self.client.disconnect()

    def log(self, level: str, text: str, exc_info: bool = False) -> None:
        """One line: ``mqtt-bridge default mqtt://broker:1883 hub-1: reason``."""
        logger.log(_LEVELS[level], "%s %s: %s", self.name, self.client_id, text, exc_info=exc_info)
