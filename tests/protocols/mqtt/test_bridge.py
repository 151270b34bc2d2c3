"""MqttBridge against a real mosquitto, with plain ASGI apps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from protocols.mqtt.bridge import MqttBridge, MqttBridgeConfig
from tests.mosquitto import Mosquitto, Subscriber, publish_messages, requires_mosquitto

pytestmark = requires_mosquitto

#: Seconds a test waits for an event the bridge should deliver.
WAIT = 10.0

FAST = {"reconnect_min": 0.05, "reconnect_max": 0.2}


class Recorder:
    """An ASGI app that accepts, records every event, and acknowledges as told.

    ``crash_on``: payloads that make the instance raise (once each, then they are
    handled); ``hold``: do not acknowledge at all.
    """

    def __init__(self, crash_on: tuple[bytes, ...] = (), hold: bool = False) -> None:
        self.events: asyncio.Queue[tuple[dict[str, Any], dict[str, Any]]] = asyncio.Queue()
        self.crash_on = set(crash_on)
        self.hold = hold
        self.sends: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.sends.append(send)
        while True:
            event = await receive()
            await self.events.put((scope, event))
            if event["type"] == "mqtt.connect":
                await send({"type": "mqtt.connack"})
            elif event["type"] == "mqtt.publish":
                if event["payload"] in self.crash_on:
                    self.crash_on.discard(event["payload"])
                    raise RuntimeError("handler failed")
                if event["qos"] and not self.hold:
                    await send({"type": "mqtt.puback", "packet_id": event["packet_id"]})
            elif event["type"] == "mqtt.disconnect":
                return

    async def next(self, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The next event of type ``kind`` (others before it are skipped)."""
        async with asyncio.timeout(WAIT):
            while True:
                scope, event = await self.events.get()
                if event["type"] == kind:
                    return scope, event

    async def payloads(self, count: int) -> list[bytes]:
        return [(await self.next("mqtt.publish"))[1]["payload"] for _ in range(count)]


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(persistence=True).start()
    yield mosquitto
    mosquitto.close()


@pytest.fixture
async def bridges() -> AsyncIterator[list[MqttBridge]]:
    started: list[MqttBridge] = []
    yield started
    for bridge in started:
        await bridge.wait_closed(2)


async def start_bridge(
    bridges: list[MqttBridge], app: Any, broker: Mosquitto, query: str = "", **options: Any
) -> MqttBridge:
    config = MqttBridgeConfig(url=f"{broker.url}/?{query}", **{**FAST, **options})
    bridge = MqttBridge(app, config)
    bridges.append(bridge)
    await bridge.start()
    return bridge


async def publish(broker: Mosquitto, *messages: tuple[str, bytes, int]) -> None:
    await asyncio.to_thread(publish_messages, broker.port, list(messages))


class TestConfig:
    def test_url_names_broker_login_and_options(self) -> None:
        config = MqttBridgeConfig(
            url="mqtt://hub:s%40cret@broker.example:1884/?client_id=hub-1"
            "&subscribe=sensors/%23&subscribe=alarms/%2B&qos=2&share=hub&version=3.1.1",
            host="ignored",
        )
        assert (config.host, config.port, config.tls) == ("broker.example", 1884, False)
        assert (config.username, config.password) == ("hub", "s@cret")
        assert config.subscribe == ("sensors/#", "alarms/+")
        assert (config.qos, config.version) == (2, 4)
        assert config.topic_filters == ("$share/hub/sensors/#", "$share/hub/alarms/+")
        assert config.broker_url == "mqtt://hub@broker.example:1884"

    def test_mqtts_url_turns_tls_on_at_port_8883(self) -> None:
        config = MqttBridgeConfig(url="mqtts://broker.example")
        assert (config.tls, config.port) == (True, 8883)
        assert config.create_ssl_context() is not None

    def test_each_worker_gets_its_own_client_id(self) -> None:
        ids = {MqttBridgeConfig(client_id="hub", worker=n).effective_client_id for n in range(3)}
        assert ids == {"hub-0", "hub-1", "hub-2"}

    @pytest.mark.parametrize(
        ("url", "error"),
        [
            ("http://broker", "scheme"),
            ("mqtt://broker/?colour=red", "valid: "),
            ("mqtt://broker/?qos=3", "qos must be"),
            ("mqtt://broker/?version=6", "version"),
            ("mqtt://broker/?share=a/b", "share"),
            ("mqtt://broker/?keep_alive=soon", "keep_alive"),
        ],
    )
    def test_a_bad_url_is_an_error_that_says_why(self, url: str, error: str) -> None:
        with pytest.raises(ValueError, match=error):
            MqttBridgeConfig(url=url)


