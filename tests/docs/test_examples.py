"""The user guide's code is run: pages quote docs/examples verbatim, and the examples work.

Every ```python block of a page in ``PAGES`` follows an ``<!-- example: PATH -->``
line and is the whole of ``docs/examples/PATH``; the examples' own tests are
collected here; the guide's commands are run in real processes.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import sys
import urllib.request
from pathlib import Path

import pytest
from chat.test_live import TestChatOverTheNetwork
from chat.tests import TestChatRoom, TestOtherSenders
from test_consumers import TestTicker, TestUserCount
from test_listeners import TestAddresses, TestOptions, TestSettings
from test_routes import TestRoutes
from websockets.asyncio.client import connect

from hub.layers.manager import ChannelLayerManager
from hub.listeners import listener_from_setting
from tests.docs.conftest import DOCS, EXAMPLES

#: The example tests, collected as if they were written here.
EXAMPLE_TESTS = [
    TestAddresses,
    TestChatOverTheNetwork,
    TestChatRoom,
    TestOptions,
    TestOtherSenders,
    TestRoutes,
    TestSettings,
    TestTicker,
    TestUserCount,
]

#: The guide pages whose code this module runs.
PAGES = [
    "index.md",
    "quickstart.md",
    "consumers.md",
    "routing.md",
    "testing.md",
    "running.md",
    "deployment.md",
    "porting-from-channels.md",
    "design.md",
]

MARKER = re.compile(r"<!-- example: (\S+) -->")


def python_blocks(page: str) -> list[tuple[int, str | None, str]]:
    """``(line number, quoted example path or None, code)`` of each ```python block."""
    lines = (DOCS / page).read_text().splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            start = index
            end = lines.index("```", start + 1)
            previous = next((line for line in reversed(lines[:start]) if line.strip()), "")
            marker = MARKER.fullmatch(previous.strip())
            code = "\n".join(lines[start + 1 : end]) + "\n"
            blocks.append((start + 1, marker[1] if marker else None, code))
            index = end
        index += 1
    return blocks


def all_blocks() -> list[tuple[str, int, str | None, str]]:
    return [(page, *block) for page in PAGES for block in python_blocks(page)]


class TestPagesQuoteTheExamples:
    @pytest.mark.parametrize(("page", "line", "path", "code"), all_blocks())
    def test_every_python_block_is_an_example_file_quoted_whole(self, page, line, path, code):
        assert path is not None, f"{page}:{line}: a python block needs <!-- example: PATH -->"
        example = EXAMPLES / path
        assert example.is_file(), f"{page}:{line}: {example} does not exist"
        assert code == example.read_text(), f"{page}:{line} differs from docs/examples/{path}"

    def test_every_page_exists_and_the_guide_quotes_examples(self):
        assert all((DOCS / page).is_file() for page in PAGES)
        assert len(all_blocks()) >= 10

    def test_every_link_between_pages_points_at_a_file(self):
        for page in PAGES:
            for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", (DOCS / page).read_text()):
                assert (DOCS / page).parent.joinpath(target).is_file(), f"{page} -> {target}"


def channels_to_hub_rows() -> list[tuple[str, str]]:
    page = (DOCS / "porting-from-channels.md").read_text()
    return re.findall(r"^\| `(channels[\w.]*)` \| `(hub[\w.]*)` \|", page, re.MULTILINE)


def resolve(dotted: str) -> object:
    try:
        return importlib.import_module(dotted)
    except ImportError:
        module, _, name = dotted.rpartition(".")
        return getattr(importlib.import_module(module), name)


class TestPortingTable:
    def test_the_table_has_rows(self):
        assert len(channels_to_hub_rows()) >= 10

    @pytest.mark.parametrize(("channels_name", "hub_name"), channels_to_hub_rows())
    def test_each_channels_name_has_its_hub_name(self, channels_name, hub_name):
        try:
            resolve(channels_name)
        except ModuleNotFoundError as missing:
            # channels.testing imports Daphne, which hub's tests do not install.
            if missing.name != "daphne":
                raise
        resolve(hub_name)


class TestQuickstartCommands:
    async def chat_round_trip(self, url: str) -> None:
        ws_url = url.replace("http://", "ws://") + "/ws/chat/lobby/"
        async with connect(ws_url, origin="http://localhost") as websocket:
            await websocket.send(json.dumps({"text": "hello"}))
            assert json.loads(await websocket.recv()) == {"user": "anonymous", "text": "hello"}
        page = await asyncio.to_thread(urllib.request.urlopen, url + "/", timeout=10)
        assert page.read() == b"mysite is up\n"

    async def test_hub_run_serves_the_project(self, serve_example):
        served = serve_example(
            "-m", "hub", "run", "--settings", "mysite.settings", "--http", "127.0.0.1:0"
        )
        await self.chat_round_trip(served.urls[0])
        assert served.stop() == 0

    async def test_manage_py_runhub_serves_the_project(self, serve_example):
        served = serve_example("manage.py", "runhub", "--noreload", "--http", "127.0.0.1:0")
        await self.chat_round_trip(served.urls[0])
        assert served.stop() == 0


class TestProductionSettings:
    @pytest.fixture
    def production(self, monkeypatch):
        monkeypatch.setenv("DJANGO_SECRET_KEY", "test")
        sys.modules.pop("mysite.settings_production", None)
        return importlib.import_module("mysite.settings_production")

    def test_every_listener_builds_its_config(self, production):
        for item in production.HUB_LISTENERS:
            config = listener_from_setting(item).build_config()
            assert config.uds == "/run/hub/http.sock"
            assert config.forwarded_allow_ips == ("unix",)

    def test_the_channel_layer_is_built_from_its_settings(self, production, settings):
        settings.CHANNEL_LAYERS = production.CHANNEL_LAYERS
        layer = ChannelLayerManager().make_backend("default")
        assert type(layer).__name__ == "RedisChannelLayer"

    async def test_workers_share_messages_through_redis(self, serve_example, redis_url):
        served = serve_example(
            "-m",
            "hub",
            "run",
            "--settings",
            "mysite.settings_production",
            "--http",
            "127.0.0.1:0",
            "--workers",
            "2",
            env={"DJANGO_SECRET_KEY": "test", "REDIS_URL": redis_url},
        )
        url = served.urls[0]
        ws_url = url.replace("http://", "ws://") + "/ws/chat/ops/"
        clients = [await connect(ws_url, origin="https://chat.example.com") for _ in range(8)]
        try:
            request = urllib.request.Request(
                url + "/api/rooms/ops/messages/", data=b"to every worker", method="POST"
            )
            response = await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
            assert response.status == 202
            for client in clients:
                assert json.loads(await client.recv()) == {
                    "user": "http",
                    "text": "to every worker",
                }
        finally:
            for client in clients:
                await client.close()
        assert served.stop() == 0


def test_the_examples_directory_is_what_the_pages_call_it():
    assert Path(EXAMPLES, "mysite", "asgi.py").is_file()
