"""MqttServer limits and v5 duties: publish rate, message expiry, TLS, will delay, closing."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocols.mqtt import (
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Publish,
    ReasonCode,
    Will,
)
from protocols.mqtt.messages import PeerDisconnected

from .test_server import V5, V311, Peer, accepting, connect, start


@pytest.fixture
async def servers():
    made: list[Any] = []

    async def make(app: Any, **options: Any) -> Any:
        server = await start(app, **options)
        made.append(server)
        return server

    yield make
    for server in made:
        await server.wait_closed(1)


def recording(events: list[tuple[float, dict[str, Any]]], done: asyncio.Event, count: int) -> Any:
    """An accepting app that records each event with the loop time it was received."""

    async def on_event(event: dict[str, Any], send: Any) -> None:
        events.append((asyncio.get_running_loop().time(), event))
        if len(events) == count:
            done.set()

    return accepting(on_event)


class TestPublishRate:
    async def test_publishes_over_the_rate_wait_for_the_next_seconds(self, servers):
        events: list[tuple[float, dict[str, Any]]] = []
        done = asyncio.Event()
        server = await servers(recording(events, done, 5), max_publish_rate=2)
        peer = await connect(server)
        assert isinstance(await peer.receive(), Connack)
        burst = b"".join(peer.conn.send(Publish(f"t/{n}", b"x")) for n in range(5))
        peer.writer.write(burst)  # one write: the server reads all five at once
        async with asyncio.timeout(10):
            await done.wait()
        assert [event["topic"] for _, event in events] == [f"t/{n}" for n in range(5)]
        # Two per second: the 3rd and 4th in the next second, the 5th in the one after.
        seconds = [int(at) for at, _ in events]
        assert seconds[4] - seconds[0] >= 2

    async def test_a_throttled_client_is_slowed_not_disconnected(self, servers):
        events: list[tuple[float, dict[str, Any]]] = []
        done = asyncio.Event()
        server = await servers(recording(events, done, 3), max_publish_rate=1)
        peer = await connect(server, V311)
        await peer.receive()
        burst = b"".join(peer.conn.send(Publish("t", b"x")) for _ in range(3))
        peer.writer.write(burst + peer.conn.send(Pingreq()))
        async with asyncio.timeout(10):
            await done.wait()
        assert isinstance(await peer.receive(), Pingresp)


class TestMessageExpiry:
    async def test_a_queued_message_is_sent_with_its_expiry_counted_down_or_dropped(self, servers):
        async def app(scope, receive, send):
            await receive()
            await send({"type": "mqtt.connack"})
            for topic, expiry in (("a", None), ("b", 1), ("c", 10)):
                properties = {} if expiry is None else {"message_expiry_interval": expiry}
                await send(
                    {"type": "mqtt.publish", "topic": topic, "qos": 1, "properties": properties}
                )
            while (await receive())["type"] != "mqtt.disconnect":
                pass

        # Receive Maximum 1: "a" is in flight, "b" and "c" wait in the session's queue.
        peer = await connect(await servers(app), properties=Properties(receive_maximum=1))
        await peer.receive()
        first = await peer.receive()
        assert first.topic == "a"
        await asyncio.sleep(1.1)  # "b" (1 s) expires while queued; "c" has 9 s left
        await peer.send(Puback(first.packet_id))
        second = await peer.receive()
        assert second.topic == "c"
        assert second.properties.message_expiry_interval == 9

    async def test_the_expiry_of_a_client_publish_reaches_the_app(self, servers):
        events: list[tuple[float, dict[str, Any]]] = []
        done = asyncio.Event()
        peer = await connect(await servers(recording(events, done, 1)))
        await peer.receive()
        await peer.send(Publish("t", b"x", properties=Properties(message_expiry_interval=30)))
        async with asyncio.timeout(10):
            await done.wait()
        assert events[0][1]["properties"]["message_expiry_interval"] == 30


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed EC certificate for ``name`` (also valid for 127.0.0.1) and its key."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """The server's certificate and a device's, made with the cryptography package."""
    directory = tmp_path_factory.mktemp("mqtt-tls")
    return {name: _self_signed(directory, name) for name in ("127.0.0.1", "device-7")}


async def tls_peer(server: Any, context: ssl.SSLContext) -> Peer:
    host, port = server.bound_addresses[0]
    return Peer(*await asyncio.open_connection(host, port, ssl=context))


class TestTls:
    async def test_a_client_connects_over_tls_and_the_scope_has_the_tls_extension(
        self, servers, certificates
    ):
        scopes: list[dict[str, Any]] = []

        async def app(scope, receive, send):
            scopes.append(scope)
            await accepting()(scope, receive, send)

        cert, key = certificates["127.0.0.1"]
        server = await servers(app, ssl_certfile=str(cert), ssl_keyfile=str(key))
        peer = await tls_peer(server, ssl.create_default_context(cafile=str(cert)))
        await peer.send(Connect("dev", V5))
        assert (await peer.receive()).reason_code == ReasonCode.SUCCESS
        tls = scopes[0]["extensions"]["tls"]
        assert tls["server_cert"] == cert.read_text()
        assert tls["tls_version"] in (0x0303, 0x0304)
        assert tls["client_cert_chain"] == []

    async def test_a_client_certificate_names_the_device_in_the_scope(self, servers, certificates):
        scopes: list[dict[str, Any]] = []

        async def app(scope, receive, send):
            scopes.append(scope)
            await accepting()(scope, receive, send)

        cert, key = certificates["127.0.0.1"]
        device_cert, device_key = certificates["device-7"]
        server = await servers(
            app,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            ssl_ca_certs=str(device_cert),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )
        context = ssl.create_default_context(cafile=str(cert))
        context.load_cert_chain(device_cert, device_key)
        peer = await tls_peer(server, context)
        await peer.send(Connect("dev", V311))
        assert isinstance(await peer.receive(), Connack)
        tls = scopes[0]["extensions"]["tls"]
        assert tls["client_cert_name"] == "CN=device-7"
        assert len(tls["client_cert_chain"]) == 1

    async def test_a_plain_connection_to_a_tls_listener_never_reaches_the_app(
        self, servers, certificates
    ):
        scopes: list[dict[str, Any]] = []

        async def app(scope, receive, send):
            scopes.append(scope)

        cert, key = certificates["127.0.0.1"]
        server = await servers(app, ssl_certfile=str(cert), ssl_keyfile=str(key))
        peer = await connect(server)  # CONNECT in clear text: not a TLS ClientHello
        assert await peer.closed()
        assert scopes == []


class WillApp:
    """Accepts, then keeps the scope and the final ``mqtt.disconnect``."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.ended: asyncio.Future[dict[str, Any]] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        self.ended = asyncio.get_running_loop().create_future()
        await receive()
        await send({"type": "mqtt.connack"})
        while (event := await receive())["type"] != "mqtt.disconnect":
            pass
        self.ended.set_result(event)

    async def disconnect(self) -> dict[str, Any]:
        assert self.ended is not None
        async with asyncio.timeout(10):
            return await self.ended


