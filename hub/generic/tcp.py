"""Raw TCP consumers: bytes, text lines and JSON lines from devices, one consumer per connection.

The protocol server has already cut the stream into frames (the listener's
``framing``), so ``receive`` gets exactly one frame and ``send`` sends one:

- :class:`AsyncTcpConsumer` / :class:`TcpConsumer`: frames as ``bytes``.
- :class:`AsyncLineConsumer` / :class:`LineConsumer`: frames as ``str`` lines
  (decoded with ``encoding``; a trailing ``"\\r"`` is dropped so that CRLF
  devices work on a ``\\n`` listener).
- :class:`AsyncJsonLinesConsumer`: one JSON document per line.

Framing is the listener's (the server must cut frames before any consumer
runs, to enforce ``max_frame_size`` on bytes not yet delivered); ``scope
["framing"]`` says which is in force. A consumer states the framing it was
written for in its ``framing`` attribute, and refuses, with an error naming
both, a connection from a listener that frames otherwise: a line consumer on
a raw listener would otherwise receive arbitrary chunks and fail later and
obscurely.

Authentication of devices: set ``authentication`` to ``"first_frame"`` (the
first frame is a login, e.g. ``LOGIN <imei> <secret>``, and is not passed to
``receive``) or ``"certificate"`` (the TLS client certificate, checked before
``connect``), and implement :meth:`~AsyncTcpConsumer.authenticate`: it runs in
the ORM thread (:data:`hub.db.database_sync_to_async`) and returns the Django
object the credentials belong to, stored in ``scope[scope_key]`` (``"device"``
by default; ``"user"`` for user accounts), or ``None`` to close the
connection.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Awaitable
from typing import Any, ClassVar

from asgiref.sync import async_to_sync

from hub.consumer import AsyncConsumer, SyncConsumer
from hub.db import database_sync_to_async
from hub.exceptions import (
    AcceptConnection,
    DenyConnection,
    InvalidChannelLayerError,
    StopConsumer,
)
from hub.types import Message

logger = logging.getLogger("hub.tcp")

#: Values of ``authentication``.
AUTHENTICATION_MODES = (None, "first_frame", "certificate")


def _send_message(data: bytes, raw: bool = False, eof: bool = False) -> Message:
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"send() takes bytes, got {type(data).__name__}")
    message: Message = {"type": "tcp.send", "bytes": bytes(data)}
    if raw:
        message["raw"] = True
    if eof:
        message["eof"] = True
    return message


def _line(frame: bytes, encoding: str, errors: str) -> str:
    """A line frame as text, without a trailing CR (a CRLF device on a LF listener)."""
    if frame and frame[-1] == 13:
        frame = frame[:-1]
    return frame.decode(encoding, errors)


def _require_groups(consumer: AsyncConsumer) -> Any:
    layer = consumer.channel_layer
    if layer is None or not hasattr(layer, "group_add"):
        raise InvalidChannelLayerError(
            f"{type(consumer).__name__}.groups = {getattr(consumer, 'groups', None)!r} needs a "
            f"channel layer with the groups extension; "
            f"CHANNEL_LAYERS[{consumer.channel_layer_alias!r}] is {type(layer).__name__}"
        )
    return layer


class _TcpBase:
    """What the sync and async TCP consumers share: settings and checks, no I/O."""

    groups: list[str] | None = None
    #: The framing this consumer was written for ("raw", "line", "length",
    #: "custom"); ``None`` accepts any listener.
    framing: ClassVar[str | None] = None
    #: How a device proves who it is: None, "first_frame" or "certificate".
    authentication: ClassVar[str | None] = None
    #: The scope key under which ``authenticate()``'s result is stored.
    scope_key: ClassVar[str] = "device"
    #: Line consumers: ``encoding`` is UTF-8 and ``errors`` strict (set per class,
    #: copied to each instance).
    _utf8: bool = True

    scope: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.groups is None:
            self.groups = []
        self.authenticated = self.authentication != "first_frame"
        # The class's, copied to the instance: line consumers read it on every line
        # both ways, and on 3.11 a class attribute read through an instance is not
        # specialised (~250 instructions a read, benchmarks.instructions).
        self._utf8 = self._utf8

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.authentication not in AUTHENTICATION_MODES:
            raise ValueError(
                f"{cls.__name__}.authentication must be one of {AUTHENTICATION_MODES}, "
                f"got {cls.authentication!r}"
            )
        encoding = getattr(cls, "encoding", None)
        if encoding is not None:
            # An unknown encoding fails here, not on the first line. UTF-8 strict
            # (the default) is decoded and encoded without arguments: passing them
            # doubles the cost of each call (~60 ns a line each way).
            errors = getattr(cls, "errors", "strict")
            cls._utf8 = codecs.lookup(encoding).name == "utf-8" and errors == "strict"

    def framing_mismatch(self) -> str | None:
        """Why this consumer cannot serve the scope's listener, or ``None``."""
        mode = self.scope.get("framing", {}).get("mode")
        if self.framing is None or mode == self.framing:
            return None
        return (
            f"{type(self).__name__} expects framing {self.framing!r} but tcp listener "
            f"{self.scope.get('listener')!r} frames {mode!r}; "
            f"start the listener with ?framing={self.framing}"
        )

    def certificate(self) -> dict[str, Any]:
        """The scope's TLS extension (``client_cert_name``, ``client_cert_chain``...)."""
        tls: dict[str, Any] = self.scope.get("extensions", {}).get("tls") or {}
        return tls

    def authenticate(self, credentials: Any) -> Any:
        """Map credentials to the Django object they belong to; ``None`` refuses.

        Runs in the ORM thread. ``credentials`` is the first frame (``bytes``) with
        ``authentication = "first_frame"``, or the TLS extension dict (see
        :meth:`certificate`) with ``"certificate"``.
        """
        raise NotImplementedError(
            f"{type(self).__name__}.authentication = {self.authentication!r} "
            "needs an authenticate() method"
        )

    def log_refusal(self, reason: str) -> None:
        client = self.scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "unix"
        logger.warning("tcp %s %s: %s", self.scope.get("listener"), peer, reason)


