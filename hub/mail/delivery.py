"""Deliver one message to an SMTP application as if a client had sent it.

The webhook adapters (:mod:`hub.mail.webhooks`) receive mail over HTTP, but
the consumer that handles it is an ordinary SMTP application: an
:class:`~hub.generic.smtp.AsyncSmtpConsumer` or a
:class:`~hub.smtp_routing.RecipientRouter` in front of several. Rather than
calling a consumer's ``message()`` by hand (skipping its ``connect()``, its
recipient decisions, its groups and its crash handling), this module plays
the client's side of ``docs/specs/smtp.md``: ``smtp.connect``, ``smtp.mail``
if asked, one ``smtp.rcpt`` per recipient if asked, ``smtp.message``, and
``smtp.disconnect``. The answer is the application's own: a reply code and
text, exactly what an SMTP client would have been told.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.types import ASGIApp, Message, Scope

__all__ = ["DEFAULT_ANSWER_TIMEOUT", "Reply", "deliver"]

#: Seconds the application may take to answer one event (the SMTP server's data timeout).
DEFAULT_ANSWER_TIMEOUT = 300.0
#: Seconds the application may take to return after ``smtp.disconnect``.
DISCONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Reply:
    """What the application answered: an SMTP reply code and text, and the queue id."""

    code: int
    message: str
    queue_id: str | None = None

    @property
    def accepted(self) -> bool:
        return 200 <= self.code < 300

    @property
    def temporary(self) -> bool:
        """A 4xx: the sender should retry (the app was busy, or crashed)."""
        return 400 <= self.code < 500


#: Reply when the application stopped or timed out without answering (SMTP's "retry later").
NO_ANSWER = Reply(451, "4.3.0 The application did not answer")


async def deliver(
    app: ASGIApp,
    scope: Scope,
    *,
    mail_from: str,
    rcpt_tos: Sequence[str],
    data: bytes,
    answer_timeout: float = DEFAULT_ANSWER_TIMEOUT,
) -> Reply:
    """Run ``app`` as one SMTP session carrying one message; return its verdict.

    ``scope`` is an ``smtp`` scope; the events carry the session state of a
    client that never said ``EHLO`` or authenticated (``helo``, ``user`` and
    ``tls`` are ``None``).
    """
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    task: asyncio.Future[None] = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    state: dict[str, Any] = {"helo": None, "esmtp": True, "user": None, "tls": None}
    transaction: dict[str, Any] = {
        **state,
        "transaction": 1,
        "mail_from": mail_from,
        "mail_options": [],
    }

    async def ask(event: Message, prefix: str) -> Message | None:
        await inbox.put(event)
        getter: asyncio.Future[Any] = asyncio.ensure_future(outbox.get())
        waiting: set[asyncio.Future[Any]] = {getter, task}
        done, _ = await asyncio.wait(waiting, timeout=answer_timeout, return_when="FIRST_COMPLETED")
        if getter not in done:
            getter.cancel()
            return None
        answer: Message = getter.result()
        if not str(answer.get("type", "")).startswith(prefix):
            raise ValueError(f"expected a {prefix}* answer, got {answer.get('type')!r}")
        return answer

    try:
        answer = await ask({"type": "smtp.connect"}, "smtp.")
        if answer is None:
            return NO_ANSWER
        if answer["type"] == "smtp.reject":
            return _refused(answer, 554, "5.7.1 Service unavailable")
        if answer.get("mail", False):
            verdict = await ask({"type": "smtp.mail", **transaction}, "smtp.mail.")
            if verdict is None:
                return NO_ANSWER
            if verdict["type"] == "smtp.mail.reject":
                return _refused(verdict, 550, "5.7.1 Sender refused")
        accepted = list(rcpt_tos)
        if answer.get("rcpt", True):
            accepted, refusal = [], None
            for address in rcpt_tos:
                event = {
                    "type": "smtp.rcpt",
                    **transaction,
                    "address": address,
                    "rcpt_options": [],
                    "rcpt_tos": list(accepted),
                }
                verdict = await ask(event, "smtp.rcpt.")
                if verdict is None:
                    return NO_ANSWER
                if verdict["type"] == "smtp.rcpt.accept":
                    accepted.append(address)
                else:
                    refusal = _refused(verdict, 550, "5.1.1 Mailbox unavailable")
            if not accepted:
                return refusal or Reply(554, "5.5.1 No valid recipients")
        event = {
            "type": "smtp.message",
            **transaction,
            "rcpt_tos": accepted,
            "rcpt_options": [[] for _ in accepted],
            "data": data,
        }
        verdict = await ask(event, "smtp.message.")
        if verdict is None:
            return NO_ANSWER
        if verdict["type"] == "smtp.message.reject":
            return _refused(verdict, 554, "5.6.0 Message refused")
        queue_id = verdict.get("queue_id")
        return Reply(250, "2.0.0 OK", str(queue_id) if queue_id else None)
    finally:
        await _finish(task, inbox)


def _refused(answer: Message, code: int, message: str) -> Reply:
    return Reply(int(answer.get("code", code)), str(answer.get("message", message)))


async def _finish(task: asyncio.Future[None], inbox: asyncio.Queue[Message]) -> None:
    """Tell the application the session is over and wait for it (briefly) to return."""
    if not task.done():
        await inbox.put({"type": "smtp.disconnect"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), DISCONNECT_TIMEOUT)
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        await task
