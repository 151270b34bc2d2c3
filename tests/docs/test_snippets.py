"""Every Python block of the protocol and reference pages runs.

The user guide's pages quote whole files (tests/docs/test_examples.py); these
pages also show fragments: a settings excerpt, three lines of layer API, a
method. Each ```python block of a page in :data:`PAGES` follows a marker:

- ``<!-- example: PATH -->``: the block is ``docs/examples/PATH`` quoted whole,
  and that example's tests are collected here (or, for the few in
  :data:`ELSEWHERE`, in another test module);
- ``<!-- snippet: NAME -->``: a test below, decorated ``@runs(PAGE, NAME)``,
  executes the block (top-level ``await`` allowed) in a namespace that holds
  what the page says is around it, then checks what it did.

Shell blocks are not run: they start servers on fixed ports.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import sys
import textwrap
import types
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from django.urls import resolve
from django.utils.module_loading import import_string
from test_thermostat import TestThermostat

import protocols.http_ws
from hub.consumer import AsyncConsumer
from hub.db import database_sync_to_async
from hub.generic.websocket import AsyncWebsocketConsumer
from hub.layers import InMemoryChannelLayer
from hub.listeners import listener_from_setting
from hub.status import STATUS
from hub.testing import WebsocketCommunicator
from hub.testing.mqtt import MqttCommunicator
from hub.testing.tcp import TcpCommunicator
from tests.docs.conftest import DOCS, EXAMPLES, ROOT
from tests.hub.tcp.test_guide import Device, guide_example

#: The example tests, collected as if they were written here.
EXAMPLE_TESTS = [TestThermostat]

#: The pages whose Python blocks this module runs.
PAGES = [
    "mqtt.md",
    "tcp.md",
    "layers.md",
    "auth.md",
    "http_ws.md",
    "concepts.md",
    "django.md",
    "security.md",
]

#: ``(page, example name)`` run by another test module, which names the example.
ELSEWHERE = {("tcp.md", "gps"): ROOT / "tests" / "hub" / "tcp" / "test_guide.py"}

MARKER = re.compile(r"<!-- (example|snippet): (\S+) -->")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")

#: ``(page, snippet name)`` -> the test that runs it.
RUNNERS: dict[tuple[str, str], str] = {}


@dataclasses.dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    kind: str | None
    name: str | None
    code: str


def page_blocks(page: str) -> list[Block]:
    """The fenced code blocks of ``page``, dedented, with the marker above each."""
    lines = (DOCS / page).read_text().splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening:
            indent, language = opening[1], opening[2]
            end = lines.index(f"{indent}```", index + 1)
            code = textwrap.dedent("\n".join(lines[index + 1 : end])) + "\n"
            previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
            marker = MARKER.fullmatch(previous.strip())
            kind, name = (marker[1], marker[2]) if marker else (None, None)
            blocks.append(Block(page, index + 1, language, kind, name, code))
            index = end
        index += 1
    return blocks


def python_blocks() -> list[Block]:
    return [block for page in PAGES for block in page_blocks(page) if block.language == "python"]


def snippet(page: str, name: str) -> str:
    """The code of the block after ``<!-- snippet: NAME -->`` on ``page``."""
    found = [b.code for b in page_blocks(page) if b.kind == "snippet" and b.name == name]
    assert len(found) == 1, f"{page} has {len(found)} snippets named {name!r}"
    return found[0]


def runs(page: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated test as the one that runs snippet ``name`` of ``page``."""

    def register(test: Callable[..., Any]) -> Callable[..., Any]:
        RUNNERS[(page, name)] = test.__qualname__
        return test

    return register