class AsyncTcpConsumer(_TcpBase, AsyncConsumer):
    """A raw TCP consumer with async handlers; frames are ``bytes``."""

    async def tcp_connect(self, message: Message) -> None:
        mismatch = self.framing_mismatch()
        if mismatch is not None:
            logger.error("%s", mismatch)
            await self.close()
            raise StopConsumer
        if self.authentication == "certificate":
            found = await database_sync_to_async(self.authenticate)(self.certificate())
            if found is None:
                self.log_refusal("client certificate refused by authenticate()")
                await self.close()
                raise StopConsumer
            self.scope[self.scope_key] = found
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

    async def accept(self) -> None:
        await AsyncConsumer.send(self, {"type": "tcp.accept"})

    def tcp_receive(self, message: Message) -> Awaitable[None]:
        # Returns the awaitable of receive() instead of awaiting it in a coroutine
        # of its own: every frame passes here.
        if not self.authenticated:
            return self._log_in(message["bytes"])
        return self.receive(message["bytes"])

    async def _log_in(self, data: bytes) -> None:
        found = await database_sync_to_async(self.authenticate)(data)
        if found is None:
            self.log_refusal("first frame refused by authenticate()")
            await self.close()
            return
        self.scope[self.scope_key] = found
        self.authenticated = True
        await self.authenticated_device(found)

    async def authenticated_device(self, found: Any) -> None:
        """Called after a successful first-frame login (e.g. to join a per-device group)."""

    async def receive(self, data: bytes) -> None:
        """Called with each frame from the device."""

    async def send(self, data: bytes, raw: bool = False, eof: bool = False) -> None:  # type: ignore[override]
        """Send one frame (framed by the listener unless ``raw``); ``eof`` half-closes after."""
        await AsyncConsumer.send(self, _send_message(data, raw, eof))

    async def close(self) -> None:
        """Close the connection (before ``accept()``: refuse it)."""
        await AsyncConsumer.send(self, {"type": "tcp.close"})

    async def tcp_eof(self, message: Message) -> None:
        await self.receive_eof()

    async def receive_eof(self) -> None:
        """The device half-closed (listeners with ``half_close``); closes unless overridden."""
        await self.close()

    async def tcp_disconnect(self, message: Message) -> None:
        if self.groups and self.channel_layer is not None:
            for group in self.groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(message.get("reason", ""))
        raise StopConsumer

    async def disconnect(self, reason: str) -> None:
        """Called once the connection is closed, with the spec's reason ("peer_closed"...)."""


