"""One broker connection of a bridge and its application instance's receive/send.

The bridge's counterpart of :mod:`protocols.mqtt.protocol`: the same events
(``docs/specs/mqtt.md``, "Bridge mode"), so one consumer serves both modes.

Phases (``send()`` checks the application's messages against them):

- ``CONNECTING``: the broker accepted hub's CONNECT, ``mqtt.connect`` is
  queued; messages the broker sends meanwhile (a resumed session delivers at
  once) queue behind it. The application answers ``mqtt.connack``.
- ``OPEN``: messages flow both ways.
- ``CLOSED``: the broker connection is gone; ``mqtt.disconnect`` is queued.

**Acknowledgement after the handler.** paho runs with ``manual_ack``: a QoS 1
message is acknowledged (PUBACK) when the application sends ``mqtt.puback``
for it, in the order the messages arrived (MQTT 4.6), whatever order the
answers come in. For QoS 2, paho answers PUBREC itself and delivers the
message on PUBREL; the PUBCOMP waits for ``mqtt.puback``. An answer from the
instance of an earlier connection is ignored: Packet Identifiers are only
meaningful on the connection that carried them, and the broker resends what
that connection left unacknowledged.
"""

from __future__ import annotations

import asyncio
import enum
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from .messages import Message, PeerDisconnected, unexpected
from .topics import is_valid_topic_name

if TYPE_CHECKING:
    from .bridge import MqttBridge


