"""TCP consumers through the communicator: bytes, lines, JSON lines, framing, auth, routing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth.models import User

from hub.exceptions import DenyConnection
from hub.generic.tcp import (
    AsyncJsonLinesConsumer,
    AsyncLineConsumer,
    AsyncTcpConsumer,
    LineConsumer,
    TcpConsumer,
)
from hub.layers import get_channel_layer
from hub.routing import ProtocolTypeRouter
from hub.tcp_routing import ListenerRouter
from hub.testing.tcp import TcpCommunicator


class Echo(AsyncTcpConsumer):
    async def receive(self, data: bytes) -> None:
        await self.send(data[::-1])


class SyncEcho(TcpConsumer):
    def receive(self, data: bytes) -> None:
        self.send(data.upper())


class Shouter(AsyncLineConsumer):
    async def receive_line(self, line: str) -> None:
        await self.send_line(line.upper())


class SyncShouter(LineConsumer):
    def receive_line(self, line: str) -> None:
        self.send_line(f"<{line}>")


class Adder(AsyncJsonLinesConsumer):
    async def receive_json(self, content: Any) -> None:
        await self.send_json({"sum": sum(content["numbers"])})


class Picky(AsyncTcpConsumer):
    async def connect(self) -> None:
        if self.scope["client"][0] != "10.0.0.1":
            raise DenyConnection
        await self.accept()


class TestBytesConsumers:
    async def test_an_async_consumer_receives_and_sends_frames(self) -> None:
        communicator = TcpCommunicator(Echo.as_asgi())
        assert await communicator.connect()
        await communicator.send_to(b"abc")
        assert await communicator.receive_from() == b"cba"
        await communicator.disconnect()

    async def test_a_sync_consumer_receives_and_sends_frames(self) -> None:
        communicator = TcpCommunicator(SyncEcho.as_asgi())
        assert await communicator.connect()
        await communicator.send_to(b"abc")
        assert await communicator.receive_from() == b"ABC"
        await communicator.disconnect()

    async def test_deny_connection_refuses(self) -> None:
        assert not await TcpCommunicator(Picky.as_asgi()).connect()
        assert await TcpCommunicator(Picky.as_asgi(), client=("10.0.0.1", 1)).connect()

    async def test_a_half_close_closes_by_default(self) -> None:
        communicator = TcpCommunicator(Echo.as_asgi(), half_close=True)
        assert await communicator.connect()
        await communicator.send_eof_to()
        await communicator.receive_close()

    async def test_disconnect_receives_the_reason(self) -> None:
        reasons: list[str] = []

        class Recorder(AsyncTcpConsumer):
            async def disconnect(self, reason: str) -> None:
                reasons.append(reason)

        communicator = TcpCommunicator(Recorder.as_asgi())
        assert await communicator.connect()
        await communicator.disconnect("timeout")
        assert reasons == ["timeout"]

    async def test_groups_reach_the_device(self) -> None:
        class Member(AsyncTcpConsumer):
            groups = ["devices"]

            async def device_command(self, message: dict[str, Any]) -> None:
                await self.send(message["command"].encode())

        communicator = TcpCommunicator(Member.as_asgi())
        assert await communicator.connect()
        await get_channel_layer().group_send(
            "devices", {"type": "device.command", "command": "REBOOT"}
        )
        assert await communicator.receive_from() == b"REBOOT"
        await communicator.disconnect()


class TestLineConsumers:
    async def test_lines_are_text_without_a_trailing_carriage_return(self) -> None:
        communicator = TcpCommunicator(Shouter.as_asgi(), framing="line")
        assert await communicator.connect()
        await communicator.send_to(b"hello\r")
        assert await communicator.receive_from() == b"HELLO"
        await communicator.disconnect()

    async def test_a_sync_line_consumer_sends_lines(self) -> None:
        communicator = TcpCommunicator(SyncShouter.as_asgi(), framing="line")
        assert await communicator.connect()
        await communicator.send_to("héllo".encode())
        assert await communicator.receive_from() == "<héllo>".encode()
        await communicator.disconnect()

    async def test_a_line_consumer_decodes_and_encodes_with_its_encoding(self) -> None:
        class Latin1Shouter(Shouter):
            encoding = "latin-1"

        communicator = TcpCommunicator(Latin1Shouter.as_asgi(), framing="line")
        assert await communicator.connect()
        await communicator.send_to("héllo".encode("latin-1"))
        assert await communicator.receive_from() == "HÉLLO".encode("latin-1")
        await communicator.disconnect()

    async def test_undecodable_bytes_are_replaced_when_errors_is_replace(self) -> None:
        class Lenient(Shouter):
            errors = "replace"

        communicator = TcpCommunicator(Lenient.as_asgi(), framing="line")
        assert await communicator.connect()
        await communicator.send_to(b"caf\xe9")
        assert await communicator.receive_from() == "CAF\ufffd".encode()
        await communicator.disconnect()

    async def test_undecodable_bytes_close_a_strict_utf8_consumer(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        communicator = TcpCommunicator(Shouter.as_asgi(), framing="line")
        assert await communicator.connect()
        await communicator.send_to(b"caf\xe9")
        assert await communicator.receive_output() == {"type": "tcp.close"}
        assert "UnicodeDecodeError" in caplog.text

    def test_an_unknown_encoding_fails_when_the_class_is_made(self) -> None:
        with pytest.raises(LookupError, match="no-such-codec"):

            class Broken(AsyncLineConsumer):
                encoding = "no-such-codec"

    async def test_json_lines_are_decoded_and_encoded(self) -> None:
        communicator = TcpCommunicator(Adder.as_asgi(), framing="line")
        assert await communicator.connect()
        await communicator.send_to(b'{"numbers": [1, 2, 3]}')
        assert await communicator.receive_from() == b'{"sum":6}'
        await communicator.disconnect()

    async def test_a_line_consumer_refuses_a_listener_with_other_framing(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        communicator = TcpCommunicator(Shouter.as_asgi(), listener="meters", framing="raw")
        assert not await communicator.connect()
        assert (
            "Shouter expects framing 'line' but tcp listener 'meters' frames 'raw'; "
            "start the listener with ?framing=line" in caplog.text
        )


class LoginConsumer(AsyncLineConsumer):
    authentication = "first_frame"
    scope_key = "user"

    def authenticate(self, credentials: Any) -> Any:
        _, username, password = credentials.decode().split()
        user = User.objects.filter(username=username).first()
        return user if user is not None and user.check_password(password) else None

    async def receive_line(self, line: str) -> None:
        await self.send_line(f"{self.scope['user'].username}: {line}")


class CertificateConsumer(AsyncTcpConsumer):
    authentication = "certificate"

    def authenticate(self, credentials: Any) -> Any:
        name = credentials.get("client_cert_name") or ""
        return User.objects.filter(username=name.removeprefix("CN=")).first()

    async def receive(self, data: bytes) -> None:
        await self.send(self.scope["device"].username.encode())


@pytest.mark.django_db(transaction=True)
class TestAuthentication:
    async def test_the_first_frame_logs_the_device_in(self) -> None:
        await User.objects.acreate(username="tracker-1", password="")
        user = await User.objects.aget(username="tracker-1")
        user.set_password("s3cret")
        await user.asave()
        communicator = TcpCommunicator(LoginConsumer.as_asgi(), framing="line")
        assert await communicator.connect()
        await communicator.send_to(b"LOGIN tracker-1 s3cret")
        await communicator.send_to(b"$POS,1,2")
        assert await communicator.receive_from() == b"tracker-1: $POS,1,2"
        await communicator.disconnect()

    async def test_a_refused_first_frame_closes_with_a_log_line(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, "hub.tcp")
        communicator = TcpCommunicator(LoginConsumer.as_asgi(), listener="gps", framing="line")
        assert await communicator.connect()
        await communicator.send_to(b"LOGIN nobody wrong")
        await communicator.receive_close()
        assert "tcp gps 127.0.0.1:51000: first frame refused by authenticate()" in caplog.text

    async def test_a_known_client_certificate_becomes_scope_device(self) -> None:
        await User.objects.acreate(username="device-42")
        communicator = TcpCommunicator(
            CertificateConsumer.as_asgi(), tls={"client_cert_name": "CN=device-42"}
        )
        assert await communicator.connect()
        await communicator.send_to(b"who am i")
        assert await communicator.receive_from() == b"device-42"
        await communicator.disconnect()

    async def test_an_unknown_client_certificate_is_refused(self) -> None:
        communicator = TcpCommunicator(
            CertificateConsumer.as_asgi(), tls={"client_cert_name": "CN=stranger"}
        )
        assert not await communicator.connect()

    def test_an_unknown_authentication_mode_is_an_error_at_class_creation(self) -> None:
        with pytest.raises(ValueError, match="authentication must be one of"):

            class Wrong(AsyncTcpConsumer):
                authentication = "password"


class TestListenerRouter:
    async def test_each_listener_reaches_its_consumer(self) -> None:
        router = ProtocolTypeRouter(
            {"tcp": ListenerRouter({"raw": Echo.as_asgi(), "text": Shouter.as_asgi()})}
        )
        raw = TcpCommunicator(router, listener="raw")
        text = TcpCommunicator(router, listener="text", framing="line")
        assert await raw.connect()
        assert await text.connect()
        await raw.send_to(b"ab")
        await text.send_to(b"ab")
        assert await raw.receive_from() == b"ba"
        assert await text.receive_from() == b"AB"
        await raw.disconnect()
        await text.disconnect()

    async def test_an_unknown_listener_is_closed_with_a_warning_naming_the_known_ones(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        router = ListenerRouter({"gps": Echo.as_asgi(), "plc": Echo.as_asgi()})
        assert not await TcpCommunicator(router, listener="meters").connect()
        assert (
            "No application for tcp listener 'meters' (ListenerRouter has: 'gps', 'plc')"
            in caplog.text
        )

    def test_resolving_a_scope_of_another_type_names_the_problem(self) -> None:
        from hub.exceptions import NoRouteFound

        with pytest.raises(NoRouteFound, match="ListenerRouter routes 'tcp' scopes"):
            ListenerRouter({}).resolve({"type": "http"})
