"""Every reply hub's SMTP server writes itself, in one table, and the check of the app's.

aiosmtpd writes the replies of the SMTP dialogue it owns (syntax errors,
``STARTTLS``, ``AUTH`` challenges, ``SIZE`` and command line limits); the replies
below are the ones hub adds: its limits, its shutdown, and the answers to the
questions it asks the application. Each text starts with its RFC 3463 enhanced
status code, so a sending MTA's log says what happened without guessing.

An application's reply (``code`` and ``message`` of a reject event) is checked
by :func:`app_reply` before it reaches the wire: a code outside 4xx/5xx or a
control character in the text would let an application break the dialogue.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Reply(NamedTuple):
    """One SMTP reply: a three-digit code and its text (which may hold ``\\n`` for lines)."""

    code: int
    text: str

    def __str__(self) -> str:
        """The reply as aiosmtpd's ``push`` takes it: CRLF between lines, none at the end."""
        lines = self.text.split("\n")
        head = [f"{self.code}-{line}" for line in lines[:-1]]
        return "\r\n".join([*head, f"{self.code} {lines[-1]}"])


# Server limits and lifecycle (RFC 5321 section 4.2.3 codes, RFC 3463 detail codes).
SERVER_BUSY = Reply(421, "4.7.0 Too many connections, try again later")
CLIENT_BUSY = Reply(421, "4.7.0 Too many connections from your address, try again later")
SHUTTING_DOWN = Reply(421, "4.3.2 Service shutting down, try again later")
TIMEOUT = Reply(421, "4.4.2 Timeout, closing connection")
APP_GONE = Reply(421, "4.3.0 Service unavailable, closing connection")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3 Too many recipients")
RELAY_DENIED = Reply(550, "5.7.1 Relaying denied")
LOCAL_ERROR = Reply(451, "4.3.0 Local error in processing, try again later")
AUTH_TEMPORARY_FAILURE = Reply(454, "4.7.0 Temporary authentication failure")
# After DATA, when the whole message was read (hub reads it: protocols/smtp/data.py).
LINE_TOO_LONG = Reply(500, "5.5.2 Line too long (RFC 5321 section 4.5.3.1.6)")
TOO_MUCH_DATA = Reply(552, "5.3.4 Message too big for system")

# Answers to the application's events (spec: docs/specs/smtp.md).
SESSION_REFUSED = Reply(554, "5.7.1 Service unavailable")
SENDER_OK = Reply(250, "2.1.0 OK")
SENDER_REFUSED = Reply(550, "5.7.1 Sender refused")
RECIPIENT_OK = Reply(250, "2.1.5 OK")
RECIPIENT_REFUSED = Reply(550, "5.1.1 Mailbox unavailable")
AUTH_OK = Reply(235, "2.7.0 Authentication successful")
AUTH_INVALID = Reply(535, "5.7.8 Authentication credentials invalid")
MESSAGE_REFUSED = Reply(554, "5.6.0 Message refused")


def message_queued(queue_id: str) -> Reply:
    """``250`` for a message the application accepted (RFC 5321 section 4.2.2)."""
    return Reply(250, f"2.0.0 OK: queued as {queue_id}")


#: Codes ``smtp.reject`` may use instead of the greeting (RFC 5321 section 3.1).
SESSION_REFUSAL_CODES = frozenset({421, 554})
#: Codes every other reject event may use: transient (4xx) or permanent (5xx) failures.
FAILURE_CODES = range(400, 600)


def app_reply(
    message: dict[str, object] | object,
    default: Reply,
    *,
    utf8: bool,
    codes: Iterable[int] = FAILURE_CODES,
) -> Reply:
    """The reply an application asked for in a reject event, checked.

    Args:
        message: the event, with optional ``code`` and ``message`` keys.
        default: what a missing key stands for.
        utf8: the session used ``SMTPUTF8``, so the text may be non-ASCII.
        codes: the codes this event allows.

    Raises:
        ValueError: the code is not allowed, or the text has control characters.
    """
    get = getattr(message, "get", None)
    code = get("code", default.code) if get else default.code
    text = get("message", default.text) if get else default.text
    if isinstance(code, bool) or not isinstance(code, int) or code not in codes:
        allowed = "421 or 554" if codes is SESSION_REFUSAL_CODES else "400 to 599"
        raise ValueError(f"SMTP reply code must be {allowed}, got {code!r}")
    if not isinstance(text, str):
        raise ValueError(f"SMTP reply message must be a str, got {type(text).__name__}")
    if any((ord(char) < 32 and char != "\n") or char == "\x7f" for char in text):
        raise ValueError(f"SMTP reply message must not contain control characters: {text!r}")
    if not utf8 and not text.isascii():
        text = text.encode("ascii", "replace").decode("ascii")
    return Reply(code, text.strip("\n") or default.text)
