"""Post to a chat room over plain HTTP, so a script or a webhook can talk to it."""

from hub.generic.http import AsyncHttpConsumer


class PostMessageConsumer(AsyncHttpConsumer):
    async def handle(self, body):
        if self.scope["method"] != "POST":
            await self.send_response(405, b"POST a message\n", headers=[(b"allow", b"POST")])
            return
        room = self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_send(
            f"chat.{room}",
            {"type": "chat.message", "user": "http", "text": body.decode(errors="replace")},
        )
        await self.send_response(202, b"sent\n", headers=[(b"content-type", b"text/plain")])
