"""The parsed message view, and storing messages with attachments in Django models."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, models

from hub.db import database_sync_to_async
from hub.mail import Envelope, InboundEmail, parse_email
from hub.mail import message as message_module
from hub.mail.store import astore_message


class StoredMail(models.Model):
    mail_from = models.CharField(max_length=254)
    rcpt_tos = models.TextField()
    subject = models.CharField(max_length=998)
    text = models.TextField()
    raw = models.BinaryField()
    ticket = models.IntegerField(null=True)

    class Meta:
        app_label = "hub"


class StoredAttachment(models.Model):
    message = models.ForeignKey(StoredMail, on_delete=models.CASCADE)
    file = models.FileField(upload_to="attachments/")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveIntegerField()

    class Meta:
        app_label = "hub"


def email_with_attachments() -> bytes:
    email = EmailMessage()
    email["From"] = "ann@example.org"
    email["To"] = "b@example.com, Cee <c@example.com>"
    email["Cc"] = "d@example.com"
    email["Subject"] = "=?utf-8?q?R=C3=A9sum=C3=A9?="
    email.set_content("see attached")
    email.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="cv.pdf")
    email.add_attachment("a,b\n1,2\n", subtype="csv", filename="data.csv")
    return email.as_bytes()


SINGLE_PART_SAMPLES = [
    b"Subject: plain\r\n\r\nline one\r\n\r\nline three\r\n",
    "Subject: café\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\nnaïve\r\n".encode(),
    b"Subject: q\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nab=3Dc=\r\nd\r\n",
    b"Subject: x\r\nthis is not a header\r\n\r\nbody\r\n",
    b"Subject: raw\r\n\r\n\xff\xfe binary-ish\r\n",
    b"Subject: no body\r\n\r\n",
    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhi\r\n",
]


class TestParsedEmail:
    @pytest.mark.parametrize("data", [*SINGLE_PART_SAMPLES, email_with_attachments()])
    def test_parse_gives_what_the_full_email_parser_gives(self, data: bytes) -> None:
        full = BytesParser(_class=InboundEmail, policy=policy.default).parsebytes(data)
        fast = parse_email(data)
        assert fast.items() == full.items()
        assert fast.as_bytes() == full.as_bytes()
        assert (fast.text, fast.attachments) == (full.text, full.attachments)

    def test_headers_are_decoded_and_recipients_listed(self) -> None:
        email = parse_email(email_with_attachments())
        assert email.subject == "Résumé"
        assert email.to == ["b@example.com", "c@example.com", "d@example.com"]

    def test_attachments_are_bytes_with_names_and_types(self) -> None:
        attachments = parse_email(email_with_attachments()).attachments
        assert [(a.filename, a.content_type, a.data) for a in attachments] == [
            ("cv.pdf", "application/pdf", b"%PDF-1.4"),
            ("data.csv", "text/csv", b"a,b\n1,2\n"),
        ]

    def test_plain_message_without_headers_has_empty_views(self) -> None:
        email = parse_email(b"\r\njust a body\r\n")
        assert (email.subject, email.sender, email.to, email.html) == ("", "", [], "")
        assert email.text == "just a body\n"
        assert email.attachments == []

    def test_broken_input_never_raises(self) -> None:
        email = parse_email(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\xff\xfe")
        assert email.subject == ""
        assert email.defects or email.get_payload()


class TestLazyEmail:
    @pytest.fixture
    def parses(self, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
        """The messages hub.mail.message parses from now on."""
        parsed: list[bytes] = []
        real = message_module.parse_email

        def counting(data: bytes) -> InboundEmail:
            parsed.append(data)
            return real(data)

        monkeypatch.setattr(message_module, "parse_email", counting)
        return parsed

    def test_email_from_bytes_is_parsed_once_on_first_use(self, parses: list[bytes]) -> None:
        data = email_with_attachments()
        email = InboundEmail.from_bytes(data)
        assert parses == []
        assert email.subject == "Résumé"
        assert (email.text, len(email.attachments)) == ("see attached\n", 2)
        assert parses == [data]

    @pytest.mark.parametrize("data", [*SINGLE_PART_SAMPLES, email_with_attachments()])
    def test_lazy_email_is_the_parsed_email(self, data: bytes) -> None:
        lazy, parsed = InboundEmail.from_bytes(data), parse_email(data)
        assert lazy.items() == parsed.items()
        assert lazy.as_bytes() == parsed.as_bytes()
        assert (lazy.text, lazy.attachments) == (parsed.text, parsed.attachments)
        assert [type(d) for d in lazy.defects] == [type(d) for d in parsed.defects]

    def test_email_copied_or_pickled_before_use_is_still_whole(self, parses: list[bytes]) -> None:
        email = InboundEmail.from_bytes(email_with_attachments())
        copies = [copy.deepcopy(email), pickle.loads(pickle.dumps(email))]
        assert [c.subject for c in copies] == ["Résumé", "Résumé"]

    def test_unknown_attribute_raises_attribute_error_before_and_after_parsing(self) -> None:
        email = InboundEmail.from_bytes(b"Subject: s\r\n\r\nbody\r\n")
        for _ in range(2):
            with pytest.raises(AttributeError, match="no attribute 'subjet'"):
                email.subjet  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.django_db(transaction=True)
class TestStore:
    @pytest.fixture
    def tables(self, settings: Any, tmp_path: Path) -> Iterator[None]:
        settings.MEDIA_ROOT = str(tmp_path)
        with connection.schema_editor() as editor:
            editor.create_model(StoredMail)
            editor.create_model(StoredAttachment)
        yield
        with connection.schema_editor() as editor:
            editor.delete_model(StoredAttachment)
            editor.delete_model(StoredMail)

    async def test_message_and_attachments_are_stored_with_extra_fields(
        self, tables: None, tmp_path: Path
    ) -> None:
        data = email_with_attachments()
        envelope = Envelope(mail_from="ann@example.org", rcpt_tos=("b@example.com",), data=data)
        stored: Any = await astore_message(
            StoredMail, envelope, parse_email(data), attachment_model=StoredAttachment, ticket=7
        )

        def read() -> tuple[Any, list[Any]]:
            mail = StoredMail.objects.get(pk=stored.pk)
            return mail, list(mail.storedattachment_set.order_by("pk"))

        mail, attachments = await database_sync_to_async(read)()
        assert (mail.subject, mail.ticket, mail.rcpt_tos) == ("Résumé", 7, "b@example.com")
        assert bytes(mail.raw) == data
        assert [(a.filename, a.content_type, a.size) for a in attachments] == [
            ("cv.pdf", "application/pdf", 8),
            ("data.csv", "text/csv", 8),
        ]
        assert (tmp_path / attachments[0].file.name).read_bytes() == b"%PDF-1.4"
