"""What the routes in routes.py match, and what a consumer finds in scope["url_route"]."""

import logging

from hub.testing import WebsocketCommunicator

from routes import websocket_router


async def route_of(path):
    client = WebsocketCommunicator(websocket_router, path)
    connected, _ = await client.connect()
    assert connected
    answer = await client.receive_json_from()
    await client.disconnect()
    return answer


class TestRoutes:
    async def test_converters_turn_captures_into_values(self):
        assert await route_of("/ws/devices/42/") == {
            "consumer": "DeviceConsumer",
            "args": [],
            "kwargs": {"device_id": 42},
        }

    async def test_a_nested_router_adds_its_captures_to_its_parents(self):
        answer = await route_of("/ws/devices/42/logs/error/")
        assert answer["consumer"] == "DeviceLogConsumer"
        assert answer["kwargs"] == {"device_id": 42, "level": "error"}

    async def test_an_unnamed_regex_group_is_a_positional_argument(self):
        answer = await route_of("/ws/legacy/0badcafe/")
        assert answer["consumer"] == "LegacyConsumer"
        assert answer["args"] == ["0badcafe"]

    async def test_an_unmatched_path_is_refused_and_logged(self, caplog):
        client = WebsocketCommunicator(websocket_router, "/ws/devices/not-a-number/")
        with caplog.at_level(logging.WARNING, logger="hub.routing"):
            connected, code = await client.connect()
        assert (connected, code) == (False, 1000)
        assert "No route for websocket path '/ws/devices/not-a-number/'" in caplog.text
