"""``SmtpCommunicator``: test an SMTP consumer or router without a server.

It plays the protocol server's part of ``docs/specs/smtp.md``: it builds the
session scope, sends the events a real session would, and returns what the
application decided::

    communicator = SmtpCommunicator(SupportMail.as_asgi())
    assert await communicator.connect() == (True, None)
    assert await communicator.rcpt("support+12@example.com") == (True, None)
    accepted, queue_id = await communicator.message(b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
    await communicator.disconnect()
"""

from __future__ import annotations

from typing import Any

from hub.testing.application import ApplicationCommunicator
from hub.types import ASGIApp, Message

Refusal = tuple[int, str | None]


class SmtpCommunicator(ApplicationCommunicator):
    """Runs ``application`` on one SMTP session.

    Args:
        application: the ASGI application (a consumer's ``as_asgi()``, a router).
        client: the client address in the scope.
        helo: the ``EHLO`` name the events carry.
        mode: ``"smtp"`` or ``"lmtp"``.
        mail_from: the sender of the transactions, until :meth:`mail` changes it.
    """

    def __init__(
        self,
        application: ASGIApp,
        client: tuple[str, int] = ("127.0.0.1", 51000),
        helo: str = "client.example",
        mode: str = "smtp",
        mail_from: str = "sender@example.org",
    ) -> None:
        self.scope: dict[str, Any] = {
            "type": "smtp",
            "asgi": {"version": "3.0", "spec_version": "1.0"},
            "mode": mode,
            "listener": "smtp testserver:25",
            "hostname": "testserver",
            "client": client,
            "server": ("127.0.0.1", 25),
            "proxy": None,
            "tls": None,
            "state": {},
        }
        super().__init__(application, self.scope)
        self.state: dict[str, Any] = {"helo": helo, "esmtp": True, "user": None, "tls": None}
        self.transaction = 0
        self.mail_from = mail_from
        self.mail_options: list[str] = []
        self.rcpt_tos: list[str] = []
        self.ask_mail = False
        self.ask_rcpt = True

    async def _ask(self, event: Message, timeout: float) -> Message:
        await self.send_input(event)
        return await self.receive_output(timeout)

    async def connect(self, timeout: float = 1) -> tuple[bool, Refusal | None]:
        """``(True, None)`` when the session is accepted, else ``(False, (code, message))``."""
        answer = await self._ask({"type": "smtp.connect"}, timeout)
        if answer["type"] == "smtp.accept":
            self.ask_mail = bool(answer.get("mail", False))
            self.ask_rcpt = bool(answer.get("rcpt", True))
            return True, None
        return False, _refusal(answer, "smtp.reject", 554)

    async def auth(
        self, login: str, password: str, mechanism: str = "PLAIN", timeout: float = 1
    ) -> tuple[bool, str | Refusal]:
        """``(True, user)`` when the credentials are accepted, else ``(False, (code, message))``."""
        event = {"type": "smtp.auth", **self.state, "mechanism": mechanism}
        answer = await self._ask({**event, "login": login, "password": password}, timeout)
        if answer["type"] == "smtp.auth.accept":
            self.state["user"] = answer.get("user", login)
            return True, self.state["user"]
        return False, _refusal(answer, "smtp.auth.reject", 535)

    async def mail(
        self, mail_from: str, options: list[str] | None = None, timeout: float = 1
    ) -> tuple[bool, Refusal | None]:
        """Start a transaction; the app is asked only if it accepted with ``"mail": True``."""
        self.transaction += 1
        self.mail_from, self.mail_options, self.rcpt_tos = mail_from, list(options or []), []
        if not self.ask_mail:
            return True, None
        answer = await self._ask({"type": "smtp.mail", **self.state, **self._keys()}, timeout)
        if answer["type"] == "smtp.mail.accept":
            return True, None
        return False, _refusal(answer, "smtp.mail.reject", 550)

    async def rcpt(self, address: str, timeout: float = 1) -> tuple[bool, Refusal | None]:
        """One ``RCPT TO``: ``(True, None)`` or ``(False, (code, message))``.

        The app is asked unless it accepted the session with ``"rcpt": False``.
        """
        if self.transaction == 0:
            await self.mail(self.mail_from)
        if not self.ask_rcpt:  # the app accepts every recipient without being asked
            self.rcpt_tos.append(address)
            return True, None
        event = {
            "type": "smtp.rcpt",
            **self.state,
            **self._keys(),
            "address": address,
            "rcpt_options": [],
            "rcpt_tos": list(self.rcpt_tos),
        }
        answer = await self._ask(event, timeout)
        if answer["type"] == "smtp.rcpt.accept":
            self.rcpt_tos.append(address)
            return True, None
        return False, _refusal(answer, "smtp.rcpt.reject", 550)

    async def message(self, data: bytes, timeout: float = 1) -> tuple[bool, str | Refusal | None]:
        """Send the message to the recipients accepted so far; ends the transaction.

        Returns:
            ``(True, queue_id)`` (``None`` if the app gave none) or ``(False, (code, message))``.
        """
        event = {
            "type": "smtp.message",
            **self.state,
            **self._keys(),
            "rcpt_tos": list(self.rcpt_tos),
            "rcpt_options": [],
            "data": data,
        }
        answer = await self._ask(event, timeout)
        self.transaction += 1
        self.rcpt_tos = []
        if answer["type"] == "smtp.message.accept":
            return True, answer.get("queue_id")
        return False, _refusal(answer, "smtp.message.reject", 554)

    async def disconnect(self, timeout: float = 1) -> None:
        """End the session and wait for the application to finish."""
        await self.send_input({"type": "smtp.disconnect"})
        await self.wait(timeout)

    def _keys(self) -> dict[str, Any]:
        return {
            "transaction": self.transaction,
            "mail_from": self.mail_from,
            "mail_options": list(self.mail_options),
        }


def _refusal(answer: Message, expected: str, default: int) -> Refusal:
    if answer["type"] != expected:
        raise AssertionError(f"Expected {expected!r} or its accept, got {answer!r:.200}")
    return answer.get("code", default), answer.get("message")
