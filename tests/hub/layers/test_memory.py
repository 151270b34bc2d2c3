"""The in-memory channel layer, read as its specification."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync

from hub.exceptions import ChannelFull
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


class TestSendReceive:
    async def test_a_sent_message_is_received(self, layer):
        await layer.send("test.channel", {"type": "test.message", "text": "hi"})
        assert await layer.receive("test.channel") == {"type": "test.message", "text": "hi"}

    async def test_messages_arrive_in_the_order_sent(self, layer):
        for i in range(5):
            await layer.send("test.channel", {"type": "n", "i": i})
        assert [(await layer.receive("test.channel"))["i"] for _ in range(5)] == list(range(5))

    async def test_receive_waits_for_a_send(self, layer):
        receiving = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)
        assert not receiving.done()
        await layer.send("test.channel", {"type": "late"})
        assert await receiving == {"type": "late"}

    async def test_a_message_is_delivered_at_most_once(self, layer):
        first = asyncio.create_task(layer.receive("test.channel"))
        second = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)
        await layer.send("test.channel", {"type": "only"})
        done, pending = await asyncio.wait([first, second], timeout=0.05)
        assert [t.result() for t in done] == [{"type": "only"}]
        assert first in done, "waiters are served first come, first served"
        for task in pending:
            task.cancel()

    async def test_the_receiver_gets_a_copy_the_sender_cannot_change(self, layer):
        message = {"type": "m", "items": [1, 2], "meta": {"k": "v"}}
        await layer.send("test.channel", message)
        message["items"].append(3)
        message["meta"]["k"] = "changed"
        assert await layer.receive("test.channel") == {
            "type": "m",
            "items": [1, 2],
            "meta": {"k": "v"},
        }

    async def test_channels_are_independent(self, layer):
        await layer.send("a", {"type": "for.a"})
        await layer.send("b", {"type": "for.b"})
        assert await layer.receive("b") == {"type": "for.b"}
        assert await layer.receive("a") == {"type": "for.a"}


class TestCancelledReceive:
    async def test_a_message_handed_to_a_cancelled_receiver_goes_to_the_next(self, layer):
        receiving = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)
        await layer.send("test.channel", {"type": "precious"})
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        assert await layer.receive("test.channel") == {"type": "precious"}

    async def test_a_cancelled_receiver_leaves_nothing_behind(self, layer):
        receiving = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        assert layer._channels == {}


class TestNewChannel:
    async def test_new_channels_are_unique_and_valid(self, layer):
        names = {await layer.new_channel() for _ in range(1000)}
        assert len(names) == 1000
        for name in names:
            assert layer.require_valid_channel_name(name)

    async def test_new_channel_uses_the_prefix(self, layer):
        assert (await layer.new_channel("worker")).startswith("worker.")


class TestValidation:
    @pytest.mark.parametrize(
        ("name", "problem"),
        [
            ("has space", "invalid"),
            ("x" * 100, "100 characters long"),
            (b"bytes", "must be a str"),
            ("ümlaut", "invalid"),
        ],
    )
    async def test_invalid_channel_names_are_refused_with_the_reason(self, layer, name, problem):
        with pytest.raises(TypeError, match=problem):
            await layer.send(name, {"type": "x"})

    async def test_invalid_group_names_are_refused_with_the_reason(self, layer):
        with pytest.raises(TypeError, match=r"Group name 'a!b' is invalid"):
            await layer.group_add("a!b", "test.channel")

    async def test_a_message_must_be_a_dict(self, layer):
        with pytest.raises(TypeError, match="must be a dict, got list"):
            await layer.send("test.channel", ["type", "x"])

    async def test_a_message_must_have_a_type(self, layer):
        with pytest.raises(TypeError, match="needs a str 'type'"):
            await layer.send("test.channel", {"text": "no type"})

    def test_receive_of_a_specific_name_must_end_at_the_bang(self, layer):
        with pytest.raises(TypeError, match="must end at the '!'"):
            layer.require_valid_channel_name("specific!abc", receive=True)


class TestCapacity:
    async def test_a_full_channel_raises_channel_full(self):
        layer = InMemoryChannelLayer(capacity=2)
        await layer.send("test.channel", {"type": "1"})
        await layer.send("test.channel", {"type": "2"})
        with pytest.raises(ChannelFull, match=r"'test.channel' is full: it holds 2 messages"):
            await layer.send("test.channel", {"type": "3"})

    async def test_the_message_over_capacity_is_not_queued(self):
        layer = InMemoryChannelLayer(capacity=1)
        await layer.send("test.channel", {"type": "kept"})
        with pytest.raises(ChannelFull):
            await layer.send("test.channel", {"type": "refused"})
        assert await layer.receive("test.channel") == {"type": "kept"}
        await layer.send("test.channel", {"type": "room again"})
        assert await layer.receive("test.channel") == {"type": "room again"}

    async def test_channel_capacity_patterns_override_the_default(self):
        layer = InMemoryChannelLayer(capacity=5, channel_capacity={"small.*": 1})
        await layer.send("small.one", {"type": "x"})
        with pytest.raises(ChannelFull):
            await layer.send("small.one", {"type": "x"})
        for _ in range(5):
            await layer.send("large.one", {"type": "x"})

    async def test_expired_messages_make_room(self, clock):
        layer = InMemoryChannelLayer(capacity=1, expiry=10)
        await layer.send("test.channel", {"type": "old"})
        clock.now += 11
        await layer.send("test.channel", {"type": "new"})
        assert await layer.receive("test.channel") == {"type": "new"}


class TestExpiry:
    async def test_a_message_older_than_expiry_is_not_delivered(self, clock):
        layer = InMemoryChannelLayer(expiry=60)
        await layer.send("test.channel", {"type": "stale"})
        clock.now += 61
        await layer.send("test.channel", {"type": "fresh"})
        assert await layer.receive("test.channel") == {"type": "fresh"}

    async def test_a_message_within_expiry_is_delivered(self, clock):
        layer = InMemoryChannelLayer(expiry=60)
        await layer.send("test.channel", {"type": "fine"})
        clock.now += 59
        assert await layer.receive("test.channel") == {"type": "fine"}

    async def test_an_unread_expired_message_removes_its_channel_from_groups(self, clock):
        layer = InMemoryChannelLayer(expiry=60)
        await layer.group_add("room", "dead.channel")
        await layer.group_add("room", "live.channel")
        await layer.group_send("room", {"type": "hello"})
        assert await layer.receive("live.channel") == {"type": "hello"}
        clock.now += 61
        await layer.send("other", {"type": "tick"})  # runs the sweep
        assert await layer.group_members("room") == {"live.channel"}

    async def test_the_sweep_forgets_unread_channels(self, clock):
        layer = InMemoryChannelLayer(expiry=60)
        await layer.send("forgotten", {"type": "x"})
        clock.now += 61
        await layer.send("other", {"type": "x"})
        assert "forgotten" not in layer._channels


class TestGroups:
    async def test_group_send_reaches_every_member(self, layer):
        await layer.group_add("room", "a")
        await layer.group_add("room", "b")
        await layer.group_send("room", {"type": "hello"})
        assert await layer.receive("a") == {"type": "hello"}
        assert await layer.receive("b") == {"type": "hello"}

    async def test_each_member_gets_its_own_copy(self, layer):
        await layer.group_add("room", "a")
        await layer.group_add("room", "b")
        await layer.group_send("room", {"type": "hello", "seen": []})
        (await layer.receive("a"))["seen"].append("a")
        assert await layer.receive("b") == {"type": "hello", "seen": []}

    async def test_a_discarded_channel_gets_nothing(self, layer):
        await layer.group_add("room", "a")
        await layer.group_add("room", "b")
        await layer.group_discard("room", "a")
        await layer.group_send("room", {"type": "hello"})
        assert await layer.receive("b") == {"type": "hello"}
        assert "a" not in layer._channels

    async def test_discarding_a_non_member_is_harmless(self, layer):
        await layer.group_discard("room", "never.joined")
        assert await layer.group_count("room") == 0

    async def test_group_send_to_an_empty_group_does_nothing(self, layer):
        await layer.group_send("nobody", {"type": "hello"})
        assert layer._channels == {}

    async def test_a_full_member_misses_the_message_and_the_others_get_it(self):
        layer = InMemoryChannelLayer(capacity=1)
        await layer.group_add("room", "full")
        await layer.group_add("room", "free")
        await layer.send("full", {"type": "earlier"})
        await layer.group_send("room", {"type": "hello"})
        assert await layer.receive("free") == {"type": "hello"}
        assert await layer.receive("full") == {"type": "earlier"}

    async def test_membership_ends_after_group_expiry(self, clock):
        layer = InMemoryChannelLayer(group_expiry=100)
        await layer.group_add("room", "a")
        clock.now += 101
        await layer.group_send("room", {"type": "hello"})
        assert "a" not in layer._channels
        assert await layer.group_count("room") == 0

    async def test_group_add_renews_membership(self, clock):
        layer = InMemoryChannelLayer(group_expiry=100)
        await layer.group_add("room", "a")
        clock.now += 60
        await layer.group_add("room", "a")
        clock.now += 60
        await layer.group_send("room", {"type": "hello"})
        assert await layer.receive("a") == {"type": "hello"}


class TestPresence:
    async def test_group_members_lists_the_channels_in_a_group(self, layer):
        await layer.group_add("room", "a")
        await layer.group_add("room", "b")
        await layer.group_add("other", "c")
        assert await layer.group_members("room") == {"a", "b"}
        assert await layer.group_count("room") == 2

    async def test_an_unknown_group_has_no_members(self, layer):
        assert await layer.group_members("nobody") == set()
        assert await layer.group_count("nobody") == 0

    def test_presence_is_advertised_as_an_extension(self, layer):
        assert {"groups", "flush", "presence"} <= set(layer.extensions)


class TestFlush:
    async def test_flush_drops_messages_and_groups(self, layer):
        await layer.send("test.channel", {"type": "x"})
        await layer.group_add("room", "a")
        await layer.flush()
        assert await layer.group_count("room") == 0
        await layer.send("test.channel", {"type": "after"})
        assert await layer.receive("test.channel") == {"type": "after"}

    async def test_a_waiting_receiver_survives_flush(self, layer):
        receiving = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)
        await layer.flush()
        await layer.send("test.channel", {"type": "after"})
        assert await receiving == {"type": "after"}


class TestFromSyncCode:
    def test_async_to_sync_calls_work_one_after_another(self):
        layer = InMemoryChannelLayer()
        for i in range(3):
            async_to_sync(layer.send)("test.channel", {"type": "n", "i": i})
        got = [async_to_sync(layer.receive)("test.channel")["i"] for _ in range(3)]
        assert got == [0, 1, 2]
        async_to_sync(layer.group_add)("room", "test.channel")
        async_to_sync(layer.group_send)("room", {"type": "hello"})
        assert async_to_sync(layer.receive)("test.channel") == {"type": "hello"}

    async def test_a_sender_in_another_thread_wakes_a_receiver_on_this_loop(self, layer):
        receiving = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)

        def from_a_thread() -> None:
            async_to_sync(layer.send)("test.channel", {"type": "from.thread"})

        thread = threading.Thread(target=from_a_thread)
        thread.start()
        assert await asyncio.wait_for(receiving, 5) == {"type": "from.thread"}
        thread.join()
