"""Enhanced authentication (MQTT 5.0 4.12) through MqttServer: paho-mqtt and raw sockets.

paho-mqtt 2.x sends a CONNECT with an Authentication Method but does not
answer AUTH packets, so it drives the one-step cases; the exchanges run on
raw sockets with hub's codec as the client.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from protocols.mqtt import (
    Auth,
    Connack,
    Disconnect,
    Pingreq,
    Pingresp,
    ProtocolVersion,
    ReasonCode,
)
from protocols.mqtt.properties import Properties

from .test_server import connect, start

V5 = ProtocolVersion.V5
CONTINUE, REAUTH = ReasonCode.CONTINUE_AUTHENTICATION, ReasonCode.RE_AUTHENTICATE


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


def auth(code: ReasonCode, data: bytes | None = None, method: str = "CHALLENGE") -> Auth:
    return Auth(code, Properties(authentication_method=method, authentication_data=data))


def with_method(method: str = "CHALLENGE", data: bytes | None = None) -> Properties:
    return Properties(authentication_method=method, authentication_data=data)


def challenge_app(events: list[dict[str, Any]], secret: bytes = b"s3cret") -> Any:
    """One challenge: the client must answer ``secret + nonce``; re-authentication likewise."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        event = await receive()
        events.append(event)
        await send({"type": "mqtt.auth", "authentication_data": b"nonce-1"})
        answer = await receive()
        events.append(answer)
        if answer.get("authentication_data") != secret + b"nonce-1":
            await send({"type": "mqtt.connack", "reason_code": 0x87})
            return
        await send(
            {
                "type": "mqtt.connack",
                "authentication_method": event["authentication_method"],
                "authentication_data": b"welcome",
            }
        )
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "mqtt.disconnect":
                return
            if event["type"] == "mqtt.auth" and event["reason_code"] == 0x19:
                await send({"type": "mqtt.auth", "reason_code": 0x18, "authentication_data": b"n2"})
            elif event["type"] == "mqtt.auth":
                if event["authentication_data"] == secret + b"n2":
                    await send({"type": "mqtt.auth", "reason_code": 0})
                else:
                    await send({"type": "mqtt.disconnect", "reason_code": 0x87})

    return app


