"""End-to-end testing helpers: the ``hub_live_server`` fixture and ``HubLiveServerTestCase``."""

from __future__ import annotations

import urllib.request

import pytest
from websockets.asyncio.client import connect

from hub.testing import ChannelsLiveServerTestCase, HubLiveServerTestCase
from tests.apps import hello


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


@pytest.mark.django_db(transaction=True)
def test_the_fixture_serves_the_django_project_by_default(hub_live_server):
    server = hub_live_server()
    status, body = get(server.url() + "/admin/login/")
    assert status == 200
    assert "Django administration" in body


async def test_the_fixture_serves_any_app_to_async_clients(hub_live_server):
    server = hub_live_server(hello)
    async with connect(server.url().replace("http", "ws", 1)) as websocket:
        await websocket.send("through a real socket")
        assert await websocket.recv() == "through a real socket"


def test_the_channels_name_is_an_alias():
    assert ChannelsLiveServerTestCase is HubLiveServerTestCase


class TestLiveServerTestCase(HubLiveServerTestCase):
    def test_live_server_urls_reach_the_project(self):
        assert self.live_server_ws_url.startswith("ws://127.0.0.1:")
        status, body = get(self.live_server_url + "/admin/login/")
        assert status == 200
        assert "Django administration" in body
