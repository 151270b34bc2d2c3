"""At-least-once channels on Redis Streams: kept until acknowledged, redelivered until then.

The channel layer spec is at most once: a message taken from Redis by a
process that dies before handling it is gone. A channel named in the
``channel_delivery`` setting (``{"jobs.*": "at_least_once"}``) trades that for
at least once:

- ``send`` (and ``group_send`` to a group holding the channel) appends the
  message to a stream, ``P:s:{channel}``, with its deadline; capacity counts
  the messages not yet acknowledged.
- Every process receiving from the channel reads it through one Redis
  consumer group (``hub``), as consumer ``<its inbox id>``: each message
  goes to one receiver, and stays *pending* until acknowledged.
- The receiver gets the message with ``"ack_id"`` (the stream entry id) and
  calls ``await layer.ack(channel, message)`` once it is handled; that
  deletes it. A message not acknowledged within ``ack_timeout`` seconds (its
  receiver crashed, its process died, its handler hung) is claimed by the
  next reader (``XAUTOCLAIM``) and delivered again, with ``"redelivered":
  True``. Handlers must therefore be idempotent.
- A message still unacknowledged at its deadline (``expiry`` after it was
  sent) is dropped with a warning, so a poison message cannot cycle forever.

Only normal channels (no ``!``) can be at least once: a specific channel
belongs to one process, and nobody else could take over its messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from hub.layers import redis_scripts as scripts
from hub.layers.redis_readers import RESYNC_TYPE, Entry, Reader, _hand, raise_if_cancelled
from hub.types import Message

if TYPE_CHECKING:
    from hub.layers.redis import RedisChannelLayer

logger = logging.getLogger("hub.layers")

#: The one Redis consumer group of every at-least-once stream.
STREAM_GROUP = "hub"
#: The message key holding the stream entry id, which ``ack`` takes.
ACK_ID_KEY = "ack_id"
#: The message key set on a message delivered again after ``ack_timeout``.
REDELIVERED_KEY = "redelivered"
#: Entries a capacity check scans for expired ones before refusing a message.
TRIM_SCAN = 100

#: Append a message. KEYS: stream. ARGV: now_ms, deadline_ms, ttl_s, body, capacity.
#: Returns 1 (queued) or 0 (full).
STREAM_ADD = f"""
local stream, now, capacity = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[5])
if redis.call('EXISTS', stream) == 0 then
  redis.call('XGROUP', 'CREATE', stream, '{STREAM_GROUP}', '0', 'MKSTREAM')
end
if redis.call('XLEN', stream) >= capacity then
  for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', {TRIM_SCAN})) do
    if tonumber(entry[2][2]) <= now then
      redis.call('XACK', stream, '{STREAM_GROUP}', entry[1])
      redis.call('XDEL', stream, entry[1])
    end
  end
  if redis.call('XLEN', stream) >= capacity then return 0 end
end
redis.call('XADD', stream, '*', 'd', ARGV[2], 'b', ARGV[4])
redis.call('EXPIRE', stream, ARGV[3])
return 1
"""

#: Create the stream and its group if missing (a reader came first). KEYS: stream. ARGV: ttl_s.
STREAM_ENSURE = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], '{STREAM_GROUP}', '0', 'MKSTREAM')
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
"""

#: Acknowledge and delete entries. KEYS: stream. ARGV: entry ids. Returns how many were pending.
STREAM_ACK = f"""
local acked = redis.call('XACK', KEYS[1], '{STREAM_GROUP}', unpack(ARGV))
redis.call('XDEL', KEYS[1], unpack(ARGV))
return acked
"""


def ack_id(message: Message | str) -> str:
    """The entry id of a received at-least-once message (or the id itself)."""
    if isinstance(message, str):
        return message
    value = message.get(ACK_ID_KEY)
    if not isinstance(value, str):
        raise TypeError(
            f"Only messages received from an at-least-once channel can be acknowledged; "
            f"this one has no {ACK_ID_KEY!r} key: {message!r:.120}"
        )
    return value


