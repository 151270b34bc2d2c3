"""The Redis layer's opt-in extensions: at-least-once channels and groups' last values.

Two layers on one prefix stand for two processes (each has its own inbox and
its own Redis consumer name), as they would in two ``hub run`` processes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.exceptions import ChannelFull
from hub.layers.redis import RedisChannelLayer
from hub.layers.redis_streams import ACK_ID_KEY, REDELIVERED_KEY

from .test_redis import make_layer

__all__ = ["make_layer"]

WAIT = 10.0
DURABLE = {"jobs.*": "at_least_once"}


async def receive(layer: RedisChannelLayer, channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), WAIT)


class TestAtLeastOnce:
    async def test_the_layer_lists_the_extension(self, make_layer, redis_url):
        assert "at_least_once" in make_layer(redis_url).extensions

    async def test_a_message_carries_the_id_that_acknowledges_it(self, make_layer, redis_url):
        layer = make_layer(redis_url, channel_delivery=DURABLE)
        await layer.send("jobs.thumbnail", {"type": "thumbnail", "id": 7})
        message = await receive(layer, "jobs.thumbnail")
        assert message["id"] == 7
        assert message[ACK_ID_KEY]
        assert await layer.ack("jobs.thumbnail", message) is True
        assert await layer.ack("jobs.thumbnail", message) is False

    async def test_a_message_not_acknowledged_in_time_goes_to_another_process(
        self, make_layer, redis_url
    ):
        crashed = make_layer(redis_url, channel_delivery=DURABLE, ack_timeout=0.2)
        survivor = make_layer(redis_url, channel_delivery=DURABLE, ack_timeout=0.2)
        await crashed.send("jobs.mail", {"type": "mail", "to": "a@example.com"})
        taken = await receive(crashed, "jobs.mail")
        await crashed.close()  # its process died before acknowledging
        again = await receive(survivor, "jobs.mail")
        assert again["to"] == "a@example.com"
        assert again[ACK_ID_KEY] == taken[ACK_ID_KEY]
        assert again[REDELIVERED_KEY] is True
        assert await survivor.ack("jobs.mail", again) is True

    async def test_an_acknowledged_message_is_never_delivered_again(self, make_layer, redis_url):
        layer = make_layer(redis_url, channel_delivery=DURABLE, ack_timeout=0.2)
        await layer.send("jobs.a", {"type": "first"})
        await layer.ack("jobs.a", await receive(layer, "jobs.a"))
        await layer.send("jobs.a", {"type": "second"})
        second = await receive(layer, "jobs.a")
        assert second["type"] == "second"
        assert REDELIVERED_KEY not in second

    async def test_each_message_reaches_one_receiver_across_processes(self, make_layer, redis_url):
        layers = [make_layer(redis_url, channel_delivery=DURABLE) for _ in range(2)]
        for number in range(20):
            await layers[0].send("jobs.shared", {"type": "job", "n": number})

        async def work(layer: RedisChannelLayer) -> list[int]:
            done = []
            while True:
                try:
                    message = await asyncio.wait_for(layer.receive("jobs.shared"), 0.5)
                except TimeoutError:
                    return done
                await layer.ack("jobs.shared", message)
                done.append(message["n"])

        first, second = await asyncio.gather(*(work(layer) for layer in layers))
        assert sorted(first + second) == list(range(20))

    async def test_capacity_counts_messages_until_they_are_acknowledged(
        self, make_layer, redis_url
    ):
        layer = make_layer(redis_url, channel_delivery=DURABLE, capacity=2)
        await layer.send("jobs.small", {"type": "one"})
        await layer.send("jobs.small", {"type": "two"})
        message = await receive(layer, "jobs.small")
        with pytest.raises(ChannelFull, match="is full"):
            await layer.send("jobs.small", {"type": "three"})
        await layer.ack("jobs.small", message)
        await layer.send("jobs.small", {"type": "three"})

    async def test_group_send_queues_durably_for_at_least_once_members(self, make_layer, redis_url):
        layer = make_layer(redis_url, channel_delivery=DURABLE)
        browser = await layer.new_channel()
        await layer.group_add("orders", browser)
        await layer.group_add("orders", "jobs.invoice")
        await layer.group_send("orders", {"type": "order.placed", "n": 1})
        assert await receive(layer, browser) == {"type": "order.placed", "n": 1}
        durable = await receive(layer, "jobs.invoice")
        assert durable["n"] == 1
        assert await layer.ack("jobs.invoice", durable)

    async def test_specific_channels_stay_at_most_once(self, make_layer, redis_url):
        layer = make_layer(redis_url, channel_delivery={"*": "at_least_once"})
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "x"})
        assert await receive(layer, channel) == {"type": "x"}

    async def test_acknowledging_a_message_of_a_normal_channel_is_a_type_error(
        self, make_layer, redis_url
    ):
        layer = make_layer(redis_url)
        with pytest.raises(TypeError, match="at-least-once"):
            await layer.ack("jobs.x", {"type": "x"})

    def test_an_unknown_delivery_mode_is_refused(self):
        with pytest.raises(ValueError, match="exactly_once"):
            RedisChannelLayer(channel_delivery={"jobs.*": "exactly_once"})


@pytest.fixture(params=["one-script", "members-then-push"])
def last_value_config(request) -> dict[str, Any]:
    """Both ``group_send`` paths: the Lua script, and members-then-push (as on a Cluster)."""
    config: dict[str, Any] = {"group_last_value": ["prices.*"]}
    if request.param == "members-then-push":
        config["channel_capacity"] = {"never.matches": 1}
    return config


class TestLastValue:
    async def test_the_layer_lists_the_extension(self, make_layer, redis_url):
        assert "last_value" in make_layer(redis_url).extensions

    async def test_a_new_member_receives_the_last_message_sent_to_the_group(
        self, make_layer, redis_url, last_value_config
    ):
        layer = make_layer(redis_url, **last_value_config)
        await layer.group_send("prices.eur", {"type": "price", "value": 1})
        await layer.group_send("prices.eur", {"type": "price", "value": 2})
        channel = await layer.new_channel()
        await layer.group_add("prices.eur", channel)
        assert await receive(layer, channel) == {"type": "price", "value": 2}
        assert await layer.last_value("prices.eur") == {"type": "price", "value": 2}

    async def test_renewing_a_membership_does_not_send_it_again(
        self, make_layer, redis_url, last_value_config
    ):
        layer = make_layer(redis_url, **last_value_config)
        await layer.group_send("prices.usd", {"type": "price", "value": 1})
        channel = await layer.new_channel()
        await layer.group_add("prices.usd", channel)
        await layer.group_add("prices.usd", channel)
        await layer.group_send("prices.usd", {"type": "price", "value": 2})
        assert await receive(layer, channel) == {"type": "price", "value": 1}
        assert await receive(layer, channel) == {"type": "price", "value": 2}

    async def test_other_groups_keep_no_last_value(self, make_layer, redis_url, last_value_config):
        layer = make_layer(redis_url, **last_value_config)
        await layer.group_send("chat", {"type": "old"})
        channel = await layer.new_channel()
        await layer.group_add("chat", channel)
        await layer.send(channel, {"type": "probe"})
        assert await receive(layer, channel) == {"type": "probe"}
        assert await layer.last_value("chat") is None

    async def test_a_member_in_another_process_receives_it_on_joining(
        self, make_layer, redis_url, last_value_config
    ):
        sender, joiner = (make_layer(redis_url, **last_value_config) for _ in range(2))
        await sender.group_send("prices.gbp", {"type": "price", "value": 3})
        channel = await joiner.new_channel()
        await joiner.group_add("prices.gbp", channel)
        assert await receive(joiner, channel) == {"type": "price", "value": 3}
