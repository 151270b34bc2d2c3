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
import asyncio
import dataclasses
import hashlib
import hmac
import inspect
import json
import queue
import re
import smtplib
import sys
import textwrap
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
import pytest
import requests
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, models
from django.test import RequestFactory
from django.urls import resolve
from django.utils.module_loading import import_string
from paho.mqtt.enums import CallbackAPIVersion
from test_thermostat import TestThermostat

import protocols.http_ws
from hub.consumer import AsyncConsumer
from hub.db import database_sync_to_async
from hub.generic.smtp import AsyncSmtpConsumer
from hub.generic.websocket import AsyncWebsocketConsumer
from hub.layers import InMemoryChannelLayer, get_channel_layer
from hub.listeners import listener_from_setting
from hub.status import STATUS
from hub.testing import WebsocketCommunicator
from hub.testing.live import LiveHub
from hub.testing.mqtt import MqttCommunicator
from hub.testing.tcp import TcpCommunicator
from protocols.mqtt.bridge import MqttBridge, MqttBridgeConfig
from tests.docs.conftest import DOCS, EXAMPLES, ROOT
from tests.hub.tcp.test_guide import Device, guide_example
from tests.mosquitto import WAIT as MOSQUITTO_WAIT
from tests.mosquitto import Mosquitto, Subscriber, publish_messages, requires_mosquitto

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
    "smtp.md",
    "mqtt-bridge.md",
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

    @runs("mqtt.md", "challenge")
    @runs("mqtt.md", "challenge-test")
    async def test_the_challenge_consumer_of_the_page_accepts_the_right_hmac(self):
        namespace = await run("mqtt.md", "challenge", {"MqttCommunicator": MqttCommunicator})
        await run("mqtt.md", "challenge-test", namespace)
        await namespace["device"].disconnect()
        forged = MqttCommunicator(
            namespace["Devices"].as_asgi(),
            "boiler-1",
            authentication_method="HMAC-NONCE",
            authentication_data=b"boiler-1",
        )
        assert await forged.connect() == (False, 0x18)
        assert await forged.auth(b"forged") == (False, 0x87)


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


# -- smtp.md -------------------------------------------------------------------


class DocsTicket(models.Model):
    """The page's ``Ticket`` model, for the ``SupportMail`` consumer to look up."""

    class Meta:
        app_label = "hub"


class DocsMail(models.Model):
    """The page's ``Mail`` model: the fields ``astore_message`` fills, and the ticket."""

    mail_from = models.CharField(max_length=254)
    rcpt_tos = models.TextField()
    subject = models.CharField(max_length=998)
    text = models.TextField()
    raw = models.BinaryField()
    ticket = models.ForeignKey(DocsTicket, on_delete=models.CASCADE)

    class Meta:
        app_label = "hub"


class DocsMailAttachment(models.Model):
    """The page's ``MailAttachment`` model."""

    message = models.ForeignKey(DocsMail, on_delete=models.CASCADE)
    file = models.FileField(upload_to="attachments/")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveIntegerField()

    class Meta:
        app_label = "hub"


class OtherMail(AsyncSmtpConsumer):
    """Stands in for the page's ``ListRequests`` and ``SalesMail``: takes every message."""

    async def message(self, envelope: Any, email: Any, **kwargs: Any) -> str:
        return "other"


