"""SMTP consumers through the communicator: decisions, refusals, the parsed message."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest

from hub.generic.smtp import AsyncSmtpConsumer, Refuse, SmtpConsumer
from hub.layers import get_channel_layer
from hub.mail import Envelope, InboundEmail
from hub.testing.smtp import SmtpCommunicator


def make_email() -> bytes:
    email = EmailMessage()
    email["From"] = "Ann <ann@example.org>"
    email["To"] = "support@example.com"
    email["Subject"] = "Printer on fire"
    email.set_content("It is on fire.")
    email.add_alternative("<p>It is <b>on fire</b>.</p>", subtype="html")
    email.add_attachment(b"\x89PNG...", maintype="image", subtype="png", filename="fire.png")
    return email.as_bytes()


class Mailbox(AsyncSmtpConsumer):
    received: list[tuple[Envelope, InboundEmail]] = []

    async def recipient(self, address: str, **kwargs: Any) -> bool | None:
        if address.startswith("nobody@"):
            raise Refuse(550, "5.1.1 No such user")
        return not address.startswith("full@")

    async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> str:
        if email.subject == "spam":
            raise Refuse(554, "5.7.1 Looks like spam")
        if email.subject == "crash":
            raise RuntimeError("database is down")
        self.received.append((envelope, email))
        return "Q-1"


class SyncMailbox(SmtpConsumer):
    received: list[InboundEmail] = []

    def recipient(self, address: str, **kwargs: Any) -> bool | None:
        if address.startswith("nobody@"):
            raise Refuse(550)
        return None

    def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> None:
        self.received.append(email)


@pytest.fixture(autouse=True)
def clear() -> None:
    Mailbox.received.clear()
    SyncMailbox.received.clear()


class TestDecisions:
    @pytest.mark.parametrize("consumer", [Mailbox, SyncMailbox])
    async def test_session_is_accepted_and_recipients_are_decided(self, consumer: Any) -> None:
        communicator = SmtpCommunicator(consumer.as_asgi())
        assert await communicator.connect() == (True, None)
        assert await communicator.rcpt("support@example.com") == (True, None)
        assert await communicator.rcpt("nobody@example.com") == (
            False,
            (550, "5.1.1 No such user") if consumer is Mailbox else (550, None),
        )
        await communicator.disconnect()

    async def test_recipient_returning_false_is_refused_with_the_default_code(self) -> None:
        communicator = SmtpCommunicator(Mailbox.as_asgi())
        await communicator.connect()
        assert await communicator.rcpt("full@example.com") == (False, (550, None))
        await communicator.disconnect()

    async def test_connect_refused_by_raising(self) -> None:
        class Closed(AsyncSmtpConsumer):
            async def connect(self) -> None:
                raise Refuse(421, "4.3.2 Maintenance")

        communicator = SmtpCommunicator(Closed.as_asgi())
        assert await communicator.connect() == (False, (421, "4.3.2 Maintenance"))
        await communicator.disconnect()

    async def test_sender_is_asked_only_when_the_consumer_wants_it(self) -> None:
        class Picky(Mailbox):
            ask_sender = True

            async def sender(self, address: str, **kwargs: Any) -> bool:
                return address != ""

        communicator = SmtpCommunicator(Picky.as_asgi())
        await communicator.connect()
        assert await communicator.mail("") == (False, (550, None))
        assert await communicator.mail("a@example.org") == (True, None)
        await communicator.disconnect()


class TestMessages:
    async def test_message_handler_gets_envelope_and_parsed_email(self) -> None:
        communicator = SmtpCommunicator(Mailbox.as_asgi())
        await communicator.connect()
        await communicator.rcpt("support@example.com")
        assert await communicator.message(make_email()) == (True, "Q-1")
        await communicator.disconnect()
        envelope, email = Mailbox.received[0]
        assert envelope.rcpt_tos == ("support@example.com",)
        assert envelope.mail_from == "sender@example.org"
        assert envelope.client == ("127.0.0.1", 51000)
        assert isinstance(email, EmailMessage)
        assert email.subject == "Printer on fire"
        assert email.sender == "Ann <ann@example.org>"
        assert email.to == ["support@example.com"]
        assert email.text == "It is on fire.\n"
        assert email.html == "<p>It is <b>on fire</b>.</p>\n"
        [attachment] = email.attachments
        assert (attachment.filename, attachment.content_type) == ("fire.png", "image/png")
        assert attachment.data == b"\x89PNG..."

    async def test_message_the_handler_does_not_read_is_never_parsed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        parsed: list[bytes] = []
        parse = BytesParser.parsebytes
        monkeypatch.setattr(
            BytesParser,
            "parsebytes",
            lambda *args, **kw: parsed.append(args[1]) or parse(*args, **kw),
        )
        stored: list[bytes] = []

        class Store(AsyncSmtpConsumer):
            async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> None:
                stored.append(envelope.data)

        data = make_email()
        communicator = SmtpCommunicator(Store.as_asgi())
        await communicator.connect()
        await communicator.rcpt("support@example.com")
        assert await communicator.message(data) == (True, None)
        await communicator.disconnect()
        assert (stored, parsed) == ([data], [])

    async def test_message_refused_by_raising_refuse(self) -> None:
        communicator = SmtpCommunicator(Mailbox.as_asgi())
        await communicator.connect()
        await communicator.rcpt("support@example.com")
        result = await communicator.message(b"Subject: spam\r\n\r\nbuy\r\n")
        assert result == (False, (554, "5.7.1 Looks like spam"))
        await communicator.disconnect()

    async def test_handler_that_raises_stops_the_consumer_without_an_answer(self) -> None:
        communicator = SmtpCommunicator(Mailbox.as_asgi())
        await communicator.connect()
        await communicator.rcpt("support@example.com")
        await communicator.send_input(
            {
                "type": "smtp.message",
                **communicator.state,
                **communicator._keys(),
                "rcpt_tos": ["support@example.com"],
                "rcpt_options": [],
                "data": b"Subject: crash\r\n\r\n",
            }
        )
        # No answer at all: the protocol server answers 451 when the app ends.
        await communicator.wait(1)
        assert Mailbox.received == []

    async def test_sync_consumer_receives_the_message(self) -> None:
        communicator = SmtpCommunicator(SyncMailbox.as_asgi())
        await communicator.connect()
        await communicator.rcpt("support@example.com")
        accepted, queue_id = await communicator.message(make_email())
        await communicator.disconnect()
        assert (accepted, queue_id) == (True, None)
        assert SyncMailbox.received[0].subject == "Printer on fire"


class TestGroups:
    async def test_consumer_joins_its_groups_and_can_push_the_message(self) -> None:
        from hub.mail.groups import push_to_group

        class Dashboard(AsyncSmtpConsumer):
            async def message(self, envelope: Envelope, email: InboundEmail, **kw: Any) -> None:
                await push_to_group("dashboard", envelope, email)

        layer = get_channel_layer()
        watcher = await layer.new_channel()
        await layer.group_add("dashboard", watcher)
        communicator = SmtpCommunicator(Dashboard.as_asgi())
        await communicator.connect()
        await communicator.rcpt("support@example.com")
        await communicator.message(make_email())
        await communicator.disconnect()
        event = await layer.receive(watcher)
        assert event["type"] == "mail.received"
        assert event["subject"] == "Printer on fire"
        assert event["mail_from"] == "sender@example.org"
        assert event["rcpt_tos"] == ["support@example.com"]
        assert event["attachments"] == [
            {"filename": "fire.png", "content_type": "image/png", "size": 7}
        ]