class TestScope:
    async def test_a_broker_connection_is_one_bridge_scope(self, broker, bridges) -> None:
        app = Recorder()
        await start_bridge(bridges, app, broker, "client_id=scope-1&subscribe=a/%23", name="eu")
        scope, event = await app.next("mqtt.connect")
        assert event == {"type": "mqtt.connect", "password": None}
        assert scope["type"] == "mqtt"
        assert scope["mode"] == "bridge"
        assert scope["listener"] == "eu"
        assert scope["client_id"] == "scope-1"
        assert scope["username"] is None
        assert scope["server"] == ("127.0.0.1", broker.port)
        assert scope["broker"]["subscriptions"] == [{"topic_filter": "a/#", "qos": 1}]
        assert scope["broker"]["session_present"] is False

    async def test_shutdown_is_the_last_event(self, broker, bridges) -> None:
        app = Recorder()
        bridge = await start_bridge(bridges, app, broker, "client_id=scope-2")
        await app.next("mqtt.connect")
        await bridge.wait_closed(2)
        _, event = await app.next("mqtt.disconnect")
        assert (event["reason"], event["reason_code"]) == ("shutdown", 0x8B)

    async def test_an_unanswered_connect_closes_the_connection(self, broker, bridges) -> None:
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def silent(scope: Any, receive: Any, send: Any) -> None:
            while True:
                event = await receive()
                await events.put(event)
                if event["type"] == "mqtt.disconnect":
                    return

        await start_bridge(bridges, silent, broker, "client_id=silent", connect_answer_timeout=0.1)
        async with asyncio.timeout(WAIT):
            assert (await events.get())["type"] == "mqtt.connect"
            disconnect = await events.get()
        assert (disconnect["type"], disconnect["reason"]) == ("mqtt.disconnect", "closed")


class TestDelivery:
    @pytest.mark.parametrize("qos", [0, 1, 2])
    async def test_broker_messages_arrive_as_mqtt_publish(self, broker, bridges, qos) -> None:
        app = Recorder()
        bridge = await start_bridge(
            bridges, app, broker, f"client_id=d-{qos}&subscribe=s/%23&qos=2"
        )
        await app.next("mqtt.connect")
        await asyncio.wait_for(bridge.connected.wait(), WAIT)
        await publish(broker, ("s/1", b"21.5", qos))
        _, event = await app.next("mqtt.publish")
        assert (event["topic"], event["payload"], event["qos"]) == ("s/1", b"21.5", qos)
        assert (event["packet_id"] is None) == (qos == 0)

    @pytest.mark.parametrize("qos", [0, 1, 2])
    async def test_application_publishes_to_the_broker(self, broker, bridges, qos) -> None:
        app = Recorder()
        await start_bridge(bridges, app, broker, f"client_id=p-{qos}")
        await app.next("mqtt.connect")
        subscriber = await asyncio.to_thread(Subscriber, broker.port, "out/#", 2)
        try:
            await app.sends[0](
                {"type": "mqtt.publish", "topic": "out/x", "payload": b"hi", "qos": qos}
            )
            message = await asyncio.to_thread(subscriber.get)
            assert (message.topic, message.payload, message.qos) == ("out/x", b"hi", qos)
        finally:
            subscriber.close()


class TestAcknowledgement:
    @pytest.mark.parametrize("qos", [1, 2])
    async def test_a_crashed_handler_gets_the_message_again_after_reconnecting(
        self, broker, bridges, qos
    ) -> None:
        app = Recorder(crash_on=(b"boom",))
        await start_bridge(bridges, app, broker, f"client_id=crash-{qos}&subscribe=c/%23&qos={qos}")
        await app.next("mqtt.connect")
        await publish(broker, ("c/1", b"boom", qos))
        _, first = await app.next("mqtt.publish")
        assert first["payload"] == b"boom"
        scope, _ = await app.next("mqtt.connect")  # a new connection, a new instance
        assert scope["broker"]["session_present"] is True
        _, again = await app.next("mqtt.publish")
        assert (again["payload"], again["dup"]) == (b"boom", True)

    async def test_unacknowledged_messages_come_back_to_the_next_hub(self, broker, bridges) -> None:
        held = Recorder(hold=True)
        bridge = await start_bridge(bridges, held, broker, "client_id=restart&subscribe=r/%23")
        await held.next("mqtt.connect")
        await publish(broker, ("r/1", b"one", 1), ("r/2", b"two", 1))
        assert await held.payloads(2) == [b"one", b"two"]
        await bridge.wait_closed(2)  # "crash": nothing was acknowledged

        app = Recorder()
        await start_bridge(bridges, app, broker, "client_id=restart&subscribe=r/%23")
        scope, _ = await app.next("mqtt.connect")
        assert scope["broker"]["session_present"] is True
        assert await app.payloads(2) == [b"one", b"two"]

    async def test_messages_published_while_hub_was_down_arrive_when_it_is_back(
        self, broker, bridges
    ) -> None:
        app = Recorder()
        bridge = await start_bridge(bridges, app, broker, "client_id=away&subscribe=w/%23")
        await app.next("mqtt.connect")
        await asyncio.wait_for(bridge.connected.wait(), WAIT)
        await bridge.wait_closed(2)
        await publish(broker, ("w/1", b"while", 1), ("w/2", b"away", 2))

        again = Recorder()
        await start_bridge(bridges, again, broker, "client_id=away&subscribe=w/%23")
        assert sorted(await again.payloads(2)) == [b"away", b"while"]