async def run(page: str, name: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute a snippet in ``namespace`` (top-level ``await`` allowed); return the namespace."""
    namespace = {} if namespace is None else namespace
    namespace.setdefault("__name__", f"docs.{page}.{name}")
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code = compile(snippet(page, name), f"docs/{page}:{name}", "exec", flags=flags)
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result
    return namespace


async def as_module(monkeypatch, dotted: str, page: str, name: str, **names: Any) -> Any:
    """Run a snippet as the module ``dotted`` (``from dotted import ...`` then works)."""
    module = types.ModuleType(dotted)
    module.__dict__.update(names)
    monkeypatch.setitem(sys.modules, dotted, module)
    await run(page, name, module.__dict__)
    return module


# -- mqtt.md -------------------------------------------------------------------


class Reading:
    """Stands in for the page's Django model: ``objects.acreate`` and ``filter().acount()``."""

    rows: list[dict[str, Any]] = []

    class objects:  # the model manager's name
        @staticmethod
        async def acreate(**fields: Any) -> None:
            Reading.rows.append(fields)

        @staticmethod
        def filter(**lookups: Any) -> Any:
            found = [r for r in Reading.rows if all(r[k] == v for k, v in lookups.items())]

            async def acount() -> int:
                return len(found)

            return types.SimpleNamespace(acount=acount)


class TestMqttPage:
    @runs("mqtt.md", "broker")
    @runs("mqtt.md", "broker-test")
    async def test_two_communicators_talk_through_the_broker_of_the_page(self, settings):
        settings.HUB_MQTT_ALLOW_ANONYMOUS = True
        namespace = await run("mqtt.md", "broker", {"MqttCommunicator": MqttCommunicator})
        await run("mqtt.md", "broker-test", namespace)
        await namespace["subscriber"].disconnect()
        await namespace["publisher"].disconnect()

    @runs("mqtt.md", "sensors")
    @runs("mqtt.md", "sensors-test")
    @pytest.mark.django_db(transaction=True)
    async def test_the_page_test_of_the_sensors_consumer_passes(self, monkeypatch):
        Reading.rows = []
        monkeypatch.setitem(sys.modules, "sensors", types.ModuleType("sensors"))
        models = types.ModuleType("sensors.models")
        models.Reading = Reading  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "sensors.models", models)
        await as_module(monkeypatch, "sensors.consumers", "mqtt.md", "sensors")
        namespace = await run("mqtt.md", "sensors-test")
        await namespace["test_a_reading_is_stored_and_commands_reach_the_device"]()
        assert Reading.rows == [{"device": "kitchen", "value": 21.5}]


# -- tcp.md --------------------------------------------------------------------


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Stands in for Django's ASGI handler where a page routes HTTP to it."""


class TestTcpPage:
    @runs("tcp.md", "settings")
    async def test_the_listener_settings_build_their_configs(self):
        namespace = await run("tcp.md", "settings")
        configs = [listener_from_setting(i).build_config() for i in namespace["HUB_LISTENERS"]]
        assert [getattr(c, "name", None) for c in configs[1:]] == ["gps", "plc"]
        assert configs[1].max_frame_size == 512
        assert configs[2].length_bytes == 2

    @runs("tcp.md", "routing")
    async def test_the_router_sends_the_gps_listener_to_the_tracker_consumer(self):
        Device.objects.rows = [Device("tracker-7", "s3cret")]
        consumer = guide_example("gps")["GpsTrackerConsumer"]
        namespace = {"django_asgi_app": echo_app, "GpsTrackerConsumer": consumer}
        application = (await run("tcp.md", "routing", namespace))["application"]
        device = TcpCommunicator(application, listener="gps", framing="line")
        assert await device.connect()
        await device.send_to(b"LOGIN tracker-7 s3cret")
        await device.send_to(b"$POS,tracker-7,1.0,2.0")
        assert await device.receive_from() == b"OK"
        await device.disconnect()

    @runs("tcp.md", "communicator")
    async def test_the_communicator_example_passes(self):
        Device.objects.rows = [Device("tracker-7", "s3cret")]
        consumer = guide_example("gps")["GpsTrackerConsumer"]
        await run("tcp.md", "communicator", {"GpsTrackerConsumer": consumer})


# -- layers.md -----------------------------------------------------------------


