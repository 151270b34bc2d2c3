"""hub's runner serving SMTP: parse_listener -> Hub -> router -> consumer, with Django users."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from hub.db import database_sync_to_async
from hub.generic.smtp import AsyncSmtpConsumer
from hub.listeners import ListenerSpec, parse_listener
from hub.mail import Envelope, InboundEmail
from hub.routing import ProtocolTypeRouter
from hub.server import Hub
from hub.smtp_routing import RecipientRouter, recipient

received: list[tuple[Envelope, InboundEmail, dict[str, Any]]] = []


class Inbox(AsyncSmtpConsumer):
    async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> str:
        received.append((envelope, email, kwargs))
        return "E2E"


class Account(AsyncSmtpConsumer):
    async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> None:
        received.append((envelope, email, {"user": self.user}))


@pytest.fixture
async def hub_port() -> AsyncIterator[int]:
    received.clear()
    application = ProtocolTypeRouter(
        {"smtp": RecipientRouter([recipient("inbox+<int:box>@example.com", Inbox.as_asgi())])}
    )
    listener = parse_listener("smtp", "127.0.0.1:0?auth_allow_plaintext=true&hostname=hub.test")
    hub = Hub(application, [listener], lifespan="off")
    await hub.start()
    try:
        [(_, server)] = hub.servers
        yield server.bound_addresses[0][1]
    finally:
        await hub.wait_closed(grace=2)


def send(port: int, to: str, login: tuple[str, str] | None = None) -> dict:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        if login:
            client.login(*login)
        return client.sendmail("a@example.org", [to], b"Subject: e2e\r\n\r\nhello\r\n")


class TestRunner:
    async def test_listener_options_from_the_command_line_reach_the_config(self) -> None:
        spec = parse_listener("smtp", "0.0.0.0:25?max_recipients=5&local_domains=a.org,b.org")
        config = spec.build_config()
        assert (config.port, config.max_recipients) == (25, 5)
        assert tuple(config.local_domains) == ("a.org", "b.org")
        assert ListenerSpec("smtp", host="127.0.0.1").build_config().port == 2525

    async def test_message_through_the_hub_reaches_the_routed_consumer(self, hub_port: int) -> None:
        assert await asyncio.to_thread(send, hub_port, "inbox+3@example.com") == {}
        envelope, email, kwargs = received[0]
        assert email.subject == "e2e"
        assert kwargs == {"box": 3}
        assert envelope.rcpt_tos == ("inbox+3@example.com",)

    async def test_unrouted_address_is_refused_during_the_dialogue(self, hub_port: int) -> None:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            await asyncio.to_thread(send, hub_port, "nobody@example.com")
        assert refused.value.recipients["nobody@example.com"][0] == 550


@pytest.mark.django_db(transaction=True)
class TestDjangoAuth:
    @pytest.fixture
    async def user(self) -> Any:
        create = get_user_model().objects.create_user
        return await database_sync_to_async(create)("ann", password="s3cret")

    async def test_django_user_authenticates_and_is_named_in_the_message(
        self, hub_port: int, user: Any
    ) -> None:
        await asyncio.to_thread(send, hub_port, "inbox+1@example.com", ("ann", "s3cret"))
        envelope, _, _ = received[0]
        assert envelope.user == "ann"

    async def test_wrong_password_gets_535(self, hub_port: int, user: Any) -> None:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            await asyncio.to_thread(send, hub_port, "inbox+1@example.com", ("ann", "nope"))
        assert refused.value.smtp_code == 535

    async def test_inactive_user_gets_535(self, hub_port: int, user: Any) -> None:
        user.is_active = False
        await database_sync_to_async(user.save)()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            await asyncio.to_thread(send, hub_port, "inbox+1@example.com", ("ann", "s3cret"))

    async def test_consumer_without_a_router_keeps_the_django_user(self, user: Any) -> None:
        received.clear()
        listener = parse_listener("smtp", "127.0.0.1:0?auth_allow_plaintext=true")
        hub = Hub(Account.as_asgi(), [listener], lifespan="off")
        await hub.start()
        try:
            port = hub.servers[0][1].bound_addresses[0][1]
            await asyncio.to_thread(send, port, "me@example.com", ("ann", "s3cret"))
        finally:
            await hub.wait_closed(grace=2)
        assert received[0][2]["user"].pk == user.pk
