"""Reading Redis lists for local receivers: the process inbox and normal channels.

A consumer blocked in ``receive()`` must not cost a Redis connection: with
10,000 WebSocket consumers, one blocking read per consumer would be 10,000
connections and 10,000 ``BLPOP``\\s. So every specific channel a layer hands
out (``specific.<inbox>!<n>``) is queued in one list per layer, its *inbox*,
and one task per inbox reads it with ``BLPOP`` (then ``LPOP`` in batches
while there is more) and hands each message to the local receiver of its
channel, or buffers it until that receiver asks.

A normal channel (no ``!``) may have receivers in several processes, so it is
read from its own list, by one task per channel per process whatever the
number of local receivers, and only while someone waits: a message popped
when its receiver is gone goes back to the head of the list for the others.

Failure model:

- A receiver cancelled after a message was handed to it puts the message
  back (in front of its local buffer, or at the head of the Redis list) for
  the next receiver; a cancelled receiver leaves no task behind: a reader
  ends by itself, at most ``POLL_SECONDS`` after its last receiver left.
- When Redis goes away the reader logs it once, retries with exponential
  backoff (``RETRY_FIRST_SECONDS`` doubling up to ``RETRY_MAX_SECONDS``) and,
  once reconnected, logs again and gives every local channel a
  ``{"type": "layer.resync"}`` message: Redis may have restarted empty or
  failed over, so groups joined and messages queued before may be gone, and
  a consumer that keeps state should rebuild it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]
from redis.exceptions import RedisError

from hub.layers import redis_scripts as scripts
from hub.layers.redis_serializer import UnreadableMessage
from hub.types import Message

if TYPE_CHECKING:
    from hub.layers.redis import RedisChannelLayer

logger = logging.getLogger("hub.layers")

#: Seconds a BLPOP waits before the reader checks whether anyone still waits:
#: the longest a reader outlives its last receiver.
POLL_SECONDS = 1.0
#: Entries taken per LPOP while the inbox has a backlog: one round trip
#: moves this many messages.
BATCH = 512
#: First and longest pause between attempts to reach Redis after a failure.
RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 5.0
#: Seconds between sweeps of an inbox's idle local channels (see ``Inbox.sweep``).
SWEEP_SECONDS = 10.0

#: The message each local channel gets after its reader reconnected to Redis.
RESYNC_TYPE = "layer.resync"

# A queued message: (monotonic deadline, message, counts toward capacity).
Entry = tuple[float, Message, bool]


def raise_if_cancelled() -> None:
    """Raise the ``CancelledError`` redis-py may have swallowed.

    A task cancelled while redis-py reads a reply can see the command return
    normally instead (redis/redis-py#2028); a loop around such calls would
    then never end. Checked after each Redis call in loops that must stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def split_entry(raw: bytes) -> tuple[int, str, bytes]:
    """``(deadline ms, channel, body)`` of a raw queued entry (see ``redis_scripts``)."""
    deadline, channel, body = raw.split(b" ", 2)
    return int(deadline), channel.decode("ascii"), body


def _wake(waiter: asyncio.Future[Entry], entry: Entry, fallback: Callable[[Entry], None]) -> None:
    """Complete ``waiter`` with ``entry`` on its own loop, or ``fallback`` if it gave up."""
    if waiter.done():
        fallback(entry)
    else:
        waiter.set_result(entry)


def _hand(
    waiters: deque[asyncio.Future[Entry]], entry: Entry, fallback: Callable[[Entry], None]
) -> bool:
    """Give ``entry`` to the oldest live waiter; False if there is none."""
    running = asyncio.get_running_loop()
    while waiters:
        waiter = waiters.popleft()
        if waiter.done():
            continue
        loop = waiter.get_loop()
        if loop is running:
            waiter.set_result(entry)
        else:
            loop.call_soon_threadsafe(_wake, waiter, entry, fallback)
        return True
    return False


class Reader:
    """A task reading one Redis list while local receivers want it, reconnecting on failure."""

    def __init__(self, layer: RedisChannelLayer, shard: int, key: str, label: str) -> None:
        self.layer = layer
        self.shard = shard
        self.key = key
        self.label = label
        self.task: asyncio.Task[None] | None = None
        self.stopped = False

    def wanted(self) -> bool:
        raise NotImplementedError

    async def read(self, client: Any) -> list[bytes]:
        raise NotImplementedError

    def deliver(self, raw: list[bytes]) -> None:
        raise NotImplementedError

    def resync(self) -> None:
        raise NotImplementedError

    def ensure_running(self) -> None:
        """Start the reading task on this loop unless one runs on a live loop."""
        task = self.task
        if task is not None and not task.done() and not task.get_loop().is_closed():
            return
        self.task = asyncio.get_running_loop().create_task(self.run(), name=self.label)

    def cancel(self) -> asyncio.Task[None] | None:
        """Cancel the reading task (for ``close()``); return it if it runs on this loop."""
        self.stopped = True
        task, self.task = self.task, None
        if task is None or task.done():
            return None
        loop = task.get_loop()
        if loop is asyncio.get_running_loop():
            task.cancel()
            return task
        if not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        return None

    async def run(self) -> None:
        shard = self.layer._shards.shard(self.shard)
        failures = 0
        down_since = 0.0
        while not self.stopped and self.wanted():
            client = self.layer._shards.blocking_client(self.shard)
            try:
                raw = await self.read(client)
            except (RedisError, OSError) as exc:
                raise_if_cancelled()
                if self.stopped:
                    return
                if not failures:
                    down_since = time.monotonic()
                    logger.warning(
                        "%s: lost %s (%s: %s); receivers keep waiting while it reconnects",
                        self.label,
                        shard.name,
                        type(exc).__name__,
                        exc,
                    )
                delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2**failures)
                failures += 1
                await asyncio.sleep(delay)
                continue
            if failures:
                logger.warning(
                    "%s: reconnected to %s after %.1f s and %d attempts; messages sent "
                    "meanwhile were refused, sending %s to local channels",
                    self.label,
                    shard.name,
                    time.monotonic() - down_since,
                    failures,
                    RESYNC_TYPE,
                )
                failures = 0
                self.resync()
            if raw:
                self.deliver(raw)
            raise_if_cancelled()

    def _load(self, channel: str, body: bytes) -> Message | None:
        try:
            return self.layer._serializer.loads(body)
        except UnreadableMessage as exc:
            logger.error("%s: dropped a message for %r: %s", self.label, channel, exc)
            return None