def plain_app(events: list[dict[str, Any]] | None = None) -> Any:
    """An application that knows no Authentication Method: it accepts as before spec 1.2."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        event = await receive()
        if events is not None:
            events.append(event)
        await send({"type": "mqtt.connack"})
        while (await receive())["type"] != "mqtt.disconnect":
            pass

    return app


def paho_connect(port: int, method: str, data: bytes | None = None) -> tuple[int, Any]:
    """Connect paho-mqtt (v5) with an Authentication Method; its CONNACK code and properties."""
    done = threading.Event()
    result: list[Any] = []

    def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, props: Any) -> None:
        result.extend([reason_code.value, props])
        done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, "dev", protocol=paho.MQTTv5)
    client.on_connect = on_connect
    properties = PahoProperties(PacketTypes.CONNECT)
    properties.AuthenticationMethod = method
    if data is not None:
        properties.AuthenticationData = data
    client.connect("127.0.0.1", port, properties=properties)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0], result[1]


class TestAnAuthenticationMethodTheAppIgnores:
    async def test_is_refused_with_0x8c_bad_authentication_method(self, servers, caplog):
        with caplog.at_level(logging.INFO, "protocols.mqtt"):
            peer = await connect(await servers(plain_app()), properties=with_method("KERBEROS"))
            connack = await peer.receive()
        assert isinstance(connack, Connack)
        assert connack.reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD
        assert connack.properties.authentication_method is None
        assert await peer.closed()
        assert "Authentication Method 'KERBEROS' not taken up by the application" in caplog.text

    async def test_the_connect_event_carries_the_method_and_data(self, servers):
        events: list[dict[str, Any]] = []
        peer = await connect(await servers(plain_app(events)), properties=with_method("M", b"\x01"))
        await peer.receive()
        assert events[0]["authentication_method"] == "M"
        assert events[0]["authentication_data"] == b"\x01"

    async def test_a_connect_without_a_method_has_no_method_key_and_is_accepted(self, servers):
        events: list[dict[str, Any]] = []
        peer = await connect(await servers(plain_app(events)))
        assert (await peer.receive()).reason_code == ReasonCode.SUCCESS
        assert "authentication_method" not in events[0]

    async def test_a_paho_client_with_an_unknown_method_is_refused_with_0x8c(self, servers):
        server = await servers(plain_app())
        port = server.bound_addresses[0][1]
        code, _ = await asyncio.to_thread(paho_connect, port, "SCRAM-SHA-256", b"n,,n=user")
        assert code == 0x8C


class TestOneStepAuthentication:
    async def test_a_paho_client_is_accepted_with_the_method_in_connack(self, servers):
        async def app(scope, receive, send):
            event = await receive()
            if event["authentication_data"] != b"token-7":
                await send({"type": "mqtt.connack", "reason_code": 0x87})
                return
            await send({"type": "mqtt.connack", "authentication_method": "TOKEN"})
            while (await receive())["type"] != "mqtt.disconnect":
                pass

        port = (await servers(app)).bound_addresses[0][1]
        code, properties = await asyncio.to_thread(paho_connect, port, "TOKEN", b"token-7")
        assert code == 0
        assert properties.AuthenticationMethod == "TOKEN"
        code, _ = await asyncio.to_thread(paho_connect, port, "TOKEN", b"forged")
        assert code == 0x87

    async def test_naming_another_method_in_connack_is_an_app_error(self, servers, caplog):
        async def app(scope, receive, send):
            await receive()
            await send({"type": "mqtt.connack", "authentication_method": "OTHER"})

        with caplog.at_level(logging.ERROR, "protocols.mqtt"):
            peer = await connect(await servers(app), properties=with_method("TOKEN"))
            assert (await peer.receive()).reason_code == ReasonCode.UNSPECIFIED_ERROR
        assert "'authentication_method' is 'OTHER', the CONNECT's was 'TOKEN'" in caplog.text


class TestChallengeResponse:
    async def test_the_exchange_ends_in_connack_with_the_method_and_final_data(self, servers):
        events: list[dict[str, Any]] = []
        peer = await connect(await servers(challenge_app(events)), properties=with_method())
        challenge = await peer.receive()
        assert isinstance(challenge, Auth)
        assert challenge.reason_code == CONTINUE
        assert challenge.properties.authentication_method == "CHALLENGE"
        assert challenge.properties.authentication_data == b"nonce-1"
        await peer.send(auth(CONTINUE, b"s3cretnonce-1"))
        connack = await peer.receive()
        assert isinstance(connack, Connack)
        assert connack.reason_code == ReasonCode.SUCCESS
        assert connack.properties.authentication_method == "CHALLENGE"
        assert connack.properties.authentication_data == b"welcome"
        assert events[1] == {
            "type": "mqtt.auth",
            "reason_code": 0x18,
            "authentication_method": "CHALLENGE",
            "authentication_data": b"s3cretnonce-1",
        }

    async def test_a_wrong_answer_is_refused_by_the_app(self, servers):
        peer = await connect(await servers(challenge_app([])), properties=with_method())
        await peer.receive()
        await peer.send(auth(CONTINUE, b"guess"))
        assert (await peer.receive()).reason_code == ReasonCode.NOT_AUTHORIZED
        assert await peer.closed()

    async def test_an_auth_with_another_method_is_a_protocol_error(self, servers):
        peer = await connect(await servers(challenge_app([])), properties=with_method())
        await peer.receive()
        await peer.send(auth(CONTINUE, b"s3cretnonce-1", method="PLAIN"))
        assert (await peer.receive()).reason_code == ReasonCode.PROTOCOL_ERROR
        assert await peer.closed()

    async def test_an_auth_before_the_servers_challenge_is_a_protocol_error(self, servers):
        async def app(scope, receive, send):
            await receive()
            await asyncio.Event().wait()

        peer = await connect(await servers(app), properties=with_method())
        await peer.send(auth(CONTINUE, b"early"))
        assert (await peer.receive()).reason_code == ReasonCode.PROTOCOL_ERROR

    async def test_a_client_that_does_not_answer_the_challenge_is_refused_0x87(
        self, servers, caplog
    ):
        with caplog.at_level(logging.INFO, "protocols.mqtt"):
            server = await servers(challenge_app([]), connect_timeout=0.2)
            peer = await connect(server, properties=with_method())
            assert isinstance(await peer.receive(), Auth)
            assert (await peer.receive()).reason_code == ReasonCode.NOT_AUTHORIZED
        assert "no AUTH from the client within 0.2 s (connect_timeout)" in caplog.text

    async def test_an_app_that_does_not_answer_a_step_is_refused_0x88(self, servers):
        async def app(scope, receive, send):
            await receive()
            await send({"type": "mqtt.auth", "authentication_data": b"n"})
            await receive()
            await asyncio.Event().wait()

        server = await servers(app, connect_answer_timeout=0.2)
        peer = await connect(server, properties=with_method())
        await peer.receive()
        await peer.send(auth(CONTINUE, b"answer"))
        assert (await peer.receive()).reason_code == ReasonCode.SERVER_UNAVAILABLE

    async def test_mqtt_auth_on_a_connection_without_a_method_raises(self, servers):
        raised: list[BaseException] = []

        async def app(scope, receive, send):
            await receive()
            try:
                await send({"type": "mqtt.auth"})
            except RuntimeError as exc:
                raised.append(exc)
            await send({"type": "mqtt.connack", "reason_code": 0x87})

        peer = await connect(await servers(app))
        assert (await peer.receive()).reason_code == ReasonCode.NOT_AUTHORIZED
        assert "but got 'mqtt.auth'" in str(raised[0])


async def authenticated(servers: Any, events: list[dict[str, Any]]) -> Any:
    peer = await connect(await servers(challenge_app(events)), properties=with_method())
    await peer.receive()
    await peer.send(auth(CONTINUE, b"s3cretnonce-1"))
    assert (await peer.receive()).reason_code == ReasonCode.SUCCESS
    return peer


class TestReauthentication:
    async def test_a_successful_reauthentication_ends_with_auth_success(self, servers):
        events: list[dict[str, Any]] = []
        peer = await authenticated(servers, events)
        await peer.send(auth(REAUTH, b"again"))
        challenge = await peer.receive()
        assert (challenge.reason_code, challenge.properties.authentication_data) == (
            CONTINUE,
            b"n2",
        )
        await peer.send(Pingreq())  # other packets flow during the exchange (v5 4.12.1)
        assert isinstance(await peer.receive(), Pingresp)
        await peer.send(auth(CONTINUE, b"s3cretn2"))
        success = await peer.receive()
        assert isinstance(success, Auth)
        assert success.reason_code == ReasonCode.SUCCESS
        assert success.properties.authentication_method == "CHALLENGE"
        assert events[2]["reason_code"] == 0x19
        assert events[2]["authentication_data"] == b"again"

    async def test_a_failed_reauthentication_disconnects(self, servers):
        peer = await authenticated(servers, [])
        await peer.send(auth(REAUTH))
        await peer.receive()
        await peer.send(auth(CONTINUE, b"wrong"))
        disconnect = await peer.receive()
        assert isinstance(disconnect, Disconnect)
        assert disconnect.reason_code == ReasonCode.NOT_AUTHORIZED
        assert await peer.closed()

    async def test_reauthenticating_with_another_method_is_a_protocol_error(self, servers):
        peer = await authenticated(servers, [])
        await peer.send(auth(REAUTH, method="PLAIN"))
        disconnect = await peer.receive()
        assert disconnect.reason_code == ReasonCode.PROTOCOL_ERROR

    async def test_auth_from_a_client_whose_connect_had_no_method_is_a_protocol_error(
        self, servers
    ):
        peer = await connect(await servers(plain_app()))
        assert (await peer.receive()).reason_code == ReasonCode.SUCCESS
        await peer.send(auth(REAUTH))
        assert (await peer.receive()).reason_code == ReasonCode.PROTOCOL_ERROR
        assert await peer.closed()

    async def test_an_app_that_does_not_answer_a_reauthentication_disconnects_0x80(self, servers):
        async def app(scope, receive, send):
            await receive()
            await send({"type": "mqtt.connack", "authentication_method": "CHALLENGE"})
            await asyncio.Event().wait()

        peer = await connect(await servers(app, answer_timeout=0.2), properties=with_method())
        assert (await peer.receive()).reason_code == ReasonCode.SUCCESS
        await peer.send(auth(REAUTH))
        assert (await peer.receive()).reason_code == ReasonCode.UNSPECIFIED_ERROR


@pytest.mark.parametrize("reason_code", [0x00, 0x19])
async def test_mqtt_auth_with_a_code_other_than_continue_before_connack_raises(
    servers, reason_code
):
    raised: list[BaseException] = []

    async def app(scope, receive, send):
        await receive()
        try:
            await send({"type": "mqtt.auth", "reason_code": reason_code})
        except ValueError as exc:
            raised.append(exc)
        await send({"type": "mqtt.connack", "reason_code": 0x87})

    peer = await connect(await servers(app), properties=with_method())
    assert (await peer.receive()).reason_code == ReasonCode.NOT_AUTHORIZED
    assert "mqtt.auth 'reason_code' must be one of ['0x18']" in str(raised[0])
