"""A chat room per URL: what one person sends, everyone in the room receives."""

from hub.generic.websocket import AsyncJsonWebsocketConsumer


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        room = self.scope["url_route"]["kwargs"]["room"]
        self.room_group = f"chat.{room}"
        await self.channel_layer.group_add(self.room_group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.room_group, self.channel_name)

    async def receive_json(self, content):
        user = self.scope["user"]
        await self.channel_layer.group_send(
            self.room_group,
            {
                "type": "chat.message",
                "user": user.username if user.is_authenticated else "anonymous",
                "text": str(content["text"]),
            },
        )

    async def chat_message(self, event):
        await self.send_json({"user": event["user"], "text": event["text"]})
