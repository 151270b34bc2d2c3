"""The ASGI vocabulary of the SMTP spec (``docs/specs/smtp.md``), named once.

Events the server sends are built in :mod:`protocols.smtp.session`; the
answers each question allows are listed in :data:`ANSWERS`, which is how
``send()`` knows what it expects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict

ASGI_VERSION = {"version": "3.0", "spec_version": "1.0"}
"""``scope["asgi"]``: ASGI 3 with hub's SMTP spec 1.0."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SessionState(TypedDict):
    """What changes during a session; every event after ``smtp.connect`` carries it."""

    helo: str | None
    esmtp: bool
    user: str | None
    tls: dict[str, Any] | None


class SMTPConnectEvent(TypedDict):
    type: Literal["smtp.connect"]


class SMTPAcceptEvent(TypedDict):
    type: Literal["smtp.accept"]
    mail: NotRequired[bool]


class SMTPRejectEvent(TypedDict):
    type: Literal["smtp.reject"]
    code: NotRequired[int]
    message: NotRequired[str]


class SMTPMailEvent(SessionState):
    type: Literal["smtp.mail"]
    transaction: int
    mail_from: str
    mail_options: Sequence[str]


class SMTPRcptEvent(SessionState):
    type: Literal["smtp.rcpt"]
    transaction: int
    mail_from: str
    mail_options: Sequence[str]
    address: str
    rcpt_options: Sequence[str]
    rcpt_tos: Sequence[str]


class SMTPAuthEvent(SessionState):
    type: Literal["smtp.auth"]
    mechanism: str
    login: str
    password: str


class SMTPAuthAcceptEvent(TypedDict):
    type: Literal["smtp.auth.accept"]
    user: NotRequired[str]


class SMTPMessageEvent(SessionState):
    type: Literal["smtp.message"]
    transaction: int
    mail_from: str
    mail_options: Sequence[str]
    rcpt_tos: Sequence[str]
    rcpt_options: Sequence[str]
    data: bytes


class SMTPMessageAcceptEvent(TypedDict):
    type: Literal["smtp.message.accept"]
    queue_id: NotRequired[str]
    rejected: NotRequired[dict[str, tuple[int, str]]]


class SMTPDecisionRejectEvent(TypedDict):
    """``smtp.mail.reject``, ``smtp.rcpt.reject``, ``smtp.auth.reject``, ``smtp.message.reject``."""

    type: str
    code: NotRequired[int]
    message: NotRequired[str]


class SMTPDisconnectEvent(TypedDict):
    type: Literal["smtp.disconnect"]


#: The two answers each question allows: (accept type, reject type).
ANSWERS: dict[str, tuple[str, str]] = {
    "smtp.connect": ("smtp.accept", "smtp.reject"),
    "smtp.mail": ("smtp.mail.accept", "smtp.mail.reject"),
    "smtp.rcpt": ("smtp.rcpt.accept", "smtp.rcpt.reject"),
    "smtp.auth": ("smtp.auth.accept", "smtp.auth.reject"),
    "smtp.message": ("smtp.message.accept", "smtp.message.reject"),
}