class TestLayersPage:
    @runs("layers.md", "at-least-once-settings")
    async def test_the_at_least_once_settings_make_job_channels_durable(self):
        namespace = await run("layers.md", "at-least-once-settings")
        config = namespace["CHANNEL_LAYERS"]["default"]
        layer = import_string(config["BACKEND"])(**config["CONFIG"])
        assert layer.at_least_once("jobs.thumbnail")
        assert not layer.at_least_once("chat")
        assert "at_least_once" in layer.extensions

    @runs("layers.md", "ack")
    async def test_the_worker_acknowledges_what_it_handled(self, redis_url):
        from hub.layers.redis import RedisChannelLayer

        made: list[Any] = []

        async def make_thumbnail(image_id: Any) -> None:
            made.append(image_id)

        namespace = await run(
            "layers.md", "ack", {"AsyncConsumer": AsyncConsumer, "make_thumbnail": make_thumbnail}
        )
        layer = RedisChannelLayer(
            hosts=[redis_url], prefix="docsack", channel_delivery={"jobs.*": "at_least_once"}
        )
        try:
            await layer.send("jobs.thumbnail", {"type": "thumbnail", "image_id": 7})
            message = await layer.receive("jobs.thumbnail")
            consumer = namespace["Thumbnails"].__new__(namespace["Thumbnails"])
            consumer.channel_layer = layer
            await consumer.thumbnail(message)
            assert made == [7]
            assert await layer.ack("jobs.thumbnail", message) is False  # already acknowledged
        finally:
            await layer.flush()
            await layer.close()

    @runs("layers.md", "last-value-settings")
    async def test_the_last_value_settings_name_the_groups(self):
        from hub.layers.redis import RedisChannelLayer

        config = (await run("layers.md", "last-value-settings"))["CONFIG"]
        layer = RedisChannelLayer(**config)
        assert layer.keeps_last_value("prices.eur")
        assert layer.keeps_last_value("status")
        assert not layer.keeps_last_value("chat")

    @runs("layers.md", "last-value")
    async def test_a_new_member_receives_the_last_price(self, redis_url):
        from hub.layers.redis import RedisChannelLayer

        layer = RedisChannelLayer(
            hosts=[redis_url], prefix="docslast", group_last_value=["prices.*"]
        )
        try:
            channel = await layer.new_channel()
            await run("layers.md", "last-value", {"layer": layer, "channel": channel})
            assert await layer.receive(channel) == {"type": "price", "value": 1.08}
        finally:
            await layer.flush()
            await layer.close()

    @runs("layers.md", "settings")
    async def test_the_settings_build_a_redis_layer(self):
        namespace = await run("layers.md", "settings", {"SECRET_KEY": "not secret"})
        config = namespace["CHANNEL_LAYERS"]["default"]
        layer = import_string(config["BACKEND"])(**config["CONFIG"])
        assert (layer.prefix, layer.capacity, layer.group_expiry) == ("asgi", 100, 86400)
        assert layer.get_capacity("http.request") == 200

    @runs("layers.md", "api")
    async def test_the_api_tour_runs_on_the_in_memory_layer(self):
        layer = InMemoryChannelLayer()
        namespace = await run("layers.md", "api", {"get_channel_layer": lambda: layer})
        assert namespace["message"] == {"type": "chat.message", "text": "hi"}

    @runs("layers.md", "hosts")
    async def test_every_host_form_is_accepted_by_the_redis_layer(self):
        from hub.layers.redis import RedisChannelLayer

        statements = ast.parse(snippet("layers.md", "hosts")).body
        assert len(statements) == 5
        for statement in statements:
            assert isinstance(statement, ast.Expr)
            host = ast.literal_eval(statement.value)
            layer = RedisChannelLayer(hosts=[host])
            await layer.close()

    @runs("layers.md", "resync")
    async def test_the_resync_handler_rejoins_the_groups(self):
        source = "class Resyncing(AsyncConsumer):\n" + textwrap.indent(
            snippet("layers.md", "resync"), "    "
        )
        namespace: dict[str, Any] = {"AsyncConsumer": AsyncConsumer}
        exec(compile(source, "docs/layers.md:resync", "exec"), namespace)
        consumer = namespace["Resyncing"].__new__(namespace["Resyncing"])
        consumer.channel_layer = InMemoryChannelLayer()
        consumer.channel_name = await consumer.channel_layer.new_channel()
        consumer.groups = ["room", "alerts"]
        await consumer.layer_resync({"type": "layer.resync"})
        for group in consumer.groups:
            assert await consumer.channel_layer.group_members(group) == {consumer.channel_name}


