"""LMTP mode, PROXY protocol from trusted peers, unix sockets, and swaks as a client."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.protocols.smtp.helpers import RawClient, ScriptedApp, serve

MESSAGE = b"Subject: hi\r\n\r\nHello.\r\n"


class TestLmtp:
    async def test_lhlo_is_the_greeting_and_ehlo_is_unknown(self) -> None:
        app = ScriptedApp()
        async with serve(app, lmtp=True) as (_, port):
            client = await RawClient.open(port)
            assert (await client.command(b"EHLO c.example"))[0] == 500
            code, text = await client.command(b"LHLO c.example")
            await client.close()
        assert code == 250
        assert "PIPELINING" in text
        assert app.scope["mode"] == "lmtp"

    async def test_each_recipient_gets_its_own_reply_after_data(self) -> None:
        def verdict(event: dict) -> dict:
            return {
                "type": "smtp.message.accept",
                "queue_id": "L1",
                "rejected": {"full@example.com": [452, "4.2.2 Mailbox full"]},
            }

        app = ScriptedApp(on_message=verdict)
        async with serve(app, lmtp=True) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"LHLO c.example")
            await client.command(b"MAIL FROM:<a@example.org>")
            for address in (b"one", b"full", b"two"):
                await client.command(b"RCPT TO:<" + address + b"@example.com>")
            await client.command(b"DATA")
            await client.send(MESSAGE + b".\r\n")
            replies = [await client.reply() for _ in range(3)]
            await client.close()
        assert replies == [
            (250, "2.0.0 OK: queued as L1"),
            (452, "4.2.2 Mailbox full"),
            (250, "2.0.0 OK: queued as L1"),
        ]

    async def test_rejected_recipients_in_smtp_mode_raise_value_error(self) -> None:
        errors: list[Exception] = []

        def verdict(event: dict) -> dict:
            return {"type": "smtp.message.accept", "rejected": {"b@example.com": [550, "no"]}}

        class App(ScriptedApp):
            async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
                async def checked_send(message: dict) -> None:
                    try:
                        await send(message)
                    except ValueError as exc:
                        errors.append(exc)
                        await send({"type": "smtp.message.reject", "code": 451})

                await super().__call__(scope, receive, checked_send)

        async with serve(App(on_message=verdict)) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            await client.command(b"MAIL FROM:<a@example.org>")
            await client.command(b"RCPT TO:<b@example.com>")
            await client.command(b"DATA")
            await client.send(MESSAGE + b".\r\n")
            assert (await client.reply())[0] == 451
            await client.close()
        assert "LMTP only" in str(errors[0])

    async def test_lmtp_on_a_unix_socket(self, tmp_path: Path) -> None:
        from protocols.smtp import SmtpConfig, SmtpServer

        app = ScriptedApp()
        path = str(tmp_path / "lmtp.sock")
        server = SmtpServer(app, SmtpConfig(uds=path, lmtp=True, hostname="hub.test"))
        await server.start()
        try:
            assert server.bound_addresses == [path]
            reader, writer = await asyncio.open_unix_connection(path)
            client = RawClient(reader, writer)
            assert (await client.reply())[0] == 220
            await client.command(b"LHLO c.example")
            await client.command(b"MAIL FROM:<a@example.org>")
            await client.command(b"RCPT TO:<b@example.com>")
            await client.command(b"DATA")
            await client.send(MESSAGE + b".\r\n")
            assert (await client.reply())[0] == 250
            await client.close()
        finally:
            await server.wait_closed(2)
        assert app.scope["client"] is None
        assert app.messages[0]["data"] == MESSAGE


class TestProxyProtocol:
    async def test_trusted_peer_names_the_client_with_a_proxy_header(self) -> None:
        app = ScriptedApp()
        async with serve(app, proxy_protocol_from=("127.0.0.1",)) as (_, port):
            client = await RawClient.open(port, greet=False)
            await client.send(b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n")
            assert (await client.reply())[0] == 220
            await client.close()
        assert app.scope["client"] == ("203.0.113.7", 40000)
        assert app.scope["server"] == ("192.0.2.1", 25)
        assert app.scope["proxy"][0] == "127.0.0.1"

    async def test_trusted_peer_without_a_proxy_header_is_dropped(self) -> None:
        app = ScriptedApp()
        async with serve(app, proxy_protocol_from=("127.0.0.0/8",)) as (_, port):
            client = await RawClient.open(port, greet=False)
            await client.send(b"EHLO c.example\r\n")
            assert await client.closed()
        assert app.events == []

    async def test_other_peers_speak_smtp_directly(self) -> None:
        app = ScriptedApp()
        async with serve(app, proxy_protocol_from=("10.0.0.1",)) as (_, port):
            client = await RawClient.open(port)
            assert (await client.command(b"EHLO c.example"))[0] == 250
            await client.close()
        assert app.scope["proxy"] is None

    async def test_per_address_limit_counts_the_proxied_client(self) -> None:
        async with serve(
            ScriptedApp(), proxy_protocol_from=("127.0.0.1",), max_sessions_per_ip=1
        ) as (_, port):
            first = await RawClient.open(port, greet=False)
            await first.send(b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n")
            assert (await first.reply())[0] == 220
            other = await RawClient.open(port, greet=False)
            await other.send(b"PROXY TCP4 203.0.113.8 192.0.2.1 40001 25\r\n")
            assert (await other.reply())[0] == 220
            same = await RawClient.open(port, greet=False)
            await same.send(b"PROXY TCP4 203.0.113.7 192.0.2.1 40002 25\r\n")
            assert (await same.reply())[0] == 421
            for client in (first, other, same):
                await client.close()


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (apt-get)")
class TestSwaks:
    async def test_swaks_delivers_a_message_with_an_attachment(self, tmp_path: Path) -> None:
        attachment = tmp_path / "report.txt"
        attachment.write_text("numbers\n")
        app = ScriptedApp()
        async with serve(app) as (_, port):
            result = await asyncio.to_thread(
                subprocess.run,
                [
                    "swaks", "--server", "127.0.0.1", "--port", str(port),
                    "--from", "a@example.org", "--to", "b@example.com",
                    "--header", "Subject: from swaks", "--attach", f"@{attachment}",
                    "--pipeline",
                ],
                capture_output=True, text=True, timeout=20,
            )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        data = app.messages[0]["data"]
        assert b"Subject: from swaks" in data
        assert b"report.txt" in data
