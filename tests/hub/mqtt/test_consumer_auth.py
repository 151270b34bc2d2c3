"""Enhanced authentication in the generic consumers: ``authentication_methods`` and
``authenticate_step``, through the communicator and over a real socket."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import pytest

from hub.generic.mqtt import Accept, AsyncMqttConsumer, Challenge, MqttConsumer, Refuse
from hub.testing.mqtt import MqttCommunicator
from protocols.mqtt import Auth, Connack, Connect, Disconnect, MqttConfig, MqttServer, ReasonCode
from protocols.mqtt.properties import Properties
from tests.protocols.mqtt.test_server import Peer

SECRETS = {b"sensor-1": b"k1"}


def sign(key: bytes, nonce: bytes) -> bytes:
    return hmac.new(key, nonce, hashlib.sha256).digest()


class ChallengeConsumer(AsyncMqttConsumer):
    """The client names itself, the server sends a nonce, the client returns its HMAC."""

    authentication_methods = ("HMAC-CHALLENGE",)

    async def authenticate_step(self, method: str, data: bytes | None) -> Any:
        if self.auth_step == 0:
            self.device, self.nonce = data, b"nonce-%d" % id(self)
            if self.device not in SECRETS:
                raise Refuse(0x86)
            return Challenge(self.nonce)
        if hmac.compare_digest(data or b"", sign(SECRETS[self.device], self.nonce)):
            return Accept(self.device, b"welcome")
        return None


class SyncChallengeConsumer(MqttConsumer):
    authentication_methods = ("HMAC-CHALLENGE",)

    def authenticate_step(self, method: str, data: bytes | None) -> Any:
        if self.auth_step == 0:
            self.device, self.nonce = data, b"sync-nonce"
            return Challenge(self.nonce)
        return self.device if data == sign(SECRETS[self.device], self.nonce) else None


class TokenConsumer(AsyncMqttConsumer):
    """One step: the CONNECT's data is the whole credential."""

    authentication_methods = ("TOKEN",)

    async def authenticate_step(self, method: str, data: bytes | None) -> Any:
        return "device-7" if data == b"token-7" else None


def device(consumer: Any, data: bytes | None = b"sensor-1", method: str = "HMAC-CHALLENGE") -> Any:
    return MqttCommunicator(
        consumer.as_asgi(), "sensor-1", authentication_method=method, authentication_data=data
    )


@pytest.mark.parametrize("consumer", [ChallengeConsumer, SyncChallengeConsumer])
class TestChallengeResponse:
    async def test_a_right_answer_is_accepted_and_the_device_is_the_user(self, consumer):
        communicator = device(consumer)
        assert await communicator.connect() == (False, 0x18)
        nonce = communicator.challenge
        assert await communicator.auth(sign(b"k1", nonce)) == (True, 0)
        assert communicator.connack["authentication_method"] == "HMAC-CHALLENGE"
        await communicator.disconnect()

    async def test_a_wrong_answer_is_refused_with_0x87(self, consumer):
        communicator = device(consumer)
        await communicator.connect()
        assert await communicator.auth(b"forged") == (False, 0x87)

    async def test_reauthentication_runs_the_same_steps(self, consumer):
        communicator = device(consumer)
        await communicator.connect()
        await communicator.auth(sign(b"k1", communicator.challenge))
        assert await communicator.auth(b"sensor-1", reauthenticate=True) == (False, 0x18)
        assert await communicator.auth(sign(b"k1", communicator.challenge)) == (True, 0)
        assert await communicator.auth(b"sensor-1", reauthenticate=True) == (False, 0x18)
        assert await communicator.auth(b"wrong") == (False, 0x87)


class TestMethods:
    async def test_a_method_the_consumer_does_not_list_is_refused_with_0x8c(self):
        assert await device(ChallengeConsumer, method="SCRAM-SHA-1").connect() == (False, 0x8C)

    async def test_a_consumer_without_methods_refuses_any_with_0x8c(self, settings):
        settings.HUB_MQTT_ALLOW_ANONYMOUS = True
        assert await device(AsyncMqttConsumer, method="TOKEN").connect() == (False, 0x8C)

    async def test_refuse_from_the_first_step_sends_its_code(self):
        assert await device(ChallengeConsumer, b"stranger").connect() == (False, 0x86)

    async def test_a_one_step_method_accepts_at_once_and_keeps_the_user(self):
        communicator = device(TokenConsumer, b"token-7", "TOKEN")
        assert await communicator.connect() == (True, 0)
        assert communicator.connack["authentication_method"] == "TOKEN"
        assert await device(TokenConsumer, b"nope", "TOKEN").connect() == (False, 0x87)
        await communicator.disconnect()