class StreamReader(Reader):
    """The reader of one at-least-once channel's stream, shared by this process's receivers."""

    def __init__(self, layer: RedisChannelLayer, channel: str) -> None:
        key = layer._keys.stream(channel)
        super().__init__(layer, layer._shards.index(channel), key, f"redis stream {channel}")
        self.channel = channel
        self.consumer = layer._inbox_id
        self.waiters: deque[asyncio.Future[Entry]] = deque()
        self.buffer: deque[Entry] = deque()
        self._claim_after = 0.0
        self._ready = False
        self._forgetting: set[asyncio.Task[None]] = set()

    def wanted(self) -> bool:
        return any(not waiter.done() for waiter in self.waiters)

    async def receive(self) -> Message:
        now = time.monotonic()
        while self.buffer:
            deadline, message, _ = self.buffer.popleft()
            if deadline > now:
                return message
        waiter: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.ensure_running()
        try:
            return (await waiter)[1]
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Still pending in Redis: the next local receiver gets it.
                self.buffer.appendleft(waiter.result())
            else:
                self.waiters.remove(waiter)
            raise

    async def read(self, client: Any) -> list[Any]:
        layer = self.layer
        if not self._ready:
            await layer._eval(self.shard, "STREAM_ENSURE", [self.key], [layer._ttl])
            self._ready = True
        wanted = max(1, sum(not waiter.done() for waiter in self.waiters))
        if time.monotonic() >= self._claim_after:
            self._claim_after = time.monotonic() + layer.ack_timeout / 2
            claimed = await client.xautoclaim(
                self.key,
                STREAM_GROUP,
                self.consumer,
                int(layer.ack_timeout * 1000),
                "0-0",
                count=wanted,
            )
            raise_if_cancelled()
            if claimed[1]:
                return [(entry, True) for entry in claimed[1]]
        try:
            replies = await client.xreadgroup(
                STREAM_GROUP,
                self.consumer,
                {self.key: ">"},
                count=wanted,
                block=int(min(layer.ack_timeout / 2, 1.0) * 1000),
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._ready = False  # the stream expired or was flushed: create it again
            return []
        return [(entry, False) for _, entries in replies for entry in entries]

    def deliver(self, raw: list[Any]) -> None:
        now_ms = scripts.now_ms()
        expired = []
        for (entry_id, fields), redelivered in raw:
            if fields is None:  # deleted while pending (acknowledged elsewhere)
                continue
            entry_id = entry_id.decode()
            deadline_ms = int(fields[b"d"])
            if deadline_ms <= now_ms:
                expired.append(entry_id)
                continue
            message = self._load(self.channel, fields[b"b"])
            if message is None:
                expired.append(entry_id)
                continue
            message[ACK_ID_KEY] = entry_id
            if redelivered:
                message[REDELIVERED_KEY] = True
            entry = (time.monotonic() + (deadline_ms - now_ms) / 1000, message, True)
            if not _hand(self.waiters, entry, self.buffer.appendleft):
                self.buffer.append(entry)
        if expired:
            logger.warning(
                "%s: dropped %d message(s) not acknowledged before their expiry",
                self.label,
                len(expired),
            )
            task = asyncio.get_running_loop().create_task(self._forget(expired))
            self._forgetting.add(task)
            task.add_done_callback(self._forgetting.discard)

    async def _forget(self, entry_ids: list[str]) -> None:
        try:
            await self.layer._eval(self.shard, "STREAM_ACK", [self.key], entry_ids)
        except Exception as exc:  # they are dropped again by the next reader
            logger.debug("%s: could not drop expired messages: %s", self.label, exc)

    def resync(self) -> None:
        self._ready = False
        entry = (time.monotonic() + self.layer.expiry, {"type": RESYNC_TYPE}, False)
        _hand(self.waiters, entry, lambda entry: None)