class _LocalChannel:
    __slots__ = ("messages", "touched", "waiters")

    def __init__(self) -> None:
        self.messages: deque[Entry] = deque()
        self.waiters: deque[asyncio.Future[Entry]] = deque()
        self.touched = time.monotonic()


class Inbox(Reader):
    """One list holding every specific channel of one layer, demultiplexed here."""

    def __init__(self, layer: RedisChannelLayer, inbox: str) -> None:
        keys = layer._keys
        super().__init__(
            layer, layer._shards.index(inbox), keys.inbox(inbox), f"redis inbox {inbox}"
        )
        self.counter = keys.counter(inbox)
        self.channels: dict[str, _LocalChannel] = {}
        self.releases: Counter[str] = Counter()
        # Receivers waiting now: a count, since scanning channels is O(channels).
        self.waiting = 0
        self._releasing: asyncio.Task[None] | None = None
        self._more = False
        self._taken = False
        self._next_sweep = time.monotonic() + SWEEP_SECONDS

    def wanted(self) -> bool:
        return self.waiting > 0

    async def receive(self, channel: str) -> Message:
        state = self.channels.get(channel)
        if state is None:
            state = self.channels[channel] = _LocalChannel()
        state.touched = now = time.monotonic()
        messages = state.messages
        while messages:
            deadline, message, counted = messages.popleft()
            if counted:
                self.release(channel)
            if deadline > now:
                return message
        waiter: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        state.waiters.append(waiter)
        self.waiting += 1
        self.ensure_running()
        try:
            _, message, counted = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                messages.appendleft(waiter.result())
            else:
                state.waiters.remove(waiter)
            if not messages and not state.waiters and self.channels.get(channel) is state:
                del self.channels[channel]
            raise
        finally:
            self.waiting -= 1
        if counted:
            self.release(channel)
        return message

    async def read(self, client: Any) -> list[bytes]:
        if self._more:
            # TAKE releases the entries' places in Redis; BLPOP does not.
            self._taken = True
            args: list[Any] = [BATCH, *self._pending_releases()]
            packed = await self.layer._eval(self.shard, "TAKE", [self.key, self.counter], args)
            if packed:
                entries: list[bytes] = msgpack.unpackb(packed, raw=True)
                return entries
            self._more = False
        if self.releases:
            await self.flush_releases()
        self._taken = False
        popped = await client.blpop([self.key], timeout=POLL_SECONDS)
        if popped is None:
            self.sweep()
            return []
        self._more = True
        return [popped[1]]

    def deliver(self, raw: list[bytes]) -> None:
        now_ms = scripts.now_ms()
        now = time.monotonic()
        channels, releases, taken = self.channels, self.releases, self._taken
        for item in raw:
            deadline_ms, channel, body = split_entry(item)
            message = None if deadline_ms <= now_ms else self._load(channel, body)
            if message is None:  # expired or unreadable: dropped
                if not taken:
                    releases[channel] += 1
                continue
            state = channels.get(channel)
            if state is None:
                state = channels[channel] = _LocalChannel()
            deadline = now + (deadline_ms - now_ms) / 1000
            if _hand(state.waiters, (deadline, message, False), self._requeue(channel)):
                if not taken:
                    releases[channel] += 1
            else:
                # Buffered here, it keeps (or takes back) its place in Redis
                # until a receiver takes it.
                state.messages.append((deadline, message, True))
                if taken:
                    releases[channel] -= 1
        if now >= self._next_sweep:
            self.sweep()

    def resync(self) -> None:
        expires = time.monotonic() + self.layer.expiry
        for channel, state in self.channels.items():
            entry = (expires, {"type": RESYNC_TYPE}, False)
            if not _hand(state.waiters, entry, self._requeue(channel)):
                state.messages.append(entry)

    def clear(self) -> None:
        """Drop buffered messages (``flush``); waiting receivers stay."""
        for state in self.channels.values():
            state.messages.clear()
        self.releases.clear()

    def sweep(self) -> None:
        """Forget channels nobody has received from for ``expiry`` seconds, with their backlog.

        Their consumers are gone (a live consumer is waiting in ``receive()`` or
        handling the previous message, and then it has called ``receive()``
        within ``expiry``); their buffered messages are expired or about to be.
        """
        now = time.monotonic()
        self._next_sweep = now + SWEEP_SECONDS
        idle_since = now - self.layer.expiry
        for channel, state in list(self.channels.items()):
            if not state.waiters and state.touched < idle_since:
                del self.channels[channel]
                self.releases[channel] += sum(counted for _, _, counted in state.messages)

    def release(self, channel: str) -> None:
        """A counted message of ``channel`` left this process: free its place in Redis."""
        self.releases[channel] += 1
        if self._releasing is None or self._releasing.done():
            self._releasing = asyncio.get_running_loop().create_task(self.flush_releases())

    async def flush_releases(self) -> None:
        """Update the capacity counters in Redis for messages taken since the last call."""
        args = self._pending_releases()
        if not args:
            return
        try:
            await self.layer._eval(self.shard, "RELEASE", [self.counter], args)
        except Exception as exc:  # the counters are gone with Redis, or expire with the inbox
            logger.debug("%s: could not release %d counts: %s", self.label, len(args) // 2, exc)

    def _pending_releases(self) -> list[Any]:
        releases, self.releases = self.releases, Counter()
        args: list[Any] = []
        for channel, count in releases.items():
            if count:
                args += [channel, count]
        return args

    async def finish(self) -> None:
        """Send the last capacity releases (for ``close()``)."""
        releasing = self._releasing
        if releasing is not None and not releasing.done():
            await asyncio.gather(releasing, return_exceptions=True)
        await self.flush_releases()

    def _requeue(self, channel: str) -> Callable[[Entry], None]:
        def requeue(entry: Entry) -> None:
            state = self.channels.get(channel)
            if state is None:
                state = self.channels[channel] = _LocalChannel()
            state.messages.appendleft(entry)

        return requeue


class ChannelReader(Reader):
    """The reader of one normal channel's list, shared by this process's receivers."""

    def __init__(self, layer: RedisChannelLayer, channel: str) -> None:
        route, key, _ = layer._keys.channel(channel)
        super().__init__(layer, layer._shards.index(route), key, f"redis channel {channel}")
        self.channel = channel
        self.waiters: deque[asyncio.Future[Entry]] = deque()
        self._requeues: set[asyncio.Task[None]] = set()

    def wanted(self) -> bool:
        return any(not waiter.done() for waiter in self.waiters)

    async def receive(self) -> Message:
        waiter: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.ensure_running()
        try:
            return (await waiter)[1]
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._requeue(waiter.result())
            else:
                self.waiters.remove(waiter)
            raise

    async def read(self, client: Any) -> list[bytes]:
        popped = await client.blpop([self.key], timeout=POLL_SECONDS)
        return [] if popped is None else [popped[1]]

    def deliver(self, raw: list[bytes]) -> None:
        now_ms = scripts.now_ms()
        for item in raw:
            deadline_ms, channel, body = split_entry(item)
            if deadline_ms <= now_ms:
                continue
            message = self._load(channel, body)
            if message is None:
                continue
            deadline = time.monotonic() + (deadline_ms - now_ms) / 1000
            if not _hand(self.waiters, (deadline, message, True), self._requeue):
                self._push_back(item)

    def resync(self) -> None:
        entry = (time.monotonic() + self.layer.expiry, {"type": RESYNC_TYPE}, False)
        _hand(self.waiters, entry, lambda entry: None)

    def _requeue(self, entry: Entry) -> None:
        """Put a message a cancelled receiver had back at the head of the channel."""
        deadline, message, counted = entry
        if not counted:
            return
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            return
        raw = self.layer._entry(self.channel, message, remaining_ms)
        self._push_back(raw)

    def _push_back(self, raw: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._lpush(raw))
        self._requeues.add(task)
        task.add_done_callback(self._requeues.discard)

    async def _lpush(self, raw: bytes) -> None:
        try:
            await self.layer._shards.client(self.shard).lpush(self.key, raw)
        except (RedisError, OSError) as exc:
            logger.warning(
                "%s: lost a message while putting it back for another receiver: %s",
                self.label,
                exc,
            )

    async def drain(self) -> None:
        """Wait for messages being put back (for ``close()``)."""
        if self._requeues:
            await asyncio.gather(*self._requeues, return_exceptions=True)
