"""SMTP consumers: decide on recipients, handle messages, as an MTA would.

A consumer serves one SMTP session (``docs/specs/smtp.md``)::

    class SupportMail(AsyncSmtpConsumer):
        async def recipient(self, address, ticket):
            if not await Ticket.objects.filter(pk=ticket).aexists():
                raise Refuse(550, "5.1.1 No such ticket")

        async def message(self, envelope, email, ticket):
            await store(ticket, email.subject, email.text, email.attachments)
            return f"ticket-{ticket}"                    # the queue id the sender logs

Each decision handler accepts by returning (``None`` or ``True``) and refuses
by returning ``False`` (the event's default code) or raising :class:`Refuse`
with the code and text the client sees: ``550`` no such user, ``450`` busy,
try later, ``452`` too many recipients. The server replies ``250`` to a
message only after ``message()`` returned; if it raises anything but
:class:`Refuse`, the consumer stops and the client gets ``451`` (retry later),
so a message is never acknowledged and lost.

Behind :class:`hub.smtp_routing.RecipientRouter`, the captured parts of the
recipient pattern (``support+<int:ticket>@<domain>``) are passed to
``recipient()``, ``message()`` and ``sender()`` as keyword arguments.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, ClassVar

from asgiref.sync import async_to_sync
from django.conf import settings

from hub.consumer import AsyncConsumer, SyncConsumer
from hub.exceptions import StopConsumer
from hub.mail.auth import aauthenticate_user, authenticate_user
from hub.mail.authentication import Resolver, authenticate, dns_resolver
from hub.mail.message import Envelope, InboundEmail
from hub.types import Message

__all__ = ["AsyncSmtpConsumer", "Refuse", "SmtpConsumer"]


class Refuse(Exception):
    """Raise from a handler to refuse: the client sees ``code`` and ``message``.

    Args:
        code: a 4xx (temporary: the sender retries) or 5xx (permanent) code.
        message: the reply text, ideally starting with an RFC 3463 code
            (``"5.1.1 No such user"``); ``None`` keeps the server's default.
    """

    def __init__(self, code: int = 550, message: str | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


def _refusal(kind: str, exc: Refuse | None = None) -> Message:
    answer: Message = {"type": f"{kind}.reject"}
    if exc is not None:
        answer["code"] = exc.code
        if exc.message is not None:
            answer["message"] = exc.message
    return answer


def _verdict(kind: str, result: Any) -> Message:
    """``smtp.X.accept`` unless the handler returned ``False``."""
    return _refusal(kind) if result is False else {"type": f"{kind}.accept"}


def _identity(user: Any) -> str:
    get_username = getattr(user, "get_username", None)
    return str(get_username() if callable(get_username) else user)


class _SmtpBase:
    """What both consumers share: groups, the route's captured parts, the Django user."""

    #: Groups joined on connect and left on disconnect.
    groups: list[str] | None = None
    #: Be asked about each ``MAIL FROM`` (``sender()``); off, any sender is accepted.
    ask_sender: ClassVar[bool] = False

    #: Add SPF, DKIM and DMARC verdicts to ``envelope.authentication``; ``None``
    #: follows the ``HUB_SMTP_CHECK_AUTHENTICATION`` setting (off by default).
    check_authentication: ClassVar[bool | None] = None
    #: The DNS for those checks: ``(name, rdtype) -> records``; ``None`` is the system's DNS.
    dns_resolver: ClassVar[Resolver | None] = None

    scope: Any
    #: The Django user after a successful AUTH, else ``None``.
    user: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.groups is None:
            self.groups = []

    @property
    def route_kwargs(self) -> dict[str, Any]:
        """What the recipient pattern captured (``{"ticket": 1234, "domain": ...}``)."""
        route = self.scope.get("smtp_route") or {}
        kwargs: dict[str, Any] = route.get("kwargs", {})
        return kwargs

    def _accept_session(self) -> Message:
        # A consumer that does not decide on recipients is not asked about them:
        # one round trip less per message, and the server accepts them itself.
        consumer_class: Any = type(self)
        decides = consumer_class.recipient not in (
            AsyncSmtpConsumer.recipient,
            SmtpConsumer.recipient,
        )
        return {"type": "smtp.accept", "mail": self.ask_sender, "rcpt": decides}

    def _parse(self, message: Message) -> tuple[Envelope, InboundEmail]:
        """The envelope, and the email, parsed only when the handler first uses it."""
        envelope = Envelope.from_event(message, self.scope)
        return envelope, InboundEmail.from_bytes(envelope.data)

    def _checks_authentication(self) -> bool:
        if self.check_authentication is not None:
            return self.check_authentication
        # The setting, read once per session: a settings lookup costs more than a dict's.
        checks: bool | None = self.__dict__.get("_checks_setting")
        if checks is None:
            checks = bool(getattr(settings, "HUB_SMTP_CHECK_AUTHENTICATION", False))
            self.__dict__["_checks_setting"] = checks
        return checks

    def _authenticated(self, envelope: Envelope, email: InboundEmail) -> Envelope:
        """The envelope with its verdicts (blocks on DNS: call it in a thread)."""
        resolver = type(self).dns_resolver or _system_resolver()
        verdicts = authenticate(
            envelope.data,
            str(email.get("from", "")),
            envelope.client[0] if envelope.client else None,
            envelope.mail_from,
            envelope.helo,
            resolver,
        )
        return dataclasses.replace(envelope, authentication=verdicts)


_SYSTEM_RESOLVER: list[Resolver] = []


def _system_resolver() -> Resolver:
    if not _SYSTEM_RESOLVER:
        _SYSTEM_RESOLVER.append(dns_resolver())
    return _SYSTEM_RESOLVER[0]