class TestSharedSubscription:
    async def test_two_workers_split_the_messages_none_lost_or_doubled(
        self, broker, bridges
    ) -> None:
        apps = [Recorder(), Recorder()]
        query = "client_id=shared&subscribe=load/%23&share=hub&qos=1"
        for worker, app in enumerate(apps):
            bridge = await start_bridge(bridges, app, broker, query, worker=worker)
            await app.next("mqtt.connect")
            await asyncio.wait_for(bridge.connected.wait(), WAIT)
        count = 200
        await publish(broker, *[("load/x", str(n).encode(), 1) for n in range(count)])
        received: list[list[bytes]] = [[], []]

        async def drain(index: int) -> None:
            while True:
                _, event = await apps[index].next("mqtt.publish")
                received[index].append(event["payload"])

        tasks = [asyncio.create_task(drain(index)) for index in (0, 1)]
        async with asyncio.timeout(WAIT):
            while sum(map(len, received)) < count:
                await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        everything = received[0] + received[1]
        assert sorted(everything) == sorted(str(n).encode() for n in range(count))
        assert received[0]
        assert received[1]


class TestReconnect:
    async def test_bridge_reconnects_and_resubscribes_after_a_broker_restart(
        self, broker, bridges
    ) -> None:
        app = Recorder()
        bridge = await start_bridge(bridges, app, broker, "client_id=rs&subscribe=k/%23")
        await app.next("mqtt.connect")
        await asyncio.to_thread(broker.restart)
        _, lost = await app.next("mqtt.disconnect")
        assert lost["reason"] in ("connection_lost", "broker")
        await app.next("mqtt.connect")
        await asyncio.wait_for(bridge.connected.wait(), WAIT)
        await publish(broker, ("k/1", b"after", 1))
        assert await app.payloads(1) == [b"after"]

    async def test_a_broker_down_at_start_is_retried_until_it_is_up(self, bridges) -> None:
        broker = Mosquitto()
        app = Recorder()
        bridge = None
        try:
            bridge = await start_bridge(bridges, app, broker, "client_id=late&subscribe=l/%23")
            assert not bridge.connected.is_set()
            await asyncio.to_thread(broker.start)
            await app.next("mqtt.connect")
            await asyncio.wait_for(bridge.connected.wait(), WAIT)
        finally:
            if bridge is not None:
                await bridge.wait_closed(2)
            broker.close()


class TestTls:
    async def test_mqtts_bridge_verifies_the_broker_and_receives(self, bridges, tmp_path) -> None:
        trustme = pytest.importorskip("trustme")
        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1")
        ca, chain, key = tmp_path / "ca.pem", tmp_path / "chain.pem", tmp_path / "key.pem"
        authority.cert_pem.write_to_path(str(ca))
        certificate.private_key_pem.write_to_path(str(key))
        for blob in certificate.cert_chain_pems:
            blob.write_to_path(str(chain), append=True)
        broker = Mosquitto(certfile=chain, keyfile=key)
        broker.start()
        try:
            app = Recorder()
            config = MqttBridgeConfig(
                url=f"mqtts://127.0.0.1:{broker.port}/?client_id=tls&subscribe=t/%23",
                ssl_ca_certs=str(ca),
                **FAST,
            )
            bridge = MqttBridge(app, config)
            bridges.append(bridge)
            await bridge.start()
            await asyncio.wait_for(bridge.connected.wait(), WAIT)
            scope, _ = await app.next("mqtt.connect")
            assert scope["broker"]["url"] == f"mqtts://127.0.0.1:{broker.port}"
            # The test's publisher cannot speak TLS here: the bridge publishes to itself.
            for n in range(3):
                await app.sends[0](
                    {"type": "mqtt.publish", "topic": "t/x", "payload": b"%d" % n, "qos": 1}
                )
            assert await app.payloads(3) == [b"0", b"1", b"2"]
        finally:
            broker.close()
