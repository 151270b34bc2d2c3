"""A chat application written the way Channels users write it, against ``channels``.

The compatibility tests run this file as it is on Channels, and on hub after
replacing ``channels`` with ``hub`` in its imports and nothing else
(see ``tests/hub/chat/port.py``).
"""

import json

from asgiref.sync import async_to_sync
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    WebsocketConsumer,
)
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path, re_path


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code):
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data):
        text_data_json = json.loads(text_data)
        message = text_data_json["message"]
        user = self.scope["user"]
        await self.channel_layer.group_send(
            self.room_group_name,
            {
                "type": "chat.message",
                "message": message,
                "user": user.username if user.is_authenticated else "anonymous",
            },
        )

    async def chat_message(self, event):
        await self.send(text_data=json.dumps({"message": event["message"], "user": event["user"]}))


class SyncChatConsumer(WebsocketConsumer):
    def connect(self):
        self.room_group_name = "chat_" + self.scope["url_route"]["kwargs"]["room_name"]
        async_to_sync(self.channel_layer.group_add)(self.room_group_name, self.channel_name)
        self.accept()

    def disconnect(self, close_code):
        async_to_sync(self.channel_layer.group_discard)(self.room_group_name, self.channel_name)

    def receive(self, text_data):
        message = json.loads(text_data)["message"]
        async_to_sync(self.channel_layer.group_send)(
            self.room_group_name, {"type": "chat.message", "message": message, "user": "sync"}
        )

    def chat_message(self, event):
        self.send(text_data=json.dumps({"message": event["message"], "user": event["user"]}))


class JsonChatConsumer(AsyncJsonWebsocketConsumer):
    groups = ["lobby"]

    async def receive_json(self, content):
        if content.get("action") == "whoami":
            user = self.scope["user"]
            await self.send_json({"user": user.username if user.is_authenticated else None})
        else:
            await self.channel_layer.group_send(
                "lobby", {"type": "lobby.message", "text": content["text"]}
            )

    async def lobby_message(self, event):
        await self.send_json({"text": event["text"]})


websocket_urlpatterns = [
    re_path(r"ws/chat/(?P<room_name>\w+)/$", ChatConsumer.as_asgi()),
    path("ws/sync-chat/<str:room_name>/", SyncChatConsumer.as_asgi()),
    path("ws/lobby/", JsonChatConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        )
    }
)
