"""What only the in-memory layer promises: it forgets what nobody will read.

The channel layer contract itself (FIFO, at-most-once, capacity, expiry,
groups, presence, flush, sync callers) is in ``test_redis_contract.py``, which
runs every test on this layer and on the Redis layer.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync

from hub.layers import InMemoryChannelLayer
from hub.layers import memory as memory_module


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(memory_module.time, "monotonic", fake)
    return fake


@pytest.fixture
def layer() -> InMemoryChannelLayer:
    return InMemoryChannelLayer()


class TestNothingLeftBehind:
    async def test_a_cancelled_receiver_leaves_no_channel_state(self, layer):
        receiving = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        assert layer._channels == {}

    async def test_group_send_to_an_empty_group_creates_no_channel(self, layer):
        await layer.group_send("nobody", {"type": "hello"})
        assert layer._channels == {}

    async def test_the_sweep_forgets_channels_whose_messages_expired_unread(self, clock):
        layer = InMemoryChannelLayer(expiry=60)
        await layer.send("forgotten", {"type": "x"})
        clock.now += 61
        await layer.send("other", {"type": "x"})
        assert "forgotten" not in layer._channels


class TestMessageReady:
    async def test_it_completes_on_the_first_message_which_stays_for_receive(self, layer):
        ready = layer.message_ready("watched")
        assert not ready.done()
        await layer.send("watched", {"type": "first"})
        assert ready.done()
        assert await layer.receive("watched") == {"type": "first"}

    async def test_it_is_done_at_once_when_a_message_is_already_queued(self, layer):
        await layer.send("watched", {"type": "waiting"})
        assert layer.message_ready("watched").done()

    async def test_a_cancelled_watch_leaves_no_channel_state(self, layer):
        layer.message_ready("watched").cancel()
        await asyncio.sleep(0)
        assert layer._channels == {}

    async def test_a_sender_in_another_thread_completes_it_on_this_loop(self, layer):
        ready = layer.message_ready("watched")
        thread = threading.Thread(
            target=async_to_sync(layer.send), args=("watched", {"type": "from.thread"})
        )
        thread.start()
        await asyncio.wait_for(ready, 5)
        thread.join()
        assert await layer.receive("watched") == {"type": "from.thread"}

    def test_it_is_listed_as_an_extension(self, layer):
        assert "message_ready" in layer.extensions


class TestSendMany:
    async def test_each_channel_gets_its_own_copy_and_full_ones_are_named(self):
        layer = InMemoryChannelLayer(capacity=1)
        await layer.send("full", {"type": "earlier"})
        message = {"type": "reading", "values": [1, 2]}
        assert await layer.send_many(["a", "full", "b"], message) == ["full"]
        got_a, got_b = await layer.receive("a"), await layer.receive("b")
        assert got_a == got_b == message
        got_a["values"].append(3)
        assert got_b["values"] == [1, 2]
        assert await layer.receive("full") == {"type": "earlier"}

    async def test_a_bad_channel_name_is_refused(self, layer):
        with pytest.raises(TypeError, match="invalid"):
            await layer.send_many(["ok", "has space"], {"type": "x"})


class TestNames:
    def test_receive_of_a_specific_name_must_end_at_the_bang(self, layer):
        with pytest.raises(TypeError, match="must end at the '!'"):
            layer.require_valid_channel_name("specific!abc", receive=True)


class TestOtherThreads:
    async def test_a_sender_in_another_thread_wakes_a_receiver_on_this_loop(self, layer):
        receiving = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)

        def from_a_thread() -> None:
            async_to_sync(layer.send)("test.channel", {"type": "from.thread"})

        thread = threading.Thread(target=from_a_thread)
        thread.start()
        assert await asyncio.wait_for(receiving, 5) == {"type": "from.thread"}
        thread.join()
