"""The scale-out project's applications: a dashboard fed by sensors, and an MQTT broker.

- ``application``: WebSocket clients join the group ``readings`` and get
  every reading a sensor publishes over MQTT to any process; a text a
  WebSocket client sends is a reading too. Each consumer first sends its
  process id, so a test knows which process serves it.
- ``broker``: a plain MQTT broker whose state lives in Redis.
"""

from __future__ import annotations

import os
from typing import Any

from hub.generic.mqtt import AsyncMqttConsumer, BrokerConsumer, MqttMessage, TopicRouter, topic
from hub.generic.websocket import AsyncJsonWebsocketConsumer
from hub.mqtt.redis_state import RedisBrokerState
from hub.routing import ProtocolTypeRouter

GROUP = "readings"


class Dashboard(AsyncJsonWebsocketConsumer):
    groups = [GROUP]

    async def connect(self) -> None:
        await self.accept()
        await self.send_json({"type": "hello", "pid": os.getpid()})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send(
            GROUP, {"type": "reading", "source": "websocket", "pid": os.getpid(), **content}
        )

    async def reading(self, event: dict[str, Any]) -> None:
        await self.send_json(event)


class Sensors(AsyncMqttConsumer):
    routes = TopicRouter([topic("sensors/<device>/temperature", "temperature")])

    async def temperature(self, message: MqttMessage, device: str) -> None:
        await self.channel_layer.group_send(
            GROUP,
            {
                "type": "reading",
                "source": "mqtt",
                "device": device,
                "value": message.payload.decode(),
                "pid": os.getpid(),
            },
        )


class Broker(BrokerConsumer):
    state = RedisBrokerState(prefix=os.environ.get("HUB_TEST_REDIS_PREFIX", "scaleout") + "mqtt")


application = ProtocolTypeRouter({"websocket": Dashboard.as_asgi(), "mqtt": Sensors.as_asgi()})
broker = ProtocolTypeRouter({"mqtt": Broker.as_asgi()})