class AsyncLineConsumer(AsyncTcpConsumer):
    """``AsyncTcpConsumer`` whose frames are text lines."""

    framing: ClassVar[str | None] = "line"
    encoding: ClassVar[str] = "utf-8"
    #: How undecodable bytes are handled: "strict" closes the connection (logged as
    #: a crash), "replace" keeps going with U+FFFD.
    errors: ClassVar[str] = "strict"

    def tcp_receive(self, message: Message) -> Awaitable[None]:
        if not self.authenticated:
            return self._log_in(message["bytes"])
        # _line() inlined, with its UTF-8 shortcut: this is every line's path.
        frame: bytes = message["bytes"]
        if frame and frame[-1] == 13:
            frame = frame[:-1]
        return self.receive_line(
            frame.decode() if self._utf8 else frame.decode(self.encoding, self.errors)
        )

    async def receive(self, data: bytes) -> None:
        await self.receive_line(_line(data, self.encoding, self.errors))

    async def receive_line(self, line: str) -> None:
        """Called with each line, without its delimiter."""

    def send_line(self, line: str) -> Awaitable[None]:
        """Send one line (await it); the listener appends the delimiter."""
        encoded = line.encode() if self._utf8 else line.encode(self.encoding, self.errors)
        # AsyncConsumer.send() inlined: every line's path.
        self._traffic.sent += 1
        return self.base_send({"type": "tcp.send", "bytes": encoded})  # type: ignore[no-any-return]


class AsyncJsonLinesConsumer(AsyncLineConsumer):
    """One JSON document per line, both ways (JSON Lines, https://jsonlines.org)."""

    async def receive_line(self, line: str) -> None:
        if line.strip():
            await self.receive_json(json.loads(line))

    async def receive_json(self, content: Any) -> None:
        """Called with each decoded document."""

    async def send_json(self, content: Any) -> None:
        """Send ``content`` as one compact JSON line."""
        await self.send_line(json.dumps(content, separators=(",", ":")))


class TcpConsumer(_TcpBase, SyncConsumer):
    """A raw TCP consumer with synchronous handlers (run in the ORM thread)."""

    def tcp_connect(self, message: Message) -> None:
        mismatch = self.framing_mismatch()
        if mismatch is not None:
            logger.error("%s", mismatch)
            self.close()
            raise StopConsumer
        if self.authentication == "certificate":
            found = self.authenticate(self.certificate())
            if found is None:
                self.log_refusal("client certificate refused by authenticate()")
                self.close()
                raise StopConsumer
            self.scope[self.scope_key] = found
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

    def accept(self) -> None:
        SyncConsumer.send(self, {"type": "tcp.accept"})

    def tcp_receive(self, message: Message) -> None:
        data: bytes = message["bytes"]
        if not self.authenticated:
            found = self.authenticate(data)
            if found is None:
                self.log_refusal("first frame refused by authenticate()")
                self.close()
                return
            self.scope[self.scope_key] = found
            self.authenticated = True
            self.authenticated_device(found)
            return
        self.receive(data)

    def authenticated_device(self, found: Any) -> None:
        """Called after a successful first-frame login."""

    def receive(self, data: bytes) -> None:
        """Called with each frame from the device."""

    def send(self, data: bytes, raw: bool = False, eof: bool = False) -> None:  # type: ignore[override]
        """Send one frame (framed by the listener unless ``raw``); ``eof`` half-closes after."""
        SyncConsumer.send(self, _send_message(data, raw, eof))

    def close(self) -> None:
        """Close the connection (before ``accept()``: refuse it)."""
        SyncConsumer.send(self, {"type": "tcp.close"})

    def tcp_eof(self, message: Message) -> None:
        self.receive_eof()

    def receive_eof(self) -> None:
        """The device half-closed (listeners with ``half_close``); closes unless overridden."""
        self.close()

    def tcp_disconnect(self, message: Message) -> None:
        if self.groups and self.channel_layer is not None:
            for group in self.groups:
                async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)
        self.disconnect(message.get("reason", ""))
        raise StopConsumer

    def disconnect(self, reason: str) -> None:
        """Called once the connection is closed, with the spec's reason."""


class LineConsumer(TcpConsumer):
    """``TcpConsumer`` whose frames are text lines."""

    framing: ClassVar[str | None] = "line"
    encoding: ClassVar[str] = "utf-8"
    errors: ClassVar[str] = "strict"

    def receive(self, data: bytes) -> None:
        self.receive_line(_line(data, self.encoding, self.errors))

    def receive_line(self, line: str) -> None:
        """Called with each line, without its delimiter."""

    def send_line(self, line: str) -> None:
        """Send one line; the listener appends the delimiter."""
        TcpConsumer.send(self, line.encode(self.encoding, self.errors))
