"""WebSocket over real sockets: handshake, messages, close codes, keepalive, flow control."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from protocols.http_ws.messages import ClientDisconnected

from .helpers import (
    address,
    frame,
    handshake_request,
    open_raw,
    raw_websocket,
    read_close_code,
    read_frame,
    read_response,
    serve,
)

TEXT, BINARY, CONT, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


async def echo(scope: Any, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send(
            {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        )


def url(server: Any, path: str = "/") -> str:
    host, port = address(server)
    return f"ws://{host}:{port}{path}"


class TestHandshake:
    async def test_scope_has_every_key_of_the_spec(self) -> None:
        scopes = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scopes.append(scope)
            await echo(scope, receive, send)

        async with (
            serve(app, root_path="/r") as server,
            connect(url(server, "/chat?room=1"), subprotocols=["a", "b"]),
        ):
            pass
        scope = scopes[0]
        assert scope["type"] == "websocket"
        assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
        assert scope["http_version"] == "1.1"
        assert scope["scheme"] == "ws"
        assert scope["path"] == "/r/chat"
        assert scope["raw_path"] == b"/chat"
        assert scope["query_string"] == b"room=1"
        assert scope["root_path"] == "/r"
        assert scope["subprotocols"] == ["a", "b"]
        assert scope["extensions"] == {"websocket.http.response": {}}
        assert (b"upgrade", b"websocket") in scope["headers"]

    async def test_app_selects_the_subprotocol_and_adds_headers(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send(
                {"type": "websocket.accept", "subprotocol": "b", "headers": [(b"x-hub", b"1")]}
            )
            await receive()

        async with serve(app) as server, connect(url(server), subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"
            assert ws.response.headers["x-hub"] == "1"

    async def test_close_before_accept_is_http_403(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.close"})

        async with serve(app) as server:
            with pytest.raises(InvalidStatus) as info:
                async with connect(url(server)):
                    pass
        assert info.value.response.status_code == 403

    async def test_denial_response_extension_sends_the_apps_response(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            headers = [(b"content-type", b"text/plain")]
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
            await send({"type": "websocket.http.response.body", "body": b"pe"})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(handshake_request())
            raw = await reader.read()
            writer.close()
        assert raw.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
        assert raw.endswith(b"\r\n\r\nnope")

    async def test_bad_handshake_is_400_without_calling_the_app(self) -> None:
        called = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            called.append(scope)

        raw = handshake_request().replace(b"Sec-WebSocket-Key", b"Sec-WebSocket-Kex")
        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(raw)
            response = await read_response(reader)
            writer.close()
        assert response.status_code == 400
        assert called == []

    async def test_unsupported_version_is_426_naming_version_13(self) -> None:
        raw = handshake_request().replace(b"Version: 13", b"Version: 8")
        async with serve(echo) as server:
            reader, writer = await open_raw(server)
            writer.write(raw)
            response = await read_response(reader)
            writer.close()
        assert response.status_code == 426
        assert (b"sec-websocket-version", b"13") in response.headers

    async def test_invalid_message_before_accept_raises_naming_the_expected_ones(self) -> None:
        errors = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            try:
                await send({"type": "websocket.send", "text": "x"})
            except RuntimeError as exc:
                errors.append(str(exc))
            await send({"type": "websocket.close"})

        async with serve(app) as server:
            with pytest.raises(InvalidStatus):
                async with connect(url(server)):
                    pass
        assert errors == [
            "Expected ASGI message 'websocket.accept' or 'websocket.close' or "
            "'websocket.http.response.start', but got 'websocket.send'"
        ]


class TestHandshakeEdgeCases:
    async def refusal(self, raw: bytes) -> tuple[int, list[tuple[bytes, bytes]], list[Any]]:
        called: list[Any] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            called.append(scope)
            await echo(scope, receive, send)

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(raw)
            response = await read_response(reader)
            writer.close()
        return response.status_code, response.headers, called

    async def test_upgrade_over_http_10_is_refused_without_calling_the_app(self) -> None:
        raw = handshake_request().replace(b"HTTP/1.1", b"HTTP/1.0", 1)
        status, _, called = await self.refusal(raw)
        assert status == 505
        assert called == []

    async def test_upgrade_with_another_method_than_get_is_405(self) -> None:
        raw = b"POST" + handshake_request()[3:]
        status, headers, called = await self.refusal(raw)
        assert status == 405
        assert (b"allow", b"GET") in headers
        assert called == []

    async def test_upgrade_without_host_is_400(self) -> None:
        raw = handshake_request().replace(b"Host: x\r\n", b"")
        status, _, called = await self.refusal(raw)
        assert status == 400
        assert called == []

    @pytest.mark.parametrize(
        ("upgrade", "connection"),
        [(b"WebSocket", b"keep-alive, Upgrade"), (b"websocket", b"UPGRADE")],
        ids=["keep-alive-upgrade", "uppercase"],
    )
    async def test_upgrade_tokens_are_matched_without_case_in_lists(
        self, upgrade: bytes, connection: bytes
    ) -> None:
        raw = handshake_request().replace(b"Upgrade: websocket", b"Upgrade: " + upgrade)
        raw = raw.replace(b"Connection: Upgrade", b"Connection: " + connection)
        async with serve(echo) as server:
            reader, writer = await open_raw(server)
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
        assert head.startswith(b"HTTP/1.1 101 ")

    async def test_subprotocol_the_client_did_not_offer_raises_out_of_send(self) -> None:
        errors = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            try:
                await send({"type": "websocket.accept", "subprotocol": "c"})
            except RuntimeError as exc:
                errors.append(str(exc))
            await send({"type": "websocket.accept", "subprotocol": "b"})
            await receive()

        async with serve(app) as server, connect(url(server), subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"
        assert errors == ["Subprotocol 'c' was not offered by the client (offered: ['a', 'b'])"]

    @pytest.mark.parametrize(
        "name",
        [
            b"sec-websocket-accept",
            b"Sec-WebSocket-Extensions",
            b"sec-websocket-protocol",
            b"upgrade",
            b"Connection",
        ],
    )
    async def test_accept_headers_cannot_replace_the_handshake_headers(self, name: bytes) -> None:
        errors = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            try:
                await send({"type": "websocket.accept", "headers": [(name, b"x")]})
            except RuntimeError as exc:
                errors.append(exc)
            await send({"type": "websocket.accept"})
            await receive()

        async with serve(app) as server, connect(url(server)) as ws:
            assert ws.response.headers.get_all(name.decode()) != ["x"]
        assert len(errors) == 1

    async def test_denial_body_send_waits_while_the_client_does_not_read(self) -> None:
        sent = 0
        total = 64
        chunk = b"z" * 65536

        async def app(scope: Any, receive: Any, send: Any) -> None:
            nonlocal sent
            await receive()
            await send({"type": "websocket.http.response.start", "status": 403})
            for _ in range(total):
                await send(
                    {"type": "websocket.http.response.body", "body": chunk, "more_body": True}
                )
                sent += 1
            await send({"type": "websocket.http.response.body"})

        async with serve(app) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(address(server))
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(handshake_request())
            connections = server._listener.connections  # type: ignore[union-attr]
            while not any(c.flow.write_paused for c in connections):  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
            (connection,) = connections
            for _ in range(5):
                await asyncio.sleep(0)
            assert connection.transport.get_write_buffer_size() <= 2 * (64 * 1024 + len(chunk))  # type: ignore[attr-defined]
            assert sent < total
            raw = await reader.read()
            writer.close()
        assert sent == total
        assert raw.endswith(chunk * 2)


class TestMessages:
    @pytest.mark.parametrize("compression", ["deflate", None])
    async def test_text_and_binary_messages_echo(self, compression: str | None) -> None:
        async with serve(echo) as server, connect(url(server), compression=compression) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"

    async def test_permessage_deflate_is_negotiated_by_default(self) -> None:
        async with serve(echo) as server, connect(url(server)) as ws:
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]

    async def test_permessage_deflate_can_be_turned_off(self) -> None:
        async with serve(echo, ws_per_message_deflate=False) as server, connect(url(server)) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers

    async def test_fragmented_message_reaches_the_app_whole(self) -> None:
        async with serve(echo) as server, connect(url(server), compression=None) as ws:
            await ws.send(["ab", "cd", "ef"])
            assert await ws.recv() == "abcdef"

    async def test_disconnect_carries_the_client_code_and_reason(self) -> None:
        got = asyncio.get_running_loop().create_future()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            got.set_result(await receive())

        async with serve(app) as server:
            async with connect(url(server)) as ws:
                await ws.close(4000, "bye")
            assert await got == {"type": "websocket.disconnect", "code": 4000, "reason": "bye"}

    async def test_client_close_without_code_is_disconnect_1005(self) -> None:
        got = asyncio.get_running_loop().create_future()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            got.set_result(await receive())

        async with serve(app) as server:
            reader, writer = await raw_websocket(server)
            writer.write(frame(CLOSE, b""))
            assert await read_frame(reader) == (CLOSE, b"")
            message = await got
            writer.close()
        assert message == {"type": "websocket.disconnect", "code": 1005, "reason": ""}

    async def test_dropped_connection_is_disconnect_1006_as_a_plain_int(self) -> None:
        got = asyncio.get_running_loop().create_future()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            got.set_result(await receive())

        async with serve(app) as server:
            _, writer = await raw_websocket(server)
            writer.transport.abort()
            message = await got
        assert message == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        assert type(message["code"]) is int

    async def test_fragmented_message_over_max_size_is_1009(self) -> None:
        async with serve(echo, ws_max_message_size=100) as server:
            reader, writer = await raw_websocket(server)
            writer.write(frame(TEXT, b"x" * 60, fin=False) + frame(CONT, b"x" * 60))
            code = await read_close_code(reader)
            writer.close()
        assert code == 1009

    async def test_app_close_sends_its_code_and_later_sends_raise(self) -> None:
        errors = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 4001, "reason": "done"})
            try:
                await send({"type": "websocket.send", "text": "late"})
            except ClientDisconnected as exc:
                errors.append(exc)

        async with serve(app) as server, connect(url(server)) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4001
            assert ws.close_reason == "done"
        assert len(errors) == 1


class TestProtocolErrors:
    async def close_code_after(self, *frames: bytes, **config: Any) -> int:
        async with serve(echo, **config) as server:
            reader, writer = await raw_websocket(server)
            writer.write(b"".join(frames))
            code = await read_close_code(reader)
            writer.close()
        return code

    async def test_unmasked_client_frame_is_1002(self) -> None:
        assert await self.close_code_after(frame(TEXT, b"hi", mask=False)) == 1002

    async def test_message_over_max_size_is_1009(self) -> None:
        assert (
            await self.close_code_after(frame(BINARY, b"x" * 101), ws_max_message_size=100) == 1009
        )

    async def test_message_at_max_size_is_accepted(self) -> None:
        async with serve(echo, ws_max_message_size=100) as server:
            reader, writer = await raw_websocket(server)
            writer.write(frame(BINARY, b"x" * 100))
            assert await read_frame(reader) == (BINARY, b"x" * 100)
            writer.close()

    async def test_fragmented_control_frame_is_1002(self) -> None:
        assert await self.close_code_after(frame(PING, b"p", fin=False)) == 1002

    async def test_invalid_close_code_is_1002(self) -> None:
        assert await self.close_code_after(frame(CLOSE, struct.pack("!H", 999))) == 1002

    async def test_invalid_utf8_text_is_1007(self) -> None:
        assert await self.close_code_after(frame(TEXT, b"\xff\xfe")) == 1007

    async def test_invalid_utf8_across_fragments_is_1007(self) -> None:
        code = await self.close_code_after(
            frame(TEXT, b"ok", fin=False), frame(CONT, b"\xc3", fin=True)
        )
        assert code == 1007

    async def test_ping_is_answered_with_pong(self) -> None:
        async with serve(echo) as server:
            reader, writer = await raw_websocket(server)
            writer.write(frame(PING, b"abc"))
            assert await read_frame(reader) == (0xA, b"abc")
            writer.close()


class TestApplicationFailures:
    async def test_app_crash_after_accept_closes_1011(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            raise ValueError("boom")

        async with serve(app) as server, connect(url(server)) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1011

    async def test_app_crash_before_accept_is_http_500(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise ValueError("boom")

        async with serve(app) as server:
            with pytest.raises(InvalidStatus) as info:
                async with connect(url(server)):
                    pass
        assert info.value.response.status_code == 500


class TestKeepaliveAndFlowControl:
    async def test_peer_that_never_answers_pings_is_closed_1011(self) -> None:
        got = asyncio.get_running_loop().create_future()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            got.set_result(await receive())

        async with serve(app, ws_ping_interval=0.02, ws_ping_timeout=0.05) as server:
            reader, writer = await raw_websocket(server)
            opcode, _ = await read_frame(reader)
            assert opcode == PING
            assert await read_close_code(reader) == 1011
            message = await got
            writer.close()
        assert message["type"] == "websocket.disconnect"

    async def test_send_waits_while_the_client_does_not_read(self) -> None:
        sent = 0
        total = 512
        chunk = b"z" * 65536

        async def app(scope: Any, receive: Any, send: Any) -> None:
            nonlocal sent
            await receive()
            await send({"type": "websocket.accept"})
            for _ in range(total):
                await send({"type": "websocket.send", "bytes": chunk})
                sent += 1

        async with serve(app, ws_per_message_deflate=False) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(address(server))
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(handshake_request())
            await reader.readuntil(b"\r\n\r\n")
            connections = server._listener.connections  # type: ignore[union-attr]
            (connection,) = connections
            while not connection.flow.write_paused:  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
            assert connection.transport.get_write_buffer_size() <= 64 * 1024 + len(chunk) + 16  # type: ignore[attr-defined]
            assert sent < total
            for _ in range(total):
                assert await read_frame(reader) == (BINARY, chunk)
            writer.close()
        assert sent == total

    async def test_reading_pauses_when_the_app_does_not_receive(self) -> None:
        release = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await release.wait()
            await echo_rest(receive, send)

        async with serve(app, ws_max_queue=4) as server:
            reader, writer = await raw_websocket(server)
            # 1 MB of messages: more than one socket read, so the pause must bite.
            messages = [b"%04d" % i + b"." * 996 for i in range(1000)]
            writer.write(b"".join(frame(TEXT, m) for m in messages))
            (connection,) = server._listener.connections  # type: ignore[union-attr]
            while not connection.flow.read_paused:  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
            assert len(connection.queue) < len(messages)  # type: ignore[attr-defined]
            release.set()
            replies = [await read_frame(reader) for _ in messages]
            writer.close()
        assert replies == [(TEXT, m) for m in messages]


async def echo_rest(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send(
            {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        )
