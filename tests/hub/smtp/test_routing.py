"""Recipient routing: patterns with captured parts, one delivery per route, unknown addresses."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from hub.exceptions import NoRouteFound
from hub.generic.smtp import AsyncSmtpConsumer, Refuse
from hub.mail import Envelope, InboundEmail
from hub.smtp_routing import RecipientPattern, RecipientRouter, recipient
from hub.testing.smtp import SmtpCommunicator

deliveries: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []


class Tickets(AsyncSmtpConsumer):
    async def recipient(self, address: str, ticket: int, domain: str) -> None:
        if ticket == 0:
            raise Refuse(550, "5.1.1 No such ticket")

    async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> str:
        deliveries.append(("tickets", envelope.rcpt_tos, kwargs))
        return f"ticket-{kwargs['ticket']}"


class Sales(AsyncSmtpConsumer):
    async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> None:
        deliveries.append(("sales", envelope.rcpt_tos, kwargs))


async def static_auth(login: str, password: str) -> str | None:
    return login if password == "ok" else None


router = RecipientRouter(
    [
        recipient("support+<int:ticket>@<domain:domain>", Tickets.as_asgi()),
        recipient("sales@example.com", Sales.as_asgi()),
    ],
    authenticate=static_auth,
)


@pytest.fixture(autouse=True)
def clear() -> None:
    deliveries.clear()


class TestPatterns:
    @pytest.mark.parametrize(
        ("pattern", "address", "captured"),
        [
            ("support+<int:ticket>@<domain>", "support+12@example.com",
             {"ticket": 12, "domain": "example.com"}),
            ("support+<int:ticket>@example.com", "SUPPORT+7@Example.COM", {"ticket": 7}),
            ("<user>@example.com", "ann@example.com", {"user": "ann"}),
            ("<slug:list>-request@lists.example.com", "dev-team-request@lists.example.com",
             {"list": "dev-team"}),
            ("<any:local>@example.com", "a+b.c@example.com", {"local": "a+b.c"}),
            ("r-<uuid:id>@example.com", "r-12345678-1234-1234-1234-123456789abc@example.com",
             {"id": uuid.UUID("12345678-1234-1234-1234-123456789abc")}),
        ],
    )  # fmt: skip
    def test_pattern_captures_converted_values(
        self, pattern: str, address: str, captured: dict[str, Any]
    ) -> None:
        assert RecipientPattern.compile(pattern).match(address) == captured

    @pytest.mark.parametrize(
        ("pattern", "address"),
        [
            ("support+<int:ticket>@example.com", "support+abc@example.com"),
            ("support+<int:ticket>@example.com", "support+1@example.com.evil.net"),
            ("<user>@example.com", "a+b@example.com"),
            ("sales@example.com", "xsales@example.com"),
        ],
    )
    def test_pattern_matches_the_whole_address_only(self, pattern: str, address: str) -> None:
        assert RecipientPattern.compile(pattern).match(address) is None

    def test_unknown_converter_is_refused_when_the_route_is_made(self) -> None:
        with pytest.raises(ValueError, match="Unknown converter 'float'"):
            recipient("<float:x>@example.com", Sales.as_asgi())

    def test_resolve_names_the_address_and_the_patterns_it_tried(self) -> None:
        with pytest.raises(NoRouteFound, match=r"'nobody@example\.com'.*'sales@example\.com'"):
            router.resolve({"type": "smtp", "recipient": "nobody@example.com"})

    def test_resolve_puts_the_captured_values_in_the_child_scope(self) -> None:
        _, scope = router.resolve({"type": "smtp", "recipient": "support+5@example.com"})
        assert scope["smtp_route"] == {
            "pattern": "support+<int:ticket>@<domain:domain>",
            "address": "support+5@example.com",
            "kwargs": {"ticket": 5, "domain": "example.com"},
        }


class TestRoutedSessions:
    async def test_captured_values_reach_the_handlers_and_the_queue_id_comes_back(self) -> None:
        communicator = SmtpCommunicator(router)
        assert await communicator.connect() == (True, None)
        assert await communicator.rcpt("support+42@example.com") == (True, None)
        assert await communicator.message(b"Subject: help\r\n\r\n") == (True, "ticket-42")
        await communicator.disconnect()
        assert deliveries == [
            ("tickets", ("support+42@example.com",), {"ticket": 42, "domain": "example.com"})
        ]

    async def test_unrouted_recipient_gets_550_and_the_route_can_refuse_too(self) -> None:
        communicator = SmtpCommunicator(router)
        await communicator.connect()
        assert await communicator.rcpt("nobody@example.com") == (
            False,
            (550, "5.1.1 No such recipient"),
        )
        assert await communicator.rcpt("support+0@example.com") == (
            False,
            (550, "5.1.1 No such ticket"),
        )
        await communicator.disconnect()

    async def test_recipient_of_another_route_in_one_transaction_gets_452(self) -> None:
        communicator = SmtpCommunicator(router)
        await communicator.connect()
        assert (await communicator.rcpt("support+1@example.com"))[0]
        assert await communicator.rcpt("sales@example.com") == (
            False,
            (452, "4.5.3 Too many recipients for one delivery, send the rest separately"),
        )
        assert (await communicator.message(b"Subject: one\r\n\r\n"))[0]
        # The client sends the rest in the next transaction.
        assert await communicator.rcpt("sales@example.com") == (True, None)
        assert (await communicator.message(b"Subject: two\r\n\r\n"))[0]
        await communicator.disconnect()
        assert [d[0] for d in deliveries] == ["tickets", "sales"]

    async def test_router_answers_auth(self) -> None:
        communicator = SmtpCommunicator(router)
        await communicator.connect()
        assert await communicator.auth("ann", "bad") == (False, (535, None))
        assert await communicator.auth("ann", "ok") == (True, "ann")
        await communicator.disconnect()
