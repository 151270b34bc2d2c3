"""Mailgun and SendGrid inbound-parse webhooks, delivered to the same SMTP consumer.

A hosted provider receives the mail and POSTs it to you. These adapters are
ASGI HTTP applications for a ``URLRouter``; each wraps the SMTP application
that would serve the same mail from a hub SMTP listener, so one consumer
class handles both sources::

    inbox = RecipientRouter([recipient("support+<int:ticket>@<domain>", Support.as_asgi())])
    application = ProtocolTypeRouter({
        "smtp": inbox,
        "http": URLRouter([
            path("hooks/mailgun/", MailgunInbound(inbox, signing_key=env("MAILGUN_KEY"))),
            path("hooks/sendgrid/", SendGridInbound(inbox, token=env("SENDGRID_TOKEN"))),
        ]),
    })

The adapter checks who is posting, parses the form, and plays one SMTP
session against the application (:func:`hub.mail.delivery.deliver`): the
consumer's ``connect()``, ``recipient()`` and ``message(envelope, email)`` run
as they would for SMTP, with the same :class:`~hub.mail.Envelope` and
:class:`~hub.mail.InboundEmail`. The scope is an ``smtp`` scope with
``"webhook"`` naming the provider, and ``client`` the HTTP client.

The HTTP answer is sent only after the handler returned: ``200`` when it
accepted the message; ``503`` when it refused with a 4xx, crashed, or did not
answer (the provider retries later, as an MTA would); for a permanent (5xx)
refusal, ``refused_status`` (``406`` for Mailgun, which does not retry it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from email import policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs

from hub.mail.delivery import DEFAULT_ANSWER_TIMEOUT, Reply, deliver
from hub.mail.forms import FormError, InboundForm, parse_form
from hub.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MailgunInbound", "SendGridInbound", "WebhookRefused"]

logger = logging.getLogger("hub.mail.webhooks")

#: Largest POST body read (bytes): providers cap messages at 25-30 MB, plus form overhead.
DEFAULT_MAX_BODY_SIZE = 40 * 1024 * 1024
#: Seconds a Mailgun signature stays valid (Mailgun's timestamps are in whole seconds).
DEFAULT_MAILGUN_MAX_AGE = 300
#: Mailgun tokens remembered to refuse a replayed POST within ``max_age``.
MAILGUN_SEEN_TOKENS = 10_000


class WebhookRefused(Exception):
    """The POST is refused before reaching the application: ``status`` and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


