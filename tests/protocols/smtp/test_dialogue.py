"""The SMTP dialogue with real clients: the application's decisions and their exact codes."""

from __future__ import annotations

import asyncio
import smtplib

import aiosmtplib
import pytest

from tests.protocols.smtp.helpers import RawClient, ScriptedApp, serve

MESSAGE = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"


async def send_with_smtplib(port: int, *args: object) -> object:
    def run() -> object:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            return client.sendmail(*args)

    return await asyncio.to_thread(run)


class TestConnect:
    async def test_accepted_session_gets_the_greeting_with_the_hostname(self) -> None:
        app = ScriptedApp()
        async with serve(app) as (_, port):
            client = await RawClient.open(port, greet=False)
            code, text = await client.reply()
            await client.close()
        assert (code, text) == (220, "hub.test ESMTP hub")
        assert app.events[0] == {"type": "smtp.connect"}
        assert app.scope["type"] == "smtp"
        assert app.scope["mode"] == "smtp"
        assert app.scope["client"][0] == "127.0.0.1"

    async def test_refused_session_gets_554_and_is_closed(self) -> None:
        app = ScriptedApp(on_connect=lambda e: {"type": "smtp.reject"})
        async with serve(app) as (_, port):
            client = await RawClient.open(port, greet=False)
            assert await client.reply() == (554, "5.7.1 Service unavailable")
            assert await client.closed()

    async def test_refusal_may_be_421_with_the_apps_text(self) -> None:
        app = ScriptedApp(
            on_connect=lambda e: {"type": "smtp.reject", "code": 421, "message": "4.3.2 later"}
        )
        async with serve(app) as (_, port):
            client = await RawClient.open(port, greet=False)
            assert await client.reply() == (421, "4.3.2 later")


class TestRecipients:
    async def test_refused_recipient_gets_the_apps_code_and_others_get_the_message(self) -> None:
        def rcpt(event: dict) -> dict | None:
            if event["address"].startswith("nobody"):
                return {"type": "smtp.rcpt.reject", "code": 550, "message": "5.1.1 No such user"}
            return None

        app = ScriptedApp(on_rcpt=rcpt)
        async with serve(app) as (_, port):
            refused = await send_with_smtplib(
                port, "a@example.org", ["b@example.com", "nobody@example.com"], MESSAGE
            )
        assert refused == {"nobody@example.com": (550, b"5.1.1 No such user")}
        assert app.messages[0]["rcpt_tos"] == ["b@example.com"]

    @pytest.mark.parametrize("code", [450, 451, 452, 550, 551, 553])
    async def test_recipient_refusal_code_reaches_the_client(self, code: int) -> None:
        app = ScriptedApp(on_rcpt=lambda e: {"type": "smtp.rcpt.reject", "code": code})
        async with serve(app) as (_, port):
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
            await client.connect()
            await client.ehlo()
            await client.mail("a@example.org")
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await client.rcpt("b@example.com")
            await client.quit()
        assert refused.value.code == code

    async def test_recipient_over_the_limit_gets_452(self) -> None:
        app = ScriptedApp()
        async with serve(app, max_recipients=2) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            await client.command(b"MAIL FROM:<a@example.org>")
            assert (await client.command(b"RCPT TO:<1@example.com>"))[0] == 250
            assert (await client.command(b"RCPT TO:<2@example.com>"))[0] == 250
            assert await client.command(b"RCPT TO:<3@example.com>") == (
                452,
                "4.5.3 Too many recipients",
            )
            await client.close()
        assert [e["address"] for e in app.events if e["type"] == "smtp.rcpt"] == [
            "1@example.com",
            "2@example.com",
        ]

    async def test_foreign_domain_is_refused_as_relaying_on_an_mx_listener(self) -> None:
        app = ScriptedApp()
        async with serve(app, local_domains=("example.com",)) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            await client.command(b"MAIL FROM:<a@example.org>")
            assert (await client.command(b"RCPT TO:<b@EXAMPLE.com>"))[0] == 250
            assert await client.command(b"RCPT TO:<b@elsewhere.net>") == (
                550,
                "5.7.1 Relaying denied",
            )
            await client.close()

    async def test_app_sees_mail_from_only_when_it_asked(self) -> None:
        app = ScriptedApp(
            accept_mail=True,
            on_mail=lambda e: {"type": "smtp.mail.reject", "code": 553, "message": "5.7.1 no"},
        )
        async with serve(app) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            assert await client.command(b"MAIL FROM:<spam@example.org>") == (553, "5.7.1 no")
            await client.close()
        assert app.events[1]["mail_from"] == "spam@example.org"


