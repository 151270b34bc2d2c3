"""The channel layer contract, read as a specification that both hub layers pass.

Each test runs on ``InMemoryChannelLayer`` and on ``RedisChannelLayer``
against a real redis-server, so switching backend changes nothing a consumer
can observe. Time moves by a fake clock: the in-memory layer's monotonic
clock, or the Redis layer's wall clock that stamps deadlines and joins.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from hub.exceptions import ChannelFull
from hub.layers import InMemoryChannelLayer, redis_scripts
from hub.layers import memory as memory_module
from hub.layers.redis import RedisChannelLayer

BACKENDS = ["memory", "redis"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_layer(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Callable]:
    """Build a layer of the backend under test, with a key prefix of its own on Redis."""
    made: list[Any] = []

    def make(**config: Any) -> Any:
        if backend == "memory":
            layer: Any = InMemoryChannelLayer(**config)
        else:
            url = request.getfixturevalue("redis_url")
            layer = RedisChannelLayer(hosts=[url], prefix=f"t{os.urandom(4).hex()}", **config)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        if isinstance(layer, RedisChannelLayer):
            await layer.flush()
        await layer.close()


@pytest.fixture
def layer(make_layer: Callable) -> Any:
    return make_layer()


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(backend: str, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    if backend == "memory":
        fake = FakeClock(1000.0)
        monkeypatch.setattr(memory_module.time, "monotonic", lambda: fake.now)
    else:
        fake = FakeClock(redis_scripts.now_ms() / 1000)
        monkeypatch.setattr(redis_scripts, "now_ms", lambda: int(fake.now * 1000))
    return fake


async def specific(layer: Any) -> str:
    return str(await layer.new_channel())


class TestSendReceive:
    async def test_a_sent_message_is_received(self, layer):
        await layer.send("test.channel", {"type": "test.message", "text": "hi"})
        assert await layer.receive("test.channel") == {"type": "test.message", "text": "hi"}

    async def test_a_specific_channel_receives_what_is_sent_to_it(self, layer):
        channel = await specific(layer)
        await layer.send(channel, {"type": "test.message", "bytes": b"\x00\xff"})
        assert await layer.receive(channel) == {"type": "test.message", "bytes": b"\x00\xff"}

    async def test_messages_arrive_in_the_order_sent(self, layer):
        for name in ["test.channel", await specific(layer)]:
            for i in range(5):
                await layer.send(name, {"type": "n", "i": i})
            assert [(await layer.receive(name))["i"] for _ in range(5)] == list(range(5))

    async def test_receive_waits_for_a_send(self, layer):
        channel = await specific(layer)
        receiving = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0)
        assert not receiving.done()
        await layer.send(channel, {"type": "late"})
        assert await asyncio.wait_for(receiving, 5) == {"type": "late"}

    async def test_a_message_is_delivered_at_most_once(self, layer):
        first = asyncio.create_task(layer.receive("test.channel"))
        second = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)
        await layer.send("test.channel", {"type": "only"})
        done, pending = await asyncio.wait([first, second], return_when=asyncio.FIRST_COMPLETED)
        assert [t.result() for t in done] == [{"type": "only"}]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

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
    @pytest.mark.parametrize("kind", ["normal", "specific"])
    async def test_a_message_handed_to_a_cancelled_receiver_goes_to_the_next(self, layer, kind):
        channel = "test.channel" if kind == "normal" else await specific(layer)
        receiving = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0)
        await layer.send(channel, {"type": "precious"})
        # Cancel at every point of the hand-over: before Redis answered, after.
        for _ in range(50):
            if receiving.done():
                break
            await asyncio.sleep(0)
        receiving.cancel()
        result = await asyncio.gather(receiving, return_exceptions=True)
        if isinstance(result[0], asyncio.CancelledError):
            assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "precious"}
        else:
            assert result == [{"type": "precious"}]


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
        with pytest.raises(TypeError, match=problem):
            await layer.receive(name)

    async def test_invalid_group_names_are_refused_with_the_reason(self, layer):
        with pytest.raises(TypeError, match=r"Group name 'a!b' is invalid"):
            await layer.group_add("a!b", "test.channel")

    async def test_a_message_must_be_a_dict(self, layer):
        with pytest.raises(TypeError, match="must be a dict, got list"):
            await layer.send("test.channel", ["type", "x"])

    async def test_a_message_must_have_a_type(self, layer):
        with pytest.raises(TypeError, match="needs a str 'type'"):
            await layer.send("test.channel", {"text": "no type"})


class TestCapacity:
    @pytest.mark.parametrize("kind", ["normal", "specific"])
    async def test_a_full_channel_raises_channel_full(self, make_layer, kind):
        layer = make_layer(capacity=2)
        channel = "test.channel" if kind == "normal" else await specific(layer)
        await layer.send(channel, {"type": "1"})
        await layer.send(channel, {"type": "2"})
        with pytest.raises(ChannelFull, match=r"is full: it holds 2 messages"):
            await layer.send(channel, {"type": "3"})

    @pytest.mark.parametrize("kind", ["normal", "specific"])
    async def test_the_message_over_capacity_is_not_queued(self, make_layer, kind):
        layer = make_layer(capacity=1)
        channel = "test.channel" if kind == "normal" else await specific(layer)
        await layer.send(channel, {"type": "kept"})
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"type": "refused"})
        assert await layer.receive(channel) == {"type": "kept"}
        await eventually_sends(layer, channel, {"type": "room again"})
        assert await layer.receive(channel) == {"type": "room again"}

    async def test_channel_capacity_patterns_override_the_default(self, make_layer):
        layer = make_layer(capacity=5, channel_capacity={"small.*": 1})
        await layer.send("small.one", {"type": "x"})
        with pytest.raises(ChannelFull):
            await layer.send("small.one", {"type": "x"})
        for _ in range(5):
            await layer.send("large.one", {"type": "x"})

    async def test_expired_messages_make_room(self, make_layer, clock):
        layer = make_layer(capacity=1, expiry=10)
        await layer.send("test.channel", {"type": "old"})
        clock.advance(11)
        await layer.send("test.channel", {"type": "new"})
        assert await layer.receive("test.channel") == {"type": "new"}


async def eventually_sends(layer: Any, channel: str, message: dict[str, Any]) -> None:
    """Send once the receiver's process has released the capacity a taken message held.

    The Redis layer frees a specific channel's place in Redis in the round trip
    after the take, not in the same instant.
    """
    for _ in range(200):
        try:
            await layer.send(channel, message)
        except ChannelFull:
            await asyncio.sleep(0.01)
        else:
            return
    raise AssertionError(f"{channel!r} stayed full")


class TestExpiry:
    async def test_a_message_older_than_expiry_is_not_delivered(self, make_layer, clock):
        layer = make_layer(expiry=60)
        for channel in ["test.channel", await specific(layer)]:
            await layer.send(channel, {"type": "stale"})
            clock.advance(61)
            await layer.send(channel, {"type": "fresh"})
            assert await layer.receive(channel) == {"type": "fresh"}

    async def test_a_message_within_expiry_is_delivered(self, make_layer, clock):
        layer = make_layer(expiry=60)
        await layer.send("test.channel", {"type": "fine"})
        clock.advance(59)
        assert await layer.receive("test.channel") == {"type": "fine"}

    async def test_an_unread_expired_message_removes_its_channel_from_groups(
        self, make_layer, clock
    ):
        layer = make_layer(expiry=60)
        await layer.group_add("room", "dead.channel")
        await layer.group_add("room", "live.channel")
        await layer.group_send("room", {"type": "hello"})
        assert await layer.receive("live.channel") == {"type": "hello"}
        clock.advance(61)
        await layer.send("other", {"type": "tick"})  # the in-memory sweep
        await layer.group_send("room", {"type": "tock"})  # Redis finds the dead member
        assert await layer.group_members("room") == {"live.channel"}


class TestGroups:
    async def test_group_send_reaches_every_member(self, layer):
        members = ["a", "b", await specific(layer), await specific(layer)]
        for member in members:
            await layer.group_add("room", member)
        await layer.group_send("room", {"type": "hello"})
        for member in members:
            assert await layer.receive(member) == {"type": "hello"}

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
        await layer.send("a", {"type": "marker"})
        assert await layer.receive("b") == {"type": "hello"}
        assert await layer.receive("a") == {"type": "marker"}

    async def test_discarding_a_non_member_is_harmless(self, layer):
        await layer.group_discard("room", "never.joined")
        assert await layer.group_count("room") == 0

    async def test_a_full_member_misses_the_message_and_the_others_get_it(self, make_layer):
        layer = make_layer(capacity=1)
        await layer.group_add("room", "full")
        await layer.group_add("room", "free")
        await layer.send("full", {"type": "earlier"})
        await layer.group_send("room", {"type": "hello"})
        assert await layer.receive("free") == {"type": "hello"}
        assert await layer.receive("full") == {"type": "earlier"}

    async def test_a_full_member_with_capacity_patterns_misses_the_message(self, make_layer):
        layer = make_layer(channel_capacity={"full*": 1})
        await layer.group_add("room", "full")
        await layer.group_add("room", "free")
        await layer.send("full", {"type": "earlier"})
        await layer.group_send("room", {"type": "hello"})
        await layer.send("free", {"type": "after"})
        assert await layer.receive("free") == {"type": "hello"}
        assert await layer.receive("free") == {"type": "after"}
        assert await layer.receive("full") == {"type": "earlier"}

    async def test_membership_ends_after_group_expiry(self, make_layer, clock):
        layer = make_layer(group_expiry=100)
        await layer.group_add("room", "a")
        clock.advance(101)
        await layer.group_send("room", {"type": "hello"})
        assert await layer.group_count("room") == 0

    async def test_group_add_renews_membership(self, make_layer, clock):
        layer = make_layer(group_expiry=100)
        await layer.group_add("room", "a")
        clock.advance(60)
        await layer.group_add("room", "a")
        clock.advance(60)
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
        channel = await specific(layer)
        await layer.send("test.channel", {"type": "x"})
        await layer.send(channel, {"type": "x"})
        await layer.group_add("room", "a")
        await layer.flush()
        assert await layer.group_count("room") == 0
        for name in ["test.channel", channel]:
            await layer.send(name, {"type": "after"})
            assert await layer.receive(name) == {"type": "after"}

    async def test_a_waiting_receiver_survives_flush(self, layer):
        receiving = asyncio.create_task(layer.receive("test.channel"))
        await asyncio.sleep(0)
        await layer.flush()
        await layer.send("test.channel", {"type": "after"})
        assert await asyncio.wait_for(receiving, 5) == {"type": "after"}


class TestFromSyncCode:
    def test_async_to_sync_calls_work_one_after_another(self, make_layer):
        layer = make_layer()
        channel = async_to_sync(layer.new_channel)()
        for i in range(3):
            async_to_sync(layer.send)(channel, {"type": "n", "i": i})
        got = [async_to_sync(layer.receive)(channel)["i"] for _ in range(3)]
        assert got == [0, 1, 2]
        async_to_sync(layer.group_add)("room", channel)
        async_to_sync(layer.group_send)("room", {"type": "hello"})
        assert async_to_sync(layer.receive)(channel) == {"type": "hello"}

    async def test_a_sender_in_another_thread_wakes_a_receiver_on_this_loop(self, layer):
        channel = await specific(layer)
        receiving = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0)
        await asyncio.to_thread(async_to_sync(layer.send), channel, {"type": "from.thread"})
        assert await asyncio.wait_for(receiving, 5) == {"type": "from.thread"}