class _InboundWebhook:
    """An ASGI HTTP app: read and bound the POST, authenticate it, deliver the message."""

    provider = "webhook"
    #: HTTP status for a permanent (5xx) refusal by the application.
    refused_status = 406

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        answer_timeout: float = DEFAULT_ANSWER_TIMEOUT,
        hostname: str = "hub",
    ) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.answer_timeout = answer_timeout
        self.hostname = hostname

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"{type(self).__name__} serves http scopes, not {scope['type']!r}")
        peer = _peer(scope)
        try:
            if scope.get("method") != "POST":
                raise WebhookRefused(405, "POST only")
            self.check_request(scope)
            body = await self._read_body(scope, receive)
            try:
                form = parse_form(_header(scope, b"content-type"), body)
            except FormError as exc:
                raise WebhookRefused(400, str(exc)) from exc
            self.check_form(form)
            mail_from, rcpt_tos, data = self.message_of(form)
        except WebhookRefused as exc:
            logger.warning("%s webhook from %s refused: %s", self.provider, peer, exc.reason)
            await _respond(send, exc.status, exc.reason)
            return
        reply = await deliver(
            self.app,
            self._smtp_scope(scope),
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            data=data,
            answer_timeout=self.answer_timeout,
        )
        status = self.status_of(reply)
        if not reply.accepted:
            logger.info(
                "%s webhook from %s: message for %s answered %d %s (HTTP %d)",
                self.provider, peer, ",".join(rcpt_tos), reply.code, reply.message, status,
            )  # fmt: skip
        text = reply.queue_id if reply.accepted and reply.queue_id else reply.message
        await _respond(send, status, f"{reply.code} {text}")

    def status_of(self, reply: Reply) -> int:
        """The HTTP status for the application's SMTP reply."""
        if reply.accepted:
            return 200
        return 503 if reply.temporary else self.refused_status

    def check_request(self, scope: Scope) -> None:
        """Refuse before reading the body (credentials in headers or the URL)."""

    def check_form(self, form: InboundForm) -> None:
        """Refuse after parsing the form (a signature in its fields)."""

    def message_of(self, form: InboundForm) -> tuple[str, list[str], bytes]:
        """``(mail_from, rcpt_tos, raw MIME message)`` from the provider's fields."""
        raise NotImplementedError

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_body_size:
            raise WebhookRefused(413, f"body of {declared} bytes exceeds {self.max_body_size}")
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise WebhookRefused(400, "client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_size:
                raise WebhookRefused(413, f"body exceeds {self.max_body_size} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _smtp_scope(self, scope: Scope) -> Scope:
        smtp: Scope = {
            "type": "smtp",
            "asgi": {"version": "3.0", "spec_version": "1.0"},
            "mode": "smtp",
            "listener": f"{self.provider} webhook {scope.get('path', '')}",
            "hostname": self.hostname,
            "client": scope.get("client"),
            "server": scope.get("server"),
            "tls": None,
            "webhook": self.provider,
        }
        if "state" in scope:
            smtp["state"] = scope["state"]
        return smtp


class MailgunInbound(_InboundWebhook):
    """Mailgun's inbound routes (``forward("https://.../")``), signature verified.

    Mailgun signs each POST with ``timestamp``, ``token`` and ``signature``
    fields: the HMAC-SHA256 of ``timestamp + token`` under the account's HTTP
    webhook signing key. A POST is refused (``403``) when the signature does
    not match, the timestamp is more than ``max_age`` seconds away, or the
    token was seen before. Point the route at a URL whose path ends in
    ``mime`` to receive the raw message in ``body-mime`` (recommended: the
    consumer sees exactly what was sent); otherwise the message is rebuilt
    from ``message-headers``, ``body-plain``, ``body-html`` and the attachments.
    """

    provider = "mailgun"
    refused_status = 406  # Mailgun does not retry a POST answered 406 Not Acceptable.

    def __init__(
        self,
        app: ASGIApp,
        *,
        signing_key: str,
        max_age: int = DEFAULT_MAILGUN_MAX_AGE,
        **options: Any,
    ) -> None:
        super().__init__(app, **options)
        if not signing_key:
            raise ValueError("MailgunInbound needs the webhook signing key")
        self.signing_key = signing_key.encode()
        self.max_age = max_age
        self._seen: OrderedDict[str, None] = OrderedDict()

    def check_form(self, form: InboundForm) -> None:
        timestamp, token, signature = (
            form.get("timestamp"),
            form.get("token"),
            form.get("signature"),
        )
        if not (timestamp and token and signature):
            raise WebhookRefused(403, "missing Mailgun signature fields")
        expected = hmac.new(self.signing_key, (timestamp + token).encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), signature.lower()):
            raise WebhookRefused(403, "bad Mailgun signature")
        try:
            age = abs(time.time() - float(timestamp))
        except ValueError:
            raise WebhookRefused(403, "bad Mailgun timestamp") from None
        if age > self.max_age:
            raise WebhookRefused(403, f"stale Mailgun timestamp ({age:.0f} s old)")
        if token in self._seen:
            raise WebhookRefused(403, "replayed Mailgun token")
        self._seen[token] = None
        while len(self._seen) > MAILGUN_SEEN_TOKENS:
            self._seen.popitem(last=False)

    def message_of(self, form: InboundForm) -> tuple[str, list[str], bytes]:
        recipients = [a.strip() for a in form.get("recipient").split(",") if a.strip()]
        if not recipients:
            raise WebhookRefused(400, "no recipient field")
        if "body-mime" in form.raw:
            return form.get("sender"), recipients, form.raw["body-mime"]
        headers = json.loads(form.get("message-headers") or "[]")
        attachments = [f for name, f in sorted(form.files.items()) if name.startswith("attachment")]
        message = _rebuild(
            [(str(k), str(v)) for k, v in headers],
            form.get("body-plain"),
            form.get("body-html"),
            [(f.filename, f.content_type, f.data) for f in attachments],
        )
        return form.get("sender"), recipients, message


class SendGridInbound(_InboundWebhook):
    """SendGrid Inbound Parse in raw mode ("POST the raw, full MIME message").

    SendGrid does not sign Inbound Parse POSTs, so the adapter needs a shared
    secret the provider can send: HTTP basic auth (configure the URL as
    ``https://user:password@host/path``) with ``username`` and ``password``,
    and/or a ``token`` in the query string (``https://host/path?token=...``).
    At least one is required; serve the endpoint over HTTPS only. The raw
    message is the ``email`` field; the envelope is the ``envelope`` JSON.
    """

    provider = "sendgrid"
    #: SendGrid retries any other status for days; a permanent refusal is final.
    refused_status = 200

    def __init__(
        self,
        app: ASGIApp,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(app, **options)
        if not token and not (username and password):
            raise ValueError("SendGridInbound needs basic auth (username, password) or a token")
        self.credentials = (
            base64.b64encode(f"{username}:{password}".encode()).decode()
            if username and password
            else None
        )
        self.token = token

    def check_request(self, scope: Scope) -> None:
        if self.credentials is not None:
            given = _header(scope, b"authorization")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "basic" or not hmac.compare_digest(value, self.credentials):
                raise WebhookRefused(401, "bad or missing basic auth")
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given_token = (query.get("token") or [""])[0]
            if not hmac.compare_digest(given_token.encode(), self.token.encode()):
                raise WebhookRefused(403, "bad or missing token")

    def message_of(self, form: InboundForm) -> tuple[str, list[str], bytes]:
        if "email" not in form.raw:
            raise WebhookRefused(400, "no 'email' field: enable raw mode in Inbound Parse")
        try:
            envelope = json.loads(form.get("envelope") or "{}")
            recipients = [str(a) for a in envelope.get("to") or []]
            mail_from = str(envelope.get("from") or "")
        except (ValueError, AttributeError):
            raise WebhookRefused(400, "bad 'envelope' field") from None
        if not recipients:
            raise WebhookRefused(400, "no recipients in 'envelope'")
        return mail_from, recipients, form.raw["email"]


def _rebuild(
    headers: list[tuple[str, str]],
    text: str,
    html: str,
    attachments: list[tuple[str | None, str, bytes]],
) -> bytes:
    """A MIME message from parsed parts (Mailgun's non-MIME mode)."""
    message = EmailMessage(policy=policy.SMTP)
    skip = {"content-type", "content-transfer-encoding", "mime-version"}
    for name, value in headers:
        if name.lower() not in skip:
            try:
                message[name] = value
            except ValueError:  # a header value the policy refuses (a bare newline)
                continue
    message.set_content(text or "")
    if html:
        message.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(
            data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename
        )
    return message.as_bytes()


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"


async def _respond(send: Send, status: int, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})
