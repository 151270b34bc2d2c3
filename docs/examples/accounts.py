"""A synchronous consumer: its handlers run in Django's ORM thread, like a view."""

from django.contrib.auth.models import User
from hub.generic.websocket import JsonWebsocketConsumer


class UserCountConsumer(JsonWebsocketConsumer):
    def receive_json(self, content):
        if content.get("action") == "count":
            self.send_json({"users": User.objects.count()})
        else:
            self.close(code=4000, reason="unknown action")