class TestOverASocket:
    async def test_the_exchange_reaches_the_consumer_through_the_server(self):

        server = MqttServer(ChallengeConsumer.as_asgi(), MqttConfig(port=0))
        await server.start()
        try:
            host, port = server.bound_addresses[0]
            peer = Peer(*await asyncio.open_connection(host, port))
            await peer.send(
                Connect(
                    "sensor-1",
                    properties=Properties(
                        authentication_method="HMAC-CHALLENGE", authentication_data=b"sensor-1"
                    ),
                )
            )
            challenge = await peer.receive()
            assert isinstance(challenge, Auth)
            answer = sign(b"k1", challenge.properties.authentication_data)
            await peer.send(
                Auth(
                    ReasonCode.CONTINUE_AUTHENTICATION,
                    Properties(authentication_method="HMAC-CHALLENGE", authentication_data=answer),
                )
            )
            connack = await peer.receive()
            assert isinstance(connack, Connack)
            assert connack.reason_code == ReasonCode.SUCCESS
            assert connack.properties.authentication_data == b"welcome"
            assert connack.properties.authentication_method == "HMAC-CHALLENGE"
        finally:
            await server.wait_closed(1)


def auth(code: ReasonCode, data: bytes) -> Auth:
    return Auth(code, Properties(authentication_method="HMAC-CHALLENGE", authentication_data=data))


async def authenticated_peer(server: MqttServer) -> Peer:
    host, port = server.bound_addresses[0]
    peer = Peer(*await asyncio.open_connection(host, port))
    await peer.send(
        Connect(
            "sensor-1",
            properties=Properties(
                authentication_method="HMAC-CHALLENGE", authentication_data=b"sensor-1"
            ),
        )
    )
    challenge = await peer.receive()
    answer = sign(b"k1", challenge.properties.authentication_data)
    await peer.send(auth(ReasonCode.CONTINUE_AUTHENTICATION, answer))
    assert (await peer.receive()).reason_code == ReasonCode.SUCCESS
    return peer


class TestRefusedReauthentication:
    async def test_a_wrong_answer_disconnects_with_0x87_and_says_why_in_the_log(self, caplog):
        server = MqttServer(ChallengeConsumer.as_asgi(), MqttConfig(port=0))
        await server.start()
        try:
            peer = await authenticated_peer(server)
            await peer.send(auth(ReasonCode.RE_AUTHENTICATE, b"sensor-1"))
            await peer.receive()
            with caplog.at_level("INFO", logger="hub.mqtt"):
                await peer.send(auth(ReasonCode.CONTINUE_AUTHENTICATION, b"forged"))
                disconnect = await peer.receive()
            assert isinstance(disconnect, Disconnect)
            assert disconnect.reason_code == ReasonCode.NOT_AUTHORIZED
            assert "re-authentication with 'HMAC-CHALLENGE' refused at step 1 (0x87)" in (
                caplog.text
            )
        finally:
            await server.wait_closed(1)

    async def test_a_refusal_code_a_disconnect_cannot_carry_becomes_0x87(self):
        server = MqttServer(ChallengeConsumer.as_asgi(), MqttConfig(port=0))
        await server.start()
        try:
            peer = await authenticated_peer(server)
            await peer.send(auth(ReasonCode.RE_AUTHENTICATE, b"stranger"))  # Refuse(0x86)
            disconnect = await peer.receive()
            assert isinstance(disconnect, Disconnect)
            assert disconnect.reason_code == ReasonCode.NOT_AUTHORIZED
        finally:
            await server.wait_closed(1)

    async def test_a_client_that_leaves_a_challenge_unanswered_is_disconnected_with_0x87(
        self, caplog
    ):
        server = MqttServer(ChallengeConsumer.as_asgi(), MqttConfig(port=0, connect_timeout=0.3))
        await server.start()
        try:
            peer = await authenticated_peer(server)
            with caplog.at_level("INFO", logger="protocols.mqtt"):
                await peer.send(auth(ReasonCode.RE_AUTHENTICATE, b"sensor-1"))
                challenge = await peer.receive()
                assert isinstance(challenge, Auth)
                disconnect = await asyncio.wait_for(peer.receive(), 5)
            assert isinstance(disconnect, Disconnect)
            assert disconnect.reason_code == ReasonCode.NOT_AUTHORIZED
            assert "re-authentication failed" in caplog.text
        finally:
            await server.wait_closed(1)
