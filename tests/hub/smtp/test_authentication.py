"""SPF, DKIM and DMARC verdicts, answered by a dict-backed DNS resolver (no network)."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterator
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.generic.smtp import AsyncSmtpConsumer
from hub.mail import Envelope, InboundEmail
from hub.mail.authentication import authenticate, check_dkim, check_spf, dict_resolver
from hub.testing.live import LiveHub

KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
PRIVATE = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
PUBLIC = base64.b64encode(
    KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()

RECORDS: dict[str, Any] = {
    "sel._domainkey.example.org": [f"v=DKIM1; k=rsa; p={PUBLIC}"],
    "example.org": ["v=spf1 ip4:127.0.0.0/8 include:_spf.example.org -all"],
    "_spf.example.org": ["v=spf1 ip4:192.0.2.0/24 -all"],
    "_dmarc.example.org": ["v=DMARC1; p=reject; adkim=r; aspf=r"],
    "_dmarc.strict.example": ["v=DMARC1; p=quarantine"],
}
RESOLVER = dict_resolver(RECORDS)
MESSAGE = b"From: Ann <ann@example.org>\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"


def signed(message: bytes = MESSAGE) -> bytes:
    signature = dkim.sign(
        message, b"sel", b"example.org", PRIVATE, include_headers=[b"from", b"subject"]
    )
    return signature + message


class TestDkim:
    def test_a_signed_message_passes(self) -> None:
        assert check_dkim(signed(), RESOLVER) == ("pass", "example.org")

    def test_a_tampered_body_fails(self) -> None:
        assert check_dkim(signed().replace(b"Hello.", b"Hullo."), RESOLVER)[0] == "fail"

    def test_an_unsigned_message_has_none(self) -> None:
        assert check_dkim(MESSAGE, RESOLVER) == ("none", None)


class TestSpf:
    def test_an_allowed_ip_passes(self) -> None:
        assert check_spf("127.0.0.1", "example.org", RESOLVER) == "pass"

    def test_an_included_range_passes(self) -> None:
        assert check_spf("192.0.2.7", "example.org", RESOLVER) == "pass"

    def test_another_ip_fails(self) -> None:
        assert check_spf("198.51.100.1", "example.org", RESOLVER) == "fail"

    def test_a_domain_without_a_record_has_none(self) -> None:
        assert check_spf("127.0.0.1", "nospf.example", RESOLVER) == "none"


class TestDmarc:
    def test_an_aligned_dkim_pass_passes_from_any_ip(self) -> None:
        verdicts = authenticate(
            signed(), "ann@example.org", "198.51.100.1", "x@other.example", None, RESOLVER
        )
        assert (verdicts.spf, verdicts.dkim, verdicts.dmarc) == ("none", "pass", "pass")
        assert verdicts.dmarc_policy == "reject"

    def test_an_aligned_spf_pass_passes_without_a_signature(self) -> None:
        verdicts = authenticate(
            MESSAGE, "ann@example.org", "127.0.0.1", "b@example.org", None, RESOLVER
        )
        assert (verdicts.spf, verdicts.dkim, verdicts.dmarc) == ("pass", "none", "pass")

    def test_nothing_aligned_fails_with_the_published_policy(self) -> None:
        verdicts = authenticate(
            MESSAGE, "ann@example.org", "198.51.100.1", "b@example.org", None, RESOLVER
        )
        assert (verdicts.spf, verdicts.dmarc, verdicts.dmarc_policy) == ("fail", "fail", "reject")

    def test_an_spf_pass_for_another_domain_is_not_aligned(self) -> None:
        message = MESSAGE.replace(b"ann@example.org", b"ann@strict.example")
        verdicts = authenticate(
            message, "ann@strict.example", "127.0.0.1", "b@example.org", None, RESOLVER
        )
        assert (verdicts.spf, verdicts.dmarc, verdicts.dmarc_policy) == (
            "pass",
            "fail",
            "quarantine",
        )

    def test_a_from_domain_without_a_record_has_none(self) -> None:
        verdicts = authenticate(MESSAGE, "a@nodmarc.example", "127.0.0.1", "", "h", RESOLVER)
        assert verdicts.dmarc == "none"


received: list[Envelope] = []


class Checked(AsyncSmtpConsumer):
    check_authentication = True
    dns_resolver = RESOLVER

    async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> None:
        received.append(envelope)


class Unchecked(AsyncSmtpConsumer):
    async def message(self, envelope: Envelope, email: InboundEmail, **kwargs: Any) -> None:
        received.append(envelope)


@pytest.fixture
def hub_for(request: pytest.FixtureRequest) -> Iterator[LiveHub]:
    received.clear()
    live = LiveHub(request.param.as_asgi(), ["smtp"]).start()
    try:
        yield live
    finally:
        live.stop()


class TestVerdictsInTheMessageEvent:
    @pytest.mark.parametrize("hub_for", [Checked], indirect=True)
    def test_a_consumer_that_checks_gets_verdicts_on_the_envelope(self, hub_for: LiveHub) -> None:
        with smtplib.SMTP(*hub_for.address("smtp"), timeout=5) as client:
            client.sendmail("bounce@example.org", ["b@example.com"], signed())
        [envelope] = received
        assert envelope.authentication is not None
        assert envelope.authentication.spf == "pass"  # 127.0.0.1 is in example.org's record
        assert (envelope.authentication.dkim, envelope.authentication.dmarc) == ("pass", "pass")

    @pytest.mark.parametrize("hub_for", [Unchecked], indirect=True)
    def test_checks_are_off_by_default(self, hub_for: LiveHub) -> None:
        with smtplib.SMTP(*hub_for.address("smtp"), timeout=5) as client:
            client.sendmail("bounce@example.org", ["b@example.com"], signed())
        assert received[0].authentication is None
