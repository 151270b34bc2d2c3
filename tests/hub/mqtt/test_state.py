"""MemoryBrokerState: routes remembered per topic, forgotten when subscriptions change."""

from __future__ import annotations

from hub.mqtt.state import MemoryBrokerState, SubscriptionOptions


async def routed(state: MemoryBrokerState, topic: str, publisher: str = "pub") -> list[str]:
    return sorted(delivery.client_id for delivery in await state.match(topic, publisher))


class TestRoutesAreRemembered:
    async def test_a_stream_of_messages_to_one_topic_is_routed_once(self):
        state = MemoryBrokerState()
        await state.attach("a", "chan-a", clean=True)
        await state.subscribe("a", "chan-a", "room/1", SubscriptionOptions(0))
        first = await state.match("room/1", "pub")
        assert await state.match("room/1", "pub") is first

    async def test_a_new_subscriber_is_routed_to_after_the_topic_was_routed(self):
        state = MemoryBrokerState()
        await state.attach("a", "chan-a", clean=True)
        await state.subscribe("a", "chan-a", "room/1", SubscriptionOptions(0))
        assert await routed(state, "room/1") == ["a"]
        await state.attach("b", "chan-b", clean=True)
        await state.subscribe("b", "chan-b", "room/+", SubscriptionOptions(0))
        await state.subscribe("c", "chan-c", "room/1", SubscriptionOptions(0))  # not attached
        assert await routed(state, "room/1") == ["a", "b"]

    async def test_unsubscribing_one_of_two_subscribers_of_a_topic_keeps_the_other(self):
        state = MemoryBrokerState()
        for client in ("a", "b"):
            await state.attach(client, f"chan-{client}", clean=True)
            await state.subscribe(client, f"chan-{client}", "room/1", SubscriptionOptions(0))
        assert await routed(state, "room/1") == ["a", "b"]
        await state.unsubscribe("a", "chan-a", "room/1")
        assert await routed(state, "room/1") == ["b"]
        await state.unsubscribe("b", "chan-b", "room/1")
        assert await routed(state, "room/1") == []
        assert state.exact == {}

    async def test_a_changed_subscription_qos_is_routed_with_the_new_qos(self):
        state = MemoryBrokerState()
        await state.attach("a", "chan-a", clean=True)
        await state.subscribe("a", "chan-a", "room/1", SubscriptionOptions(0))
        assert [d.qos for d in await state.match("room/1", "pub")] == [0]
        await state.subscribe("a", "chan-a", "room/1", SubscriptionOptions(1))
        assert [d.qos for d in await state.match("room/1", "pub")] == [1]

    async def test_a_session_kept_offline_is_routed_without_a_channel(self):
        state = MemoryBrokerState()
        await state.attach("a", "chan-a", clean=False)
        await state.subscribe("a", "chan-a", "room/1", SubscriptionOptions(1))
        assert [d.channel for d in await state.match("room/1", "pub")] == ["chan-a"]
        await state.detach("a", "chan-a", expiry=60)
        assert [d.channel for d in await state.match("room/1", "pub")] == [None]
        await state.attach("a", "chan-a2", clean=False)
        assert [d.channel for d in await state.match("room/1", "pub")] == ["chan-a2"]

    async def test_no_local_is_decided_per_publisher(self):
        state = MemoryBrokerState()
        await state.attach("a", "chan-a", clean=True)
        await state.subscribe("a", "chan-a", "room/1", SubscriptionOptions(0, no_local=True))
        assert await routed(state, "room/1", publisher="a") == []
        assert await routed(state, "room/1", publisher="b") == ["a"]

    async def test_shared_subscriptions_still_take_turns(self):
        state = MemoryBrokerState()
        for client in ("a", "b"):
            await state.attach(client, f"chan-{client}", clean=True)
            await state.subscribe(
                client, f"chan-{client}", "$share/g/room/1", SubscriptionOptions(0)
            )
        turns = [await routed(state, "room/1") for _ in range(4)]
        assert turns == [["a"], ["b"], ["a"], ["b"]]
