"""STARTTLS, implicit TLS and AUTH: what is offered when, and who decides."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest
import trustme
import uvloop

from tests.protocols.smtp.helpers import RawClient, ScriptedApp, serve

MESSAGE = b"Subject: hi\r\n\r\nHello.\r\n"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, ssl.SSLContext]]:
    """A test CA, a server certificate for 127.0.0.1, and a client context trusting it."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory = Path(tmp_path_factory.mktemp("tls"))
    chain, key = directory / "chain.pem", directory / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return {"ssl_certfile": str(chain), "ssl_keyfile": str(key)}, client_context


def password_app() -> ScriptedApp:
    def check(event: dict) -> dict | None:
        if (event["login"], event["password"]) == ("ann", "s3cret"):
            return {"type": "smtp.auth.accept", "user": "ann@example.org"}
        return {"type": "smtp.auth.reject"}

    return ScriptedApp(on_auth=check)


class TestStartTls:
    async def test_starttls_is_offered_and_the_events_carry_tls_details(
        self, certificate: tuple[dict, ssl.SSLContext]
    ) -> None:
        options, context = certificate
        app = ScriptedApp()
        async with serve(app, **options) as (_, port):

            def run() -> tuple[bool, bool]:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
                    client.ehlo()
                    offered = client.has_extn("starttls")
                    auth_before = client.has_extn("auth")
                    client.starttls(context=context)
                    client.ehlo()
                    assert client.has_extn("auth")
                    client.sendmail("a@example.org", ["b@example.com"], MESSAGE)
                    return offered, auth_before

            offered, auth_before = await asyncio.to_thread(run)
        assert offered
        assert not auth_before  # AUTH is offered only over TLS
        tls = app.messages[0]["tls"]
        assert tls["tls_version"] in (0x0303, 0x0304)
        assert tls["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
        assert "PRIVATE KEY" not in tls["server_cert"]  # the file holds the key too
        assert app.scope["tls"] is None  # the session started in plain text

    async def test_required_starttls_refuses_mail_before_it(
        self, certificate: tuple[dict, ssl.SSLContext]
    ) -> None:
        options, _ = certificate
        async with serve(ScriptedApp(), require_starttls=True, **options) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            code, _ = await client.command(b"MAIL FROM:<a@example.org>")
            await client.close()
        assert code == 530

    async def test_starttls_works_on_uvloop(self, certificate: tuple[dict, ssl.SSLContext]) -> None:
        options, context = certificate

        async def main() -> list[dict]:
            app = ScriptedApp()
            async with serve(app, **options) as (_, port):
                client = aiosmtplib.SMTP(
                    hostname="127.0.0.1", port=port, tls_context=context, start_tls=True
                )
                async with client:
                    await client.sendmail("a@example.org", ["b@example.com"], MESSAGE)
            return app.messages

        messages = await asyncio.to_thread(uvloop.run, main())
        assert messages[0]["tls"] is not None


class TestImplicitTls:
    async def test_implicit_tls_session_has_tls_in_the_scope_and_offers_auth(
        self, certificate: tuple[dict, ssl.SSLContext]
    ) -> None:
        options, context = certificate
        app = password_app()
        async with serve(app, implicit_tls=True, **options) as (server, port):
            assert server.config.is_tls
            async with aiosmtplib.SMTP(
                hostname="127.0.0.1", port=port, use_tls=True, tls_context=context
            ) as client:
                assert not client.supports_extension("starttls")
                await client.login("ann", "s3cret")
                await client.sendmail("a@example.org", ["b@example.com"], MESSAGE)
        assert app.scope["tls"]["tls_version"] in (0x0303, 0x0304)
        assert app.messages[0]["user"] == "ann@example.org"


class TestAuth:
    async def test_auth_over_plaintext_is_refused_with_538_unless_allowed(self) -> None:
        async with serve(password_app()) as (_, port):
            client = await RawClient.open(port)
            _, ehlo = await client.command(b"EHLO c.example")
            code, _ = await client.command(b"AUTH PLAIN AGFubgBzM2NyZXQ=")
            await client.close()
        assert "AUTH" not in ehlo
        assert code == 538

    @pytest.mark.parametrize("method", ["plain", "login"])
    async def test_good_credentials_are_accepted_and_the_user_is_in_the_events(
        self, method: str
    ) -> None:
        app = password_app()
        async with serve(app, auth_allow_plaintext=True) as (_, port):

            def run() -> None:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
                    client.ehlo()
                    client.user, client.password = "ann", "s3cret"
                    assert client.auth(method, getattr(client, f"auth_{method}"))[0] == 235
                    client.sendmail("a@example.org", ["b@example.com"], MESSAGE)

            await asyncio.to_thread(run)
        auth = next(e for e in app.events if e["type"] == "smtp.auth")
        assert (auth["mechanism"], auth["login"], auth["password"]) == (
            method.upper(),
            "ann",
            "s3cret",
        )
        assert app.messages[0]["user"] == "ann@example.org"

    async def test_bad_credentials_get_535(self) -> None:
        async with serve(password_app(), auth_allow_plaintext=True) as (_, port):
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                await asyncio.to_thread(_login, port, "ann", "wrong")
        assert refused.value.smtp_code == 535

    async def test_submission_listener_refuses_mail_before_auth_with_530(self) -> None:
        app = password_app()
        async with serve(app, auth_allow_plaintext=True, auth_required=True) as (_, port):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            code, _ = await client.command(b"MAIL FROM:<a@example.org>")
            assert (await client.command(b"AUTH PLAIN AGFubgBzM2NyZXQ="))[0] == 235
            assert (await client.command(b"MAIL FROM:<a@example.org>"))[0] == 250
            await client.close()
        assert code == 530

    async def test_authenticated_client_may_relay_on_an_mx_listener(self) -> None:
        app = password_app()
        async with serve(app, auth_allow_plaintext=True, local_domains=("example.com",)) as (
            _,
            port,
        ):
            client = await RawClient.open(port)
            await client.command(b"EHLO c.example")
            await client.command(b"AUTH PLAIN AGFubgBzM2NyZXQ=")
            await client.command(b"MAIL FROM:<a@example.org>")
            assert (await client.command(b"RCPT TO:<x@elsewhere.net>"))[0] == 250
            await client.close()

    async def test_no_mechanisms_means_no_auth(self) -> None:
        async with serve(ScriptedApp(), auth_allow_plaintext=True, auth_mechanisms=()) as (_, port):
            client = await RawClient.open(port)
            _, ehlo = await client.command(b"EHLO c.example")
            code, _ = await client.command(b"AUTH PLAIN AGFubgBzM2NyZXQ=")
            await client.close()
        assert "AUTH" not in ehlo
        assert code == 504


def _login(port: int, user: str, password: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.login(user, password)