class Phase(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


#: ``scope["asgi"]`` of bridge scopes: the spec's bridge section is version 1.1.
BRIDGE_ASGI_VERSION = {"version": "3.0", "spec_version": "1.1"}

#: What ``send()`` accepts in each phase; anything else is out of order.
EXPECTED: dict[Phase, tuple[str, ...]] = {
    Phase.CONNECTING: ("mqtt.connack", "mqtt.disconnect"),
    Phase.OPEN: ("mqtt.publish", "mqtt.puback", "mqtt.disconnect"),
}

#: paho's v5 property attribute names -> the spec's names, for received PUBLISH.
PROPERTY_NAMES = {
    "PayloadFormatIndicator": "payload_format_indicator",
    "MessageExpiryInterval": "message_expiry_interval",
    "ContentType": "content_type",
    "ResponseTopic": "response_topic",
    "CorrelationData": "correlation_data",
    "SubscriptionIdentifier": "subscription_identifiers",
    "UserProperty": "user_properties",
}
_PAHO_NAMES = {name: paho_name for paho_name, name in PROPERTY_NAMES.items()}

_QOS = (0, 1, 2)


def properties_to_dict(properties: PahoProperties | None) -> dict[str, Any]:
    """The v5 properties paho decoded, as the spec's dict (``{}`` for none or 3.1.1)."""
    if properties is None:
        return {}
    result: dict[str, Any] = {}
    for paho_name, name in PROPERTY_NAMES.items():
        value = getattr(properties, paho_name, None)
        if value is None:
            continue
        if name == "user_properties":
            value = [list(pair) for pair in value]
        elif name == "subscription_identifiers":
            value = list(value)
        result[name] = value
    return result


def properties_from_dict(values: dict[str, Any] | None) -> PahoProperties | None:
    """paho PUBLISH properties from the application's dict.

    Raises:
        ValueError: a name is not a PUBLISH property.
    """
    if not values:
        return None
    properties = PahoProperties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        if value is None:
            continue
        paho_name = _PAHO_NAMES.get(name)
        if paho_name is None or name == "subscription_identifiers":
            raise ValueError(f"{name!r} is not a property of a PUBLISH sent to a broker")
        if name == "user_properties":
            value = [(str(key), str(item)) for key, item in value]
        setattr(properties, paho_name, value)
    return properties


class BridgeConnection:
    """One broker connection, from CONNACK to its end, and its application instance."""

    def __init__(self, bridge: MqttBridge, session_present: bool) -> None:
        self.bridge = bridge
        self.config = config = bridge.config
        self.loop = bridge.loop
        self.client = bridge.client
        self.session_present = session_present
        self.phase = Phase.CONNECTING
        self.queue: deque[Message] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.disconnect: Message | None = None
        #: Received QoS 1/2 awaiting mqtt.puback, in arrival order: mid -> [qos, answered].
        self.pending: OrderedDict[int, list[Any]] = OrderedDict()
        #: Publishes handed to paho since its output buffer was last empty, and
        #: the send() waiting for that buffer to empty (see publish()).
        self.unwritten = 0
        self.drain_waiter: asyncio.Future[None] | None = None
        sock = self.client.socket()
        local = getattr(sock, "getsockname", lambda: None)()
        expiry = (
            config.session_expiry
            if config.version == 5
            else (0 if config.clean_start else 0xFFFFFFFF)
        )
        self.scope: dict[str, Any] = {
            "type": "mqtt",
            "asgi": BRIDGE_ASGI_VERSION,
            "mode": "bridge",
            "listener": config.listener,
            "protocol_version": config.version,
            "client_id": config.effective_client_id,
            "client_id_assigned": False,
            "username": None,
            "keep_alive": config.keep_alive,
            "clean_start": config.clean_start,
            "session_expiry_interval": expiry,
            "will": None,
            "properties": {},
            "client": tuple(local[:2]) if isinstance(local, tuple) else None,
            "server": (config.uds, None) if config.uds else (config.host, config.port),
            "extensions": {},
            "broker": {
                "url": config.broker_url,
                "username": config.username,
                "session_present": session_present,
                "subscriptions": [
                    {"topic_filter": topic_filter, "qos": config.qos}
                    for topic_filter in config.topic_filters
                ],
            },
        }
        if bridge.lifespan_state is not None:
            self.scope["state"] = bridge.lifespan_state.copy()
        self.queue.append({"type": "mqtt.connect", "password": None})

    # From the broker (called by MqttBridge on the loop) --------------------------

    def deliver_publish(self, message: paho.MQTTMessage, dup: bool = False) -> None:
        qos = message.qos
        mid = message.mid if qos else None
        if mid is not None:
            self.pending[mid] = [qos, False]
        try:
            topic = message.topic
        except UnicodeDecodeError:  # a broken broker; acknowledge so it is not resent forever
            self.bridge.log(
                "warning", f"message with a topic that is not UTF-8 dropped (mid {mid})"
            )
            if mid is not None:
                self.answer(mid)
            return
        self.deliver(
            {
                "type": "mqtt.publish",
                "topic": topic,
                "payload": message.payload,
                "qos": qos,
                "retain": bool(message.retain),
                "dup": bool(message.dup) or dup,
                "packet_id": mid,
                "properties": properties_to_dict(getattr(message, "properties", None)),
            }
        )

    def deliver(self, message: Message) -> None:
        """Queue an event for the application; stop reading the broker past ``max_queue``."""
        queue = self.queue
        queue.append(message)
        self.wake()
        if len(queue) >= self.config.max_queue:
            self.bridge.paho.pause_reading()

    def lost(self, reason_code: int, reason: str) -> None:
        """The broker connection ended: the application gets ``mqtt.disconnect`` last."""
        if self.phase is Phase.CLOSED:
            return
        self.phase = Phase.CLOSED
        self.pending.clear()
        self.disconnect = {
            "type": "mqtt.disconnect",
            "reason_code": reason_code,
            "reason": reason,
            "publish_will": False,
            "session_expiry_interval": self.scope["session_expiry_interval"],
        }
        self.wake()
        self.written()

    def written(self) -> None:
        """paho's output buffer is empty: wake a ``send()`` waiting for it."""
        self.unwritten = 0
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # The application instance ------------------------------------------------------

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def receive(self) -> Message:
        queue = self.queue
        while not queue:
            if self.disconnect is not None:
                return self.disconnect
            self.bridge.paho.resume_reading()
            waiter = self.waiter = self.loop.create_future()
            await waiter
        message = queue.popleft()
        if len(queue) < self.config.max_queue and self.phase is not Phase.CLOSED:
            self.bridge.paho.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        message_type = message.get("type")
        phase = self.phase
        if phase is Phase.OPEN:
            if message_type == "mqtt.publish":
                await self.publish(message)
                return
            if message_type == "mqtt.puback":
                self.puback(message)
                return
            if message_type == "mqtt.disconnect":
                code = int(message.get("reason_code", 0))
                self.bridge.log("info", f"application closed the broker connection ({code:#04x})")
                self.bridge.end_connection(self, "closed")
                return
        elif phase is Phase.CONNECTING:
            if message_type == "mqtt.connack":
                code = int(message.get("reason_code", 0))
                if code >= 0x80:
                    self.bridge.log("error", f"application refused the connection ({code:#04x})")
                    self.bridge.end_connection(self, "closed")
                else:
                    self.phase = Phase.OPEN
                    self.bridge.accepted(self)
                return
            if message_type == "mqtt.disconnect":
                code = int(message.get("reason_code", 0x80))
                self.bridge.log("error", f"application refused the connection ({code:#04x})")
                self.bridge.end_connection(self, "closed")
                return
        elif phase is Phase.CLOSED:
            if message_type == "mqtt.publish":
                raise PeerDisconnected(f"broker connection closed ({self.disconnect_reason})")
            return
        raise unexpected(EXPECTED.get(phase, ()), message_type)

    @property
    def disconnect_reason(self) -> str:
        return str(self.disconnect["reason"]) if self.disconnect else "closing"

    async def publish(self, message: Message) -> None:
        """Publish to the broker; await paho's buffer past ``max_queue`` unwritten messages."""
        topic = message.get("topic")
        if not isinstance(topic, str) or not is_valid_topic_name(topic):
            raise ValueError(f"mqtt.publish 'topic' must be a topic name, got {topic!r}")
        payload = message.get("payload", b"")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise ValueError(
                f"mqtt.publish 'payload' must be a byte string, got {type(payload).__name__}"
            )
        qos = message.get("qos", 0)
        if qos not in _QOS:
            raise ValueError(f"mqtt.publish 'qos' must be 0, 1 or 2, got {qos!r}")
        properties = (
            properties_from_dict(message.get("properties")) if self.config.version == 5 else None
        )
        info = self.client.publish(
            topic, bytes(payload), qos, bool(message.get("retain", False)), properties
        )
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            self.bridge.log(
                "warning",
                f"message to {topic!r} dropped: {self.config.max_queued_messages} queued "
                "(max_queued_messages)",
            )
        elif info.rc == paho.MQTT_ERR_NO_CONN:
            raise PeerDisconnected("broker connection closed")
        self.unwritten += 1
        if self.unwritten >= self.config.max_queue and self.client.want_write():
            if self.drain_waiter is None:
                self.drain_waiter = self.loop.create_future()
            await asyncio.shield(self.drain_waiter)

    def puback(self, message: Message) -> None:
        pending = self.pending
        mid = message.get("packet_id")
        if mid is None:
            mid = next((key for key, value in pending.items() if not value[1]), None)
        entry = pending.get(mid)  # type: ignore[arg-type]
        if entry is None or entry[1]:
            raise ValueError(f"mqtt.puback for packet_id {mid!r}, which awaits no acknowledgement")
        entry[1] = True
        self.answer(mid)  # type: ignore[arg-type]

    def answer(self, mid: int) -> None:
        """Mark ``mid`` handled and send the acknowledgements now due, in arrival order."""
        pending = self.pending
        if mid in pending:
            pending[mid][1] = True
        client, bridge = self.client, self.bridge
        while pending:
            head, (qos, answered) = next(iter(pending.items()))
            if not answered:
                break
            del pending[head]
            if qos == 2:
                bridge.unreleased.pop(head, None)
                if not self.session_present and head in bridge.redelivered:
                    continue  # a new session: the broker awaits no PUBCOMP for it
            bridge.redelivered.discard(head)
            client.ack(head, qos)

    async def run_asgi(self) -> None:
        """Run the application instance; list its failure paths as the spec does."""
        bridge = self.bridge
        try:
            result: object = await bridge.app(  # type: ignore[func-returns-value]
                self.scope, self.receive, self.send
            )
        except PeerDisconnected:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            bridge.log("error", f"application crashed: {type(exc).__name__}: {exc}", exc_info=True)
        else:
            if result is not None:
                bridge.log(
                    "error", f"application returned a value (expected None): {result!r:.100}"
                )
            elif self.phase is Phase.CONNECTING:
                bridge.log("error", "application returned without answering mqtt.connect")
        if self.phase is not Phase.CLOSED:
            bridge.end_connection(self, "closed")