class AsyncSmtpConsumer(_SmtpBase, AsyncConsumer):
    """An SMTP session consumer with async handlers; override the decision handlers."""

    async def connect(self) -> None:
        """Called when a client connects; raise :class:`Refuse` (554 or 421) to refuse it."""

    async def authenticate(self, login: str, password: str) -> Any:
        """The user with these credentials, or ``None``; Django's ``authenticate()`` by default."""
        return await aauthenticate_user(login, password)

    async def sender(self, address: str, **kwargs: Any) -> bool | None:
        """With ``ask_sender``: decide on ``MAIL FROM`` (``""`` is the bounce sender)."""
        return True

    async def recipient(self, address: str, **kwargs: Any) -> bool | None:
        """Decide on one ``RCPT TO``; accepts every address unless overridden."""
        return True

    async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> str | None:
        """Handle a complete message; return a queue id (or ``None``), raise to refuse."""
        raise NotImplementedError(f"{type(self).__name__} must define message(envelope, email)")

    async def disconnect(self) -> None:
        """Called when the session is over."""

    async def smtp_connect(self, message: Message) -> None:
        if self.groups:
            for group in self.groups:
                await self.channel_layer.group_add(group, self.channel_name)
        try:
            await self.connect()
        except Refuse as exc:
            await self.send(_refusal("smtp", exc))
            return
        await self.send(self._accept_session())

    async def smtp_auth(self, message: Message) -> None:
        user = await self.authenticate(message["login"], message["password"])
        if user is None:
            await self.send({"type": "smtp.auth.reject"})
            return
        self.user = user
        await self.send({"type": "smtp.auth.accept", "user": _identity(user)})

    async def smtp_mail(self, message: Message) -> None:
        try:
            result = await self.sender(message["mail_from"], **self.route_kwargs)
        except Refuse as exc:
            await self.send(_refusal("smtp.mail", exc))
            return
        await self.send(_verdict("smtp.mail", result))

    async def smtp_rcpt(self, message: Message) -> None:
        try:
            result = await self.recipient(message["address"], **self.route_kwargs)
        except Refuse as exc:
            await self.send(_refusal("smtp.rcpt", exc))
            return
        await self.send(_verdict("smtp.rcpt", result))

    async def smtp_message(self, message: Message) -> None:
        envelope, email = self._parse(message)
        if self._checks_authentication():
            envelope = await asyncio.to_thread(self._authenticated, envelope, email)
        try:
            queue_id = await self.message(envelope, email, **self.route_kwargs)
        except Refuse as exc:
            await self.send(_refusal("smtp.message", exc))
            return
        answer: Message = {"type": "smtp.message.accept"}
        if queue_id:
            answer["queue_id"] = str(queue_id)
        await self.send(answer)

    async def smtp_disconnect(self, message: Message) -> None:
        if self.groups:
            for group in self.groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect()
        raise StopConsumer


class SmtpConsumer(_SmtpBase, SyncConsumer):
    """An SMTP session consumer with synchronous handlers, run in the ORM thread."""

    def connect(self) -> None:
        """Called when a client connects; raise :class:`Refuse` (554 or 421) to refuse it."""

    def authenticate(self, login: str, password: str) -> Any:
        """The user with these credentials, or ``None``; Django's ``authenticate()`` by default."""
        return authenticate_user(login, password)

    def sender(self, address: str, **kwargs: Any) -> bool | None:
        """With ``ask_sender``: decide on ``MAIL FROM`` (``""`` is the bounce sender)."""
        return True

    def recipient(self, address: str, **kwargs: Any) -> bool | None:
        """Decide on one ``RCPT TO``; accepts every address unless overridden."""
        return True

    def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> str | None:
        """Handle a complete message; return a queue id (or ``None``), raise to refuse."""
        raise NotImplementedError(f"{type(self).__name__} must define message(envelope, email)")

    def disconnect(self) -> None:
        """Called when the session is over."""

    def smtp_connect(self, message: Message) -> None:
        if self.groups:
            for group in self.groups:
                async_to_sync(self.channel_layer.group_add)(group, self.channel_name)
        try:
            self.connect()
        except Refuse as exc:
            self.send(_refusal("smtp", exc))
            return
        self.send(self._accept_session())

    def smtp_auth(self, message: Message) -> None:
        user = self.authenticate(message["login"], message["password"])
        if user is None:
            self.send({"type": "smtp.auth.reject"})
            return
        self.user = user
        self.send({"type": "smtp.auth.accept", "user": _identity(user)})

    def smtp_mail(self, message: Message) -> None:
        try:
            result = self.sender(message["mail_from"], **self.route_kwargs)
        except Refuse as exc:
            self.send(_refusal("smtp.mail", exc))
            return
        self.send(_verdict("smtp.mail", result))

    def smtp_rcpt(self, message: Message) -> None:
        try:
            result = self.recipient(message["address"], **self.route_kwargs)
        except Refuse as exc:
            self.send(_refusal("smtp.rcpt", exc))
            return
        self.send(_verdict("smtp.rcpt", result))

    def smtp_message(self, message: Message) -> None:
        envelope, email = self._parse(message)
        if self._checks_authentication():
            envelope = self._authenticated(envelope, email)
        try:
            queue_id = self.message(envelope, email, **self.route_kwargs)
        except Refuse as exc:
            self.send(_refusal("smtp.message", exc))
            return
        answer: Message = {"type": "smtp.message.accept"}
        if queue_id:
            answer["queue_id"] = str(queue_id)
        self.send(answer)

    def smtp_disconnect(self, message: Message) -> None:
        if self.groups:
            for group in self.groups:
                async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)
        self.disconnect()
        raise StopConsumer
