"""The chat application, driven through the project's ASGI application without a server."""

import asyncio

import pytest
from django.contrib.auth.models import User
from hub.db import database_sync_to_async
from hub.testing import HttpCommunicator, WebsocketCommunicator

from chat.announce import announce
from mysite.asgi import application

# The origin validator refuses handshakes from pages of other sites.
ORIGIN = [(b"origin", b"http://localhost")]


async def join(room, user=None):
    client = WebsocketCommunicator(application, f"/ws/chat/{room}/", headers=ORIGIN, user=user)
    connected, _ = await client.connect()
    assert connected
    return client


class TestChatRoom:
    async def test_a_message_reaches_everyone_in_the_room(self):
        alice = await join("lobby")
        bob = await join("lobby")
        await alice.send_json_to({"text": "hello"})
        assert await alice.receive_json_from() == {"user": "anonymous", "text": "hello"}
        assert await bob.receive_json_from() == {"user": "anonymous", "text": "hello"}
        await alice.disconnect()
        await bob.disconnect()

    async def test_rooms_are_separate(self):
        lobby = await join("lobby")
        kitchen = await join("kitchen")
        await lobby.send_json_to({"text": "only the lobby"})
        assert (await lobby.receive_json_from())["text"] == "only the lobby"
        assert await kitchen.receive_nothing()
        await lobby.disconnect()
        await kitchen.disconnect()

    async def test_a_page_of_another_site_cannot_connect(self):
        client = WebsocketCommunicator(
            application, "/ws/chat/lobby/", headers=[(b"origin", b"https://evil.example")]
        )
        connected, _ = await client.connect()
        assert not connected

    @pytest.mark.django_db(transaction=True)
    async def test_a_logged_in_user_is_named(self):
        user = await database_sync_to_async(User.objects.create_user)("alice", password="pw")
        alice = await join("lobby", user=user)
        await alice.send_json_to({"text": "hi"})
        assert await alice.receive_json_from() == {"user": "alice", "text": "hi"}
        await alice.disconnect()


class TestOtherSenders:
    async def test_an_http_post_reaches_the_room(self):
        listener = await join("lobby")
        post = HttpCommunicator(application, "POST", "/api/rooms/lobby/messages/", body=b"deployed")
        response = await post.get_response()
        assert response["status"] == 202
        assert await listener.receive_json_from() == {"user": "http", "text": "deployed"}
        await listener.disconnect()

    async def test_the_api_accepts_only_post(self):
        response = await HttpCommunicator(
            application, "GET", "/api/rooms/lobby/messages/"
        ).get_response()
        assert response["status"] == 405

    async def test_synchronous_code_can_announce(self):
        listener = await join("lobby")
        await asyncio.to_thread(announce, "lobby", "closing at six")
        assert await listener.receive_json_from() == {"user": "system", "text": "closing at six"}
        await listener.disconnect()
