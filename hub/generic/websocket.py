"""WebSocket consumers with Channels' names and behaviour.

``connect`` / ``receive`` / ``disconnect`` are the methods to override; the
consumer joins ``groups`` before ``connect`` and leaves them on disconnect.
The JSON variants decode each text frame and encode what they send.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import async_to_sync

from hub.consumer import AsyncConsumer, SyncConsumer
from hub.exceptions import AcceptConnection, DenyConnection, InvalidChannelLayerError, StopConsumer
from hub.types import Message

Headers = list[tuple[bytes, bytes]]


def _accept_message(subprotocol: str | None, headers: Any) -> Message:
    message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
    if headers:
        message["headers"] = list(headers)
    return message


def _data_message(text_data: str | None, bytes_data: bytes | None) -> Message:
    if text_data is not None:
        return {"type": "websocket.send", "text": text_data}
    if bytes_data is not None:
        return {"type": "websocket.send", "bytes": bytes_data}
    raise ValueError("send() needs text_data or bytes_data")


def _close_message(code: int | bool | None, reason: str | None) -> Message:
    message: Message = {"type": "websocket.close"}
    if code is not None and code is not True:
        message["code"] = code
    if reason:
        message["reason"] = reason
    return message


def _require_groups(consumer: WebsocketConsumer | AsyncWebsocketConsumer) -> Any:
    layer = consumer.channel_layer
    if layer is None or not hasattr(layer, "group_add"):
        raise InvalidChannelLayerError(
            f"{type(consumer).__name__}.groups = {consumer.groups!r} needs a channel layer "
            f"with the groups extension; CHANNEL_LAYERS[{consumer.channel_layer_alias!r}] "
            f"is {type(layer).__name__}"
        )
    return layer


class WebsocketConsumer(SyncConsumer):
    """A WebSocket consumer with synchronous handlers (run in the ORM thread)."""

    groups: list[str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.groups is None:
            self.groups = []

    def websocket_connect(self, message: Message) -> None:
        if self.groups:
            layer = _require_groups(self)
            for group in self.groups:
                async_to_sync(layer.group_add)(group, self.channel_name)
        try:
            self.connect()
        except AcceptConnection:
            self.accept()
        except DenyConnection:
            self.close()

    def connect(self) -> None:
        """Called on connection; accepts it unless overridden."""
        self.accept()

    def accept(self, subprotocol: str | None = None, headers: Headers | None = None) -> None:
        super().send(_accept_message(subprotocol, headers))

    def websocket_receive(self, message: Message) -> None:
        if message.get("text") is not None:
            self.receive(text_data=message["text"])
        else:
            self.receive(bytes_data=message["bytes"])

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called with each message from the client."""

    def send(  # type: ignore[override]
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        """Send text or bytes to the client; ``close`` (True or a code) closes after."""
        super().send(_data_message(text_data, bytes_data))
        if close:
            self.close(close)

    def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        super().send(_close_message(code, reason))

    def websocket_disconnect(self, message: Message) -> None:
        if self.groups:
            layer = _require_groups(self)
            for group in self.groups:
                async_to_sync(layer.group_discard)(group, self.channel_name)
        self.disconnect(message["code"])
        raise StopConsumer

    def disconnect(self, code: int) -> None:
        """Called when the connection has closed."""


class JsonWebsocketConsumer(WebsocketConsumer):
    """``WebsocketConsumer`` that decodes text frames as JSON and encodes what it sends."""

    def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if not text_data:
            raise ValueError(f"{type(self).__name__} expects JSON text frames, got a binary one")
        self.receive_json(self.decode_json(text_data), **kwargs)

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Called with each decoded JSON message."""

    def send_json(self, content: Any, close: bool = False) -> None:
        super().send(text_data=self.encode_json(content), close=close)

    @classmethod
    def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return json.dumps(content)


class AsyncWebsocketConsumer(AsyncConsumer):
    """A WebSocket consumer with async handlers."""

    groups: list[str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.groups is None:
            self.groups = []

    async def websocket_connect(self, message: Message) -> None:
        if self.groups:
            layer = _require_groups(self)
            for group in self.groups:
                await layer.group_add(group, self.channel_name)
        try:
            await self.connect()
        except AcceptConnection:
            await self.accept()
        except DenyConnection:
            await self.close()

    async def connect(self) -> None:
        """Called on connection; accepts it unless overridden."""
        await self.accept()

    async def accept(self, subprotocol: str | None = None, headers: Headers | None = None) -> None:
        await super().send(_accept_message(subprotocol, headers))

    async def websocket_receive(self, message: Message) -> None:
        if message.get("text") is not None:
            await self.receive(text_data=message["text"])
        else:
            await self.receive(bytes_data=message["bytes"])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called with each message from the client."""

    async def send(  # type: ignore[override]
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        """Send text or bytes to the client; ``close`` (True or a code) closes after."""
        await super().send(_data_message(text_data, bytes_data))
        if close:
            await self.close(close)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        await super().send(_close_message(code, reason))

    async def websocket_disconnect(self, message: Message) -> None:
        if self.groups:
            layer = _require_groups(self)
            for group in self.groups:
                await layer.group_discard(group, self.channel_name)
        await self.disconnect(message["code"])
        raise StopConsumer

    async def disconnect(self, code: int) -> None:
        """Called when the connection has closed."""


class AsyncJsonWebsocketConsumer(AsyncWebsocketConsumer):
    """``AsyncWebsocketConsumer`` that decodes text frames as JSON and encodes what it sends."""

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if not text_data:
            raise ValueError(f"{type(self).__name__} expects JSON text frames, got a binary one")
        await self.receive_json(await self.decode_json(text_data), **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Called with each decoded JSON message."""

    async def send_json(self, content: Any, close: bool = False) -> None:
        await super().send(text_data=await self.encode_json(content), close=close)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content)
