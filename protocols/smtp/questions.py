"""Where an MTA decides, the application is asked: MAIL, RCPT and the message.

Through aiosmtpd's handler hooks (:data:`HOOKS`):

- ``handle_EHLO``: PIPELINING is advertised, AUTH only when offered;
- ``handle_MAIL`` / ``handle_RCPT``: transactions are numbered, the recipient
  limit (452) and relay refusal (550 5.7.1) are checked, the app is asked;
- ``handle_DATA``: the app gets the message; 250 only after it accepted.

Every question stops the idle clock while the application decides
(``app_timeout`` bounds the wait); no answer is 451, never a hang.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import Envelope, Session

from . import replies
from .app import ApplicationInstance, NoAnswer
from .deadlines import IdleClock
from .messages import Message
from .replies import Reply

# Queue ids the server makes up when the app gives none: 12 hex digits, as Postfix's.
QUEUE_ID_BYTES = 6

# The replies of every message, formatted once.
_SENDER_OK = str(replies.SENDER_OK)
_RECIPIENT_OK = str(replies.RECIPIENT_OK)


class AppQuestions(IdleClock):
    """The session's questions to its application instance, and the events they carry."""

    # Set by the session (see SmtpSession).
    app: ApplicationInstance | None
    transaction: int
    ask_mail: bool
    ask_rcpt: bool
    _close_after_reply: bool
    _tls_cache: tuple[object, dict[str, Any] | None]

    async def _ask(self, event: Message, check: Callable[[Message], Any]) -> Any:
        """Ask the app; the idle clock stops meanwhile (``app_timeout`` bounds the wait)."""
        assert self.app is not None
        self._stop_clock()
        try:
            return await self.app.ask(event, check=check)
        finally:
            if self.transport is not None:
                self._reset_timeout()

    async def _decide(self, event: Message, accept: Reply, refuse: Reply) -> Reply:
        """Ask a yes/no question; the reply for the client, 451 when there is no answer."""
        assert self.app is not None
        if self.app.gone is not None:
            self._close_after_reply = True
            return replies.APP_GONE
        utf8 = self._utf8()

        def check(answer: Message) -> Reply:
            if answer["type"].endswith(".accept"):
                return accept
            return replies.app_reply(answer, refuse, utf8=utf8)

        try:
            reply: Reply = await self._ask(event, check)
        except NoAnswer as exc:
            self._log_no_answer(event["type"], exc)
            return replies.LOCAL_ERROR
        return reply

    def _event(self, kind: str) -> dict[str, Any]:
        """An event with the session state every event after ``smtp.connect`` carries."""
        session = self.session
        assert session is not None
        return {
            "type": kind,
            "helo": session.host_name,
            "esmtp": session.extended_smtp,
            "user": session.auth_data if session.authenticated else None,
            "tls": self._tls(),
        }

    def _transaction_event(self, kind: str) -> dict[str, Any]:
        """An event of the transaction in progress (``smtp.rcpt``, ``smtp.message``)."""
        envelope = self.envelope
        assert envelope is not None
        event = self._event(kind)
        event["transaction"] = self.transaction
        event["mail_from"] = _reverse_path(envelope.mail_from)
        event["mail_options"] = list(envelope.mail_options)
        return event

    async def on_ehlo(self, hostname: str, responses: list[str]) -> list[str]:
        assert self.session is not None
        self.session.host_name = hostname
        if not self.listener.mechanisms:
            responses = [line for line in responses if not line.startswith("250-AUTH")]
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def on_mail(self, address: str, options: list[str]) -> str:
        envelope = self.envelope
        assert envelope is not None
        self.transaction += 1
        if self.ask_mail:
            event = self._event("smtp.mail")
            event["transaction"] = self.transaction
            event["mail_from"] = _reverse_path(address)
            event["mail_options"] = list(options)
            reply = await self._decide(event, replies.SENDER_OK, replies.SENDER_REFUSED)
            if reply.code != 250:
                return str(reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return _SENDER_OK

    async def on_rcpt(self, address: str, options: list[str]) -> str:
        envelope = self.envelope
        session = self.session
        assert envelope is not None
        assert session is not None
        config = self.listener.config
        if len(envelope.rcpt_tos) >= config.max_recipients:
            return str(replies.TOO_MANY_RECIPIENTS)
        if self.listener.local_domains and not session.authenticated:
            _, at, domain = address.rpartition("@")
            if at and domain.lower() not in self.listener.local_domains:
                self.listener.log_info(self.peer, f"relaying to {address!r} denied")
                return str(replies.RELAY_DENIED)
        if not self.ask_rcpt:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            return _RECIPIENT_OK
        event = self._transaction_event("smtp.rcpt")
        event["address"] = address
        event["rcpt_options"] = list(options)
        event["rcpt_tos"] = list(envelope.rcpt_tos)
        reply = await self._decide(event, replies.RECIPIENT_OK, replies.RECIPIENT_REFUSED)
        if reply.code == 250:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
        return str(reply)

    async def on_data(self) -> str:
        """The app's verdict on a complete message: one reply, or one per recipient (LMTP)."""
        envelope = self.envelope
        assert envelope is not None
        assert self.app is not None
        recipients = list(envelope.rcpt_tos)
        count = len(recipients) if self.listener.config.lmtp else 1
        if self.app.gone is not None:
            self._close_after_reply = True
            return "\r\n".join([str(replies.APP_GONE)] * count)
        event = self._transaction_event("smtp.message")
        event["rcpt_tos"] = recipients
        event["rcpt_options"] = list(envelope.rcpt_options)
        event["data"] = envelope.original_content or b""
        utf8 = self._utf8()
        lmtp = self.listener.config.lmtp

        def check(answer: Message) -> list[Reply]:
            if answer["type"] == "smtp.message.reject":
                return [replies.app_reply(answer, replies.MESSAGE_REFUSED, utf8=utf8)] * count
            queue_id = answer.get("queue_id") or secrets.token_hex(QUEUE_ID_BYTES).upper()
            if not isinstance(queue_id, str) or not queue_id.isprintable():
                raise ValueError(
                    f"smtp.message.accept queue_id must be printable, got {queue_id!r}"
                )
            rejected = answer.get("rejected") or {}
            if rejected and not lmtp:
                raise ValueError(
                    "smtp.message.accept 'rejected' is for LMTP only: in SMTP reject the "
                    "message, or refuse the recipient at RCPT"
                )
            accepted = replies.message_queued(queue_id)
            if not lmtp:
                return [accepted]
            unknown = set(rejected) - set(recipients)
            if unknown:
                raise ValueError(f"'rejected' names addresses not in rcpt_tos: {sorted(unknown)}")
            return [
                _rejected_reply(rejected[address], utf8) if address in rejected else accepted
                for address in recipients
            ]

        try:
            verdicts: list[Reply] = await self._ask(event, check)
        except NoAnswer as exc:
            self._log_no_answer("smtp.message", exc)
            verdicts = [replies.LOCAL_ERROR] * count
        if count == 1:
            return str(verdicts[0])
        return "\r\n".join(str(verdict) for verdict in verdicts)

    # What the events and the log lines say of the session

    def summary(self) -> str:
        """The session in one line, for the log line of a failure."""
        session = self.session
        envelope = self.envelope or Envelope()
        size = len(envelope.original_content or b"")
        user = session.auth_data if session and session.authenticated else None
        return (
            f"helo={session.host_name if session else None!r} user={user!r} "
            f"transaction={self.transaction} from=<{_reverse_path(envelope.mail_from)}> "
            f"to={','.join(f'<{r}>' for r in envelope.rcpt_tos) or '-'} size={size}"
        )

    def _log_no_answer(self, event: str, exc: NoAnswer) -> None:
        self.listener.log_error(self.peer, f"no answer to {event}: {exc}; {self.summary()}")

    def _utf8(self) -> bool:
        return bool(self.envelope is not None and self.envelope.smtp_utf8)

    def _tls(self) -> dict[str, Any] | None:
        """The tls details of the connection as it is now (after STARTTLS, the new transport)."""
        transport = self.transport
        if self._tls_cache[0] is transport:
            return self._tls_cache[1]
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        info = self.listener.tls_details(ssl_object) if ssl_object is not None else None
        self._tls_cache = (transport, info)
        return info


class _Hooks:
    """aiosmtpd's handler: each hook hands over to the session that called it."""

    async def handle_EHLO(
        self,
        server: AppQuestions,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        return await server.on_ehlo(hostname, responses)

    async def handle_MAIL(
        self,
        server: AppQuestions,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        return await server.on_mail(address, options)

    async def handle_RCPT(
        self,
        server: AppQuestions,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        return await server.on_rcpt(address, options)

    async def handle_DATA(self, server: AppQuestions, session: Session, envelope: Envelope) -> str:
        return await server.on_data()


HOOKS = _Hooks()


def _rejected_reply(value: Any, utf8: bool) -> Reply:
    try:
        code, text = value
    except (TypeError, ValueError):
        raise ValueError(f"'rejected' values must be [code, message], got {value!r}") from None
    return replies.app_reply({"code": code, "message": text}, replies.MESSAGE_REFUSED, utf8=utf8)


def _reverse_path(address: str | None) -> str:
    """The null reverse path ``<>`` (bounces) is ``""`` in events."""
    return "" if address in (None, "<>") else str(address)
