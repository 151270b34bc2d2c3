"""Publish to an MQTT bridge's broker from anywhere: consumers, Django views, tasks.

::

    from hub.mqtt.bridge import publish, publish_sync

    await publish("devices/7/commands", b"reboot", qos=1)          # async code
    publish_sync("devices/7/commands", "reboot", qos=1, bridge="eu")  # a view, a task

The message travels on the channel layer to the channel
``mqtt-bridge.<bridge>`` (:func:`bridge_channel`), where
:class:`BridgeOutbox` (around the application the bridge serves) takes it and
publishes it through the bridge's broker connection. A plain channel, not a
group: with ``--workers N`` there are N bridges, and a group would make each
of them publish the message; a channel gives it to exactly one.

The layer's rules apply: delivery is at most once, a message waits at most
the layer's ``expiry`` (60 s by default) for a connected bridge, and
``publish`` raises :class:`hub.exceptions.ChannelFull` past the channel's
``capacity``. The broker's own QoS applies from the bridge on. A message the
bridge took while its broker connection was closing is put back on the
channel for the next connection (or another worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from asgiref.sync import async_to_sync

from hub import DEFAULT_CHANNEL_LAYER
from hub.layers import get_channel_layer
from hub.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("hub.mqtt.bridge")

#: The channel-layer message type :func:`publish` sends.
PUBLISH_TYPE = "mqtt.bridge.publish"

_UNSAFE = re.compile(r"[^a-zA-Z\d\-_.]")


def bridge_channel(bridge: str = "default") -> str:
    """The channel a bridge (by its listener name) publishes from."""
    return f"mqtt-bridge.{_UNSAFE.sub('_', bridge)}"


def publish_message(
    topic: str,
    payload: bytes | str = b"",
    qos: int = 0,
    retain: bool = False,
    properties: dict[str, Any] | None = None,
) -> Message:
    """The channel-layer message :func:`publish` sends (for code that sends it itself)."""
    if qos not in (0, 1, 2):
        raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
    return {
        "type": PUBLISH_TYPE,
        "topic": topic,
        "payload": payload.encode() if isinstance(payload, str) else bytes(payload),
        "qos": qos,
        "retain": retain,
        "properties": properties or {},
    }


async def publish(
    topic: str,
    payload: bytes | str = b"",
    qos: int = 0,
    retain: bool = False,
    *,
    bridge: str = "default",
    layer: str = DEFAULT_CHANNEL_LAYER,
    **properties: Any,
) -> None:
    """Publish ``payload`` to ``topic`` on the broker of ``bridge``.

    Args:
        topic: an MQTT topic name (no wildcards).
        payload: bytes, or text sent as UTF-8.
        qos: the QoS of the PUBLISH the bridge sends to the broker.
        retain: the broker keeps it as the topic's retained message.
        bridge: the bridge's listener name (``name`` option; ``"default"``).
        layer: the channel layer alias.
        properties: MQTT 5.0 PUBLISH properties (``response_topic``,
            ``correlation_data``, ``user_properties``, ``message_expiry_interval``...).

    Raises:
        RuntimeError: no channel layer is configured.
        hub.exceptions.ChannelFull: the bridge's channel is at capacity.
    """
    channel_layer = get_channel_layer(layer)
    if channel_layer is None:
        raise RuntimeError(f"hub.mqtt.bridge.publish needs a channel layer ({layer!r} is not set)")
    message = publish_message(topic, payload, qos, retain, properties)
    await channel_layer.send(bridge_channel(bridge), message)


publish_sync = async_to_sync(publish)
""":func:`publish` for synchronous code (Django views, management commands)."""


class BridgeOutbox:
    """ASGI middleware: publish what :func:`publish` sent, through the bridge's connection.

    Wrap the application the bridge serves; scopes other than a bridge's
    (``mode: "bridge"``) pass through untouched, so the same router may serve
    direct listeners too::

        application = ProtocolTypeRouter({"mqtt": BridgeOutbox(Sensors.as_asgi())})

    Once the application accepted the broker connection (``mqtt.connack``),
    messages from :func:`bridge_channel` are sent as ``mqtt.publish`` until
    the application instance ends.
    """

    def __init__(self, app: ASGIApp, *, layer: str = DEFAULT_CHANNEL_LAYER) -> None:
        self.app = app
        self.layer = layer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "mqtt" or scope.get("mode") != "bridge":
            await self.app(scope, receive, send)
            return
        channel_layer = get_channel_layer(self.layer)
        if channel_layer is None:
            logger.warning("BridgeOutbox: no channel layer %r; publish() cannot reach", self.layer)
            await self.app(scope, receive, send)
            return
        channel = bridge_channel(str(scope.get("listener", "default")))
        accepted = asyncio.Event()

        async def watched_send(message: Message) -> None:
            await send(message)
            if message.get("type") == "mqtt.connack" and message.get("reason_code", 0) < 0x80:
                accepted.set()

        async def pump() -> None:
            await accepted.wait()
            while True:
                message = await channel_layer.receive(channel)
                if message.get("type") != PUBLISH_TYPE:
                    logger.warning("%s: ignored a %r message", channel, message.get("type"))
                    continue
                try:
                    await send(
                        {
                            "type": "mqtt.publish",
                            "topic": message["topic"],
                            "payload": message.get("payload", b""),
                            "qos": message.get("qos", 0),
                            "retain": message.get("retain", False),
                            "properties": message.get("properties") or {},
                        }
                    )
                except OSError:  # the broker connection closed: leave it to the next one
                    await channel_layer.send(channel, message)
                    return
                except (ValueError, KeyError) as exc:
                    logger.error(
                        "%s: message to %r dropped: %s", channel, message.get("topic"), exc
                    )

        task = asyncio.create_task(pump())
        try:
            await self.app(scope, receive, watched_send)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await task
                except Exception:
                    logger.exception("%s: publishing from the channel layer failed", channel)
