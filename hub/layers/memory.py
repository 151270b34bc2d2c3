"""The in-memory channel layer: one process, no dependencies, the embedded default.

Design, and how it differs from Channels' ``InMemoryChannelLayer``:

- A channel is a deque of ``(expires_at, message)`` and a deque of waiting
  receivers. ``send`` hands a message straight to the oldest waiter when there
  is one, so a consumer blocked in ``receive`` costs one future, and a send
  costs O(1) whatever the number of channels. (Channels scans every channel
  and group on each ``receive`` and ``group_send``.)
- Time is ``time.monotonic()``: a wall-clock jump neither expires nor revives
  messages.
- Expired messages are dropped when their channel is read and by a sweep that
  runs at most every ``SWEEP_INTERVAL`` seconds, started by a send. A channel
  whose message expired unread has no live reader, so it also leaves its
  groups (as in Channels).
- Each recipient gets its own copy of a message (the same value semantics as a
  layer that serialises, such as Redis). A message whose values are all
  immutable (the usual ``{"type": ..., "text": ...}``) is copied with
  ``dict.copy``; nested plain containers are copied structurally, several
  times faster than ``copy.deepcopy``; other objects go through ``deepcopy``.
  The copier is chosen once per ``group_send``, not once per member.
- A channel name is validated when its entry is created; sends and receives
  on a known channel skip the regular expression.
- No state is bound to an event loop except a waiting receiver's future, and a
  sender on another loop (``async_to_sync`` from a thread) wakes that receiver
  through ``call_soon_threadsafe``. So the layer works from sync code.
- Extension ``"message_ready"``: :meth:`InMemoryChannelLayer.message_ready`
  gives a future done when a message arrives on a channel, so a consumer
  starts reading its channel only when there is something to read: ten
  thousand idle devices hold a future each instead of a task waiting in
  ``receive``.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

from hub.exceptions import ChannelFull
from hub.layers.base import BaseChannelLayer, CapacityPattern, require_message
from hub.types import Message

logger = logging.getLogger("hub.layers")

#: Upper bound on the seconds between two sweeps for expired messages and
#: group members; the sweep is O(channels), so it must not run on every send.
SWEEP_INTERVAL = 10.0


class _Channel:
    """A channel's queued messages and waiting receivers.

    Most channels are a consumer waiting for its next message: the queue is
    made on the first message that finds nobody waiting, and the waiters are a
    list (an empty deque is 760 bytes; one per connection adds up).
    """

    __slots__ = ("capacity", "messages", "ready", "waiters")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.messages: deque[tuple[float, Message]] | None = None
        self.waiters: list[asyncio.Future[Message]] = []
        #: Completed when a message is queued (``message_ready``).
        self.ready: asyncio.Future[None] | None = None

    def unused(self) -> bool:
        """Nothing queued, nobody waiting: the entry can go."""
        return not self.messages and not self.waiters and (self.ready is None or self.ready.done())

    def queue(self) -> deque[tuple[float, Message]]:
        """The message queue, made when first needed."""
        if self.messages is None:
            self.messages = deque()
        return self.messages


_ATOMS = frozenset((str, bytes, int, float, bool, type(None)))
#: ``dict.copy`` typed as a copier (a ``cast`` with ``Callable[...]`` per call
#: builds a generic alias each time: a tenth of a fan-out's CPU).
_DICT_COPY = cast(Callable[[Message], Message], dict.copy)


def copy_message(value: Any) -> Any:
    """A copy of ``value`` sharing nothing mutable with it."""
    cls = type(value)
    if cls in _ATOMS:
        return value
    if cls is dict:
        return {k: copy_message(v) for k, v in value.items()}
    if cls is list:
        return [copy_message(v) for v in value]
    if cls is tuple:
        return tuple(copy_message(v) for v in value)
    return copy.deepcopy(value)


def copier_for(message: Message) -> Callable[[Message], Message]:
    """How to copy ``message`` for each recipient: ``dict.copy`` when it is flat."""
    if type(message) is dict:
        for value in message.values():
            if type(value) not in _ATOMS:
                return copy_message
        return _DICT_COPY
    return copy_message


class InMemoryChannelLayer(BaseChannelLayer):
    """A channel layer inside one process.

    Args:
        expiry: seconds an undelivered message is kept (default 60).
        group_expiry: seconds a group membership lasts unless renewed by
            ``group_add`` (default 86400, one day, as in Channels).
        capacity: messages a channel holds before ``send`` raises
            ``ChannelFull`` (default 100).
        channel_capacity: per-name capacity overrides, ``{glob_or_regex: n}``.
    """

    extensions: ClassVar[list[str]] = ["groups", "flush", "presence", "message_ready"]

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.group_expiry = group_expiry
        self._channels: dict[str, _Channel] = {}
        self._groups: dict[str, dict[str, float]] = {}
        self._memberships: dict[str, set[str]] = {}
        self._sweep_interval = min(SWEEP_INTERVAL, expiry, group_expiry)
        self._next_sweep = time.monotonic() + self._sweep_interval
        self._names = itertools.count()
        self._prefix = os.urandom(4).hex()

    # Channel API

    async def send(self, channel: str, message: Message) -> None:
        """Queue ``message`` on ``channel``, or hand it to a waiting receiver.

        Raises:
            TypeError: the channel name or the message is invalid.
            ChannelFull: the channel already holds its capacity of messages.
        """
        require_message(message)
        if type(channel) is not str or channel not in self._channels:
            self.require_valid_channel_name(channel)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        self._put(channel, copier_for(message)(message), now)

    async def send_many(self, channels: list[str], message: Message) -> list[str]:
        """``send(channel, message)`` to each of ``channels``; return those that were full.

        For a message to many channels at once (an MQTT broker's fan-out): the
        message is checked, and its way of copying chosen, once for all.

        Raises:
            TypeError: a channel name or the message is invalid.
        """
        require_message(message)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        copy_for, known, put = copier_for(message), self._channels, self._put
        full: list[str] = []
        for channel in channels:
            if type(channel) is not str or channel not in known:
                self.require_valid_channel_name(channel)
            try:
                put(channel, copy_for(message), now)
            except ChannelFull:
                full.append(channel)
        return full

    async def receive(self, channel: str) -> Message:
        """The next message on ``channel``, waiting for one if it is empty.

        Waiters are served first come, first served. If the waiting task is
        cancelled after a message was handed to it, the message goes back to
        the front of the channel for the next receiver.
        """
        state = self._channels.get(channel) if type(channel) is str else None
        if state is None:
            self.require_valid_channel_name(channel)
            state = self._channels[channel] = _Channel(self.get_capacity(channel))
        messages = state.messages
        if messages:
            now = time.monotonic()
            while messages:
                expires_at, message = messages.popleft()
                if expires_at > now:
                    return message
                self._expired(channel)
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        state.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                state.queue().appendleft((time.monotonic() + self.expiry, waiter.result()))
            else:
                state.waiters.remove(waiter)
            if state.unused() and self._channels.get(channel) is state:
                del self._channels[channel]
            raise

    def message_ready(self, channel: str) -> asyncio.Future[None]:
        """A future done once a message is queued on ``channel`` (extension ``"message_ready"``).

        For a reader that starts receiving only when there is something to
        receive; the message stays queued for its ``receive``. Cancel the
        future to stop watching. One watcher per channel: a second call
        replaces the first.
        """
        state = self._channels.get(channel) if type(channel) is str else None
        if state is None:
            self.require_valid_channel_name(channel)
            state = self._channels[channel] = _Channel(self.get_capacity(channel))
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if state.messages:
            ready.set_result(None)
        else:
            state.ready = ready
            ready.add_done_callback(functools.partial(self._watch_ended, channel, state))
        return ready

    def _watch_ended(self, channel: str, state: _Channel, ready: asyncio.Future[None]) -> None:
        """A watcher gave up (its consumer ended): forget the channel if nothing else uses it."""
        if ready.cancelled() and state.unused() and self._channels.get(channel) is state:
            del self._channels[channel]

    async def new_channel(self, prefix: str = "specific") -> str:
        """A new process-specific channel name, unique within this layer."""
        return f"{prefix}.inmemory!{self._prefix}{next(self._names)}"

    # Flush extension

    async def flush(self) -> None:
        """Drop every queued message and group; receivers stay waiting."""
        for state in self._channels.values():
            state.messages = None
        self._groups.clear()
        self._memberships.clear()

    # Groups extension

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, or renew its membership for ``group_expiry``."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self._groups.setdefault(group, {})[channel] = time.monotonic()
        self._memberships.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a member."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self._discard(group, channel)

    async def group_send(self, group: str, message: Message) -> None:
        """Send ``message`` to every member of ``group``.

        A member whose channel is full misses this message (logged at debug
        level); the others still get it, as the channel layer spec says.
        """
        require_message(message)
        self.require_valid_group_name(group)
        members = self._groups.get(group)
        if not members:
            return
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
            members = self._groups.get(group)
            if not members:
                return
        joined_after = now - self.group_expiry
        put, copy_for_member = self._put, copier_for(message)
        for channel, joined in list(members.items()):
            if joined < joined_after:
                self._discard(group, channel)
                continue
            try:
                put(channel, copy_for_member(message), now)
            except ChannelFull:
                logger.debug("group_send to %r skipped full channel %r", group, channel)

    # Presence extension

    async def group_members(self, group: str) -> set[str]:
        """The channels currently in ``group``."""
        self.require_valid_group_name(group)
        joined_after = time.monotonic() - self.group_expiry
        return {c for c, joined in self._groups.get(group, {}).items() if joined >= joined_after}

    async def group_count(self, group: str) -> int:
        """How many channels are currently in ``group``."""
        return len(await self.group_members(group))

    # Internals

    def _put(self, channel: str, message: Message, now: float) -> None:
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(self.get_capacity(channel))
        waiters = state.waiters
        while waiters:
            waiter = waiters.pop(0)
            if waiter.done():
                continue
            loop = waiter.get_loop()
            if loop is _running_loop():
                waiter.set_result(message)
            else:
                loop.call_soon_threadsafe(self._hand_over, channel, state, waiter, message)
            return
        messages = state.queue()
        if len(messages) >= state.capacity:
            while messages and messages[0][0] <= now:
                messages.popleft()
                self._expired(channel)
            if len(messages) >= state.capacity:
                raise ChannelFull(
                    f"Channel {channel!r} is full: it holds {len(messages)} messages, "
                    f"its capacity (set capacity or channel_capacity in CHANNEL_LAYERS)"
                )
        messages.append((now + self.expiry, message))
        ready = state.ready
        if ready is not None:
            state.ready = None
            if not ready.done():
                loop = ready.get_loop()
                if loop is _running_loop():
                    ready.set_result(None)
                else:
                    loop.call_soon_threadsafe(_complete, ready)

    def _hand_over(
        self, channel: str, state: _Channel, waiter: asyncio.Future[Message], message: Message
    ) -> None:
        """Complete ``waiter`` on its own loop, or queue ``message`` if it gave up."""
        if waiter.done():
            state.queue().appendleft((time.monotonic() + self.expiry, message))
            self._channels.setdefault(channel, state)
        else:
            waiter.set_result(message)

    def _expired(self, channel: str) -> None:
        """A message on ``channel`` expired unread: nobody reads it, so it leaves its groups."""
        for group in list(self._memberships.get(channel, ())):
            self._discard(group, channel)

    def _discard(self, group: str, channel: str) -> None:
        members = self._groups.get(group)
        if members is not None and members.pop(channel, None) is not None and not members:
            del self._groups[group]
        groups = self._memberships.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._memberships[channel]

    def _sweep(self, now: float) -> None:
        """Drop expired messages, empty channels and expired group memberships."""
        self._next_sweep = now + self._sweep_interval
        for channel, state in list(self._channels.items()):
            messages = state.messages
            while messages and messages[0][0] <= now:
                messages.popleft()
                self._expired(channel)
            if state.unused():
                del self._channels[channel]
        joined_after = now - self.group_expiry
        for group, members in list(self._groups.items()):
            for channel in [c for c, joined in members.items() if joined < joined_after]:
                self._discard(group, channel)


def _complete(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
