"""AsyncMqttConsumer / MqttConsumer: Django auth, ACL hooks, topic routing; real clients."""

from __future__ import annotations

import queue
import shutil
import subprocess

import paho.mqtt.client as paho
import pytest
from django.contrib.auth.models import User

from hub.generic.mqtt import AsyncMqttConsumer, MqttConsumer, TopicRouter, topic
from hub.mqtt.routing import TopicPattern
from hub.routing import ProtocolTypeRouter

from .conftest import Client, serve

READINGS: queue.Queue[tuple[str, str, float]] = queue.Queue()


class Sensors(AsyncMqttConsumer):
    routes = TopicRouter([topic("sensors/<device>/temperature", "temperature")])

    async def temperature(self, message, device):
        READINGS.put((self.scope["username"], device, float(message.text)))

    async def authorize_publish(self, topic_name):
        return not topic_name.startswith("admin/")

    async def authorize_subscribe(self, topic_filter, qos):
        return topic_filter.startswith("commands/")

    async def subscribed(self, granted):
        for subscription, code in granted:
            if code < 0x80:
                await self.publish(subscription["topic_filter"].rstrip("#") + "hello", "hi", 1)


class SyncSensors(MqttConsumer):
    allow_anonymous = True

    def receive(self, message):
        READINGS.put(("sync", message.topic, float(message.text)))


@pytest.fixture
def live(mqtt_protocol):
    hub = serve(ProtocolTypeRouter({"mqtt": Sensors.as_asgi()}))
    yield hub.address("mqtt")
    hub.stop()


@pytest.mark.django_db(transaction=True)
class TestDjangoAuth:
    def test_django_user_connects_and_readings_reach_the_route(self, live):
        User.objects.create_user("sensor1", password="s3cret")
        client = Client(live, "s1", version=paho.MQTTv5)
        client.paho.username_pw_set("sensor1", "s3cret")
        client.connect()
        client.publish("sensors/kitchen/temperature", b"21.5", 1)
        assert READINGS.get(timeout=10) == ("sensor1", "kitchen", 21.5)
        client.close()

    @pytest.mark.parametrize(("version", "code"), [(paho.MQTTv5, 0x86), (paho.MQTTv311, 0x86)])
    def test_wrong_password_is_refused(self, live, version, code):
        User.objects.create_user("sensor1", password="s3cret")
        client = Client(live, "s1", version=version)
        client.paho.username_pw_set("sensor1", "wrong")
        _, reason = client.connect(expect_success=False)
        assert reason.value == code  # paho maps 3.1.1 return codes 4 and 5 to these
        client.paho.loop_stop()

    @pytest.mark.parametrize(("version", "code"), [(paho.MQTTv5, 0x87), (paho.MQTTv311, 0x87)])
    def test_anonymous_is_refused_by_default(self, live, version, code):
        client = Client(live, "anon", version=version)
        _, reason = client.connect(expect_success=False)
        assert reason.value == code  # paho maps 3.1.1 return codes 4 and 5 to these
        client.paho.loop_stop()

    def test_subscribe_acl_refuses_filters_and_grants_others(self, live):
        User.objects.create_user("sensor1", password="s3cret")
        client = Client(live, "s1", version=paho.MQTTv5)
        codes: queue.Queue[list[int]] = queue.Queue()
        client.paho.on_subscribe = lambda _c, _u, _m, reasons, _p: codes.put(
            [r.value for r in reasons]
        )
        client.paho.username_pw_set("sensor1", "s3cret")
        client.connect()
        client.paho.subscribe([("commands/#", 1), ("secrets/#", 1)])
        assert codes.get(timeout=10) == [1, 0x87]
        message = client.receive()
        assert (message.topic, message.payload) == ("commands/hello", b"hi")
        client.close()


class TestSyncConsumer:
    def test_sync_consumer_receives_messages(self, mqtt_protocol):
        hub = serve(ProtocolTypeRouter({"mqtt": SyncSensors.as_asgi()}))
        try:
            client = Client(hub.address("mqtt"), "s", version=paho.MQTTv311)
            client.connect()
            client.publish("x/y", b"3", 1)
            assert READINGS.get(timeout=10) == ("sync", "x/y", 3.0)
            client.close()
        finally:
            hub.stop()


class TestTopicPatterns:
    def test_pattern_has_the_filter_that_receives_it(self):
        assert (
            TopicPattern.compile("plc/<int:unit>/coil/<path:rest>").topic_filter == "plc/+/coil/#"
        )

    def test_int_converter_captures_an_int(self):
        assert TopicPattern.compile("plc/<int:unit>").match("plc/12") == {"unit": 12}

    def test_non_matching_topic_raises_no_route_found(self):
        from hub.exceptions import NoRouteFound

        with pytest.raises(NoRouteFound, match="sensors/<device>/temperature"):
            Sensors.routes.match("other/topic")  # type: ignore[union-attr]


@pytest.mark.skipif(
    shutil.which("mosquitto_pub") is None, reason="apt-get install mosquitto-clients"
)
class TestMosquittoClients:
    @pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
    def test_mosquitto_sub_receives_retained_message_from_mosquitto_pub(self, broker, version):
        host, port = broker
        common = ["-h", host, "-p", str(port), "-V", version]
        subprocess.run(
            ["mosquitto_pub", *common, "-t", "plant/valve", "-m", "open", "-q", "1", "-r"],
            check=True,
            timeout=10,
        )
        result = subprocess.run(
            ["mosquitto_sub", *common, "-t", "plant/#", "-q", "1", "-C", "1", "-W", "10", "-v"],
            capture_output=True,
            text=True,
            timeout=15,
        )
        assert result.stdout.strip() == "plant/valve open"
