"""The chat on hub's real server, with a real WebSocket client and a real HTTP client."""

import asyncio
import json
import urllib.request

from websockets.asyncio.client import connect

from mysite.asgi import application


class TestChatOverTheNetwork:
    async def test_two_clients_chat_through_the_server(self, hub_live_server):
        server = hub_live_server(application)
        url = server.url("http").replace("http://", "ws://") + "/ws/chat/lobby/"
        async with (
            connect(url, origin="http://localhost") as alice,
            connect(url, origin="http://localhost") as bob,
        ):
            await alice.send(json.dumps({"text": "hi bob"}))
            assert json.loads(await bob.recv()) == {"user": "anonymous", "text": "hi bob"}

    async def test_a_post_reaches_a_connected_client(self, hub_live_server):
        server = hub_live_server(application)
        url = server.url("http")
        async with connect(
            url.replace("http://", "ws://") + "/ws/chat/lobby/", origin="http://localhost"
        ) as client:
            request = urllib.request.Request(
                url + "/api/rooms/lobby/messages/", data=b"from curl", method="POST"
            )
            response = await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
            assert response.status == 202
            assert json.loads(await client.recv()) == {"user": "http", "text": "from curl"}