@pytest.fixture
def mail_tables(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = str(tmp_path)
    with connection.schema_editor() as editor:
        for model in (DocsTicket, DocsMail, DocsMailAttachment):
            editor.create_model(model)
    yield
    with connection.schema_editor() as editor:
        for model in (DocsMailAttachment, DocsMail, DocsTicket):
            editor.delete_model(model)


async def smtp_application(monkeypatch: Any) -> Any:
    """The page's ``application``: its ``SupportMail`` (as ``mail.consumers``) and router."""
    monkeypatch.setitem(sys.modules, "mail", types.ModuleType("mail"))
    models_module = types.ModuleType("mail.models")
    models_module.__dict__.update(
        Mail=DocsMail, MailAttachment=DocsMailAttachment, Ticket=DocsTicket
    )
    monkeypatch.setitem(sys.modules, "mail.models", models_module)
    consumers = await as_module(
        monkeypatch, "mail.consumers", "smtp.md", "consumer", __package__="mail"
    )
    namespace = {
        "SupportMail": consumers.SupportMail,
        "ListRequests": OtherMail,
        "SalesMail": OtherMail,
    }
    return (await run("smtp.md", "routing", namespace))["application"]


def mails() -> list[tuple[int, str, str]]:
    """``(ticket, subject, recipients)`` of every stored mail."""
    return [(m.ticket_id, m.subject, m.rcpt_tos) for m in DocsMail.objects.order_by("pk")]


@pytest.mark.django_db(transaction=True)
class TestSmtpPage:
    @runs("smtp.md", "consumer")
    @runs("smtp.md", "communicator")
    async def test_a_mail_to_a_ticket_is_stored_and_pushed_to_its_watchers(
        self, monkeypatch, mail_tables
    ):
        await DocsTicket.objects.acreate(pk=12)
        layer = get_channel_layer()
        watcher = await layer.new_channel()
        await layer.group_add("ticket-12", watcher)
        try:
            application = await smtp_application(monkeypatch)
            namespace = await run("smtp.md", "communicator", {"application": application})
            event = await layer.receive(watcher)
        finally:
            await layer.group_discard("ticket-12", watcher)
        [mail] = [m async for m in DocsMail.objects.all()]
        assert (namespace["accepted"], namespace["queue_id"]) == (True, f"mail-{mail.pk}")
        assert (mail.ticket_id, mail.subject, bytes(mail.raw)) == (
            12,
            "hi",
            b"Subject: hi\r\n\r\nbody\r\n",
        )
        assert (event["type"], event["subject"], event["text"]) == ("mail.received", "hi", "body\n")

    @runs("smtp.md", "routing")
    async def test_smtplib_reaches_the_routes_and_unknown_tickets_are_refused(
        self, monkeypatch, mail_tables
    ):
        await DocsTicket.objects.acreate(pk=1)
        application = await smtp_application(monkeypatch)
        message = b"Subject: hello\r\n\r\nIt works.\r\n"
        with (
            LiveHub(application, ["smtp"]) as live,
            smtplib.SMTP(*live.address("smtp"), timeout=10) as client,
        ):
            assert client.sendmail("me@example.org", ["support+1@example.com"], message) == {}
            for address, code, text in [
                ("support+2@example.com", 550, b"5.1.1 No such ticket"),
                ("nobody@example.com", 550, b"5.1.1"),
            ]:
                with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                    client.sendmail("me@example.org", [address], message)
                assert refused.value.recipients[address][0] == code
                assert text in refused.value.recipients[address][1]
            assert client.sendmail("me@example.org", ["sales@example.com"], message) == {}
        stored = await database_sync_to_async(mails)()
        assert stored == [(1, "hello", "support+1@example.com")]

    @runs("smtp.md", "webhooks")
    async def test_smtp_mailgun_and_sendgrid_reach_the_same_consumer(self):
        received: list[tuple[str | None, str, tuple[str, ...]]] = []

        class Support(AsyncSmtpConsumer):
            async def message(self, envelope: Any, email: Any, **kwargs: Any) -> str:
                received.append((self.scope.get("webhook"), email.subject, envelope.rcpt_tos))
                return "Q1"

        key, token = "key-docs", "docs-token"
        namespace = {"Support": Support, "MAILGUN_SIGNING_KEY": key, "SENDGRID_TOKEN": token}
        application = (await run("smtp.md", "webhooks", namespace))["application"]
        mime = b"To: support@example.com\r\nSubject: Hello\r\n\r\nbody\r\n"
        to = "support@example.com"
        timestamp, nonce = str(int(time.time())), "docs-nonce"
        signature = hmac.new(key.encode(), (timestamp + nonce).encode(), hashlib.sha256)
        mailgun_fields = {
            "recipient": to,
            "sender": "bounce@example.org",
            "timestamp": timestamp,
            "token": nonce,
            "signature": signature.hexdigest(),
        }
        sendgrid_files = {
            "email": (None, mime, "text/plain"),
            "envelope": (None, json.dumps({"to": [to], "from": "bounce@example.org"})),
        }

        def deliver(live: LiveHub) -> list[int]:
            """The message by SMTP, then by each webhook; their HTTP statuses."""
            with smtplib.SMTP(*live.address("smtp"), timeout=10) as client:
                client.sendmail("bounce@example.org", [to], mime)
            mailgun = requests.post(
                live.url() + "/hooks/mailgun/mime",
                data=mailgun_fields,
                files={"body-mime": (None, mime, "text/plain")},
                timeout=10,
            )
            sendgrid = requests.post(
                f"{live.url()}/hooks/sendgrid/?token={token}", files=sendgrid_files, timeout=10
            )
            refused = requests.post(
                live.url() + "/hooks/sendgrid/", files=sendgrid_files, timeout=10
            )
            return [mailgun.status_code, sendgrid.status_code, refused.status_code]

        with LiveHub(application, ["http", "smtp"]) as live:
            assert await asyncio.to_thread(deliver, live) == [200, 200, 403]
        assert received == [
            (None, "Hello", (to,)),
            ("mailgun", "Hello", (to,)),
            ("sendgrid", "Hello", (to,)),
        ]


# -- mqtt-bridge.md ------------------------------------------------------------


async def run_mixed(page: str, name: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run a snippet that mixes async and sync code, as the page says it runs.

    Top-level statements with an ``await`` run on the event loop; the others
    run in a worker thread, as a Django view does, where ``async_to_sync``
    works.
    """
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    for statement in ast.parse(snippet(page, name)).body:
        module = ast.Module(body=[statement], type_ignores=[])
        code = compile(module, f"docs/{page}:{name}", "exec", flags=flags)
        if any(isinstance(node, ast.Await) for node in ast.walk(statement)):
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                await result
        else:
            await sync_to_async(exec, thread_sensitive=False)(code, namespace)
    return namespace


class QueuedReading:
    """Stands in for the page's ``Reading`` model; each ``acreate`` is put on ``rows``."""

    rows: asyncio.Queue[dict[str, Any]]

    class objects:  # the model manager's name
        @staticmethod
        async def acreate(**fields: Any) -> None:
            await QueuedReading.rows.put(fields)


@requires_mosquitto
class TestMqttBridgePage:
    @pytest.fixture
    async def bridged(self) -> Any:
        """The page's application served by a bridge to a real broker: ``(broker, bridge)``."""
        QueuedReading.rows = asyncio.Queue()
        consumer = await run("mqtt-bridge.md", "consumer", {"Reading": QueuedReading})
        namespace = {"Readings": consumer["Readings"]}
        application = (await run("mqtt-bridge.md", "routing", namespace))["application"]
        broker = Mosquitto().start()
        url = f"{broker.url}/?client_id=hub-docs&subscribe=sensors/%23&qos=1"
        bridge = MqttBridge(application, MqttBridgeConfig(url=url))
        try:
            await bridge.start()
            await asyncio.wait_for(bridge.connected.wait(), MOSQUITTO_WAIT)
            yield broker, bridge
        finally:
            bridge.close()
            await bridge.wait_closed(2)
            broker.close()

    @runs("mqtt-bridge.md", "consumer")
    @runs("mqtt-bridge.md", "routing")
    async def test_a_reading_published_to_the_broker_is_stored(self, bridged):
        broker, _ = bridged
        message = [("sensors/kitchen/temperature", b"21.5", 1)]
        await asyncio.to_thread(publish_messages, broker.port, message)
        row = await asyncio.wait_for(QueuedReading.rows.get(), MOSQUITTO_WAIT)
        assert row == {"device": "kitchen", "value": 21.5}

    @runs("mqtt-bridge.md", "publish")
    async def test_async_and_sync_publishes_reach_the_broker(self, bridged):
        broker, _ = bridged
        device = await asyncio.to_thread(Subscriber, broker.port, "devices/7/commands")
        try:
            await run_mixed("mqtt-bridge.md", "publish", {})
            first = await asyncio.to_thread(device.get)
            second = await asyncio.to_thread(device.get)
        finally:
            device.close()
        assert [(m.topic, m.payload, m.qos) for m in (first, second)] == [
            ("devices/7/commands", b"reboot", 1),
            ("devices/7/commands", b"reboot", 1),
        ]

    @runs("mqtt-bridge.md", "settings")
    async def test_the_settings_build_a_tls_bridge_with_a_shared_subscription(self):
        [item] = (await run("mqtt-bridge.md", "settings"))["HUB_LISTENERS"]
        config = listener_from_setting(item).build_config()
        assert isinstance(config, MqttBridgeConfig)
        assert (config.host, config.port, config.tls) == ("broker.example", 8883, True)
        assert (config.username, config.password) == ("hub", "secret")
        assert (config.subscribe, config.qos, config.share) == (("sensors/#",), 1, "hub")

    @runs("mqtt-bridge.md", "over-websocket")
    async def test_a_websocket_client_and_a_tcp_device_talk_through_the_broker(self, settings):
        settings.HUB_MQTT_ALLOW_ANONYMOUS = True
        application = (await run("mqtt-bridge.md", "over-websocket"))["application"]
        with LiveHub(application, ["http", "mqtt"], shutdown_grace=2.0) as live:
            received: queue.Queue[Any] = queue.Queue()
            subscribed = threading.Event()
            browser = paho.Client(
                CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5, transport="websockets"
            )
            browser.ws_set_options(path="/mqtt")
            browser.on_message = lambda _c, _u, message: received.put(message)
            browser.on_subscribe = lambda *_: subscribed.set()
            browser.on_connect = lambda client, *_: client.subscribe("devices/#", 1)
            browser.connect(*live.address("http"))
            browser.loop_start()
            try:
                assert subscribed.wait(MOSQUITTO_WAIT)
                _, port = live.address("mqtt")
                await asyncio.to_thread(publish_messages, port, [("devices/7/state", b"on", 1)])
                message = received.get(timeout=MOSQUITTO_WAIT)
            finally:
                browser.disconnect()
                browser.loop_stop()
        assert (message.topic, message.payload) == ("devices/7/state", b"on")


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
