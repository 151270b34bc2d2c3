"""Speak in a chat room from synchronous code: a view, a signal, a management command."""

from asgiref.sync import async_to_sync
from hub.layers import get_channel_layer


def announce(room, text):
    channel_layer = get_channel_layer()
    async_to_sync(channel_layer.group_send)(
        f"chat.{room}", {"type": "chat.message", "user": "system", "text": text}
    )
