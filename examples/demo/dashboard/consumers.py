"""The dashboard's WebSocket consumer: live events out, messages and commands in."""

from dashboard.events import DASHBOARD_GROUP, command_device, publish
from hub.generic.websocket import AsyncJsonWebsocketConsumer


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """One per open dashboard page."""

    groups = [DASHBOARD_GROUP]

    async def connect(self):
        await self.accept()
        await self.send_json({"kind": "hello", "data": {"channel": self.channel_name}})

    async def receive_json(self, content, **kwargs):
        action = content.get("action")
        if action == "say":
            user = self.scope["user"]
            who = user.username if user.is_authenticated else "visitor"
            await publish("message", author=who, text=str(content.get("text", ""))[:500])
        elif action == "command":
            device, command = str(content.get("device", "")), str(content.get("command", ""))
            await command_device(f"device.{device}", command)
            await publish("command", device=device, command=command)
        else:
            await self.send_json({"kind": "error", "data": {"error": f"unknown action {action!r}"}})

    async def dashboard_event(self, event):
        await self.send_json({"kind": event["kind"], "data": event["data"]})
