"""One timer for the deadlines of every connection of a listener (a timer wheel).

Each connection of the MQTT and raw TCP listeners has one deadline at a
time. MQTT: its CONNECT within ``connect_timeout``, the application's answer
within ``connect_answer_timeout``, then 1.5 x Keep Alive after the last byte
read. TCP: ``idle_timeout`` after the last byte read. A ``TimerHandle`` each
(re-armed on every expiry, and the cancelled ones waiting in the event
loop's heap) costs about 600 bytes per connection on uvloop; ten thousand
idle devices need ten thousand deadlines that are rarely due and may be late
by a fraction of a second. So deadlines are rounded up to :data:`RESOLUTION`
and kept in slots, a list of connections each, with one ``call_at`` for the
earliest slot. A slot is a dict used as an ordered set, so that a closing
connection leaves it at once however many share it (a reconnect storm puts
thousands in one slot).

A connection is in at most one slot (``slot``, 0 for none). Moving its
deadline later does not move it: when its slot comes, it is asked
(``deadline_reached(now)``) and puts itself back for what is left, as a
keep-alive or idle check does with its own timer.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from typing import Protocol

#: Seconds a deadline may be late: 0.1 s, nothing next to a Keep Alive of
#: seconds or minutes, and few enough wake-ups for a listener whose timers
#: are all far away (one per slot that holds a connection).
RESOLUTION = 0.1


class Watched(Protocol):
    """What :class:`Deadlines` needs of a connection."""

    slot: int

    def deadline_reached(self, now: float) -> None:
        """Its slot's time came: act, or :meth:`Deadlines.add` itself again."""


class Deadlines:
    """The slots of one listener (see the module docstring)."""

    __slots__ = ("_heap", "_loop", "_slots", "_timer", "_timer_slot")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[int, dict[Watched, None]] = {}
        self._heap: list[int] = []  # the slot numbers in _slots, earliest first
        self._timer: asyncio.TimerHandle | None = None
        self._timer_slot = 0

    def add(self, watched: Watched, when: float) -> None:
        """Ask ``watched`` at loop time ``when`` (up to :data:`RESOLUTION` later)."""
        slot = math.ceil(when / RESOLUTION)
        if 0 < watched.slot <= slot:
            return  # asked earlier anyway; it puts itself back then
        if watched.slot:
            self.remove(watched)
        watched.slot = slot
        members = self._slots.get(slot)
        if members is not None:
            members[watched] = None
            return
        self._slots[slot] = {watched: None}
        heapq.heappush(self._heap, slot)
        if self._timer is None or slot < self._timer_slot:
            self._schedule(slot)

    def remove(self, watched: Watched) -> None:
        """Forget ``watched`` (a closed connection)."""
        slot, watched.slot = watched.slot, 0
        members = self._slots.get(slot)
        if members is not None and watched in members:
            del members[watched]
            if not members:
                del self._slots[slot]  # its heap entry is skipped when it comes up

    def _schedule(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_slot = slot
        self._timer = self._loop.call_at(slot * RESOLUTION, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        heap, slots = self._heap, self._slots
        due: list[tuple[int, dict[Watched, None]]] = []
        while heap and heap[0] * RESOLUTION <= now:
            slot = heapq.heappop(heap)
            members = slots.pop(slot, None)
            if members:
                due.append((slot, members))
        # Asked after the slots are taken: one that puts itself back lands in a
        # new slot, handled by the next call, whatever the rounding of its time.
        for slot, members in due:
            for watched in members:
                if watched.slot == slot:
                    watched.slot = 0
                    watched.deadline_reached(now)
        while heap and heap[0] not in slots:
            heapq.heappop(heap)
        if heap:
            self._schedule(heap[0])

    def __len__(self) -> int:
        """Connections waiting for a deadline."""
        return sum(len(members) for members in self._slots.values())