WILL = Will("dev/7/status", b"gone", properties=Properties(will_delay_interval=30))


class TestWillDelay:
    async def test_the_will_delay_interval_is_in_the_scope(self, servers):
        app = WillApp()
        peer = await connect(await servers(app), will=WILL)
        await peer.receive()
        assert app.scopes[0]["will"] == {
            "topic": "dev/7/status",
            "payload": b"gone",
            "qos": 0,
            "retain": False,
            "properties": {"will_delay_interval": 30},
        }

    @pytest.mark.parametrize(
        ("reason_code", "due"),
        [
            (ReasonCode.NORMAL_DISCONNECTION, False),
            (ReasonCode.DISCONNECT_WITH_WILL_MESSAGE, True),
        ],
    )
    async def test_a_v5_disconnect_says_whether_the_will_is_due(self, servers, reason_code, due):
        app = WillApp()
        props = Properties(session_expiry_interval=60)
        peer = await connect(await servers(app), will=WILL, properties=props)
        await peer.receive()
        await peer.send(Disconnect(reason_code, Properties(session_expiry_interval=10)))
        event = await app.disconnect()
        assert event["publish_will"] is due
        assert event["reason"] == "client"
        # The will delay is bounded by the session expiry the DISCONNECT set (v5 3.1.3.2.2).
        assert event["session_expiry_interval"] == 10

    async def test_a_lost_connection_makes_the_will_due(self, servers):
        app = WillApp()
        props = Properties(session_expiry_interval=60)
        peer = await connect(await servers(app), will=WILL, properties=props)
        await peer.receive()
        peer.writer.transport.abort()
        event = await app.disconnect()
        assert event["publish_will"] is True
        assert event["reason"] == "connection_lost"
        assert event["session_expiry_interval"] == 60


class TestClosingConnection:
    async def test_a_publish_after_the_app_disconnected_raises_peer_disconnected(self, servers):
        raised: list[BaseException] = []

        async def app(scope, receive, send):
            await receive()
            await send({"type": "mqtt.connack"})
            await send({"type": "mqtt.disconnect", "reason_code": 0x98})
            try:  # the transport is closing; connection_lost() has not run yet
                await send({"type": "mqtt.publish", "topic": "t", "payload": b"late"})
            except PeerDisconnected as exc:
                raised.append(exc)

        peer = await connect(await servers(app))
        await peer.receive()
        disconnect = await peer.receive()
        assert disconnect.reason_code == ReasonCode.ADMINISTRATIVE_ACTION
        assert await peer.receive() is None  # closed, and "late" was never written
        assert len(raised) == 1