class TestMessages:
    async def test_accepted_message_gets_250_with_the_queue_id(self) -> None:
        app = ScriptedApp(on_message=lambda e: {"type": "smtp.message.accept", "queue_id": "Q42"})
        async with serve(app) as (_, port):
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
            await client.connect()
            _, reply = await client.sendmail("a@example.org", ["b@example.com"], MESSAGE)
            await client.quit()
        assert reply == "2.0.0 OK: queued as Q42"
        event = app.messages[0]
        assert event["data"] == MESSAGE
        assert event["mail_from"] == "a@example.org"
        assert event["rcpt_tos"] == ["b@example.com"]
        assert event["helo"]
        assert event["transaction"] == 1

    @pytest.mark.parametrize("code", [451, 452, 550, 552, 554])
    async def test_refused_message_gets_the_apps_code(self, code: int) -> None:
        app = ScriptedApp(
            on_message=lambda e: {"type": "smtp.message.reject", "code": code, "message": "x"}
        )
        async with serve(app) as (_, port):
            with pytest.raises(smtplib.SMTPDataError) as refused:
                await send_with_smtplib(port, "a@example.org", ["b@example.com"], MESSAGE)
        assert refused.value.smtp_code == code

    async def test_dot_stuffing_round_trips(self) -> None:
        body = b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nend.\r\n. \r\n"
        app = ScriptedApp()
        async with serve(app) as (_, port):
            await send_with_smtplib(port, "a@example.org", ["b@example.com"], body)
        assert app.messages[0]["data"] == body

    async def test_null_sender_of_a_bounce_is_an_empty_string(self) -> None:
        app = ScriptedApp()
        async with serve(app) as (_, port):
            await send_with_smtplib(port, "<>", ["b@example.com"], MESSAGE)
        assert app.messages[0]["mail_from"] == ""

    async def test_two_transactions_in_one_session_are_numbered(self) -> None:
        app = ScriptedApp()
        async with serve(app) as (_, port):
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
            await client.connect()
            await client.sendmail("a@example.org", ["b@example.com"], MESSAGE)
            await client.sendmail("a@example.org", ["c@example.com"], MESSAGE)
            await client.quit()
        assert [m["transaction"] for m in app.messages] == [1, 2]
        assert app.events[-1] == {"type": "smtp.disconnect"}

    async def test_pipelined_commands_are_answered_in_order(self) -> None:
        app = ScriptedApp(
            on_rcpt=lambda e: (
                {"type": "smtp.rcpt.reject"} if e["address"].startswith("x@") else None
            )
        )
        async with serve(app) as (_, port):
            client = await RawClient.open(port)
            _code, text = await client.command(b"EHLO c.example")
            assert "PIPELINING" in text
            await client.send(
                b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n"
                b"RCPT TO:<x@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
            )
            replies = [(await client.reply())[0] for _ in range(5)]
            await client.send(MESSAGE + b".\r\n")
            final = await client.reply()
            await client.close()
        assert replies == [250, 250, 550, 250, 354]
        assert final[0] == 250
        assert app.messages[0]["rcpt_tos"] == ["b@example.com", "c@example.com"]

    async def test_aiosmtplib_pipelines_a_whole_transaction(self) -> None:
        app = ScriptedApp()
        async with (
            serve(app) as (_, port),
            aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client,
        ):
            assert client.supports_extension("pipelining")
            errors, _ = await client.sendmail(
                "a@example.org", ["b@example.com", "c@example.com"], MESSAGE
            )
        assert errors == {}
        assert app.messages[0]["rcpt_tos"] == ["b@example.com", "c@example.com"]


class TestHelp:
    async def test_help_lists_the_commands_and_gives_each_ones_syntax(self) -> None:
        async with serve(ScriptedApp()) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            code, text = await client.command(b"HELP")
            data = await client.command(b"HELP DATA")
            await client.close()
        assert code == 250
        assert {"DATA", "EHLO", "MAIL", "RCPT", "QUIT"} <= set(text.split(": ")[1].split())
        assert data == (250, "Syntax: DATA")


class TestUtf8:
    async def test_smtputf8_and_8bitmime_are_advertised_and_carried(self) -> None:
        body = "Subject: café\r\n\r\nnaïve\r\n".encode()
        app = ScriptedApp()
        async with (
            serve(app) as (_, port),
            aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client,
        ):
            assert client.supports_extension("smtputf8")
            assert client.supports_extension("8bitmime")
            await client.sendmail(
                "jörg@example.org", ["zoë@example.com"], body, mail_options=["SMTPUTF8"]
            )
        message = app.messages[0]
        assert message["mail_from"] == "jörg@example.org"
        assert message["rcpt_tos"] == ["zoë@example.com"]
        assert message["data"] == body
        assert "SMTPUTF8" in message["mail_options"]
