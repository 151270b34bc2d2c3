"""Deadlines: one timer for the deadlines of every connection of a listener."""

from __future__ import annotations

import asyncio

from protocols.deadlines import RESOLUTION, Deadlines


class Watched:
    """A connection stand-in: records when it was asked, may put itself back."""

    def __init__(self, deadlines: Deadlines, name: str, back_at: float | None = None) -> None:
        self.deadlines = deadlines
        self.name = name
        self.slot = 0
        self.back_at = back_at  # loop time it puts itself back for, once
        self.asked: list[float] = []
        self.reached: asyncio.Event = asyncio.Event()

    def deadline_reached(self, now: float) -> None:
        self.asked.append(now)
        if self.back_at is not None and now < self.back_at:
            self.deadlines.add(self, self.back_at)
            return
        self.reached.set()


async def wait(*watched: Watched) -> None:
    async with asyncio.timeout(5):
        for one in watched:
            await one.reached.wait()


class TestDeadlines:
    async def test_each_connection_is_asked_at_or_after_its_deadline_earliest_first(self):
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(loop)
        order: list[str] = []
        late, early = Watched(deadlines, "late"), Watched(deadlines, "early")
        for one in (late, early):
            one.deadline_reached = lambda now, one=one: (order.append(one.name), one.reached.set())
        start = loop.time()
        deadlines.add(late, start + 0.3)
        deadlines.add(early, start + 0.1)
        await wait(late, early)
        assert order == ["early", "late"]
        assert loop.time() >= start + 0.3
        assert len(deadlines) == 0

    async def test_a_connection_that_puts_itself_back_is_asked_again(self):
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(loop)
        start = loop.time()
        watched = Watched(deadlines, "keep-alive", back_at=start + 0.3)
        deadlines.add(watched, start + 0.1)
        await wait(watched)
        assert len(watched.asked) == 2
        assert watched.asked[-1] >= start + 0.3

    async def test_a_later_deadline_keeps_the_earlier_slot(self):
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(loop)
        start = loop.time()
        watched = Watched(deadlines, "answer")
        deadlines.add(watched, start + 0.1)
        slot = watched.slot
        deadlines.add(watched, start + 10)
        assert watched.slot == slot
        await wait(watched)  # asked at the earlier time: it decides what is left

    async def test_an_earlier_deadline_moves_the_connection(self):
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(loop)
        start = loop.time()
        watched = Watched(deadlines, "connect")
        deadlines.add(watched, start + 10)
        deadlines.add(watched, start + 0.1)
        await wait(watched)
        assert watched.asked == [watched.asked[0]]
        assert len(deadlines) == 0

    async def test_a_removed_connection_is_not_asked(self):
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(loop)
        start = loop.time()
        gone, staying = Watched(deadlines, "gone"), Watched(deadlines, "staying")
        deadlines.add(gone, start + 0.1)
        deadlines.add(staying, start + 0.1 + 2 * RESOLUTION)
        deadlines.remove(gone)
        assert gone.slot == 0
        await wait(staying)
        assert gone.asked == []
