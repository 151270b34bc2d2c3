"""Thermometers publish over MQTT; every open dashboard sees each reading over WebSocket."""

from django.urls import path
from hub.generic.mqtt import AsyncMqttConsumer, TopicRouter, topic
from hub.generic.websocket import AsyncJsonWebsocketConsumer
from hub.routing import ProtocolTypeRouter, URLRouter


class Thermometer(AsyncMqttConsumer):
    """One MQTT connection: a device publishing to sensors/<device>/temperature."""

    allow_anonymous = True  # a demo; real devices log in (see docs/mqtt.md)
    routes = TopicRouter([topic("sensors/<device>/temperature", "temperature")])

    async def temperature(self, message, device):
        await self.channel_layer.group_send(
            "readings", {"type": "reading", "device": device, "celsius": float(message.text)}
        )


class Dashboard(AsyncJsonWebsocketConsumer):
    """One browser tab: joins the "readings" group and forwards what arrives."""

    groups = ["readings"]

    async def reading(self, event):
        await self.send_json({"device": event["device"], "celsius": event["celsius"]})


application = ProtocolTypeRouter(
    {
        "mqtt": Thermometer.as_asgi(),
        "websocket": URLRouter([path("ws/dashboard/", Dashboard.as_asgi())]),
    }
)
