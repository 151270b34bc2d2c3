"""MQTT consumers: device connections, topic routing, and a ready broker.

The public import path of hub's MQTT framework (the parts live in
:mod:`hub.mqtt`)::

    from hub.generic.mqtt import AsyncMqttConsumer, MqttConsumer, BrokerConsumer
    from hub.generic.mqtt import TopicRouter, topic, Refuse, MqttMessage
    from hub.generic.mqtt import Challenge, Accept  # enhanced authentication

See :mod:`hub.mqtt.consumer` for the handlers, hooks and auth, and
:mod:`hub.mqtt.broker` for the broker semantics; the ASGI messages are in
``docs/specs/mqtt.md``.
"""

from __future__ import annotations

from hub.mqtt.broker import BrokerConsumer
from hub.mqtt.consumer import Accept, AsyncMqttConsumer, Challenge, MqttConsumer, Refuse
from hub.mqtt.messages import MqttMessage
from hub.mqtt.routing import TopicPattern, TopicRoute, TopicRouter, topic
from hub.mqtt.state import BrokerState, MemoryBrokerState

__all__ = [
    "Accept",
    "AsyncMqttConsumer",
    "BrokerConsumer",
    "BrokerState",
    "Challenge",
    "MemoryBrokerState",
    "MqttConsumer",
    "MqttMessage",
    "Refuse",
    "TopicPattern",
    "TopicRoute",
    "TopicRouter",
    "topic",
]
