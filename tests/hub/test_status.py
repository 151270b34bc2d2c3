"""What a process reports about itself: status registry, operator actions, health, metrics."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured

from hub.db import database_sync_to_async
from hub.layers import get_channel_layer
from hub.metrics import exposition
from hub.status import STATUS, HubStatus
from hub.status_consumer import StatusConsumer
from hub.testing import HttpCommunicator, WebsocketCommunicator
from tests.hub.test_consumer import EchoConsumer


class Reporter(EchoConsumer):
    async def connect(self):
        await self.accept()
        await self.send(text_data=self.channel_name)


async def connected_reporter():
    communicator = WebsocketCommunicator(Reporter.as_asgi(), "/ws/reporter/")
    await communicator.connect()
    return communicator, await communicator.receive_from()


class TestRegistry:
    async def test_a_live_connection_is_listed_and_forgotten_when_it_ends(self):
        communicator, channel_name = await connected_reporter()
        [entry] = [c for c in STATUS.connections.values() if c.channel_name == channel_name]
        assert entry.consumer == "Reporter"
        assert entry.protocol == "websocket"
        assert entry.summary == "websocket /ws/reporter/ from 127.0.0.1:51000"
        await communicator.disconnect()
        assert channel_name not in STATUS.connections

    async def test_messages_and_crashes_are_counted(self, caplog):
        before_in = STATUS.messages_in["websocket"]
        before_out = STATUS.messages_out["websocket"]
        before_crashes = STATUS.errors[("websocket", "crash")]
        communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), "/")
        await communicator.connect()
        await communicator.send_to(text_data="one")
        await communicator.receive_from()
        with caplog.at_level(logging.CRITICAL, logger="hub.consumer"):
            await communicator.send_to(text_data="crash")
            await communicator.receive_close()
        assert STATUS.messages_in["websocket"] - before_in == 3  # connect, one, crash
        assert STATUS.messages_out["websocket"] - before_out == 2  # accept, one
        assert STATUS.errors[("websocket", "crash")] - before_crashes == 1


class TestHandlerTiming:
    async def echo(self, messages):
        communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), "/")
        await communicator.connect()
        for number in range(messages):
            await communicator.send_to(text_data=str(number))
            await communicator.receive_from()
        await communicator.disconnect()

    async def test_one_handler_run_in_eight_is_timed_by_default(self):
        traffic = STATUS.traffic_for("websocket")
        assert traffic.timed_every == 8
        handled, timed = traffic.handled, sum(traffic.counts)
        await self.echo(16)
        # connect, 16 messages, disconnect: 18 runs, two or three of them timed.
        assert traffic.handled - handled == 18
        assert sum(traffic.counts) - timed in (2, 3)
        assert traffic.total > 0

    async def test_every_run_is_timed_when_timed_every_is_one(self, monkeypatch):
        traffic = STATUS.traffic_for("websocket")
        monkeypatch.setattr(traffic, "timed_every", 1)
        timed = sum(traffic.counts)
        await self.echo(5)
        assert sum(traffic.counts) - timed == 7

    def test_the_setting_gives_the_rate_and_is_checked(self, settings):
        settings.HUB_HANDLER_TIMING_EVERY = 1
        assert HubStatus().traffic_for("tcp").timed_every == 1
        settings.HUB_HANDLER_TIMING_EVERY = 0
        with pytest.raises(ImproperlyConfigured, match="HUB_HANDLER_TIMING_EVERY"):
            HubStatus().traffic_for("tcp")


class TestOperatorActions:
    async def test_hub_disconnect_closes_the_connection_politely(self, caplog):
        communicator, channel_name = await connected_reporter()
        with caplog.at_level(logging.INFO, logger="hub.consumer"):
            await get_channel_layer().send(channel_name, {"type": "hub.disconnect"})
            message = await communicator.receive_output()
        assert message == {
            "type": "websocket.close",
            "code": 1000,
            "reason": "closed by an operator",
        }
        assert "disconnected by an operator" in caplog.text

    async def test_hub_message_reaches_the_client(self):
        communicator, channel_name = await connected_reporter()
        await get_channel_layer().send(channel_name, {"type": "hub.message", "text": "hi"})
        assert await communicator.receive_from() == "hi"
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
class TestStatusConsumer:
    async def staff(self):
        return await database_sync_to_async(User.objects.create_user)(
            "operator", password="x", is_staff=True
        )

    async def test_anonymous_users_are_refused(self):
        from hub.auth import AuthMiddlewareStack

        communicator = WebsocketCommunicator(AuthMiddlewareStack(StatusConsumer.as_asgi()), "/")
        connected, _ = await communicator.connect()
        assert not connected

    async def test_staff_get_snapshots_and_can_disconnect_a_client(self):
        from hub.auth import AuthMiddlewareStack

        client, channel_name = await connected_reporter()
        operator = WebsocketCommunicator(
            AuthMiddlewareStack(StatusConsumer.as_asgi()), "/", user=await self.staff()
        )
        assert (await operator.connect())[0]
        snapshot = await operator.receive_json_from()
        assert snapshot["kind"] == "snapshot"
        listed = {c["channel_name"] for c in snapshot["data"]["connections"]}
        assert channel_name in listed
        await operator.send_json_to({"action": "disconnect", "channel": channel_name})
        assert (await client.receive_output())["type"] == "websocket.close"
        await operator.disconnect()


@pytest.mark.django_db(transaction=True)
class TestViews:
    async def test_health_is_ok(self):
        response = await HttpCommunicator(_django(), "GET", "/hub/health/").get_response()
        assert response["status"] == 200

    async def test_ready_is_503_while_draining(self):
        app = _django()
        STATUS.draining = False  # a server stopped by an earlier test leaves it set
        assert (await HttpCommunicator(app, "GET", "/hub/ready/").get_response())["status"] == 200
        STATUS.draining = True
        try:
            response = await HttpCommunicator(app, "GET", "/hub/ready/").get_response()
        finally:
            STATUS.draining = False
        assert response["status"] == 503
        assert b"draining for shutdown" in response["body"]

    async def test_the_status_page_is_for_staff_only(self):
        app = _django()
        response = await HttpCommunicator(app, "GET", "/hub/status/").get_response()
        assert response["status"] == 302
        staff = await database_sync_to_async(User.objects.create_user)(
            "op", password="x", is_staff=True
        )
        response = await HttpCommunicator(app, "GET", "/hub/status/", user=staff).get_response()
        assert response["status"] == 200
        assert b"Hub status" in response["body"]

    async def test_metrics_are_in_prometheus_format(self):
        response = await HttpCommunicator(_django(), "GET", "/hub/metrics/").get_response()
        assert response["status"] == 200
        assert b"# TYPE hub_messages_received_total counter" in response["body"]


def test_the_exposition_has_every_metric():
    text = exposition().decode()
    for name in (
        "hub_connections",
        "hub_connections_total",
        "hub_messages_received_total",
        "hub_messages_sent_total",
        "hub_errors_total",
        "hub_draining",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text


def _django():
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


class TestSyncConsumerOperatorActions:
    @pytest.mark.django_db(transaction=True)
    async def test_a_sync_consumer_is_disconnected_and_messaged_too(self):
        from hub.generic.websocket import WebsocketConsumer

        class SyncReporter(WebsocketConsumer):
            def connect(self):
                self.accept()
                self.send(text_data=self.channel_name)

        communicator = WebsocketCommunicator(SyncReporter.as_asgi(), "/")
        await communicator.connect()
        channel_name = await communicator.receive_from()
        layer = get_channel_layer()
        await layer.send(channel_name, {"type": "hub.message", "text": "hello sync"})
        assert await communicator.receive_from() == "hello sync"
        await layer.send(channel_name, {"type": "hub.disconnect"})
        assert (await communicator.receive_output())["code"] == 1000
        await communicator.wait()


class TestLayerResync:
    async def test_a_resync_rejoins_the_consumers_groups(self):
        class Member(EchoConsumer):
            groups = ["resynced"]

        layer = get_channel_layer()
        communicator = WebsocketCommunicator(Member.as_asgi(), "/")
        await communicator.connect()
        [channel] = await layer.group_members("resynced")
        await layer.flush()
        assert await layer.group_count("resynced") == 0
        await layer.send(channel, {"type": "layer.resync"})
        await layer.send(channel, {"type": "layer.ping", "text": "after resync"})
        assert await communicator.receive_from() == "ping from layer: after resync"
        assert await layer.group_members("resynced") == {channel}
        await communicator.disconnect()
