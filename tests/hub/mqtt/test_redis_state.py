"""The broker's whole suite again, with its state in Redis instead of memory.

``test_broker``'s classes are imported here, so pytest runs each of them a
second time with this module's ``broker_class``: one whose
:class:`~hub.mqtt.redis_state.RedisBrokerState` lives in a real redis-server.
Cross-process behaviour is in ``tests/hub/test_scale_out.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from hub.generic.mqtt import BrokerConsumer
from hub.mqtt.redis_state import RedisBrokerState
from hub.mqtt.state import SubscriptionOptions

from .test_broker import (
    TestQos2,
    TestRetained,
    TestRouting,
    TestSessions,
    TestV5Options,
    TestWill,
    clients,
)

__all__ = [
    "TestQos2",
    "TestRetained",
    "TestRouting",
    "TestSessions",
    "TestV5Options",
    "TestWill",
    "clients",
]


@pytest.fixture
def state(redis_url: str) -> Iterator[RedisBrokerState]:
    state = RedisBrokerState([redis_url], prefix=f"mqtt{os.urandom(4).hex()}")
    yield state
    asyncio.run(_flush(state))


async def _flush(state: RedisBrokerState) -> None:
    await state.flush()
    await state.close()


@pytest.fixture
def broker_class(state: RedisBrokerState) -> type[BrokerConsumer]:
    return type("RedisBroker", (BrokerConsumer,), {"state": state, "allow_anonymous": True})


class TestRedisState:
    async def test_a_session_resumed_with_clean_start_forgets_the_old_subscriptions(self, state):
        await state.attach("c1", "ch.a!1", clean=False)
        await state.subscribe("c1", "ch.a!1", "a/+", SubscriptionOptions(1))
        await state.detach("c1", "ch.a!1", expiry=60)
        assert await state.attach("c1", "ch.b!1", clean=True) is False
        assert await state.match("a/b", "other") == []

    async def test_an_expired_session_is_dropped_with_its_subscriptions(self, state):
        await state.attach("c1", "ch.a!1", clean=False)
        await state.subscribe("c1", "ch.a!1", "a/b", SubscriptionOptions(1))
        await state.detach("c1", "ch.a!1", expiry=60)
        client_key = state._client_keys("c1")[0]
        await state.client().hset(client_key, "exp", 1)  # as if 60 s had passed
        assert await state.match("a/b", "other") == []
        assert await state.client().hlen(state._index("a/b")) == 0
        await state.close()

    async def test_an_old_connection_cannot_change_the_session_a_new_one_took_over(self, state):
        await state.attach("c1", "ch.a!1", clean=True)
        await state.attach("c1", "ch.b!1", clean=False)
        assert await state.subscribe("c1", "ch.a!1", "a/b", SubscriptionOptions(0)) is False
        await state.detach("c1", "ch.a!1", expiry=0)
        assert await state.match("a/b", "x") == []
        assert await state.subscribe("c1", "ch.b!1", "a/b", SubscriptionOptions(0)) is True
        [delivery] = await state.match("a/b", "x")
        assert delivery.channel == "ch.b!1"
        await state.close()

    async def test_client_ids_with_braces_keep_their_keys_in_one_slot(self, state):
        keys = state._client_keys("}{odd")
        assert len({key.partition("{")[2] for key in keys}) == 1
        assert "odd" not in keys[0]
