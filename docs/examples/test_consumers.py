"""The consumers of prices.py and accounts.py, driven by communicators."""

import pytest
from django.contrib.auth.models import User
from hub.db import database_sync_to_async
from hub.layers import get_channel_layer
from hub.testing import WebsocketCommunicator

from accounts import UserCountConsumer
from prices import TickerConsumer


class TestTicker:
    async def test_a_client_offering_the_subprotocol_gets_every_price(self):
        client = WebsocketCommunicator(TickerConsumer.as_asgi(), "/", subprotocols=["ticker.v1"])
        assert await client.connect() == (True, "ticker.v1")
        await get_channel_layer().group_send(
            "prices", {"type": "price.update", "symbol": "HUB", "price": 42.0}
        )
        assert await client.receive_json_from() == {"symbol": "HUB", "price": 42.0}
        await client.disconnect()

    async def test_a_client_without_the_subprotocol_is_refused(self):
        client = WebsocketCommunicator(TickerConsumer.as_asgi(), "/")
        connected, _ = await client.connect()
        assert not connected

    async def test_a_consumer_leaves_its_groups_when_it_ends(self):
        client = WebsocketCommunicator(TickerConsumer.as_asgi(), "/", subprotocols=["ticker.v1"])
        await client.connect()
        layer = get_channel_layer()
        members = await layer.group_count("prices")
        await client.disconnect()
        assert await layer.group_count("prices") == members - 1


@pytest.mark.django_db(transaction=True)
class TestUserCount:
    async def test_sync_handlers_use_the_orm(self):
        await database_sync_to_async(User.objects.create_user)("ada")
        client = WebsocketCommunicator(UserCountConsumer.as_asgi(), "/")
        await client.connect()
        await client.send_json_to({"action": "count"})
        assert await client.receive_json_from() == {"users": 1}
        await client.disconnect()

    async def test_an_unknown_action_closes_with_a_code(self):
        client = WebsocketCommunicator(UserCountConsumer.as_asgi(), "/")
        await client.connect()
        await client.send_json_to({"action": "drop tables"})
        assert await client.receive_close() == 4000
        await client.disconnect()
