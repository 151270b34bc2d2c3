"""MqttCommunicator: MQTT consumers and the broker tested without a server."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import pytest
from django.contrib.auth.models import User

from hub.exceptions import ChannelFull
from hub.generic.mqtt import (
    AsyncMqttConsumer,
    BrokerConsumer,
    MqttConsumer,
    Refuse,
    TopicRouter,
    topic,
)
from hub.layers import InMemoryChannelLayer
from hub.routing import ProtocolTypeRouter
from hub.testing.mqtt import Disconnected, MqttCommunicator


class Sensors(AsyncMqttConsumer):
    """Readings in, commands out: routes, ACLs, a refusal, a crash."""

    routes = TopicRouter(
        [
            topic("sensors/<device>/temperature", "temperature"),
            topic("sensors/<device>/crash", "crash"),
        ]
    )

    async def temperature(self, message, device):
        value = float(message.text)
        if value > 1000:
            raise Refuse(0x99, "implausible reading")
        await self.publish(f"commands/{device}/ack", message.payload, qos=1)

    async def crash(self, message, device):
        raise RuntimeError("handler bug")

    async def authorize_publish(self, topic_name):
        return topic_name.startswith(f"sensors/{self.scope['username']}/")

    async def authorize_subscribe(self, topic_filter, qos):
        return topic_filter.startswith(f"commands/{self.scope['username']}/")

    async def subscribe(self, topic_filter, qos, options):
        return min(qos, 1)

    async def subscribed(self, granted):
        for subscription, code in granted:
            if code < 0x80:
                await self.publish(subscription["topic_filter"].rstrip("#") + "hello", "hi")


class Anonymous(MqttConsumer):
    allow_anonymous = True
    received: list[tuple[str, bytes]] = []

    def receive(self, message):
        self.received.append((message.topic, message.payload))


@pytest.fixture
def user(django_user_model):
    return User.objects.create_user("kitchen", password="s3cret")


def sensor(**kwargs):
    kwargs.setdefault("username", "kitchen")
    kwargs.setdefault("password", "s3cret")
    return MqttCommunicator(Sensors.as_asgi(), "sensor-1", **kwargs)


@pytest.mark.django_db(transaction=True)
class TestConnect:
    async def test_a_django_user_with_the_right_password_is_accepted(self, user):
        communicator = sensor()
        assert await communicator.connect() == (True, 0)
        assert not communicator.session_present
        await communicator.disconnect()

    @pytest.mark.parametrize("version", [4, 5])
    async def test_a_wrong_password_is_refused_with_0x86(self, user, version):
        communicator = sensor(password="wrong", protocol_version=version)
        assert await communicator.connect() == (False, 0x86)
        await communicator.wait()

    async def test_an_anonymous_client_is_refused_with_0x87_by_default(self):
        communicator = MqttCommunicator(Sensors.as_asgi(), "anon")
        assert await communicator.connect() == (False, 0x87)
        await communicator.wait()

    async def test_the_scope_is_that_of_the_spec(self):
        communicator = MqttCommunicator(
            Anonymous.as_asgi(),
            "",
            protocol_version=4,
            clean_start=False,
            will={"topic": "dev/gone", "payload": "bye"},
        )
        scope = communicator.scope
        assert scope["type"] == "mqtt"
        assert scope["asgi"]["spec_version"] == "1.2"
        assert scope["client_id_assigned"]
        assert scope["client_id"]
        assert scope["session_expiry_interval"] == 0xFFFFFFFF  # 3.1.1 Clean Session 0
        assert scope["will"] == {
            "topic": "dev/gone",
            "payload": b"bye",
            "qos": 0,
            "retain": False,
            "properties": {},
        }
        assert await communicator.connect() == (True, 0)
        await communicator.disconnect()

    async def test_the_routers_mqtt_entry_reaches_the_consumer(self):
        application = ProtocolTypeRouter({"mqtt": Anonymous.as_asgi()})
        communicator = MqttCommunicator(application, "d")
        assert await communicator.connect() == (True, 0)
        Anonymous.received.clear()
        assert await communicator.publish("any/topic", b"x", qos=1) == 0
        assert Anonymous.received == [("any/topic", b"x")]
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
class TestPublish:
    async def test_a_routed_reading_is_acknowledged_after_the_handler_ran(self, user):
        communicator = sensor()
        await communicator.connect()
        assert await communicator.publish("sensors/kitchen/temperature", "21.5", qos=1) == 0
        command = await communicator.receive_publish()
        assert (command.topic, command.payload, command.qos) == ("commands/kitchen/ack", b"21.5", 1)
        await communicator.disconnect()

    async def test_a_qos0_message_returns_without_acknowledgement(self, user):
        communicator = sensor()
        await communicator.connect()
        assert await communicator.publish("sensors/kitchen/temperature", "20", qos=0) is None
        assert (await communicator.receive_publish()).payload == b"20"
        await communicator.disconnect()

    async def test_publishing_outside_the_acl_is_refused_with_0x87(self, user):
        communicator = sensor()
        await communicator.connect()
        assert await communicator.publish("sensors/garage/temperature", "1", qos=1) == 0x87
        assert await communicator.receive_nothing()
        await communicator.disconnect()

    async def test_a_topic_without_route_is_answered_0x10(self, user, caplog):
        communicator = sensor()
        await communicator.connect()
        with caplog.at_level(logging.WARNING, logger="hub.mqtt"):
            assert await communicator.publish("sensors/kitchen/humidity", "1", qos=2) == 0x10
        assert "No route for MQTT topic 'sensors/kitchen/humidity'" in caplog.text
        await communicator.disconnect()

    async def test_refuse_in_a_handler_becomes_the_puback_reason_code(self, user):
        communicator = sensor()
        await communicator.connect()
        assert await communicator.publish("sensors/kitchen/temperature", "5000", qos=1) == 0x99
        await communicator.disconnect()

    async def test_a_crashing_handler_never_acknowledges_the_message(self, user, caplog):
        communicator = sensor()
        await communicator.connect()
        with (
            caplog.at_level(logging.ERROR, logger="hub.consumer"),
            pytest.raises(Disconnected) as closed,
        ):
            await communicator.publish("sensors/kitchen/crash", "x", qos=1)
        assert closed.value.reason_code == 0x80
        assert "crashed handling 'mqtt.publish': RuntimeError: handler bug" in caplog.text
        await communicator.wait()


@pytest.mark.django_db(transaction=True)
class TestSubscribe:
    async def test_filters_are_granted_or_refused_one_by_one(self, user):
        communicator = sensor()
        await communicator.connect()
        codes = await communicator.subscribe_many([("commands/kitchen/#", 2), ("secrets/#", 1)])
        assert codes == [1, 0x87]
        hello = await communicator.receive_publish()
        assert (hello.topic, hello.text) == ("commands/kitchen/hello", "hi")
        await communicator.disconnect()

    async def test_a_publish_sent_before_the_suback_is_kept_for_receive_publish(self):
        class Eager(AsyncMqttConsumer):
            allow_anonymous = True

            async def subscribe(self, topic_filter, qos, options):
                await self.publish("early/bird", b"first")
                return qos

        communicator = MqttCommunicator(Eager.as_asgi(), "eager")
        await communicator.connect()
        assert await communicator.subscribe("a/b", qos=1) == 1
        assert not await communicator.receive_nothing()
        assert (await communicator.receive_publish()).topic == "early/bird"
        assert await communicator.receive_nothing()
        await communicator.disconnect()

    async def test_unsubscribe_answers_success_for_each_filter(self):
        communicator = MqttCommunicator(Anonymous.as_asgi(), "u")
        await communicator.connect()
        assert await communicator.unsubscribe("a/#", "b/+") == [0, 0]
        await communicator.disconnect()

    async def test_an_invalid_filter_is_a_test_error(self):
        communicator = MqttCommunicator(Anonymous.as_asgi(), "u")
        await communicator.connect()
        with pytest.raises(ValueError, match="not a topic filter"):
            await communicator.subscribe("a/#/b")
        await communicator.disconnect()


def delayed_will(topic_name: str) -> dict[str, object]:
    """A will published 1 s after an abnormal close (v5 Will Delay Interval)."""
    return {"topic": topic_name, "payload": b"gone", "properties": {"will_delay_interval": 1}}


@pytest.fixture
def broker(broker_class: type[BrokerConsumer]):
    application = ProtocolTypeRouter({"mqtt": broker_class.as_asgi()})

    def client(client_id: str, **kwargs) -> MqttCommunicator:
        return MqttCommunicator(application, client_id, **kwargs)

    return client


class TestBrokerConsumer:
    async def test_a_message_reaches_a_wildcard_subscriber_at_the_granted_qos(self, broker):
        subscriber, publisher = broker("sub"), broker("pub")
        await subscriber.connect()
        await publisher.connect()
        assert await subscriber.subscribe("room/+/temp", qos=1) == 1
        assert await publisher.publish("room/3/temp", b"19", qos=2) == 0
        message = await subscriber.receive_publish()
        assert (message.topic, message.payload, message.qos) == ("room/3/temp", b"19", 1)
        assert await subscriber.receive_nothing()
        await publisher.disconnect()
        await subscriber.disconnect()

    async def test_a_new_subscriber_gets_the_retained_message(self, broker):
        publisher = broker("pub")
        await publisher.connect()
        await publisher.publish("status/door", b"open", qos=1, retain=True)
        subscriber = broker("sub")
        await subscriber.connect()
        await subscriber.subscribe("status/#", qos=1)
        message = await subscriber.receive_publish()
        assert (message.topic, message.payload, message.retain) == ("status/door", b"open", True)
        await publisher.disconnect()
        await subscriber.disconnect()

    @pytest.mark.parametrize(
        ("reason_code", "reason", "published"),
        [(0x80, "connection_lost", True), (0x00, "client", False)],
    )
    async def test_the_will_is_published_only_after_an_abnormal_close(
        self, broker, reason_code, reason, published
    ):
        watcher = broker("watcher")
        await watcher.connect()
        await watcher.subscribe("dev/+/status")
        device = broker("dev", will={"topic": "dev/7/status", "payload": b"gone"})
        await device.connect()
        await device.disconnect(reason_code, reason)
        if published:
            assert (await watcher.receive_publish()).payload == b"gone"
        else:
            assert await watcher.receive_nothing()
        await watcher.disconnect()

    async def test_a_delayed_will_is_published_once_its_delay_ran_out(self, broker):
        watcher = broker("watcher")
        await watcher.connect()
        await watcher.subscribe("dev/+/status")
        will = {
            "topic": "dev/8/status",
            "payload": b"gone",
            "properties": {"will_delay_interval": 1},
        }
        device = broker("dev-8", will=will, session_expiry_interval=60)
        await device.connect()
        await device.disconnect(0x80, "connection_lost")
        assert await watcher.receive_nothing(0.3)
        assert (await watcher.receive_publish(timeout=5)).payload == b"gone"
        await watcher.disconnect()

    async def test_a_client_back_within_the_will_delay_cancels_its_will(self, broker):
        watcher = broker("watcher")
        await watcher.connect()
        await watcher.subscribe("dev/+/status")
        will = {
            "topic": "dev/9/status",
            "payload": b"gone",
            "properties": {"will_delay_interval": 1},
        }
        persistent = {"will": will, "session_expiry_interval": 60, "clean_start": False}
        device = broker("dev-9", **persistent)
        await device.connect()
        await device.disconnect(0x80, "connection_lost")
        back = broker("dev-9", **persistent)
        assert await back.connect() == (True, 0)
        assert await watcher.receive_nothing(1.5)  # past the delay: nothing was published
        await back.disconnect()
        await watcher.disconnect()

    async def test_a_resumed_session_gets_the_qos1_messages_queued_while_offline(self, broker):
        persistent = {"clean_start": False, "session_expiry_interval": 60}
        device = broker("dev", **persistent)
        await device.connect()
        await device.subscribe("commands/dev", qos=1)
        await device.disconnect()
        operator = broker("operator")
        await operator.connect()
        await operator.publish("commands/dev", b"reboot", qos=1)
        back = broker("dev", **persistent)
        assert await back.connect() == (True, 0)
        assert back.session_present
        assert (await back.receive_publish()).payload == b"reboot"
        await operator.disconnect()
        await back.disconnect()


class SendManyLayer(InMemoryChannelLayer):
    """The in-memory layer with ``send_many(channels, message)``, returning the full channels."""

    batches: ClassVar[list[int]] = []

    async def send_many(self, channels: list[str], message: dict[str, Any]) -> list[str]:
        type(self).batches.append(len(channels))
        full = []
        for channel in channels:
            try:
                await self.send(channel, message)
            except ChannelFull:
                full.append(channel)
        return full


@pytest.fixture
def send_many_layer(settings):
    """The default layer is a :class:`SendManyLayer` holding ``capacity`` messages per channel."""
    SendManyLayer.batches = []
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": f"{__name__}.SendManyLayer",
            "CONFIG": {"capacity": 2},
        }
    }
    return SendManyLayer


class TestBrokerFanOut:
    async def test_subscribers_of_one_message_are_sent_it_in_one_send_many_call(
        self, broker, send_many_layer
    ):
        subscribers = [broker(f"sub{i}") for i in range(3)]
        for subscriber in subscribers:
            await subscriber.connect()
            await subscriber.subscribe("alerts/#", qos=0)
        publisher = broker("pub")
        await publisher.connect()
        await publisher.publish("alerts/fire", b"hall 2")
        for subscriber in subscribers:
            message = await subscriber.receive_publish()
            assert (message.topic, message.payload) == ("alerts/fire", b"hall 2")
        assert send_many_layer.batches == [3]
        for client in (*subscribers, publisher):
            await client.disconnect()


class TestCommunicatorChecks:
    async def test_a_publish_before_connect_is_reported(self):
        communicator = MqttCommunicator(Anonymous.as_asgi(), "x")
        with pytest.raises(AssertionError, match="connect\\(\\) first"):
            await communicator.receive_publish()
        communicator.stop()

    async def test_an_app_publishing_to_a_wildcard_fails_the_test(self):
        class Wrong(AsyncMqttConsumer):
            allow_anonymous = True

            async def connected(self):
                await self.send({"type": "mqtt.publish", "topic": "a/#", "payload": b""})

        communicator = MqttCommunicator(Wrong.as_asgi(), "w")
        await communicator.connect()
        with pytest.raises(AssertionError, match="must be a topic name"):
            await communicator.receive_publish()
        await communicator.disconnect()