# -- auth.md -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
class TestAuthPage:
    @runs("auth.md", "asgi")
    async def test_the_stack_refuses_other_sites_and_serves_allowed_hosts(self):
        application = (await run("auth.md", "asgi"))["application"]
        evil = WebsocketCommunicator(
            application, "/ws/chat/lobby/", headers=[(b"origin", b"https://evil.example")]
        )
        assert not (await evil.connect())[0]
        ours = WebsocketCommunicator(
            application, "/ws/chat/lobby/", headers=[(b"origin", b"http://testserver")]
        )
        assert (await ours.connect())[0]
        await ours.disconnect()

    @runs("auth.md", "chat-consumer")
    @runs("auth.md", "chat-test")
    async def test_the_page_test_of_the_greeting_consumer_passes(self, monkeypatch):
        await as_module(monkeypatch, "chat.consumers", "auth.md", "chat-consumer")
        namespace = await run("auth.md", "chat-test")
        await namespace["test_a_logged_in_user_is_greeted_by_name"]()

    @runs("auth.md", "account-consumer")
    async def test_the_account_consumer_logs_in_and_out(self):
        from hub.auth import AuthMiddlewareStack

        await database_sync_to_async(User.objects.create_user)("alice", password="pw")
        consumer = (await run("auth.md", "account-consumer"))["AccountConsumer"]
        client = WebsocketCommunicator(AuthMiddlewareStack(consumer.as_asgi()), "/")
        assert (await client.connect())[0]
        await client.send_json_to({"action": "login", "username": "alice", "password": "no"})
        assert await client.receive_json_from() == {"error": "bad username or password"}
        await client.send_json_to({"action": "login", "username": "alice", "password": "pw"})
        assert await client.receive_json_from() == {"user": "alice"}
        await client.send_json_to({"action": "logout"})
        assert await client.receive_json_from() == {"user": ""}
        await client.disconnect()

    @runs("auth.md", "session")
    async def test_the_session_is_read_written_and_saved(self):
        session = SessionStore()
        consumer = types.SimpleNamespace(scope={"session": session})
        namespace = await run("auth.md", "session", {"self": consumer})
        assert namespace["colour"] is None
        saved = SessionStore(session_key=session.session_key)
        assert await saved.aget("colour") == "blue"

    @runs("auth.md", "cookies")
    async def test_the_cookies_are_set_on_the_response_start(self):
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await run("auth.md", "cookies", {"self": types.SimpleNamespace(send=send)})
        cookies = [value for name, value in sent[0]["headers"] if name.lower() == b"set-cookie"]
        assert any(c.startswith(b"theme=dark") and b"HttpOnly" in c for c in cookies)
        assert any(c.startswith(b"old_cookie=") and b"Max-Age=0" in c for c in cookies)


# -- http_ws.md ----------------------------------------------------------------


class TestHttpWsPage:
    @runs("http_ws.md", "server")
    async def test_the_server_starts_on_a_free_port_and_runs_the_lifespan(self, monkeypatch):
        events: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            assert scope["type"] == "lifespan"
            while True:
                message = await receive()
                events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return

        bound: list[Any] = []

        class RecordingServer(protocols.http_ws.HttpWsServer):
            async def start(self) -> None:
                await super().start()
                bound.extend(self.bound_addresses)

        monkeypatch.setattr(protocols.http_ws, "HttpWsServer", RecordingServer)
        await run("http_ws.md", "server", {"app": app})
        [(host, port)] = bound
        assert host == "127.0.0.1"
        assert port > 0
        assert events == ["lifespan.startup", "lifespan.shutdown"]


# -- django.md -----------------------------------------------------------------


class Announcer(AsyncWebsocketConsumer):
    """A connection for the operator snippet to talk to; says its channel name."""

    channel_names: list[str] = []

    async def connect(self) -> None:
        await self.accept()
        Announcer.channel_names.append(self.channel_name)


