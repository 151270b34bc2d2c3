"""Mailgun and SendGrid webhooks reach the same consumer class as SMTP, over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.urls import path

from hub.generic.smtp import AsyncSmtpConsumer, Refuse
from hub.mail import Envelope, InboundEmail
from hub.mail.webhooks import MailgunInbound, SendGridInbound
from hub.routing import ProtocolTypeRouter, URLRouter
from hub.testing.live import LiveHub

KEY = "key-mailgun-test"
TOKEN = "s3cret"
MIME = (
    b"From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: Hello\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody \xc3\xa9\r\n"
)

received: list[tuple[Envelope, InboundEmail, dict[str, Any]]] = []


class Support(AsyncSmtpConsumer):
    async def recipient(self, address: str, **kwargs: Any) -> bool:
        if address.startswith("nobody@"):
            raise Refuse(550, "5.1.1 No such user")
        return True

    async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> str:
        if email.subject == "busy":
            raise Refuse(451, "4.3.0 Try later")
        if email.subject == "crash":
            raise RuntimeError("handler bug")
        received.append((envelope, email, dict(self.scope)))
        return "Q1"


@pytest.fixture(scope="module")
def live() -> Iterator[LiveHub]:
    app = Support.as_asgi()
    application = ProtocolTypeRouter(
        {
            "smtp": app,
            "http": URLRouter(
                [
                    path("mailgun/", MailgunInbound(app, signing_key=KEY, max_body_size=64_000)),
                    path("sendgrid/", SendGridInbound(app, token=TOKEN)),
                    path("sendgrid-basic/", SendGridInbound(app, username="u", password="p")),
                ]
            ),
        }
    )
    hub = LiveHub(application, ["http", "smtp"]).start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(autouse=True)
def clear() -> None:
    received.clear()


def mailgun_fields(**overrides: str) -> dict[str, str]:
    timestamp, token = str(int(time.time())), f"tok-{time.monotonic_ns()}"
    signature = hmac.new(KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    fields = {
        "recipient": "support@example.com",
        "sender": "bounce@example.org",
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
    }
    fields.update(overrides)
    return fields


def post_mailgun(live: LiveHub, fields: dict[str, str], mime: bytes = MIME) -> requests.Response:
    files = {"body-mime": (None, mime, "text/plain")} if mime else None
    return requests.post(live.url() + "/mailgun/", data=fields, files=files, timeout=10)


def post_sendgrid(
    live: LiveHub, mime: bytes = MIME, to: str = "support@example.com", **kwargs: Any
) -> requests.Response:
    envelope = json.dumps({"to": [to], "from": "bounce@example.org"})
    files = {"email": (None, mime, "text/plain"), "envelope": (None, envelope)}
    url = kwargs.pop("url", f"{live.url()}/sendgrid/?token={TOKEN}")
    return requests.post(url, files=files, timeout=10, **kwargs)


class TestOneConsumerServesEverySource:
    def test_smtp_mailgun_and_sendgrid_deliver_the_same_envelope_and_email(
        self, live: LiveHub
    ) -> None:
        host, port = live.address("smtp")
        with smtplib.SMTP(host, port, timeout=5) as client:
            client.sendmail("bounce@example.org", ["support@example.com"], MIME)
        assert post_mailgun(live, mailgun_fields()).status_code == 200
        assert post_sendgrid(live).status_code == 200
        assert len(received) == 3
        for envelope, email, _ in received:
            assert envelope.mail_from == "bounce@example.org"
            assert envelope.rcpt_tos == ("support@example.com",)
            assert email.subject == "Hello"
            assert email.text == "body é\n"
            assert envelope.client is not None
        assert [scope.get("webhook") for *_, scope in received] == [None, "mailgun", "sendgrid"]

    def test_the_queue_id_is_in_the_response(self, live: LiveHub) -> None:
        assert post_sendgrid(live).text == "250 Q1"


class TestMailgunSignature:
    def test_a_bad_signature_is_refused_403_without_reaching_the_consumer(
        self, live: LiveHub
    ) -> None:
        response = post_mailgun(live, mailgun_fields(signature="0" * 64))
        assert response.status_code == 403
        assert received == []

    def test_a_stale_timestamp_is_refused(self, live: LiveHub) -> None:
        timestamp, token = str(int(time.time()) - 3600), "old-token"
        signature = hmac.new(KEY.encode(), (timestamp + token).encode(), hashlib.sha256)
        fields = mailgun_fields(timestamp=timestamp, token=token, signature=signature.hexdigest())
        response = post_mailgun(live, fields)
        assert response.status_code == 403
        assert "stale" in response.text

    def test_a_replayed_post_is_refused(self, live: LiveHub) -> None:
        fields = mailgun_fields()
        assert post_mailgun(live, fields).status_code == 200
        assert post_mailgun(live, fields).status_code == 403
        assert len(received) == 1

    def test_a_body_over_the_limit_is_refused_413(self, live: LiveHub) -> None:
        response = post_mailgun(live, mailgun_fields(), mime=MIME + b"x" * 70_000)
        assert response.status_code == 413

    def test_the_parsed_mode_is_rebuilt_into_a_mime_message(self, live: LiveHub) -> None:
        headers = json.dumps([["From", "Ann <ann@example.org>"], ["Subject", "Parsed"]])
        fields = mailgun_fields(**{"message-headers": headers, "body-plain": "plain text"})
        files = {"attachment-1": ("a.txt", b"file bytes", "text/plain")}
        response = requests.post(live.url() + "/mailgun/", data=fields, files=files, timeout=10)
        assert response.status_code == 200
        [(_, email, _)] = received
        assert (email.subject, email.text) == ("Parsed", "plain text\n")
        [attachment] = email.attachments
        assert (attachment.filename, attachment.data) == ("a.txt", b"file bytes")


class TestSendGridSecret:
    def test_a_missing_token_is_refused_403(self, live: LiveHub) -> None:
        assert post_sendgrid(live, url=live.url() + "/sendgrid/").status_code == 403
        assert received == []

    def test_basic_auth_is_checked(self, live: LiveHub) -> None:
        url = live.url() + "/sendgrid-basic/"
        assert post_sendgrid(live, url=url, auth=("u", "wrong")).status_code == 401
        assert post_sendgrid(live, url=url, auth=("u", "p")).status_code == 200

    def test_the_parsed_mode_without_email_field_is_refused_400(self, live: LiveHub) -> None:
        url = f"{live.url()}/sendgrid/?token={TOKEN}"
        response = requests.post(url, files={"text": (None, "hi")}, timeout=10)
        assert response.status_code == 400


class TestTheAnswerIsTheConsumers:
    def test_a_refused_recipient_is_a_permanent_refusal(self, live: LiveHub) -> None:
        response = post_mailgun(live, mailgun_fields(recipient="nobody@example.com"))
        assert (response.status_code, response.text) == (406, "550 5.1.1 No such user")

    def test_a_temporary_refusal_asks_the_provider_to_retry(self, live: LiveHub) -> None:
        response = post_sendgrid(live, mime=MIME.replace(b"Hello", b"busy"))
        assert response.status_code == 503

    def test_a_crashing_handler_asks_the_provider_to_retry(self, live: LiveHub) -> None:
        response = post_mailgun(live, mailgun_fields(), mime=MIME.replace(b"Hello", b"crash"))
        assert response.status_code == 503
        assert received == []

    def test_a_permanent_refusal_is_final_for_sendgrid(self, live: LiveHub) -> None:
        response = post_sendgrid(live, to="nobody@example.com")
        assert (response.status_code, response.text) == (200, "550 5.1.1 No such user")
