"""``BrokerConsumer``: standard MQTT broker semantics on top of the channel layer.

An application that is only ``ProtocolTypeRouter({"mqtt": BrokerConsumer.as_asgi()})``
is an MQTT broker; subclass it to add behaviour (authorization hooks, storing
messages, publishing from Django). What it does, by the spec's sections:

- **Routing** (4.7): every PUBLISH is matched against the subscription
  registry (:mod:`hub.mqtt.state`), wildcards included, ``$`` topics not
  matched by leading wildcards; overlapping subscriptions of one client get
  one copy at the highest granted QoS with every Subscription Identifier;
  the QoS is downgraded to the granted one (3.8.4); no-local and
  retain-as-published per subscription; shared subscriptions
  (``$share/group/filter``) go to one member in turn, online first.
- **Delivery** is ``channel_layer.send(channel_name, {"type": "broker.deliver", ...})``
  to the subscriber's consumer, in whatever process it lives (one
  ``send_many(channel_names, event)`` for the subscribers of a message that get
  the same event, when the layer has that method); a full channel
  drops a QoS 0 message, and makes a QoS 1/2 publisher wait (which slows the
  publishing client through its in-flight window) up to ``delivery_timeout``.
- **Retained messages** (3.3.1.3): kept per topic, cleared by an empty
  payload, sent on subscribe per Retain Handling (not to shared subscriptions).
- **Sessions** (4.1): with Clean Start 0 / a Session Expiry, subscriptions
  outlive the connection and QoS 1/2 messages are kept for the client
  (:data:`~hub.mqtt.state.MAX_OFFLINE_MESSAGES`), delivered on resume with
  their Message Expiry counted down.
- **Wills** (3.1.2.5, v5 3.1.3.2.2): published when the server says they are
  due, after the Will Delay Interval unless the client came back first.
- Request/response and user properties pass through unchanged.

Process-local parts, documented as such: the default
:class:`~hub.mqtt.state.MemoryBrokerState` and the timers of delayed wills.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from hub.exceptions import ChannelFull
from hub.types import Message

from .consumer import AsyncMqttConsumer
from .messages import MqttMessage
from .state import BrokerState, MemoryBrokerState, SubscriptionOptions

logger = logging.getLogger("hub.mqtt.broker")

#: Timers of wills waiting for their delay, by client id (this process).
PENDING_WILLS: dict[str, asyncio.TimerHandle] = {}

_FAILURE = 0x80


def _deliver_event(
    topic: str,
    payload: bytes,
    qos: int,
    retain: bool,
    properties: dict[str, Any],
    identifiers: list[int] | None,
) -> dict[str, Any]:
    """The ``broker.deliver`` event of one message for a subscriber."""
    event: dict[str, Any] = {
        "type": "broker.deliver",
        "topic": topic,
        "payload": payload,
        "qos": qos,
        "retain": retain,
    }
    if identifiers:
        event["properties"] = dict(properties, subscription_identifiers=identifiers)
    elif properties:
        # Absent when empty: a flat event is copied with dict.copy by the
        # in-memory layer, not structurally (most messages have none).
        event["properties"] = properties
    return event


class BrokerConsumer(AsyncMqttConsumer):
    """A standard MQTT broker, one instance per client connection."""

    #: The registry, retained messages and offline sessions (one per process by default).
    state: ClassVar[BrokerState] = MemoryBrokerState()
    #: Seconds a QoS 1/2 delivery waits for room in a full subscriber channel.
    delivery_timeout: ClassVar[float] = 5.0

    #: Filters of the SUBSCRIBE being answered -> whether each is new (for Retain
    #: Handling 1); a dict of the instance's own while a SUBSCRIBE is handled.
    _new_filters: dict[str, bool] | None = None

    # Session -------------------------------------------------------------------

    async def connect(self) -> bool | None:
        handle = PENDING_WILLS.pop(self.client_id, None)
        if handle is not None:
            handle.cancel()  # the client is back before its will delay ran out
        return await self.state.attach(
            self.client_id, self.channel_name, clean=bool(self.scope["clean_start"])
        )

    async def connected(self) -> None:
        now = time.monotonic()
        for queued_at, message in await self.state.drain(self.client_id):
            await self._deliver_to_client(message, now - queued_at)

    async def disconnect(self, event: Message) -> None:
        will = self.scope.get("will")
        if will is not None and event.get("publish_will"):
            delay = int(will["properties"].get("will_delay_interval") or 0)
            delay = min(delay, int(event.get("session_expiry_interval", 0)))
            if delay and event.get("reason") != "taken_over":
                loop = asyncio.get_running_loop()
                PENDING_WILLS[self.client_id] = loop.call_later(delay, self._delayed_will, will)
            elif not delay:
                await self._publish_will(will)
        await self.state.detach(
            self.client_id, self.channel_name, int(event.get("session_expiry_interval", 0))
        )

    def _delayed_will(self, will: dict[str, Any]) -> None:
        PENDING_WILLS.pop(self.client_id, None)
        task = asyncio.ensure_future(self._publish_will(will))
        task.add_done_callback(lambda _: None)

    async def _publish_will(self, will: dict[str, Any]) -> None:
        properties = {
            k: v for k, v in will.get("properties", {}).items() if k != "will_delay_interval"
        }
        await self.distribute(
            will["topic"], will["payload"], will["qos"], will["retain"], properties
        )

    # Subscriptions -------------------------------------------------------------

    async def subscribe(self, topic_filter: str, qos: int, options: dict[str, Any]) -> int:
        if self._new_filters is None:
            self._new_filters = {}
        self._new_filters[topic_filter] = await self.state.subscribe(
            self.client_id,
            self.channel_name,
            topic_filter,
            SubscriptionOptions(
                qos,
                bool(options.get("no_local")),
                bool(options.get("retain_as_published")),
                options.get("subscription_identifier"),
            ),
        )
        return qos

    async def subscribed(self, granted: list[tuple[dict[str, Any], int]]) -> None:
        """Send the retained messages each new subscription asks for (Retain Handling)."""
        new_filters, self._new_filters = self._new_filters or {}, None
        for subscription, code in granted:
            topic_filter = subscription["topic_filter"]
            is_new = new_filters.pop(topic_filter, False)
            handling = subscription.get("retain_handling", 0)
            if code >= _FAILURE or handling == 2 or (handling == 1 and not is_new):
                continue
            if topic_filter.startswith("$share/"):
                continue  # MQTT-3.8.4-... retained messages are not sent to shared subscriptions
            identifier = subscription.get("subscription_identifier")
            now = time.monotonic()
            for retained_at, message in await self.state.retained(topic_filter):
                properties = dict(message["properties"])
                if identifier is not None:
                    properties["subscription_identifiers"] = [identifier]
                await self._deliver_to_client(
                    dict(
                        message, qos=min(code, message["qos"]), retain=True, properties=properties
                    ),
                    now - retained_at,
                )

    async def unsubscribe(self, topic_filter: str) -> None:
        await self.state.unsubscribe(self.client_id, self.channel_name, topic_filter)

    # Publishing ----------------------------------------------------------------

    async def receive(self, message: MqttMessage) -> None:
        await self.distribute(
            message.topic, message.payload, message.qos, message.retain, message.properties
        )

    async def distribute(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: dict[str, Any],
    ) -> None:
        """Publish a message as the broker does: retain it, deliver it to every subscriber."""
        state = self.state
        if retain:
            stored = {"topic": topic, "payload": payload, "qos": qos, "properties": properties}
            await state.retain(topic, stored if payload else None)
        layer = self.channel_layer
        # Subscribers that get the same event, by (QoS, retain flag): one dict for
        # all of them (the layer gives each recipient its own copy), and one call
        # with a layer that can send to many channels at once.
        batches: dict[tuple[int, bool], tuple[dict[str, Any], list[str]]] = {}
        for delivery in await state.match(topic, self.client_id):
            granted = qos if qos < delivery.qos else delivery.qos
            kept = retain and delivery.retain_as_published
            channel = delivery.channel
            identifiers = delivery.subscription_identifiers
            if channel is None or identifiers:
                event = _deliver_event(topic, payload, granted, kept, properties, identifiers)
                if channel is None:
                    if granted:
                        await state.enqueue(delivery.client_id, event)
                elif layer is not None:
                    await self._send([channel], event, granted)
                continue
            batch = batches.get((granted, kept))
            if batch is None:
                event = _deliver_event(topic, payload, granted, kept, properties, None)
                batch = batches[granted, kept] = (event, [])
            batch[1].append(channel)
        if layer is None:
            return
        send_many = getattr(layer, "send_many", None)
        for (granted, _), (event, channels) in batches.items():
            # With a layer that has send_many(channels, message) -> full channels,
            # one call for all: the message is checked and its copy chosen once.
            if send_many is not None and len(channels) > 1:
                full: list[str] = await send_many(channels, event)
            else:
                full = []
                for channel in channels:
                    try:
                        await layer.send(channel, event)
                    except ChannelFull:
                        full.append(channel)
            if full:
                await self._channels_full(full, event, granted)

    async def _send(self, channels: list[str], event: Message, qos: int) -> None:
        """Send ``event`` to each of ``channels`` (see :meth:`_channels_full`)."""
        full = []
        for channel in channels:
            try:
                await self.channel_layer.send(channel, event)
            except ChannelFull:
                full.append(channel)
        if full:
            await self._channels_full(full, event, qos)

    async def _channels_full(self, channels: list[str], event: Message, qos: int) -> None:
        """A full channel drops a QoS 0 message, and waits for room for QoS 1/2."""
        for channel in channels:
            if qos:
                await self._send_when_room(channel, event, qos)
            else:
                logger.debug(
                    "QoS 0 message to %r dropped: channel %r full", event["topic"], channel
                )

    async def _send_when_room(self, channel: str, event: Message, qos: int) -> None:
        """Send a QoS 1/2 message to a full channel: retry, slowing the publisher, for a while."""
        layer = self.channel_layer
        delay, waited = 0.001, 0.0
        while waited < self.delivery_timeout:
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.1)
            try:
                await layer.send(channel, event)
                return
            except ChannelFull:
                pass
        logger.warning(
            "%s: QoS %d message to %r dropped: subscriber channel full for %.1f s",
            self._describe(),
            qos,
            event["topic"],
            waited,
        )

    async def broker_deliver(self, event: Message) -> None:
        """A message routed to this client (from any consumer, in any process).

        :meth:`_deliver_to_client` without the expiry countdown: the message
        was just published (queued and retained ones go through it). The event
        is this consumer's own copy (channel layers give each recipient one),
        with the keys of ``mqtt.publish``: it is sent as it is, retyped.
        """
        event["type"] = "mqtt.publish"
        try:
            await self.send(event)
        except OSError:
            # The connection closed under us: a persistent session keeps QoS 1/2.
            if event["qos"]:
                await self.state.enqueue(self.client_id, dict(event, type="broker.deliver"))

    async def _deliver_to_client(self, message: Message, age: float) -> None:
        properties = message.get("properties") or {}
        expiry = properties.get("message_expiry_interval")
        if expiry is not None and age >= 1:
            left = int(expiry - age)
            if left <= 0:
                return  # expired before it could be delivered (v5 3.3.2.3.3)
            properties = dict(properties, message_expiry_interval=left)
        try:
            await self.send(
                {
                    "type": "mqtt.publish",
                    "topic": message["topic"],
                    "payload": message["payload"],
                    "qos": message["qos"],
                    "retain": message.get("retain", False),
                    "properties": properties,
                }
            )
        except OSError:
            # The connection closed under us: a persistent session keeps QoS 1/2.
            if message["qos"]:
                await self.state.enqueue(self.client_id, dict(message, type="broker.deliver"))
