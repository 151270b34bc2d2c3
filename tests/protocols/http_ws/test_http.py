"""HTTP/1.1 over real sockets: framing, keep-alive, limits, timeouts, app failures."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest

from protocols.http_ws.messages import ClientDisconnected

from .helpers import header, open_raw, read_response, request, serve

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def echo_body(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


class TestScope:
    async def test_scope_has_every_key_of_the_spec(self) -> None:
        scopes = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scopes.append(scope)
            await hello(scope, receive, send)

        async with serve(app, root_path="/mount", state={"db": "x"}) as server:
            bound = server.bound_addresses[0]
            await request(server, b"GET /a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n")
        scope = scopes[0]
        assert scope["type"] == "http"
        assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
        assert scope["http_version"] == "1.1"
        assert scope["method"] == "GET"
        assert scope["scheme"] == "http"
        assert scope["path"] == "/mount/a b/c"
        assert scope["raw_path"] == b"/a%20b/c"
        assert scope["query_string"] == b"x=1&y=%20"
        assert scope["root_path"] == "/mount"
        assert scope["headers"] == [(b"host", b"x"), (b"x-a", b"1")]
        assert scope["client"][0] == "127.0.0.1"
        assert scope["server"] == bound
        assert scope["state"] == {"db": "x"}
        assert scope["extensions"] == {}

    async def test_state_is_a_copy_per_request(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope["state"]["seen"] = True
            await hello(scope, receive, send)

        state: dict[str, Any] = {}
        async with serve(app, state=state) as server:
            await request(server, GET)
        assert state == {}


class TestResponses:
    async def test_single_body_message_gets_a_content_length(self) -> None:
        async with serve(hello) as server:
            response = await request(server, GET)
        assert response.status_code == 200
        assert header(response, b"content-length") == b"5"
        assert header(response, b"server") == b"hub"
        assert header(response, b"date") is not None
        assert response.body == b"hello"

    async def test_server_header_can_be_disabled(self) -> None:
        async with serve(hello, server_header=None) as server:
            response = await request(server, GET)
        assert header(response, b"server") is None

    async def test_streamed_response_without_length_is_chunked(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200})
            for part in (b"a", b"bc", b""):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b"d"})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(GET)
            raw = await reader.readuntil(b"0\r\n\r\n")
            writer.close()
        assert b"transfer-encoding: chunked\r\n" in raw
        assert raw.endswith(b"\r\n\r\n1\r\na\r\n2\r\nbc\r\n1\r\nd\r\n0\r\n\r\n")

    async def test_head_response_sends_no_body(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            headers = [(b"content-length", b"5")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"hello"})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
            head = await read_response(reader, "HEAD")
            after = await read_response(reader)
            writer.close()
        assert header(head, b"content-length") == b"5"
        assert head.body == b""
        assert after.body == b"hello"

    async def test_http_10_response_without_length_is_closed_delimited(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await send({"type": "http.response.body", "body": b"b"})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            raw = await reader.read()
            writer.close()
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding" not in raw
        assert b"connection: close\r\n" in raw
        assert raw.endswith(b"\r\n\r\nab")

    async def test_invalid_header_value_raises_out_of_send(self) -> None:
        errors = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            try:
                headers = [(b"x", b"a\r\nset-cookie: evil")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
            except RuntimeError as exc:
                errors.append(str(exc))
            await hello(scope, receive, send)

        async with serve(app) as server:
            response = await request(server, GET)
        assert "Invalid HTTP header value" in errors[0]
        assert response.status_code == 200

    async def test_message_out_of_order_raises_naming_the_expected_message(self) -> None:
        errors = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            try:
                await send({"type": "http.response.body", "body": b"x"})
            except RuntimeError as exc:
                errors.append(str(exc))
            await hello(scope, receive, send)

        async with serve(app) as server:
            await request(server, GET)
        assert errors == [
            "Expected ASGI message 'http.response.start', but got 'http.response.body'"
        ]

    async def test_extra_keys_in_messages_are_ignored(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 201, "extra": 1})
            await send({"type": "http.response.body", "body": b"", "extra": 2})

        async with serve(app) as server:
            response = await request(server, GET)
        assert response.status_code == 201


class TestKeepAliveAndPipelining:
    async def test_keep_alive_serves_several_requests_on_one_connection(self) -> None:
        async with serve(hello) as server:
            reader, writer = await open_raw(server)
            for _ in range(3):
                writer.write(GET)
                response = await read_response(reader)
                assert response.status_code == 200
            writer.close()

    async def test_pipelined_responses_come_in_request_order(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/slow":
                await asyncio.sleep(0.05)
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": scope["path"].encode()})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(
                b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in (b"slow", b"a", b"b"))
            )
            bodies = [(await read_response(reader)).body for _ in range(3)]
            writer.close()
        assert bodies == [b"/slow", b"/a", b"/b"]

    async def test_pipelined_request_waits_for_a_slowly_streamed_response(self) -> None:
        first_started = asyncio.Event()
        release = asyncio.Event()
        calls = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            calls.append(scope["path"])
            await send({"type": "http.response.start", "status": 200})
            if scope["path"] == "/stream":
                await send({"type": "http.response.body", "body": b"a", "more_body": True})
                first_started.set()
                await release.wait()
                await send({"type": "http.response.body", "body": b"b", "more_body": True})
            await send({"type": "http.response.body", "body": b"end"})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
            await first_started.wait()
            assert calls == ["/stream"]
            release.set()
            first = await read_response(reader)
            second = await read_response(reader)
            writer.close()
        assert (first.body, second.body) == (b"abend", b"end")
        assert calls == ["/stream", "/"]

    async def test_receive_after_the_response_is_http_disconnect(self) -> None:
        messages = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await hello(scope, receive, send)
            messages.append(await receive())

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(GET)
            await read_response(reader)
            while not messages:
                await asyncio.sleep(0.01)
            writer.close()
        assert messages == [{"type": "http.disconnect"}]

    async def test_idle_keep_alive_connection_is_closed_silently(self) -> None:
        async with serve(hello, keep_alive_timeout=0.05) as server:
            reader, writer = await open_raw(server)
            writer.write(GET)
            await read_response(reader)
            assert await reader.read() == b""
            writer.close()

    async def test_connection_close_request_closes_after_response(self) -> None:
        async with serve(hello) as server:
            reader, writer = await open_raw(server)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            raw = await reader.read()
            writer.close()
        assert b"connection: close\r\n" in raw
        assert raw.endswith(b"hello")


class TestRequestBody:
    async def test_content_length_body_reaches_the_app(self) -> None:
        async with serve(echo_body) as server:
            response = await request(
                server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
            )
        assert response.body == b"abcde"

    async def test_chunked_request_body_is_dechunked(self) -> None:
        raw = (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        async with serve(echo_body) as server:
            response = await request(server, raw)
        assert response.body == b"abcde"

    async def test_100_continue_is_sent_when_the_app_first_receives(self) -> None:
        async with serve(echo_body) as server:
            reader, writer = await open_raw(server)
            writer.write(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
            )
            interim = await reader.readuntil(b"\r\n\r\n")
            writer.write(b"abc")
            response = await read_response(reader)
            writer.close()
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert response.body == b"abc"

    async def test_100_continue_is_not_sent_when_the_app_answers_without_reading(self) -> None:
        async with serve(hello) as server:
            reader, writer = await open_raw(server)
            writer.write(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
            )
            raw = await reader.read()
            writer.close()
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"100 Continue" not in raw

    async def test_http_disconnect_is_delivered_when_the_client_goes_away(self) -> None:
        received = asyncio.get_running_loop().create_future()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            received.set_result(await receive())

        async with serve(app) as server:
            _reader, writer = await open_raw(server)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na")
            await asyncio.sleep(0)
            writer.close()
            assert await received == {"type": "http.disconnect"}

    async def test_send_after_disconnect_raises_client_disconnected(self) -> None:
        outcome = asyncio.get_running_loop().create_future()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            try:
                await send({"type": "http.response.start", "status": 200})
            except ClientDisconnected as exc:
                outcome.set_result(exc)

        async with serve(app) as server:
            _reader, writer = await open_raw(server)
            writer.write(GET)
            await asyncio.sleep(0)
            writer.close()
            assert isinstance(await outcome, OSError)


class TestLimits:
    async def test_body_over_limit_by_content_length_is_413(self) -> None:
        async with serve(echo_body, max_body_size=10) as server:
            response = await request(
                server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
            )
        assert response.status_code == 413

    async def test_body_at_limit_is_accepted(self) -> None:
        async with serve(echo_body, max_body_size=10) as server:
            response = await request(
                server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
            )
        assert response.status_code == 200

    async def test_chunked_body_growing_over_limit_is_413(self) -> None:
        raw = (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n"
        )
        async with serve(echo_body, max_body_size=10) as server:
            response = await request(server, raw)
        assert response.status_code == 413

    async def test_too_many_header_fields_is_431(self) -> None:
        fields = b"".join(b"X-%d: 1\r\n" % i for i in range(11))
        async with serve(hello, max_header_count=10) as server:
            response = await request(server, b"GET / HTTP/1.1\r\n" + fields + b"\r\n")
        assert response.status_code == 431

    async def test_header_flood_in_one_line_is_431(self) -> None:
        async with serve(hello, max_head_size=1024) as server:
            reader, writer = await open_raw(server)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(4):
                writer.write(b"a" * 512)
                await writer.drain()
            response = await read_response(reader)
            writer.close()
        assert response.status_code == 431


class TestMalformedAndTimeouts:
    async def test_malformed_request_is_400(self) -> None:
        async with serve(hello) as server:
            response = await request(server, b"NOT HTTP AT ALL\r\n\r\n")
        assert response.status_code == 400

    async def test_incomplete_request_head_is_408_after_the_head_timeout(self) -> None:
        async with serve(hello, request_head_timeout=0.05) as server:
            response = await request(server, b"GET / HTTP/1.1\r\nHost:")
        assert response.status_code == 408

    async def test_stalled_request_body_is_408(self) -> None:
        async with serve(echo_body, request_body_timeout=0.05) as server:
            response = await request(
                server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
            )
        assert response.status_code == 408


class TestApplicationFailures:
    async def test_app_raising_before_response_gives_500(self, caplog: Any) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise ValueError("boom")

        async with serve(app) as server:
            response = await request(server, GET)
        assert response.status_code == 500
        assert "exception in ASGI application" in caplog.text

    async def test_app_returning_without_response_gives_500(self, caplog: Any) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            return None

        async with serve(app) as server:
            response = await request(server, GET)
        assert response.status_code == 500
        assert "returned without sending a response" in caplog.text

    async def test_app_raising_after_response_start_closes_the_connection(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            raise ValueError("boom")

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(GET)
            raw = await reader.read()
            writer.close()
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert not raw.endswith(b"0\r\n\r\n")

    async def test_app_returning_mid_response_is_logged_and_closed(self, caplog: Any) -> None:
        caplog.set_level(logging.ERROR, "protocols.http_ws.error")

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(GET)
            assert (await reader.read()).endswith(b"part\r\n")
            writer.close()
        assert "returned without completing the response" in caplog.text
        assert "127.0.0.1" in caplog.text


class TestFlowControl:
    async def test_send_waits_while_the_peer_does_not_read(self) -> None:
        chunk = b"x" * 65536
        total_chunks = 512  # 32 MiB: more than loopback socket buffers can hold
        sent = 0
        done = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            nonlocal sent
            await send({"type": "http.response.start", "status": 200})
            for _ in range(total_chunks):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += 1
            await send({"type": "http.response.body"})
            done.set()

        async with serve(app) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(server.bound_addresses[0])
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(GET)
            connections = server._listener.connections  # type: ignore[union-attr]
            while not connections:
                await asyncio.sleep(0.01)
            (connection,) = connections
            while not connection.flow.write_paused:
                await asyncio.sleep(0.01)
            buffered = connection.transport.get_write_buffer_size()
            assert buffered <= 64 * 1024 + len(chunk) + 64
            assert not done.is_set()
            assert sent < total_chunks
            received = 0
            while not done.is_set() or received < total_chunks * len(chunk):
                data = await reader.read(1 << 20)
                if not data:
                    break
                received += len(data)
            writer.close()
        assert sent == total_chunks

    async def test_reading_pauses_while_the_app_does_not_receive_the_body(self) -> None:
        release = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await release.wait()
            await echo_body(scope, receive, send)

        body = b"y" * (1 << 20)
        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            writer.write(body)
            (connection,) = server._listener.connections  # type: ignore[union-attr]
            while not connection.flow.read_paused:
                await asyncio.sleep(0.01)
            assert len(connection.reading.body) < len(body)
            release.set()
            response = await read_response(reader)
            writer.close()
        assert response.body == body


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses_send_no_length_and_no_body(status: int) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status})
        await send({"type": "http.response.body", "body": b""})

    async with serve(app) as server:
        reader, writer = await open_raw(server)
        writer.write(GET + GET)
        first = await reader.readuntil(b"\r\n\r\n")
        second = await reader.readuntil(b"\r\n\r\n")
        writer.close()
    assert b"content-length" not in first
    assert second.startswith(b"HTTP/1.1 %d" % status)


class TestRequestFraming:
    """RFC 9112 section 6 and 3.2: requests whose framing a proxy might read differently."""

    @pytest.mark.parametrize(
        "raw",
        [
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nabcde",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nabcde",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabcde",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX A: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n",
        ],
        ids=[
            "content-length-and-chunked",
            "conflicting-content-lengths",
            "duplicate-content-lengths",
            "signed-content-length",
            "transfer-coding-not-ending-in-chunked",
            "obs-fold",
            "space-in-field-name",
            "space-before-colon",
        ],
    )
    async def test_ambiguous_framing_is_400_and_never_reaches_the_app(self, raw: bytes) -> None:
        called = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            called.append(scope)
            await echo_body(scope, receive, send)

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(raw)
            response = await read_response(reader)
            assert await reader.read() == b""
            writer.close()
        assert response.status_code == 400
        assert called == []

    @pytest.mark.parametrize(
        "chunks",
        [b"zz\r\nab\r\n0\r\n\r\n", b"fffffffffffffffffff\r\nab\r\n0\r\n\r\n"],
        ids=["invalid-chunk-size", "chunk-size-overflow"],
    )
    async def test_invalid_chunk_is_400_and_the_app_sees_a_disconnect(self, chunks: bytes) -> None:
        messages = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            messages.append(await receive())

        raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
        async with serve(app) as server:
            response = await request(server, raw)
        assert response.status_code == 400
        assert messages == [{"type": "http.disconnect"}]

    @pytest.mark.parametrize(
        ("coding", "status"),
        [(b"gzip, chunked", 501), (b"chunked, chunked", 400)],
        ids=["unknown-coding", "chunked-twice"],
    )
    async def test_transfer_coding_other_than_chunked_is_refused(
        self, coding: bytes, status: int
    ) -> None:
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: %s\r\n\r\n0\r\n\r\n" % coding
        async with serve(echo_body) as server:
            response = await request(server, raw)
        assert response.status_code == status

    async def test_http_10_request_with_transfer_encoding_is_400(self) -> None:
        # RFC 9112 6.1: its framing "MUST" be treated as faulty; keep-alive would desync.
        raw = (
            b"POST / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        async with serve(echo_body) as server:
            response = await request(server, raw)
        assert response.status_code == 400

    async def test_http_11_request_without_host_is_400(self) -> None:
        async with serve(hello) as server:
            response = await request(server, b"GET / HTTP/1.1\r\n\r\n")
        assert response.status_code == 400

    async def test_http_10_request_without_host_is_served(self) -> None:
        async with serve(hello) as server:
            response = await request(server, b"GET / HTTP/1.0\r\n\r\n")
        assert response.status_code == 200

    async def test_request_with_two_host_fields_is_400(self) -> None:
        async with serve(hello) as server:
            response = await request(server, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert response.status_code == 400

    @pytest.mark.parametrize(
        "raw",
        [b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", b"GET /\r\n\r\n"],
        ids=["http-2.0", "http-0.9"],
    )
    async def test_http_version_other_than_1_0_or_1_1_is_505(self, raw: bytes) -> None:
        called = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            called.append(scope["http_version"])
            await hello(scope, receive, send)

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(raw)
            raw = await reader.read()
            writer.close()
        assert raw.startswith(b"HTTP/1.1 505 ")
        assert called == []

    @pytest.mark.parametrize(
        ("framing", "body"),
        [
            (b"Content-Length: 5\r\n", b"hello"),
            (b"Transfer-Encoding: chunked\r\n", b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"),
        ],
        ids=["content-length", "chunked"],
    )
    async def test_body_of_a_request_asking_for_an_unserved_upgrade_reaches_the_app(
        self, framing: bytes, body: bytes
    ) -> None:
        # curl --http2 and Java's HttpClient send "Upgrade: h2c" on POSTs; httptools
        # stops at such a head (MagicStack/httptools#124), the body must still arrive.
        raw = (
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n%s\r\n%s"
            % (framing, body)
        )
        async with serve(echo_body) as server:
            reader, writer = await open_raw(server)
            writer.write(raw[:-3])
            await writer.drain()
            writer.write(raw[-3:])
            response = await read_response(reader)
            writer.close()
        assert response.status_code == 200
        assert response.body == b"hello"


class TestApplicationHeaders:
    """Header names from the app compared without case: Django sends ``Content-Length``."""

    async def test_capitalised_content_length_frames_a_streamed_response(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"Content-Length", b"10")],
                }
            )
            await send({"type": "http.response.body", "body": b"01234", "more_body": True})
            await send({"type": "http.response.body", "body": b"56789"})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(GET)
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(10)
            writer.close()
        assert b"transfer-encoding" not in head.lower()
        assert head.lower().count(b"content-length") == 1
        assert body == b"0123456789"

    async def test_capitalised_connection_close_closes_after_the_response(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"Connection", b"close")],
                }
            )
            await send({"type": "http.response.body", "body": b"bye"})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(GET)
            raw = await reader.read()
            writer.close()
        assert raw.lower().count(b"connection: close") == 1
        assert raw.endswith(b"bye")

    @pytest.mark.parametrize("value", [b"-1", b"ten", b"1e3"])
    async def test_invalid_content_length_raises_out_of_send(self, value: bytes) -> None:
        errors = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", value)],
                    }
                )
            except RuntimeError as exc:
                errors.append(exc)
            await hello(scope, receive, send)

        async with serve(app) as server:
            response = await request(server, GET)
        assert "Content-Length" in str(errors[0])
        assert response.status_code == 200

    async def test_start_refused_for_a_bad_header_leaves_no_state_behind(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            headers = [(b"content-length", b"3"), (b"x-bad", b"a\nb")]
            with pytest.raises(RuntimeError):
                await send({"type": "http.response.start", "status": 200, "headers": headers})
            await hello(scope, receive, send)

        async with serve(app) as server:
            response = await request(server, GET)
        assert (response.status_code, response.body) == (200, b"hello")

    async def test_204_response_never_carries_content_length(self) -> None:
        # RFC 9110 8.6: "A server MUST NOT send a Content-Length header field in any
        # response with a status code of 1xx (Informational) or 204 (No Content)."
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body"})

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(GET)
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
        assert b"content-length" not in head.lower()

    async def test_content_shorter_than_content_length_closes_and_logs(self, caplog: Any) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"10")],
                }
            )
            await send({"type": "http.response.body", "body": b"short"})

        caplog.set_level(logging.ERROR, "protocols.http_ws.error")
        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(GET + GET)
            raw = await reader.read()
            writer.close()
        assert raw.count(b"HTTP/1.1 200") == 1
        assert raw.endswith(b"short")
        assert "shorter than Content-Length" in caplog.text

    async def test_content_longer_than_content_length_closes_and_logs(self, caplog: Any) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"6")],
                }
            )
            await send({"type": "http.response.body", "body": b"abc", "more_body": True})
            await send({"type": "http.response.body", "body": b"too long"})

        caplog.set_level(logging.ERROR, "protocols.http_ws.error")
        async with serve(app) as server:
            reader, writer = await open_raw(server)
            writer.write(GET + GET)
            raw = await reader.read()
            writer.close()
        assert raw.count(b"HTTP/1.1 200") == 1
        assert raw.endswith(b"abc")
        assert "longer than Content-Length" in caplog.text

    async def test_first_body_longer_than_content_length_is_500(self, caplog: Any) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"3")],
                }
            )
            await send({"type": "http.response.body", "body": b"too long"})

        caplog.set_level(logging.ERROR, "protocols.http_ws.error")
        async with serve(app) as server:
            response = await request(server, GET)
        assert response.status_code == 500
        assert "longer than Content-Length" in caplog.text
