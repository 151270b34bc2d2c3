"""The Redis channel layer: many processes on many machines behave as one hub.

Switching from channels_redis is one line of ``CHANNEL_LAYERS``::

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "hub.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]},
        }
    }

Semantics are the in-memory layer's (at-most-once, FIFO per channel, capacity
with ``ChannelFull``, ``channel_capacity`` patterns, expiry, group expiry,
presence), and the settings are channels_redis's. How it is built:

- ``redis_connections``: hosts, consistent-hash sharding, Sentinel, Cluster,
  one client per event loop.
- ``redis_scripts``: key layout and the Lua scripts; every send is one
  script, one round trip; ``group_send`` is one round trip whatever the group
  size on a single server (one per shard and slot otherwise).
- ``redis_groups``: group membership, fan-out and the last value.
- ``redis_readers``: one blocking read per process for all its specific
  channels (the inbox), reconnection with backoff, ``layer.resync``.
- ``redis_serializer``: msgpack, optionally Fernet-encrypted.
- ``redis_streams``: opt-in at-least-once channels on Redis Streams.

Two opt-in extensions go beyond the spec: ``channel_delivery`` makes the
matching normal channels at least once (``"at_least_once"`` in
``extensions``; receivers call :meth:`RedisChannelLayer.ack`), and
``group_last_value`` makes the matching groups keep their last
``group_send``, which a new member receives on joining (``"last_value"``).

While Redis is unreachable, ``send``, ``group_send`` and the group calls
raise :class:`RedisUnavailable` (a ``ConnectionError``) naming the server;
receivers keep waiting and resume when it is back.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import itertools
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from redis.exceptions import NoScriptError

from hub.exceptions import ChannelFull, ChannelLayerUnavailable
from hub.layers import redis_scripts as scripts
from hub.layers.base import BaseChannelLayer, CapacityPattern, require_message
from hub.layers.redis_connections import UNAVAILABLE_ERRORS, HostSpec, Shards
from hub.layers.redis_groups import Groups
from hub.layers.redis_readers import RESYNC_TYPE, ChannelReader, Inbox, raise_if_cancelled
from hub.layers.redis_serializer import MessageSerializer, UnreadableMessage
from hub.layers.redis_streams import STREAM_ACK, STREAM_ADD, STREAM_ENSURE, StreamReader, ack_id
from hub.types import Message

__all__ = ["RESYNC_TYPE", "RedisChannelLayer", "RedisUnavailable", "UnreadableMessage"]

#: The values of ``channel_delivery``.
AT_MOST_ONCE = "at_most_once"
AT_LEAST_ONCE = "at_least_once"

_SCRIPTS = {
    name: (source, hashlib.sha1(source.encode()).hexdigest())
    for name, source in {
        "PUSH": scripts.PUSH,
        "GROUP_SEND": scripts.GROUP_SEND,
        "GROUP_MEMBERS": scripts.GROUP_MEMBERS,
        "GROUP_ADD": scripts.GROUP_ADD,
        "RELEASE": scripts.RELEASE,
        "TAKE": scripts.TAKE,
        "STREAM_ADD": STREAM_ADD,
        "STREAM_ENSURE": STREAM_ENSURE,
        "STREAM_ACK": STREAM_ACK,
    }.items()
}


class RedisUnavailable(ChannelLayerUnavailable):
    """Redis could not be reached; the message was not sent (or the group not changed)."""


class RedisChannelLayer(BaseChannelLayer):
    """A channel layer on Redis (one server, several shards, Sentinel or Cluster).

    Args:
        hosts: Redis servers, as URLs, ``(host, port)`` or dicts of client
            options (see :mod:`hub.layers.redis_connections`); default
            ``redis://localhost:6379``. Several entries shard the keys.
        prefix: prefix of every key, so several layers can share a server.
        expiry: seconds an undelivered message is kept (default 60).
        group_expiry: seconds a group membership lasts unless renewed by
            ``group_add`` (default 86400, one day).
        capacity: messages a channel holds before ``send`` raises
            ``ChannelFull`` (default 100).
        channel_capacity: per-name capacity overrides, ``{glob_or_regex: n}``.
        symmetric_encryption_keys: encrypt message bodies with the first key;
            decrypt with any (see :mod:`hub.layers.redis_serializer`).
        channel_delivery: ``{glob_or_regex: "at_least_once"}``: normal
            channels whose messages wait in a stream until acknowledged
            (see :mod:`hub.layers.redis_streams`); the first match wins.
        ack_timeout: seconds an at-least-once message may stay
            unacknowledged before it is delivered again (default 30).
        group_last_value: globs of groups that keep their last
            ``group_send`` for ``group_expiry``; a channel joining such a
            group receives it at once.
    """

    extensions: ClassVar[list[str]] = [
        "groups",
        "flush",
        "presence",
        "at_least_once",
        "last_value",
    ]

    def __init__(
        self,
        hosts: Sequence[HostSpec] | None = None,
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        channel_delivery: Mapping[CapacityPattern, str] | None = None,
        ack_timeout: float = 30,
        group_last_value: Sequence[str] | None = None,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        for mode in (channel_delivery or {}).values():
            if mode not in (AT_MOST_ONCE, AT_LEAST_ONCE):
                raise ValueError(
                    f"channel_delivery values are {AT_MOST_ONCE!r} or {AT_LEAST_ONCE!r}, "
                    f"got {mode!r}"
                )
        self._delivery = [
            (re.compile(fnmatch.translate(pattern)) if isinstance(pattern, str) else pattern,
             mode == AT_LEAST_ONCE)
            for pattern, mode in (channel_delivery or {}).items()
        ]  # fmt: skip
        self.ack_timeout = ack_timeout
        self.group_expiry = group_expiry
        self.prefix = prefix
        self._keys = scripts.Keys(prefix)
        self._shards = Shards(hosts)
        self._serializer = MessageSerializer(symmetric_encryption_keys)
        self._expiry_ms = int(expiry * 1000)
        # Queues outlive their last message by a second.
        self._ttl = math.ceil(expiry) + 1
        self._groups = Groups(
            self,
            group_expiry,
            group_last_value or (),
            # One round trip for group_send needs every member on one server and
            # one capacity for all, since the script cannot evaluate the patterns.
            in_lua=(
                len(self._shards) == 1
                and not self._shards.shard(0).cluster
                and not channel_capacity
                and not any(at_least_once for _, at_least_once in self._delivery)
            ),
        )
        self._inbox_id = "r" + os.urandom(6).hex()
        self._names = itertools.count()
        self._inboxes: dict[str, Inbox] = {}
        self._readers: dict[str, ChannelReader | StreamReader] = {}

    # Channel API

    async def send(self, channel: str, message: Message) -> None:
        """Queue ``message`` on ``channel``.

        Raises:
            TypeError: the channel name or the message is invalid (or holds a
                value msgpack cannot store).
            ChannelFull: the channel already holds its capacity of messages.
            RedisUnavailable: Redis cannot be reached; the message was not sent.
        """
        require_message(message)
        self.require_valid_channel_name(channel)
        body = self._serializer.dumps(message)
        if not await self._push(channel, body, f"send to {channel!r}"):
            raise self._full(channel)

    async def _push(self, channel: str, body: bytes, what: str) -> bool:
        """Queue a serialized message on ``channel``; ``False`` if the channel is full."""
        now = scripts.now_ms()
        if self.at_least_once(channel):
            return await self._stream_add(channel, body, now, what)
        route, key, counter = self._keys.channel(channel)
        statuses = await self._eval(
            self._shards.index(route),
            "PUSH",
            [key, counter],
            [now, now + self._expiry_ms, self._ttl, body, 0, channel, self.get_capacity(channel)],
            what=what,
        )
        return bool(statuses[0] == 1)

    def _full(self, channel: str) -> ChannelFull:
        return ChannelFull(
            f"Channel {channel!r} is full: it holds {self.get_capacity(channel)} messages, "
            "its capacity (set capacity or channel_capacity in CHANNEL_LAYERS)"
        )

    def at_least_once(self, channel: str) -> bool:
        """Whether ``channel`` is at least once (``channel_delivery``); never a specific one."""
        if "!" in channel:
            return False
        for pattern, at_least_once in self._delivery:
            if pattern.match(channel):
                return at_least_once
        return False

    async def _stream_add(self, channel: str, body: bytes, now: int, what: str) -> bool:
        status = await self._eval(
            self._shards.index(channel),
            "STREAM_ADD",
            [self._keys.stream(channel)],
            [now, now + self._expiry_ms, self._ttl, body, self.get_capacity(channel)],
            what=what,
        )
        return bool(status)

    async def ack(self, channel: str, message: Message | str) -> bool:
        """Acknowledge a message received from an at-least-once channel: it is done.

        ``message`` is the message as received (or its ``"ack_id"``). Returns
        whether it was still pending: ``False`` if it was acknowledged before
        or expired, or if ``ack_timeout`` passed and another receiver has it.

        Raises:
            TypeError: ``message`` did not come from an at-least-once channel.
            RedisUnavailable: Redis cannot be reached; the message will be
                delivered again.
        """
        self.require_valid_channel_name(channel)
        entry_id = ack_id(message)
        acked = await self._eval(
            self._shards.index(channel),
            "STREAM_ACK",
            [self._keys.stream(channel)],
            [entry_id],
            what=f"ack on {channel!r}",
        )
        return bool(acked)

    async def receive(self, channel: str) -> Message:
        """The next message on ``channel``, waiting for one if it is empty.

        Cancelling a ``receive`` never loses a message: one already taken from
        Redis goes to the next receiver. While Redis is away, ``receive``
        keeps waiting; after it is back, the channel first gets a
        ``{"type": "layer.resync"}`` message.
        """
        inbox_id = scripts.inbox_of(channel) if type(channel) is str else None
        if inbox_id is not None:
            inbox = self._inboxes.get(inbox_id)
            if inbox is None or channel not in inbox.channels:
                self.require_valid_channel_name(channel)
                if inbox is None:
                    inbox = self._inboxes[inbox_id] = Inbox(self, inbox_id)
            return await inbox.receive(channel)
        reader = self._readers.get(channel)
        if reader is None:
            self.require_valid_channel_name(channel)
            reader = self._readers[channel] = (
                StreamReader(self, channel)
                if self.at_least_once(channel)
                else ChannelReader(self, channel)
            )
        return await reader.receive()

    async def new_channel(self, prefix: str = "specific") -> str:
        """A new specific channel name, delivered through this layer's inbox."""
        return f"{prefix}.{self._inbox_id}!{next(self._names)}"

    async def ping(self) -> None:
        """Raise :class:`RedisUnavailable` unless every shard answers (readiness checks)."""
        for index, _ in self._shards.all():
            try:
                await self._shards.client(index).ping()
            except UNAVAILABLE_ERRORS as exc:
                raise self._unavailable(index, "ping", exc) from exc

    # Flush extension

    async def flush(self) -> None:
        """Delete every key of this prefix on every shard; waiting receivers stay."""
        for index, _ in self._shards.all():
            client = self._shards.client(index)
            try:
                keys = [key async for key in client.scan_iter(match=self._keys.pattern, count=1000)]
                for start in range(0, len(keys), 1000):
                    await client.delete(*keys[start : start + 1000])
            except UNAVAILABLE_ERRORS as exc:
                raise self._unavailable(index, "flush", exc) from exc
        for inbox in self._inboxes.values():
            inbox.clear()

    # Groups extension (stored and fanned out by hub.layers.redis_groups)

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, or renew its membership for ``group_expiry``."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await self._groups.add(group, channel)

    def keeps_last_value(self, group: str) -> bool:
        """Whether ``group`` keeps its last ``group_send`` (``group_last_value``)."""
        return self._groups.keeps_last_value(group)

    async def last_value(self, group: str) -> Message | None:
        """The last message sent to ``group`` if it keeps one (``group_last_value``)."""
        self.require_valid_group_name(group)
        if not self.keeps_last_value(group):
            return None
        return await self._groups.last_value(group)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a member."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await self._groups.discard(group, channel)

    async def group_send(self, group: str, message: Message) -> None:
        """Send ``message`` to every member of ``group``.

        A member whose channel is full misses this message (logged at debug
        level); a member whose channel holds a message that expired unread
        has no reader and leaves the group. The others get it.

        Raises:
            RedisUnavailable: Redis cannot be reached; nobody got the message.
        """
        require_message(message)
        self.require_valid_group_name(group)
        await self._groups.send(group, self._serializer.dumps(message))

    # Presence extension

    async def group_members(self, group: str) -> set[str]:
        """The channels currently in ``group``."""
        self.require_valid_group_name(group)
        return await self._groups.members(group)

    async def group_count(self, group: str) -> int:
        """How many channels are currently in ``group``."""
        self.require_valid_group_name(group)
        return await self._groups.count(group)

    # Lifecycle

    async def close(self) -> None:
        """Stop the readers and close this loop's connections; the layer can be used again.

        A message a reader was taking from Redis at that instant may be lost.
        """
        readers = [*self._inboxes.values(), *self._readers.values()]
        self._inboxes, self._readers = {}, {}
        tasks = [task for reader in readers if (task := reader.cancel()) is not None]
        for reader in readers:
            if isinstance(reader, Inbox):
                await reader.finish()
        # Closing the connections ends the blocking reads at once; redis-py
        # may otherwise finish a BLPOP it was told to cancel.
        await self._shards.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        for reader in readers:
            if isinstance(reader, ChannelReader):
                await reader.drain()

    # Internals

    async def _eval(
        self, index: int, name: str, keys: list[str], args: list[Any], what: str = ""
    ) -> Any:
        """Run script ``name`` on shard ``index`` (by SHA, loading it on first use)."""
        client = self._shards.client(index)
        source, sha = _SCRIPTS[name]
        try:
            try:
                result = await client.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                await client.script_load(source)
                result = await client.evalsha(sha, len(keys), *keys, *args)
        except UNAVAILABLE_ERRORS as exc:
            raise self._unavailable(index, what or name, exc) from exc
        raise_if_cancelled()
        return result

    def _unavailable(self, index: int, what: str, exc: BaseException) -> RedisUnavailable:
        return RedisUnavailable(
            f"{what} failed: {self._shards.shard(index).name} is unreachable "
            f"({type(exc).__name__}: {exc}); nothing was sent, retry when Redis is back"
        )

    def _entry(self, channel: str, message: Message, remaining_ms: int) -> bytes:
        """A raw queued entry (see ``redis_scripts``), for a message put back."""
        deadline = scripts.now_ms() + remaining_ms
        return f"{deadline} {channel} ".encode() + self._serializer.dumps(message)
