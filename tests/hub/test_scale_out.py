"""Scale-out: several hub processes sharing the Redis layer behave as one hub.

Real ``python -m hub run`` processes (``tests/scaleout``), a real
redis-server, real clients: websockets for browsers, paho-mqtt for devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis import Redis
from websockets.sync.client import ClientConnection, connect

from hub.layers.redis import RedisChannelLayer
from hub.listeners import listener_from_setting
from hub.mqtt.redis_state import RedisBrokerState
from tests.docs.conftest import EXAMPLES
from tests.hub.mqtt.conftest import WAIT, Client
from tests.hubprocess import HubProcess
from tests.redis_servers import wait_until

#: WebSocket connections a test opens at most to reach both workers.
MAX_CONNECTIONS_TO_REACH_BOTH_WORKERS = 40

StartHub = Callable[..., HubProcess]


@pytest.fixture(scope="module")
def prefix() -> str:
    """The Redis key prefix of this module's processes."""
    return f"so{os.urandom(4).hex()}"


@pytest.fixture(scope="module")
def start_hub(redis_url: str, prefix: str) -> Iterator[StartHub]:
    """Start ``python -m hub run tests.scaleout.app:APP ...``; every process shares one prefix."""
    env = {"HUB_TEST_REDIS_URL": redis_url, "HUB_TEST_REDIS_PREFIX": prefix}
    started: list[HubProcess] = []

    def start(app: str, *listeners: str) -> HubProcess:
        process = HubProcess(
            "run",
            f"tests.scaleout.app:{app}",
            "--settings",
            "tests.scaleout.settings",
            *listeners,
            env=env,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def url(process: HubProcess, scheme: str) -> str:
    [found] = [u for u in process.urls if u.startswith(f"{scheme}://")]
    return found


def mqtt_address(process: HubProcess) -> tuple[str, int]:
    host, _, port = url(process, "mqtt").removeprefix("mqtt://").rpartition(":")
    return host, int(port)


@contextlib.contextmanager
def dashboard(process: HubProcess) -> Iterator[tuple[ClientConnection, int]]:
    """A WebSocket client of ``process``'s dashboard, and the pid of the process serving it."""
    address = url(process, "http").replace("http://", "ws://") + "/"
    with connect(address, open_timeout=WAIT) as websocket:
        hello = receive_json(websocket)
        assert hello["type"] == "hello"
        yield websocket, hello["pid"]


def receive_json(websocket: ClientConnection) -> Any:
    return json.loads(websocket.recv(timeout=WAIT))


@pytest.fixture
def paho() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(process: HubProcess, client_id: str, **kwargs: Any) -> Client:
        client = Client(mqtt_address(process), client_id, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="module")
def two_hubs(start_hub: StartHub) -> tuple[HubProcess, HubProcess]:
    """Two processes serving the dashboard and the sensors, each on its own ports."""
    listeners = ("--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0")
    return start_hub("application", *listeners), start_hub("application", *listeners)


@pytest.fixture(scope="module")
def two_brokers(start_hub: StartHub) -> tuple[HubProcess, HubProcess]:
    """Two processes serving one MQTT broker whose state is in Redis."""
    return start_hub("broker", "--mqtt", "127.0.0.1:0"), start_hub(
        "broker", "--mqtt", "127.0.0.1:0"
    )


class TestTwoProcesses:
    def test_a_websocket_in_one_process_receives_a_reading_published_over_mqtt_to_another(
        self, two_hubs, paho
    ):
        a, b = two_hubs
        with dashboard(a) as (websocket, pid):
            assert pid == a.process.pid
            sensor = paho(b, "sensor-t1")
            sensor.connect()
            sensor.publish("sensors/t1/temperature", b"21.5", qos=1)
            assert receive_json(websocket) == {
                "type": "reading",
                "source": "mqtt",
                "device": "t1",
                "value": "21.5",
                "pid": b.process.pid,
            }

    def test_a_group_send_reaches_the_members_in_every_process(self, two_hubs, paho):
        a, b = two_hubs
        with dashboard(a) as (first, first_pid), dashboard(b) as (second, second_pid):
            assert {first_pid, second_pid} == {a.process.pid, b.process.pid}
            sensor = paho(a, "sensor-t2")
            sensor.connect()
            sensor.publish("sensors/t2/temperature", b"19", qos=1)
            for websocket in (first, second):
                reading = receive_json(websocket)
                assert (reading["device"], reading["pid"]) == ("t2", a.process.pid)


class TestWorkers:
    def test_two_workers_with_the_redis_layer_behave_as_one_hub(self, start_hub):
        hub = start_hub("application", "--http", "127.0.0.1:0", "--workers", "2")
        clients: list[ClientConnection] = []
        pids: set[int] = set()
        with contextlib.ExitStack() as opened:
            while len(pids) < 2 and len(clients) < MAX_CONNECTIONS_TO_REACH_BOTH_WORKERS:
                websocket, pid = opened.enter_context(dashboard(hub))
                clients.append(websocket)
                pids.add(pid)
            assert len(pids) == 2, "the kernel spreads connections over both workers"
            clients[-1].send(json.dumps({"text": "to everyone"}))
            for websocket in clients:
                reading = receive_json(websocket)
                assert (reading["source"], reading["text"]) == ("websocket", "to everyone")


class TestBrokerAcrossProcesses:
    def test_a_subscriber_on_one_process_receives_what_is_published_to_another(
        self, two_brokers, paho
    ):
        a, b = two_brokers
        subscriber, publisher = paho(a, "sub-1"), paho(b, "pub-1")
        subscriber.connect(), publisher.connect()
        subscriber.subscribe("plant/+/level", 1)
        publisher.publish("plant/tank1/level", b"80", qos=1)
        message = subscriber.receive()
        assert (message.topic, message.payload, message.qos) == ("plant/tank1/level", b"80", 1)

    def test_a_message_retained_through_one_process_is_sent_on_subscribe_through_another(
        self, two_brokers, paho
    ):
        a, b = two_brokers
        publisher = paho(b, "pub-2")
        publisher.connect()
        publisher.publish("status/door", b"open", qos=1, retain=True)
        subscriber = paho(a, "sub-2")
        subscriber.connect()
        subscriber.subscribe("status/#", 1)
        message = subscriber.receive()
        assert (message.topic, message.payload, message.retain) == ("status/door", b"open", True)

    def test_a_persistent_session_resumes_on_another_process_with_its_queued_messages(
        self, two_brokers, paho, redis_url, prefix
    ):
        a, b = two_brokers
        device = paho(a, "device-3", clean=False)
        device.connect()
        device.subscribe("commands/device-3", 1)
        device.close()
        # The broker marks the session offline after the client has gone: wait for it.
        redis = Redis.from_url(redis_url)
        session = RedisBrokerState(prefix=prefix + "mqtt")._client_keys("device-3")[0]
        wait_until(lambda: redis.hget(session, "ch") == b"", "the session going offline")
        redis.close()
        publisher = paho(a, "pub-3")
        publisher.connect()
        publisher.publish("commands/device-3", b"reboot", qos=1)
        resumed = paho(b, "device-3", clean=False)
        flags, _ = resumed.connect()
        assert flags.session_present
        message = resumed.receive()
        assert (message.topic, message.payload) == ("commands/device-3", b"reboot")


class TestDeploymentExamples:
    """The files docs/deployment.md quotes for several machines (docs/examples/)."""

    @pytest.fixture
    def examples(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        monkeypatch.syspath_prepend(str(EXAMPLES))
        monkeypatch.setenv("DJANGO_SECRET_KEY", "test")
        yield
        for name in ("mysite.settings_machines", "mysite.settings_production", "broker"):
            sys.modules.pop(name, None)

    def test_the_machines_settings_build_the_layer_and_every_listener(self, examples, monkeypatch):
        machines = importlib.import_module("mysite.settings_machines")
        for item in machines.HUB_LISTENERS:
            listener_from_setting(item).build_config()
        [trackers] = [i for i in machines.HUB_LISTENERS if i.startswith("tcp://")]
        assert listener_from_setting(trackers).build_config().proxy_protocol == ("10.0.0.2",)
        config = machines.CHANNEL_LAYERS["default"]["CONFIG"]
        layer = RedisChannelLayer(**config)
        assert layer._shards.shard(0).name.startswith("sentinel 'hub'")
        monkeypatch.setenv("REDIS_CLUSTER", "1")
        sys.modules.pop("mysite.settings_machines")
        machines = importlib.import_module("mysite.settings_machines")
        layer = RedisChannelLayer(**machines.CHANNEL_LAYERS["default"]["CONFIG"])
        assert layer._shards.shard(0).cluster

    def test_the_broker_example_keeps_its_state_in_redis(self, examples, redis_url, settings):
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "hub.layers.redis.RedisChannelLayer",
                "CONFIG": {"hosts": [redis_url]},
            }
        }
        broker = importlib.import_module("broker")
        state = broker.Broker.state
        assert isinstance(state, RedisBrokerState)

        async def round_trip() -> None:
            await state.retain("docs/topic", {"topic": "docs/topic", "payload": b"x"})
            [(_, message)] = await state.retained("docs/#")
            assert message["payload"] == b"x"
            await state.flush()
            await state.close()

        asyncio.run(round_trip())
