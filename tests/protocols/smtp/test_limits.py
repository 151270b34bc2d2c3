"""Limits, timeouts, bad input, misbehaving applications and shutdown, with their exact codes."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from typing import Any

import aiosmtplib
import pytest

from tests.protocols.smtp.helpers import RawClient, ScriptedApp, serve

MESSAGE = b"Subject: hi\r\n\r\nHello.\r\n"


async def transaction(client: RawClient) -> None:
    await client.command(b"EHLO c.example")
    assert (await client.command(b"MAIL FROM:<a@example.org>"))[0] == 250
    assert (await client.command(b"RCPT TO:<b@example.com>"))[0] == 250


class TestSize:
    async def test_size_is_advertised(self) -> None:
        async with serve(ScriptedApp(), max_message_size=1000) as (_, port):
            client = await RawClient.open(port)
            _, text = await client.command(b"EHLO c.example")
            await client.close()
        assert "SIZE 1000" in text.splitlines()

    async def test_declared_size_over_the_limit_gets_552_at_mail(self) -> None:
        async with serve(ScriptedApp(), max_message_size=1000) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            code, _ = await client.command(b"MAIL FROM:<a@example.org> SIZE=1001")
            assert (await client.command(b"MAIL FROM:<a@example.org> SIZE=1000"))[0] == 250
            await client.close()
        assert code == 552

    async def test_message_at_the_limit_passes_and_one_byte_over_gets_552(self) -> None:
        app = ScriptedApp()
        head = b"Subject: s\r\n\r\n"
        at_limit = head + b"x" * (1000 - len(head) - 2) + b"\r\n"
        assert len(at_limit) == 1000
        async with serve(app, max_message_size=1000) as (_, port):
            client = await RawClient.open(port)
            for body, expected in ((at_limit, 250), (b"y" + at_limit, 552)):
                await transaction(client)
                assert (await client.command(b"DATA"))[0] == 354
                await client.send(body + b".\r\n")
                assert (await client.reply())[0] == expected
                await client.command(b"RSET")
            await client.close()
        assert [m["data"] for m in app.messages] == [at_limit]

    async def test_text_line_over_the_limit_is_refused(self) -> None:
        app = ScriptedApp()
        async with serve(app, max_line_length=100) as (_, port):
            client = await RawClient.open(port)
            await transaction(client)
            await client.command(b"DATA")
            await client.send(b"Subject: s\r\n\r\n" + b"x" * 99 + b"\r\n.\r\n")
            code, _ = await client.reply()
            await client.close()
        assert code == 500
        assert app.messages == []

    async def test_command_line_over_the_limit_gets_500(self) -> None:
        async with serve(ScriptedApp(), max_command_length=64) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            at_limit = await client.command(b"NOOP " + b"x" * 59)
            over = await client.command(b"NOOP " + b"x" * 60)
            await client.close()
        assert at_limit[0] == 250
        assert over == (500, "Command line too long")


class TestBadInput:
    @pytest.mark.parametrize(
        "line",
        [
            b"\x00\x00\x00",
            b"EH\x00LO x",
            b"\xff\xfe garbage",
            b"GARBAGE",
            b"MAIL\x00FROM:<a@b>",
            b"",
        ],
    )
    async def test_garbage_and_nul_bytes_get_5xx_and_the_session_goes_on(self, line: bytes) -> None:
        async with serve(ScriptedApp()) as (_, port):
            client = await RawClient.open(port)
            code, _ = await client.command(line)
            assert 500 <= code < 600
            assert (await client.command(b"NOOP"))[0] == 250
            await client.close()

    async def test_rcpt_before_mail_gets_503(self) -> None:
        async with serve(ScriptedApp()) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            assert (await client.command(b"RCPT TO:<b@example.com>"))[0] == 503
            await client.close()

    async def test_malformed_address_gets_553(self) -> None:
        async with serve(ScriptedApp()) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            assert (await client.command(b"MAIL FROM:<a@@b c>"))[0] == 553
            await client.close()


class TestTimeouts:
    async def test_stalled_client_gets_421_while_others_are_served(self) -> None:
        app = ScriptedApp()
        async with serve(app, command_timeout=0.5) as (_, port):
            stalled = await RawClient.open(port)
            await stalled.command(b"EHLO c.example")
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as active:
                await active.sendmail("a@example.org", ["b@example.com"], MESSAGE)
            assert await stalled.reply() == (421, "4.4.2 Timeout, closing connection")
            assert await stalled.closed()
        assert len(app.messages) == 1

    async def test_idle_time_counts_from_the_last_command(self) -> None:
        app = ScriptedApp()
        async with serve(app, command_timeout=1.0) as (_, port):
            client = await RawClient.open(port)
            for _ in range(6):  # 1.5 s in all, never 1 s idle
                assert (await client.command(b"NOOP"))[0] == 250
                await asyncio.sleep(0.25)
            assert (await client.reply())[0] == 421
            assert await client.closed()

    async def test_client_that_stops_in_the_middle_of_data_is_timed_out(self) -> None:
        app = ScriptedApp()
        async with serve(app, data_timeout=0.5) as (_, port):
            client = await RawClient.open(port)
            await transaction(client)
            await client.command(b"DATA")
            await client.send(b"Subject: half\r\n")
            assert (await client.reply())[0] == 421
        assert app.messages == []

    async def test_app_that_does_not_answer_in_time_gives_451(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        never: asyncio.Event = asyncio.Event()
        app = ScriptedApp(gate=never)
        async with serve(app, app_timeout=0.3) as (_, port):
            client = await RawClient.open(port)
            await transaction(client)
            await client.command(b"DATA")
            await client.send(MESSAGE + b".\r\n")
            code, text = await client.reply()
            assert (code, text) == (451, "4.3.0 Local error in processing, try again later")
            # The app is gone for this session: the next question closes it with 421.
            await client.command(b"MAIL FROM:<a@example.org>")
            assert (await client.command(b"RCPT TO:<b@example.com>"))[0] == 421
        assert "no answer to smtp.message" in caplog.text
        assert "within 0.3 s" in caplog.text

    async def test_app_timeout_counts_for_each_question_alone(self) -> None:
        async def slow_app(scope: object, receive: Any, send: Any) -> None:
            while (event := await receive())["type"] != "smtp.disconnect":
                await asyncio.sleep(0.15)  # each answer in time, all of them together not
                kind = event["type"]
                accept = "smtp.accept" if kind == "smtp.connect" else f"{kind}.accept"
                await send({"type": accept})

        async with serve(slow_app, app_timeout=0.5) as (_, port):
            client = await RawClient.open(port)
            await transaction(client)
            for n in range(3):
                assert (await client.command(b"RCPT TO:<c%d@example.com>" % n))[0] == 250
            await client.command(b"DATA")
            await client.send(MESSAGE + b".\r\n")
            assert (await client.reply())[0] == 250
            await client.close()


class TestApplicationFailures:
    async def test_crash_on_a_message_gives_451_and_the_next_session_works(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        calls = []

        def crash_once(event: dict) -> dict | None:
            calls.append(event)
            if len(calls) == 1:
                raise ValueError("disk full")
            return None

        app_factory_calls = []

        async def app(scope: dict, receive: object, send: object) -> None:
            instance = ScriptedApp(on_message=crash_once)
            app_factory_calls.append(instance)
            await instance(scope, receive, send)

        async with serve(app) as (_, port):
            with pytest.raises(smtplib.SMTPDataError) as refused:
                await asyncio.to_thread(_sendmail, port)
            await asyncio.to_thread(_sendmail, port)
        assert refused.value.smtp_code == 451
        assert len(calls) == 2
        record = next(r for r in caplog.records if "disk full" in r.getMessage())
        assert record.levelno == logging.ERROR
        assert "from=<a@example.org> to=<b@example.com>" in record.getMessage()
        assert "smtp 127.0.0.1:" in record.getMessage()

    async def test_crash_on_connect_gives_421(self) -> None:
        def crash(event: dict) -> dict:
            raise RuntimeError("boom")

        async with serve(ScriptedApp(on_connect=crash)) as (_, port):
            client = await RawClient.open(port, greet=False)
            assert (await client.reply())[0] == 421
            assert await client.closed()

    async def test_answer_of_the_wrong_type_raises_out_of_send(self) -> None:
        errors: list[BaseException] = []

        async def app(scope: dict, receive: object, send: object) -> None:
            await receive()  # type: ignore[operator]
            try:
                await send({"type": "smtp.message.accept"})  # type: ignore[operator]
            except RuntimeError as exc:
                errors.append(exc)
            await send({"type": "smtp.reject"})  # type: ignore[operator]

        async with serve(app) as (_, port):
            client = await RawClient.open(port, greet=False)
            assert (await client.reply())[0] == 554
        assert str(errors[0]) == (
            "Expected ASGI message 'smtp.accept' or 'smtp.reject', but got 'smtp.message.accept'"
        )

    @pytest.mark.parametrize("code", [250, 399, 600, "550"])
    async def test_reject_code_outside_4xx_5xx_raises_value_error(self, code: object) -> None:
        errors: list[BaseException] = []

        async def app(scope: dict, receive: object, send: object) -> None:
            await receive()  # type: ignore[operator]
            await send({"type": "smtp.accept"})  # type: ignore[operator]
            while (await receive())["type"] != "smtp.rcpt":  # type: ignore[operator]
                pass
            try:
                await send({"type": "smtp.rcpt.reject", "code": code})  # type: ignore[operator]
            except ValueError as exc:
                errors.append(exc)
            await send({"type": "smtp.rcpt.reject", "message": "5.1.1 multi\nline"})  # type: ignore[operator]
            await receive()  # type: ignore[operator]

        async with serve(app) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            await client.command(b"MAIL FROM:<a@example.org>")
            assert await client.command(b"RCPT TO:<b@example.com>") == (550, "5.1.1 multi\nline")
            await client.close()
        assert "400 to 599" in str(errors[0])


def _sendmail(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.sendmail("a@example.org", ["b@example.com"], MESSAGE)


class TestSessionLimits:
    async def test_session_over_the_server_limit_gets_421(self) -> None:
        async with serve(ScriptedApp(), max_sessions=2) as (_server, port):
            first = await RawClient.open(port)
            second = await RawClient.open(port)
            third = await RawClient.open(port, greet=False)
            assert await third.reply() == (421, "4.7.0 Too many connections, try again later")
            assert await third.closed()
            await first.close()
            await second.close()

    async def test_session_over_the_per_address_limit_gets_421(self) -> None:
        async with serve(ScriptedApp(), max_sessions_per_ip=1) as (_, port):
            first = await RawClient.open(port)
            second = await RawClient.open(port, greet=False)
            assert (await second.reply())[0] == 421
            await first.command(b"QUIT")
            await first.close()
            assert await second.closed()
            third = await RawClient.open(port)  # the count went down with the first
            await third.close()

    async def test_hundred_concurrent_sessions_each_deliver_a_message(self) -> None:
        app_events: list[dict] = []

        async def app(scope: dict, receive: object, send: object) -> None:
            instance = ScriptedApp()
            instance.events = app_events
            await instance(scope, receive, send)

        async def one(index: int) -> None:
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=20) as client:
                await client.sendmail("a@example.org", [f"r{index}@example.com"], MESSAGE)

        async with serve(app, max_sessions_per_ip=200) as (_, port):
            await asyncio.gather(*(one(i) for i in range(100)))
        delivered = {e["rcpt_tos"][0] for e in app_events if e["type"] == "smtp.message"}
        assert delivered == {f"r{i}@example.com" for i in range(100)}


class TestShutdown:
    async def test_idle_session_gets_421_when_the_server_closes(self) -> None:
        async with serve(ScriptedApp()) as (server, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            server.close()
            assert await client.reply() == (421, "4.3.2 Service shutting down, try again later")
            assert await client.closed()

    async def test_message_in_progress_is_finished_then_the_next_command_gets_421(self) -> None:
        gate = asyncio.Event()
        app = ScriptedApp(gate=gate)
        async with serve(app) as (server, port):
            client = await RawClient.open(port)
            await transaction(client)
            await client.command(b"DATA")
            await client.send(MESSAGE + b".\r\n")
            while not app.messages:
                await asyncio.sleep(0.01)
            closing = asyncio.ensure_future(server.wait_closed(5))
            await asyncio.sleep(0)
            gate.set()
            assert (await client.reply())[0] == 250
            assert (await client.command(b"MAIL FROM:<a@example.org>"))[0] == 421
            await closing
        assert app.disconnected.is_set()
