"""The TCP server on real sockets: scope, framing, limits, flow control, half-close, errors."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest

from protocols.tcp import PeerDisconnected

from .helpers import Recorder, connect, connections, read_eof, serve


class TestScope:
    async def test_one_scope_per_connection_names_listener_addresses_and_framing(self) -> None:
        app = Recorder()
        async with serve(app, framing="line", name="gps") as (_server, port):
            reader, writer = await connect(port)
            writer.write(b"hi\n")
            assert await reader.readline() == b"hi\n"
            scope = app.scopes[0]
            assert scope["type"] == "tcp"
            assert scope["asgi"] == {"version": "3.0", "spec_version": "1.0"}
            assert scope["listener"] == "gps"
            assert scope["client"] == writer.get_extra_info("sockname")[:2]
            assert scope["server"] == ("127.0.0.1", port)
            assert scope["framing"] == {"mode": "line", "max_frame_size": 65536, "delimiter": b"\n"}
            assert scope["half_close"] is False
            assert scope["extensions"] == {}
            assert "state" not in scope
            writer.close()

    async def test_a_unix_socket_listener_serves_with_no_client_address(
        self, tmp_path: Any
    ) -> None:
        from protocols.tcp import TcpConfig, TcpServer

        app = Recorder()
        path = str(tmp_path / "tcp.sock")
        server = TcpServer(app, TcpConfig(uds=path, framing="line"))  # type: ignore[arg-type]
        await server.start()
        try:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"unix\n")
            assert await reader.readline() == b"unix\n"
            assert app.scopes[0]["client"] is None
            assert app.scopes[0]["listener"] == "default"
            writer.close()
        finally:
            await server.wait_closed(grace_seconds=1)


class TestFraming:
    async def test_many_lines_in_one_write_are_one_receive_each(self) -> None:
        app = Recorder()
        async with serve(app, framing="line", delimiter="\\r\\n") as (_, port):
            reader, writer = await connect(port)
            writer.write(b"one\r\ntwo\r\nthree\r\n")
            assert await reader.readuntil(b"three\r\n") == b"one\r\ntwo\r\nthree\r\n"
            assert app.received == [b"one", b"two", b"three"]
            writer.close()

    async def test_a_line_split_over_many_writes_is_one_receive(self) -> None:
        app = Recorder()
        async with serve(app, framing="line") as (_, port):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for byte in b"split line\n":
                    sock.sendall(bytes([byte]))
                    await asyncio.sleep(0)
                sock.settimeout(5)
                assert await asyncio.to_thread(sock.recv, 100) == b"split line\n"
            assert app.received == [b"split line"]

    @pytest.mark.parametrize(("delimiter", "wire_delimiter"), [("\\n", b"\n"), ("\\r\\n", b"\r\n")])
    async def test_sent_lines_are_framed_or_refused_as_the_line_framer_says(
        self, delimiter: str, wire_delimiter: bytes
    ) -> None:
        frames = [b"", b"12345678", b"a\rb", b"123456789", b"a" + wire_delimiter + b"b"]
        outcomes: list[Any] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            for frame in frames:
                try:
                    await send({"type": "tcp.send", "bytes": frame})
                    outcomes.append("sent")
                except ValueError as exc:
                    outcomes.append(str(exc))
            await send({"type": "tcp.close"})

        async with serve(app, framing="line", delimiter=delimiter, max_frame_size=8) as (_, port):
            reader, writer = await connect(port)
            assert await read_eof(reader) == b"12345678" + wire_delimiter + b"a\rb" + wire_delimiter
            writer.close()
        assert outcomes == [
            "sent",  # an empty frame sends nothing
            "sent",
            "sent",
            "frame of 9 bytes, over max_frame_size=8",
            f"a line frame must not contain the delimiter {wire_delimiter!r}",
        ]

    async def test_length_prefixed_frames_arrive_without_their_length_field(self) -> None:
        app = Recorder()
        options = {"framing": "length", "length_bytes": 2, "length_offset": 1}
        async with serve(app, **options) as (_, port):
            reader, writer = await connect(port)
            writer.write(b"A\x00\x05helloB\x00\x00")
            assert await reader.readexactly(11) == b"A\x00\x05helloB\x00\x00"
            assert app.received == [b"Ahello", b"B"]
            writer.close()

    async def test_raw_frames_are_what_each_read_returned(self) -> None:
        app = Recorder()
        async with serve(app) as (_, port):
            reader, writer = await connect(port)
            writer.write(b"\x00\x01\x02")
            assert await reader.readexactly(3) == b"\x00\x01\x02"
            assert b"".join(app.received) == b"\x00\x01\x02"
            writer.close()

    async def test_a_custom_framer_cuts_and_frames(self) -> None:
        app = Recorder()
        framer = "tests.protocols.tcp.framers:StxEtxFramer"
        async with serve(app, framing="custom", framer=framer) as (_, port):
            reader, writer = await connect(port)
            writer.write(b"\x02one\x03\x02tw")
            writer.write(b"o\x03")
            assert await reader.readexactly(10) == b"\x02one\x03\x02two\x03"
            assert app.received == [b"one", b"two"]
            writer.close()

    async def test_raw_send_bypasses_the_framing(self) -> None:
        class Greeter(Recorder):
            async def on_frame(self, frame: bytes, send: Any) -> None:
                await send({"type": "tcp.send", "bytes": b"> ", "raw": True})
                await send({"type": "tcp.send", "bytes": frame})

        async with serve(Greeter(), framing="line") as (_, port):
            reader, writer = await connect(port)
            writer.write(b"hi\n")
            assert await reader.readline() == b"> hi\n"
            writer.close()


class TestFrameLimits:
    async def test_an_oversize_frame_closes_only_its_connection(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = Recorder()
        async with serve(app, framing="line", max_frame_size=8) as (_, port):
            good_reader, good_writer = await connect(port)
            bad_reader, bad_writer = await connect(port)
            bad_writer.write(b"123456789\n")
            assert await read_eof(bad_reader) == b""
            disconnect = await app.next_disconnect()
            assert disconnect["reason"] == "frame_too_large"
            assert "over max_frame_size=8" in disconnect["message"]
            good_writer.write(b"12345678\n")
            assert await good_reader.readline() == b"12345678\n"
            good_writer.close()
        assert "tcp test 127.0.0.1:" in caplog.text
        assert "line of 9 bytes, over max_frame_size=8" in caplog.text

    async def test_an_oversize_length_field_closes_before_the_payload_is_sent(self) -> None:
        app = Recorder()
        async with serve(app, framing="length", max_frame_size=100) as (_, port):
            reader, writer = await connect(port)
            writer.write(b"\xff\xff")
            assert await read_eof(reader) == b""
            assert (await app.next_disconnect())["reason"] == "frame_too_large"

    async def test_bytes_a_custom_framer_rejects_close_as_invalid_frame(self) -> None:
        app = Recorder()
        framer = "tests.protocols.tcp.framers:StxEtxFramer"
        async with serve(app, framing="custom", framer=framer) as (_, port):
            reader, writer = await connect(port)
            writer.write(b"garbage")
            assert await read_eof(reader) == b""
            assert (await app.next_disconnect())["reason"] == "invalid_frame"


class TestIdleTimeout:
    async def test_a_silent_connection_is_closed_with_reason_timeout(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, "protocols.tcp")
        app = Recorder()
        async with serve(app, idle_timeout=0.05) as (_, port):
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""
            disconnect = await app.next_disconnect()
        assert disconnect["reason"] == "timeout"
        assert "nothing received for 0.05 s (idle_timeout)" in caplog.text

    async def test_a_connection_gone_quiet_is_closed_no_earlier_than_idle_timeout(
        self,
    ) -> None:
        app = Recorder()
        loop = asyncio.get_running_loop()
        async with serve(app, framing="line", idle_timeout=0.3) as (_, port):
            reader, writer = await connect(port)
            for _ in range(3):
                writer.write(b"beat\n")
                assert await reader.readline() == b"beat\n"
                await asyncio.sleep(0.12)
            last = loop.time()
            writer.write(b"last\n")
            assert await reader.readline() == b"last\n"
            assert await read_eof(reader) == b""
            assert loop.time() - last >= 0.3
            assert (await app.next_disconnect())["reason"] == "timeout"
            writer.close()

    async def test_data_keeps_a_connection_open_past_the_idle_timeout(self) -> None:
        app = Recorder()
        async with serve(app, framing="line", idle_timeout=0.2) as (_, port):
            reader, writer = await connect(port)
            for _ in range(6):
                writer.write(b"beat\n")
                assert await reader.readline() == b"beat\n"
                await asyncio.sleep(0.05)
            assert app.disconnects.empty()
            writer.close()


class TestConnectionLimits:
    async def test_connections_over_max_connections_are_closed_with_a_log_line(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = Recorder()
        async with serve(app, framing="line", max_connections=2) as (_server, port):
            clients = [await connect(port) for _ in range(2)]
            for reader, writer in clients:
                writer.write(b"in\n")
                assert await reader.readline() == b"in\n"
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""
            assert len(app.scopes) == 2
        assert "connection refused: 2 connections open (max_connections)" in caplog.text

    async def test_connections_over_the_per_client_limit_are_closed(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = Recorder()
        async with serve(app, framing="line", max_connections_per_client=1) as (_, port):
            first_reader, first_writer = await connect(port)
            first_writer.write(b"in\n")
            assert await first_reader.readline() == b"in\n"
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""
            first_writer.close()
            await app.next_disconnect()
            reader, writer = await connect(port)
            writer.write(b"again\n")
            assert await reader.readline() == b"again\n"
        assert "1 connections from 127.0.0.1 open (max_connections_per_client)" in caplog.text

    async def test_a_thousand_concurrent_connections_are_each_served(self) -> None:
        app = Recorder()
        async with serve(app, framing="line", max_connections_per_client=1000) as (_server, port):

            async def client(index: int) -> bytes:
                reader, writer = await connect(port)
                writer.write(b"%d\n" % index)
                line = await reader.readline()
                writer.close()
                return line

            async with asyncio.timeout(20):
                lines = await asyncio.gather(*(client(i) for i in range(1000)))
            assert lines == [b"%d\n" % i for i in range(1000)]


class TestFlowControl:
    async def test_a_peer_that_stops_reading_pauses_the_sender_and_bounds_memory(self) -> None:
        chunk = b"x" * 16384
        sent: list[int] = []
        done = asyncio.Event()

        async def flood(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            for _ in range(2000):  # 32 MiB: more than the kernel buffers hold
                await send({"type": "tcp.send", "bytes": chunk})
                sent.append(len(chunk))
            done.set()
            await send({"type": "tcp.close"})

        async with serve(flood, write_buffer_high_water=65536) as (server, port):
            reader, _writer = await connect(port)
            (connection,) = connections(server)
            async with asyncio.timeout(5):
                while not connection.flow.write_paused:
                    await asyncio.sleep(0.01)
            assert not done.is_set()
            assert connection.transport.get_write_buffer_size() <= 65536 + len(chunk)
            received = len(await read_eof(reader))
            assert done.is_set()
            assert received == sum(sent) == 2000 * len(chunk)

    async def test_an_app_that_stops_receiving_pauses_reading_at_max_queue(self) -> None:
        release = asyncio.Event()
        frames: list[bytes] = []

        async def slow(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            await release.wait()
            while (message := await receive())["type"] == "tcp.receive":
                frames.append(message["bytes"])

        async with serve(slow, framing="line", max_queue=4) as (server, port):
            _reader, writer = await connect(port)
            writer.write(b"f\n" * 10_000)
            (connection,) = connections(server)
            async with asyncio.timeout(5):
                while not connection.flow.read_paused or not connection.queue:
                    await asyncio.sleep(0.01)
            assert len(connection.queue) < 4 + 65536 // 2
            release.set()
            writer.close()
            async with asyncio.timeout(5):
                while len(frames) < 10_000:
                    await asyncio.sleep(0.01)
            assert frames == [b"f"] * 10_000


class TestReceive:
    async def test_a_receive_cancelled_by_a_timeout_loses_no_frame(self) -> None:
        got: list[bytes] = []
        timed_out = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(receive(), 0.05)
            timed_out.set()
            while (message := await receive())["type"] == "tcp.receive":
                got.append(message["bytes"])
                await send({"type": "tcp.send", "bytes": b"ok"})

        async with serve(app, framing="line") as (_, port):
            reader, writer = await connect(port)
            await timed_out.wait()
            writer.write(b"first\nsecond\n")
            assert await reader.readexactly(6) == b"ok\nok\n"
            writer.close()
        assert got == [b"first", b"second"]

    async def test_receive_and_send_are_awaitables_a_task_can_wait_on(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await asyncio.ensure_future(receive())
            await asyncio.ensure_future(send({"type": "tcp.accept"}))
            message = await asyncio.ensure_future(receive())
            await asyncio.ensure_future(send({"type": "tcp.send", "bytes": message["bytes"][::-1]}))

        async with serve(app, framing="line") as (_, port):
            reader, writer = await connect(port)
            writer.write(b"abc\n")
            assert await reader.readline() == b"cba\n"
            writer.close()

    async def test_frames_queued_before_the_peer_left_come_before_the_disconnect(self) -> None:
        received: list[Any] = []
        release = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            await release.wait()
            while (message := await receive())["type"] == "tcp.receive":
                received.append(message["bytes"])
            received.append(message["reason"])
            received.append((await receive())["type"])

        async with serve(app, framing="line") as (server, port):
            _reader, writer = await connect(port)
            writer.write(b"a\nb\n")
            (connection,) = connections(server)
            async with asyncio.timeout(5):
                while connection.next is None or not connection.queue:
                    await asyncio.sleep(0.01)
            writer.close()
            async with asyncio.timeout(5):
                while connection.disconnect is None:
                    await asyncio.sleep(0.01)
            release.set()
            async with asyncio.timeout(5):
                while len(received) < 4:
                    await asyncio.sleep(0.01)
        assert received == [b"a", b"b", "peer_closed", "tcp.disconnect"]


class TestHalfClose:
    async def test_a_peer_half_close_is_tcp_eof_and_the_app_can_still_answer(self) -> None:
        events: list[Any] = []

        async def summer(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            total = 0
            while (message := await receive())["type"] == "tcp.receive":
                total += int(message["bytes"])
            events.append(message)
            await send({"type": "tcp.send", "bytes": b"%d" % total, "eof": True})
            events.append(await receive())

        async with serve(summer, framing="line", half_close=True) as (_, port):
            reader, writer = await connect(port)
            writer.write(b"1\n2\n3\n")
            writer.write_eof()
            assert await read_eof(reader) == b"6\n"
            async with asyncio.timeout(5):
                while len(events) < 2:
                    await asyncio.sleep(0.01)
        assert events == [
            {"type": "tcp.eof"},
            {"type": "tcp.disconnect", "reason": "closed", "message": ""},
        ]

    async def test_an_app_half_close_still_receives_the_peers_frames(self) -> None:
        frames: list[bytes] = []

        async def listener(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            await send({"type": "tcp.send", "bytes": b"bye", "eof": True})
            with pytest.raises(
                RuntimeError, match=r"Expected ASGI message 'tcp.close', but got 'tcp.send'"
            ):
                await send({"type": "tcp.send", "bytes": b"more"})
            while (message := await receive())["type"] == "tcp.receive":
                frames.append(message["bytes"])
            frames.append(message["reason"].encode())

        async with serve(listener, framing="line", half_close=True) as (_, port):
            reader, writer = await connect(port)
            assert await read_eof(reader) == b"bye\n"
            writer.write(b"still here\n")
            writer.close()
            async with asyncio.timeout(5):
                while len(frames) < 2:
                    await asyncio.sleep(0.01)
        assert frames == [b"still here", b"peer_closed"]

    async def test_without_half_close_a_peer_half_close_ends_the_connection(self) -> None:
        app = Recorder()
        async with serve(app, framing="line") as (_, port):
            reader, writer = await connect(port)
            writer.write(b"last\n")
            writer.write_eof()
            assert await read_eof(reader) == b"last\n"
            assert (await app.next_disconnect())["reason"] == "peer_closed"

    async def test_a_partial_frame_at_eof_is_discarded_with_a_log_line(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, "protocols.tcp")
        app = Recorder()
        async with serve(app, framing="line") as (_, port):
            reader, writer = await connect(port)
            writer.write(b"whole\npart")
            writer.write_eof()
            assert await read_eof(reader) == b"whole\n"
            assert (await app.next_disconnect())["reason"] == "peer_closed"
        assert app.received == [b"whole"]
        assert "4 bytes without a delimiter discarded" in caplog.text


class TestApplicationErrors:
    async def test_a_crash_closes_only_its_connection_with_a_log_line(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Fragile(Recorder):
            async def on_frame(self, frame: bytes, send: Any) -> None:
                if frame == b"crash":
                    raise ZeroDivisionError("device said crash")
                await super().on_frame(frame, send)

        async with serve(Fragile(), framing="line") as (_, port):
            good_reader, good_writer = await connect(port)
            bad_reader, bad_writer = await connect(port)
            bad_writer.write(b"crash\n")
            assert await read_eof(bad_reader) == b""
            good_writer.write(b"fine\n")
            assert await good_reader.readline() == b"fine\n"
            good_writer.close()
        assert "application crashed: ZeroDivisionError: device said crash" in caplog.text

    async def test_an_app_failing_before_it_runs_is_logged_and_closes_its_connection(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        # The server calls the app, then runs the coroutine it returns as a task:
        # a callable that raises at the call is reported as a crash all the same.
        def unbuildable(scope: Any, receive: Any, send: Any) -> Any:
            raise LookupError("no consumer for this device")

        async with serve(unbuildable) as (_, port):
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""
        assert "application crashed: LookupError: no consumer for this device" in caplog.text

    @pytest.mark.parametrize("kind", ["awaitable object", "future"])
    async def test_an_app_returning_an_awaitable_that_is_not_a_coroutine_is_served(
        self, kind: str
    ) -> None:
        # ASGI promises only an awaitable; the server runs coroutines as tasks directly.
        async def echo_once(receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            message = await receive()
            await send({"type": "tcp.send", "bytes": message["bytes"]})
            await send({"type": "tcp.close"})

        class Instance:
            def __init__(self, receive: Any, send: Any) -> None:
                self.coroutine = echo_once(receive, send)

            def __await__(self) -> Any:
                return self.coroutine.__await__()

        def app(scope: Any, receive: Any, send: Any) -> Any:
            if kind == "future":
                return asyncio.ensure_future(echo_once(receive, send))
            return Instance(receive, send)

        async with serve(app, framing="line") as (_, port):
            reader, writer = await connect(port)
            writer.write(b"hi\n")
            assert await read_eof(reader) == b"hi\n"

    async def test_sending_before_accepting_names_what_was_expected(self) -> None:
        errors: list[str] = []

        async def eager(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            try:
                await send({"type": "tcp.send", "bytes": b"hello"})
            except RuntimeError as exc:
                errors.append(str(exc))
            await send({"type": "tcp.close"})

        async with serve(eager) as (_, port):
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""
        assert errors == ["Expected ASGI message 'tcp.accept' or 'tcp.close', but got 'tcp.send'"]

    async def test_accepting_twice_names_what_was_expected(self) -> None:
        errors: list[str] = []

        async def twice(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            try:
                await send({"type": "tcp.accept"})
            except RuntimeError as exc:
                errors.append(str(exc))

        async with serve(twice) as (_, port):
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""
        assert errors == ["Expected ASGI message 'tcp.send' or 'tcp.close', but got 'tcp.accept'"]

    async def test_returning_without_accepting_closes_with_a_log_line(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        async def silent(scope: Any, receive: Any, send: Any) -> None:
            await receive()

        async with serve(silent) as (_, port):
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""
        assert "application returned without accepting or closing the connection" in caplog.text

    async def test_closing_instead_of_accepting_refuses_the_connection(self) -> None:
        async def refuse(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.close"})
            assert (await receive())["reason"] == "closed"

        async with serve(refuse) as (_, port):
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""

    async def test_a_send_that_is_not_bytes_raises_value_error(self) -> None:
        errors: list[str] = []

        async def wrong(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            try:
                await send({"type": "tcp.send", "bytes": "text"})
            except ValueError as exc:
                errors.append(str(exc))

        async with serve(wrong) as (_, port):
            reader, _ = await connect(port)
            assert await read_eof(reader) == b""
        assert errors == ["tcp.send 'bytes' must be a byte string, got str"]

    async def test_sending_after_the_peer_left_raises_peer_disconnected(self) -> None:
        outcome: list[Any] = []

        async def late(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            outcome.append(await receive())
            try:
                await send({"type": "tcp.send", "bytes": b"too late"})
            except PeerDisconnected as exc:
                outcome.append(exc)
            await send({"type": "tcp.close"})

        async with serve(late) as (_, port):
            _, writer = await connect(port)
            writer.close()
            async with asyncio.timeout(5):
                while len(outcome) < 2:
                    await asyncio.sleep(0.01)
        assert outcome[0]["reason"] == "peer_closed"
        assert isinstance(outcome[1], PeerDisconnected)


class TestShutdown:
    async def test_shutdown_closes_connections_with_reason_shutdown(self) -> None:
        app = Recorder()
        async with serve(app, framing="line") as (server, port):
            reader, writer = await connect(port)
            writer.write(b"up\n")
            assert await reader.readline() == b"up\n"
            await server.wait_closed(grace_seconds=2)
            assert (await app.next_disconnect())["reason"] == "shutdown"
            assert await read_eof(reader) == b""
            assert server.connection_count == 0

    async def test_an_app_that_ignores_shutdown_is_cancelled_after_the_grace(self) -> None:
        cancelled = asyncio.Event()

        async def stubborn(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.set()

        async with serve(stubborn) as (server, port):
            _reader, _ = await connect(port)
            async with asyncio.timeout(5):
                while not connections(server) or connections(server)[0].phase.value != "open":
                    await asyncio.sleep(0.01)
            await server.wait_closed(grace_seconds=0.05)
            assert cancelled.is_set()
