"""Groups on Redis: membership, fan-out and the last value, for the Redis layer.

A group is a sorted set of channel names scored by the time each joined
(``Keys.group``); a member whose last ``group_add`` is older than
``group_expiry`` is no longer one: ``group_send`` removes it, and
``group_members`` and ``group_count`` skip it. The layer
(:class:`hub.layers.redis.RedisChannelLayer`) checks names and serializes
messages; :class:`Groups` stores and fans out the bodies.

``group_send`` is one round trip whatever the group size when it can be
(``GROUP_SEND``: one server, not a Cluster, one capacity for all, no
at-least-once channels). Otherwise the members are read (``GROUP_MEMBERS``)
and the body is queued with one ``PUSH`` per shard, and per slot in a
Cluster, all at once; at-least-once members get it in their streams. Either
way a member whose channel is full misses the message, and a member whose
channel holds a message that expired unread (nobody reads it) leaves.

A group matching ``group_last_value`` keeps its last body for
``group_expiry``; a channel joining it gets that body at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.crc import key_slot

from hub.layers import redis_scripts as scripts
from hub.layers.redis_connections import UNAVAILABLE_ERRORS
from hub.types import Message

if TYPE_CHECKING:
    from hub.layers.redis import RedisChannelLayer

logger = logging.getLogger("hub.layers")


class Groups:
    """The groups of one Redis layer (names already checked, bodies serialized)."""

    def __init__(
        self,
        layer: RedisChannelLayer,
        group_expiry: float,
        group_last_value: Sequence[str],
        *,
        in_lua: bool,
    ) -> None:
        self._layer = layer
        self._keys = layer._keys
        self._shards = layer._shards
        self._last_value = [re.compile(fnmatch.translate(pattern)) for pattern in group_last_value]
        self._expiry_ms = int(group_expiry * 1000)
        # Group keys outlive their last join by a second.
        self._ttl = math.ceil(group_expiry) + 1
        self._in_lua = in_lua

    def keeps_last_value(self, group: str) -> bool:
        return any(pattern.match(group) for pattern in self._last_value)

    def _group_keys(self, group: str) -> list[str]:
        keys = [self._keys.group(group)]
        if self.keeps_last_value(group):
            keys.append(self._keys.last_value(group))
        return keys

    async def add(self, group: str, channel: str) -> None:
        """Add or renew ``channel``'s membership; a new member gets the last value."""
        layer = self._layer
        what = f"group_add to {group!r}"
        last_value = await layer._eval(
            self._shards.index(group),
            "GROUP_ADD",
            self._group_keys(group),
            [scripts.now_ms(), channel, self._ttl],
            what=what,
        )
        if last_value and not await layer._push(channel, last_value, what):
            logger.debug("%s: the last value was not queued, %r is full", what, channel)

    async def last_value(self, group: str) -> Message | None:
        """The message last sent to ``group``, if it has not expired."""
        index = self._shards.index(group)
        try:
            body: Any = await self._shards.client(index).get(self._keys.last_value(group))
        except UNAVAILABLE_ERRORS as exc:
            raise self._layer._unavailable(index, f"last_value of {group!r}", exc) from exc
        return None if body is None else self._layer._serializer.loads(body)

    async def discard(self, group: str, channel: str) -> None:
        index = self._shards.index(group)
        try:
            await self._shards.client(index).zrem(self._keys.group(group), channel)
        except UNAVAILABLE_ERRORS as exc:
            raise self._layer._unavailable(index, f"group_discard from {group!r}", exc) from exc

    async def send(self, group: str, body: bytes) -> None:
        """Queue ``body`` for every live member of ``group``."""
        layer = self._layer
        now = scripts.now_ms()
        group_key = self._keys.group(group)
        index = self._shards.index(group)
        what = f"group_send to {group!r}"
        if self._in_lua:
            _, full, dead = await layer._eval(
                index,
                "GROUP_SEND",
                self._group_keys(group),
                [
                    now,
                    now + layer._expiry_ms,
                    layer._ttl,
                    body,
                    layer.prefix,
                    now - self._expiry_ms,
                    layer.capacity,
                    self._ttl,
                ],
                what=what,
            )
            if full or dead:
                logger.debug(
                    "group_send to %r: %d full member(s) skipped, %d dead member(s) removed",
                    group,
                    full,
                    dead,
                )
            return
        if self.keeps_last_value(group):
            try:
                await self._shards.client(index).set(
                    self._keys.last_value(group), body, ex=self._ttl
                )
            except UNAVAILABLE_ERRORS as exc:
                raise layer._unavailable(index, what, exc) from exc
        members = await layer._eval(
            index, "GROUP_MEMBERS", [group_key], [now - self._expiry_ms], what=what
        )
        await self._push_to_members(group, [m.decode() for m in members], body, now, what)

    async def _push_to_members(
        self, group: str, members: list[str], body: bytes, now: int, what: str
    ) -> None:
        """Queue ``body`` for ``members``: one script per shard (and per slot in a Cluster)."""
        layer = self._layer
        batches: dict[tuple[int, int], tuple[list[str], list[Any], list[str]]] = {}
        durable = [channel for channel in members if layer.at_least_once(channel)]
        if durable:
            added = await asyncio.gather(
                *(layer._stream_add(channel, body, now, what) for channel in durable)
            )
            if not all(added):
                logger.debug("%s: %d full member(s) skipped", what, added.count(False))
            members = [channel for channel in members if not layer.at_least_once(channel)]
        for channel in members:
            route, key, counter = self._keys.channel(channel)
            index = self._shards.index(route)
            slot = key_slot(key.encode()) if self._shards.shard(index).cluster else 0
            keys, args, names = batches.setdefault((index, slot), ([], [], []))
            keys += [key, counter]
            args += [channel, layer.get_capacity(channel)]
            names.append(channel)
        head = [now, now + layer._expiry_ms, layer._ttl, body, 1]
        calls = [
            layer._eval(index, "PUSH", keys, head + args, what=what)
            for (index, _), (keys, args, _) in batches.items()
        ]
        results = (
            await asyncio.gather(*calls) if len(calls) > 1 else [await calls[0]] if calls else []
        )
        dead = [
            name
            for (_, _, names), statuses in zip(batches.values(), results, strict=True)
            for name, status in zip(names, statuses, strict=True)
            if status == -1
        ]
        if dead:
            index = self._shards.index(group)
            with contextlib.suppress(*UNAVAILABLE_ERRORS):  # found again by the next group_send
                await self._shards.client(index).zrem(self._keys.group(group), *dead)
            logger.debug("group_send to %r removed %d dead member(s)", group, len(dead))

    async def members(self, group: str) -> set[str]:
        index = self._shards.index(group)
        cutoff = scripts.now_ms() - self._expiry_ms
        try:
            members: list[Any] = await self._shards.client(index).zrangebyscore(
                self._keys.group(group), cutoff, "+inf"
            )
        except UNAVAILABLE_ERRORS as exc:
            raise self._layer._unavailable(index, f"group_members of {group!r}", exc) from exc
        return {member.decode() for member in members}

    async def count(self, group: str) -> int:
        index = self._shards.index(group)
        cutoff = scripts.now_ms() - self._expiry_ms
        try:
            count: int = await self._shards.client(index).zcount(
                self._keys.group(group), cutoff, "+inf"
            )
        except UNAVAILABLE_ERRORS as exc:
            raise self._layer._unavailable(index, f"group_count of {group!r}", exc) from exc
        return count
