"""A Channels chat application runs on hub with only its imports changed.

Every test runs twice: on Channels, with ``channels_chat`` as written, and on
hub, with the same source after ``port.port_source`` (``channels`` -> ``hub``
in the import lines). Both use hub's communicators and hub's in-memory layer,
which also shows that hub's layer backs Channels consumers.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from hub.db import database_sync_to_async
from hub.testing import WebsocketCommunicator
from tests.hub.chat import channels_chat
from tests.hub.chat.port import load_ported_chat, port_source

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://testserver")]


@pytest.fixture(params=["channels", "hub"])
def chat(request):
    return channels_chat if request.param == "channels" else load_ported_chat()


def test_the_port_changes_only_import_lines():
    source = channels_chat.__loader__.get_source(channels_chat.__name__)
    ported = port_source(source)
    changed = [
        (before, after)
        for before, after in zip(source.splitlines(), ported.splitlines(), strict=True)
        if before != after
    ]
    assert changed, "the chat application imports channels"
    for before, after in changed:
        assert before.startswith(("from channels", "import channels"))
        assert after == before.replace("channels", "hub", 1)
    assert "channels" not in "".join(a for _, a in changed).replace("channel_layer", "")


def test_the_ported_application_is_built_from_hub_classes():
    ported = load_ported_chat()
    assert ported.ChatConsumer.__mro__[1].__module__ == "hub.generic.websocket"
    assert type(ported.application).__module__ == "hub.routing"


async def connect(chat, path, user=None):
    communicator = WebsocketCommunicator(chat.application, path, headers=ORIGIN, user=user)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


class TestRooms:
    async def test_a_message_reaches_everyone_in_the_room(self, chat):
        alice = await connect(chat, "/ws/chat/lobby/")
        bob = await connect(chat, "/ws/chat/lobby/")
        await alice.send_json_to({"message": "hello"})
        for client in (alice, bob):
            assert await client.receive_json_from() == {"message": "hello", "user": "anonymous"}
        await alice.disconnect()
        await bob.disconnect()

    async def test_rooms_are_separate(self, chat):
        lobby = await connect(chat, "/ws/chat/lobby/")
        kitchen = await connect(chat, "/ws/chat/kitchen/")
        await lobby.send_json_to({"message": "only the lobby"})
        assert (await lobby.receive_json_from())["message"] == "only the lobby"
        assert await kitchen.receive_nothing()
        await lobby.disconnect()
        await kitchen.disconnect()

    async def test_a_logged_in_user_is_named(self, chat):
        user = await database_sync_to_async(User.objects.create_user)("ada", password="x")
        ada = await connect(chat, "/ws/chat/lobby/", user=user)
        await ada.send_json_to({"message": "hi"})
        assert await ada.receive_json_from() == {"message": "hi", "user": "ada"}
        await ada.disconnect()

    async def test_the_sync_consumer_shares_rooms_with_the_async_one(self, chat):
        sync_client = await connect(chat, "/ws/sync-chat/lobby/")
        async_client = await connect(chat, "/ws/chat/lobby/")
        await sync_client.send_json_to({"message": "from sync"})
        for client in (sync_client, async_client):
            assert await client.receive_json_from() == {"message": "from sync", "user": "sync"}
        await sync_client.disconnect()
        await async_client.disconnect()


class TestJsonConsumer:
    async def test_groups_attribute_joins_the_lobby(self, chat):
        first = await connect(chat, "/ws/lobby/")
        second = await connect(chat, "/ws/lobby/")
        await first.send_json_to({"text": "everyone"})
        for client in (first, second):
            assert await client.receive_json_from() == {"text": "everyone"}
        await first.disconnect()
        await second.disconnect()

    async def test_whoami_sees_the_session_user(self, chat):
        user = await database_sync_to_async(User.objects.create_user)("grace", password="x")
        client = await connect(chat, "/ws/lobby/", user=user)
        await client.send_json_to({"action": "whoami"})
        assert await client.receive_json_from() == {"user": "grace"}
        await client.disconnect()


class TestSecurity:
    async def test_a_foreign_origin_is_refused(self, chat):
        headers = [(b"origin", b"http://evil.example")]
        communicator = WebsocketCommunicator(chat.application, "/ws/chat/lobby/", headers=headers)
        connected, _ = await communicator.connect()
        assert not connected
