"""BrokerConsumer as a plain MQTT broker, driven by paho-mqtt (3.1.1 and 5.0)."""

from __future__ import annotations

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from .conftest import Client

VERSIONS = [pytest.param(paho.MQTTv311, id="v311"), pytest.param(paho.MQTTv5, id="v5")]


@pytest.fixture
def clients(broker: tuple[str, int]):
    made: list[Client] = []

    def make(client_id: str = "", **kwargs) -> Client:
        client = Client(broker, client_id, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.mark.parametrize("version", VERSIONS)
class TestRouting:
    def test_subscriber_receives_message_on_matching_wildcard(self, clients, version):
        sub, pub = clients("sub", version=version), clients("pub", version=version)
        sub.connect(), pub.connect()
        sub.subscribe("sensors/+/temperature", 1)
        pub.publish("sensors/a1/temperature", b"21.5", 1)
        message = sub.receive()
        assert (message.topic, message.payload, message.qos) == (
            "sensors/a1/temperature",
            b"21.5",
            1,
        )

    def test_qos_is_downgraded_to_the_granted_qos(self, clients, version):
        sub, pub = clients("sub", version=version), clients("pub", version=version)
        sub.connect(), pub.connect()
        sub.subscribe("a/#", 0)
        pub.publish("a/b", b"x", 2)
        assert sub.receive().qos == 0

    def test_hash_does_not_match_dollar_topics(self, clients, version):
        everything, sys, pub = (clients(n, version=version) for n in ("all", "sys", "pub"))
        for client in (everything, sys, pub):
            client.connect()
        everything.subscribe("#", 1)
        sys.subscribe("$SYS/#", 1)
        pub.publish("$SYS/uptime", b"1", 1)
        assert sys.receive().topic == "$SYS/uptime"
        assert everything.nothing_received(pub, "probe")

    def test_overlapping_subscriptions_deliver_one_copy_at_highest_qos(self, clients, version):
        sub, pub = clients("sub", version=version), clients("pub", version=version)
        sub.connect(), pub.connect()
        sub.subscribe([("a/+", 0), ("a/#", 1)])
        pub.publish("a/b", b"x", 1)
        assert sub.receive().qos == 1
        assert sub.nothing_received(pub, "a/probe")


@pytest.mark.parametrize("version", VERSIONS)
class TestRetained:
    def test_new_subscriber_receives_the_retained_message(self, clients, version):
        pub = clients("pub", version=version)
        pub.connect()
        pub.publish("status/door", b"open", 1, retain=True)
        sub = clients("sub", version=version)
        sub.connect()
        sub.subscribe("status/#", 1)
        message = sub.receive()
        assert (message.payload, message.retain) == (b"open", True)

    def test_empty_retained_payload_clears_it(self, clients, version):
        pub = clients("pub", version=version)
        pub.connect()
        pub.publish("status/door", b"open", 1, retain=True)
        pub.publish("status/door", b"", 1, retain=True)
        sub = clients("sub", version=version)
        sub.connect()
        sub.subscribe("status/#", 1)
        assert sub.nothing_received(pub, "status/probe")


@pytest.mark.parametrize("version", VERSIONS)
class TestWill:
    def test_will_is_published_on_abnormal_close(self, clients, version):
        watcher = clients("watcher", version=version)
        watcher.connect()
        watcher.subscribe("wills/#", 1)
        device = clients("device", version=version)
        device.paho.will_set("wills/device", b"gone", 1)
        device.connect()
        device.drop()
        assert watcher.receive().payload == b"gone"

    def test_will_is_not_published_after_disconnect(self, clients, version):
        watcher, pub = clients("watcher", version=version), clients("pub", version=version)
        watcher.connect(), pub.connect()
        watcher.subscribe("wills/#", 1)
        device = clients("device", version=version)
        device.paho.will_set("wills/device", b"gone", 1)
        device.connect()
        device.close()
        assert device.disconnects.get(timeout=10) is not None
        assert watcher.nothing_received(pub, "wills/probe")


class TestSessions:
    def test_persistent_session_receives_qos1_queued_while_offline(self, clients):
        sub = clients("sub", clean=False)
        sub.connect()
        sub.subscribe("orders/#", 1)
        sub.close()
        pub = clients("pub")
        pub.connect()
        pub.publish("orders/1", b"one", 1)
        again = clients("sub", clean=False)
        flags, _ = again.connect()
        assert flags.session_present
        assert again.receive().payload == b"one"

    def test_v5_session_expiry_keeps_subscriptions(self, clients):
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 60
        sub = clients("sub", version=paho.MQTTv5, clean=False, properties=properties)
        sub.connect()
        sub.subscribe("orders/#", 1)
        sub.close()
        pub = clients("pub", version=paho.MQTTv5)
        pub.connect()
        pub.publish("orders/2", b"two", 1)
        again = clients("sub", version=paho.MQTTv5, clean=False, properties=properties)
        flags, _ = again.connect()
        assert flags.session_present
        assert again.receive().payload == b"two"

    def test_clean_session_starts_without_subscriptions(self, clients):
        sub = clients("sub", clean=False)
        sub.connect()
        sub.subscribe("orders/#", 1)
        sub.close()
        again = clients("sub", clean=True)
        flags, _ = again.connect()
        assert not flags.session_present

    def test_new_connection_takes_the_client_id_over(self, clients):
        first = clients("same", version=paho.MQTTv5)
        first.connect()
        second = clients("same", version=paho.MQTTv5)
        second.connect()
        code = first.disconnects.get(timeout=10)
        assert code.value == 0x8E


class TestQos2:
    def test_qos2_message_is_delivered_exactly_once(self, clients):
        sub, pub = clients("sub", version=paho.MQTTv5), clients("pub", version=paho.MQTTv5)
        sub.connect(), pub.connect()
        sub.subscribe("exact/#", 2)
        pub.publish("exact/1", b"once", 2)
        message = sub.receive()
        assert (message.payload, message.qos) == (b"once", 2)
        assert sub.nothing_received(pub, "exact/probe")


class TestV5Options:
    def test_shared_subscription_splits_messages_between_members(self, clients):
        members = [clients(f"worker{i}", version=paho.MQTTv5) for i in range(2)]
        pub = clients("pub", version=paho.MQTTv5)
        for client in (*members, pub):
            client.connect()
        for member in members:
            member.subscribe("$share/workers/jobs/#", 1)
        for index in range(4):
            pub.publish(f"jobs/{index}", b"job", 1)
        received = [[member.receive().topic for _ in range(2)] for member in members]
        assert sorted(received[0] + received[1]) == [f"jobs/{i}" for i in range(4)]

    def test_no_local_subscription_does_not_receive_own_messages(self, clients):
        client, other = clients("me", version=paho.MQTTv5), clients("other", version=paho.MQTTv5)
        client.connect(), other.connect()
        client.subscribe("chat/#", options=SubscribeOptions(qos=1, noLocal=True))
        client.publish("chat/1", b"mine", 1)
        assert client.nothing_received(other, "chat/probe")

    def test_subscription_identifier_and_user_properties_are_delivered(self, clients):
        sub, pub = clients("sub", version=paho.MQTTv5), clients("pub", version=paho.MQTTv5)
        sub.connect(), pub.connect()
        properties = Properties(PacketTypes.SUBSCRIBE)
        properties.SubscriptionIdentifier = 7
        sub.subscribe("req/#", 1, properties=properties)
        publish = Properties(PacketTypes.PUBLISH)
        publish.UserProperty = ("k", "v")
        publish.ResponseTopic = "resp/1"
        publish.CorrelationData = b"c1"
        pub.publish("req/1", b"x", 1, properties=publish)
        message = sub.receive()
        assert message.properties.SubscriptionIdentifier == [7]
        assert message.properties.UserProperty == [("k", "v")]
        assert message.properties.ResponseTopic == "resp/1"
        assert message.properties.CorrelationData == b"c1"
