"""The runner: ``hub run`` in a real process, workers, shutdown, and ``Hub`` in-process."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect

from hub.listeners import listener_from_setting, parse_listener
from hub.server import Hub
from hub.testing.live import LiveHub
from tests.apps import hello
from tests.hubprocess import HubProcess


@pytest.fixture
def hub_process() -> Iterator[type[HubProcess]]:
    started: list[HubProcess] = []

    def start(*args: str, **kwargs) -> HubProcess:
        process = HubProcess(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


class TestHubRun:
    def test_serves_an_asgi_app_on_a_free_port_and_prints_its_url(self, hub_process):
        hub = hub_process("run", "tests.apps:hello", "--http", "127.0.0.1:0")
        [url] = hub.urls
        assert url.startswith("http://127.0.0.1:")
        assert get(url + "/x").startswith(f"pid={hub.process.pid} path=/x")

    def test_lifespan_state_reaches_every_request(self, hub_process):
        hub = hub_process("run", "tests.apps:hello", "--http", "127.0.0.1:0")
        assert f"state={{'started_by': {hub.process.pid}}}" in get(hub.urls[0])

    def test_several_listeners_in_one_process(self, hub_process):
        hub = hub_process(
            "run", "tests.apps:hello", "--http", "127.0.0.1:0", "--http", "127.0.0.1:0"
        )
        assert len(set(hub.urls)) == 2
        for url in hub.urls:
            assert get(url).startswith(f"pid={hub.process.pid}")

    def test_sigterm_finishes_the_request_in_flight_then_exits(self, hub_process):
        hub = hub_process("run", "tests.apps:hello", "--http", "127.0.0.1:0")
        result = {}
        request = threading.Thread(target=lambda: result.update(body=get(hub.urls[0] + "/slow")))
        request.start()
        hub.read_until("slow request started")
        assert hub.stop() == 0
        request.join(10)
        assert result["body"].startswith("pid=")
        assert "Stopped" in "".join(hub.output)

    def test_an_unknown_listener_option_is_an_error_naming_the_valid_ones(self):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "hub",
                "run",
                "tests.apps:hello",
                "--http",
                "127.0.0.1:0?bogus=1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        assert "Unknown option(s) bogus for http listener; valid options:" in result.stderr

    def test_a_required_lifespan_that_fails_is_a_one_line_error(self):
        result = subprocess.run(
            [sys.executable, "-m", "hub", "run", "tests.apps:refuses_to_start", "--lifespan", "on"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        assert "hub: error: lifespan.startup failed: database unreachable" in result.stderr
        assert "Traceback" not in result.stderr

    def test_a_missing_application_is_an_error(self):
        result = subprocess.run(
            [sys.executable, "-m", "hub", "run", "tests.apps:nothing", "--http", "127.0.0.1:0"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        assert "nothing" in result.stderr


class TestWorkers:
    def test_workers_share_the_port_and_a_dead_worker_is_replaced(self, hub_process):
        hub = hub_process("run", "tests.apps:hello", "--http", "127.0.0.1:0", "--workers", "2")
        [url] = hub.urls
        pids = {get(url).split()[0] for _ in range(40)}
        assert len(pids) == 2, "the kernel spreads connections over both workers"
        victim = int(next(iter(pids)).removeprefix("pid="))
        os.kill(victim, signal.SIGKILL)
        restarted = hub.read_until("restarting")
        hub.read_until("Listening", after=restarted)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids_now = {get(url).split()[0] for _ in range(20)}
            if f"pid={victim}" not in pids_now and len(pids_now) == 2:
                break
        assert f"pid={victim}" not in pids_now
        assert len(pids_now) == 2
        assert hub.stop() == 0

    def test_workers_share_a_unix_socket(self, hub_process, tmp_path):
        path = tmp_path / "hub.sock"
        hub = hub_process("run", "tests.apps:hello", "--http", f"unix:{path}", "--workers", "2")
        assert hub.urls == [f"http+unix://{path}"]
        connection = http.client.HTTPConnection("localhost")
        connection.sock = socket.socket(socket.AF_UNIX)
        connection.sock.connect(str(path))
        connection.request("GET", "/over-unix")
        assert b"path=/over-unix" in connection.getresponse().read()
        connection.close()


class TestSettings:
    def test_listeners_come_from_hub_listeners_when_none_are_given(self, hub_process, tmp_path):
        (tmp_path / "livesettings.py").write_text(
            "SECRET_KEY = 'x'\nINSTALLED_APPS = ['hub']\n"
            "HUB_LISTENERS = ['http://127.0.0.1:0?server_header=from-settings']\n"
        )
        hub = hub_process(
            "run",
            "tests.apps:hello",
            "--settings",
            "livesettings",
            env={"PYTHONPATH": f"{tmp_path}:{os.getcwd()}"},
        )
        [url] = hub.urls
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["server"] == "from-settings"

    def test_a_settings_listener_may_be_a_dict(self):
        spec = listener_from_setting({"protocol": "http", "port": 9000, "max_body_size": 10})
        assert spec.build_config().max_body_size == 10
        assert spec.port == 9000


class TestHubInProcess:
    async def test_serves_http_and_websocket_and_reports_its_urls(self):
        hub = Hub(hello, [parse_listener("http", "127.0.0.1:0")])
        await hub.start()
        try:
            [(protocol, url)] = hub.urls()
            assert protocol == "http"
            async with connect(url.replace("http", "ws")) as websocket:
                await websocket.send("ping")
                assert await websocket.recv() == "ping"
        finally:
            await hub.wait_closed()

    def test_live_hub_runs_in_a_thread_for_blocking_clients(self):
        with LiveHub(hello, ["http"]) as live:
            assert get(live.url() + "/thread").split()[1] == "path=/thread"
            host, port = live.address("http")
            assert host == "127.0.0.1"
            assert port > 0

    async def test_a_channels_consumer_runs_unchanged_on_hubs_server(self):
        from channels.generic.websocket import AsyncWebsocketConsumer
        from channels.routing import ProtocolTypeRouter, URLRouter
        from django.urls import path

        class ChannelsEcho(AsyncWebsocketConsumer):
            async def receive(self, text_data=None, bytes_data=None):
                await self.send(text_data=f"channels says {text_data}")

        app = ProtocolTypeRouter({"websocket": URLRouter([path("echo/", ChannelsEcho.as_asgi())])})
        hub = Hub(app, [parse_listener("http", "127.0.0.1:0")], lifespan="off")
        await hub.start()
        try:
            url = hub.urls()[0][1].replace("http", "ws") + "/echo/"
            async with connect(url) as websocket:
                await websocket.send("hi")
                assert await websocket.recv() == "channels says hi"
        finally:
            await hub.wait_closed()


class TestMqttBridge:
    def test_hub_run_bridges_to_a_broker_given_as_a_url(self, hub_process):
        from tests.mosquitto import Mosquitto, Subscriber, mosquitto_available, publish_messages

        if not mosquitto_available():
            pytest.fail("mosquitto is not installed: run the README's test command")
        broker = Mosquitto().start()
        subscriber = None
        try:
            url = f"{broker.url}/?client_id=hub-test&subscribe=in/%23&qos=1"
            hub = hub_process(
                "run",
                "tests.apps:bridge_echo_app",
                "--settings",
                "tests.settings",
                "--mqtt-bridge",
                url,
            )
            assert hub.urls == [f"mqtt://127.0.0.1:{broker.port}"]
            hub.read_until("subscribing to in/#")
            subscriber = Subscriber(broker.port, "out/#")
            publish_messages(broker.port, [("in/sensor-7", b"21.5", 1)])
            message = subscriber.get()
            assert (message.topic, message.payload) == ("out/sensor-7", b"21.5 via hub")
        finally:
            if subscriber is not None:
                subscriber.close()
            broker.close()

    def test_two_worker_processes_split_a_shared_subscription_none_lost_or_doubled(
        self, hub_process
    ):
        from tests.mosquitto import Mosquitto, Subscriber, mosquitto_available, publish_messages

        if not mosquitto_available():
            pytest.fail("mosquitto is not installed: run the README's test command")
        broker = Mosquitto().start()
        subscriber = None
        try:
            url = f"{broker.url}/?client_id=hub-split&subscribe=in/%23&qos=1&share=hub&version=5"
            hub = hub_process(
                "run",
                "tests.apps:bridge_pid_app",
                "--settings",
                "tests.settings",
                "--mqtt-bridge",
                url,
                "--workers",
                "2",
            )
            ready = 0
            for _ in range(2):
                ready = hub.read_until("subscribing to $share/hub/in/#", after=ready)
            subscriber = Subscriber(broker.port, "out/#")
            count = 200
            publish_messages(broker.port, [(f"in/{n}", b"x", 1) for n in range(count)])
            answers = [subscriber.get() for _ in range(count)]
            topics = sorted(int(m.topic.removeprefix("out/")) for m in answers)
            assert topics == list(range(count)), "each message handled exactly once"
            assert len({m.payload for m in answers}) == 2, "both worker processes took a share"
            assert subscriber.messages.empty()
        finally:
            if subscriber is not None:
                subscriber.close()
            broker.close()