class TestDjangoPage:
    @runs("django.md", "settings")
    async def test_the_settings_excerpt_is_valid(self):
        namespace = await run("django.md", "settings")
        assert "hub" in namespace["INSTALLED_APPS"]
        for item in namespace["HUB_LISTENERS"]:
            assert listener_from_setting(item).build_config().host == "127.0.0.1"
        config = namespace["CHANNEL_LAYERS"]["default"]
        assert isinstance(import_string(config["BACKEND"])(), InMemoryChannelLayer)

    @runs("django.md", "orm")
    @pytest.mark.django_db(transaction=True)
    async def test_the_orm_consumer_reads_a_user_and_its_groups(self):
        def create() -> None:
            user = User.objects.create_user("ada", email="ada@example.com")
            user.groups.add(Group.objects.create(name="ops"), Group.objects.create(name="dev"))

        await database_sync_to_async(create)()
        consumer = (await run("django.md", "orm"))["ProfileConsumer"]
        client = WebsocketCommunicator(consumer.as_asgi(), "/")
        assert (await client.connect())[0]
        await client.send_json_to({"username": "ada"})
        expected = {"email": "ada@example.com", "groups": ["dev", "ops"]}
        assert await client.receive_json_from() == expected
        await client.disconnect()

    @runs("django.md", "urls")
    async def test_the_health_ready_and_metrics_urls_answer(self, monkeypatch):
        # A process that served earlier tests may have drained; this one serves.
        monkeypatch.setattr(STATUS, "draining", False)
        urls = await as_module(monkeypatch, "docs_django_urls", "django.md", "urls")
        request = RequestFactory().get("/")
        health = resolve("/hub/health/", urlconf=urls)
        assert health.func(request).status_code == 200
        ready = await resolve("/hub/ready/", urlconf=urls).func(request)
        assert ready.status_code == 200
        metrics = resolve("/hub/metrics/", urlconf=urls).func(request)
        assert b"hub_connections" in metrics.content
        assert resolve("/admin/", urlconf=urls).url_name == "index"

    @runs("django.md", "status-route")
    @pytest.mark.django_db(transaction=True)
    async def test_the_status_feed_is_for_staff_only(self):
        application = (await run("django.md", "status-route"))["application"]
        staff = await database_sync_to_async(User.objects.create_user)("op", is_staff=True)
        visitor = await database_sync_to_async(User.objects.create_user)("visitor")
        origin = [(b"origin", b"http://testserver")]
        feed = WebsocketCommunicator(application, "/hub/ws/status/", headers=origin, user=staff)
        assert (await feed.connect())[0]
        assert (await feed.receive_json_from())["kind"] == "snapshot"
        await feed.disconnect()
        other = WebsocketCommunicator(application, "/hub/ws/status/", headers=origin, user=visitor)
        assert not (await other.connect())[0]

    @runs("django.md", "operator")
    async def test_an_operator_message_and_disconnect_reach_the_client(self):
        Announcer.channel_names = []
        client = WebsocketCommunicator(Announcer.as_asgi(), "/")
        assert (await client.connect())[0]
        await run("django.md", "operator", {"channel_name": Announcer.channel_names[0]})
        assert await client.receive_from() == "maintenance at 18:00"
        closed = await client.receive_output()
        assert closed == {
            "type": "websocket.close",
            "code": 1000,
            "reason": "closed by an operator",
        }


def test_the_screenshots_the_pages_show_exist():
    for image in re.findall(
        r"\]\((images/[^)]+)\)",
        "".join(
            p.read_text()
            for p in [
                DOCS / "index.md",
                DOCS / "django.md",
            ]
        ),
    ):
        assert (DOCS / image).is_file(), image


# -- every block --------------------------------------------------------------


class TestEveryPythonBlockRuns:
    def test_the_pages_have_python_blocks(self):
        assert len(python_blocks()) >= 20

    @pytest.mark.parametrize(
        "block", python_blocks(), ids=lambda b: f"{b.page}:{b.line}:{b.name or '?'}"
    )
    def test_every_python_block_is_an_example_or_a_snippet_a_test_runs(self, block):
        where = f"{block.page}:{block.line}"
        assert block.kind, f"{where}: a python block needs <!-- example: PATH --> or snippet"
        if block.kind == "snippet":
            assert (block.page, block.name) in RUNNERS, f"{where}: no @runs for {block.name!r}"
        elif (block.page, block.name) in ELSEWHERE:
            assert f'"{block.name}"' in ELSEWHERE[block.page, block.name].read_text()
        else:
            example = EXAMPLES / block.name
            assert example.is_file(), f"{where}: {example} does not exist"
            assert block.code == example.read_text(), f"{where} differs from {example}"

    @pytest.mark.parametrize(("page", "name"), sorted(RUNNERS))
    def test_every_runner_runs_a_snippet_that_is_on_its_page(self, page, name):
        snippet(page, name)
