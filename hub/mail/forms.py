"""The body of a provider's inbound-mail POST: ``multipart/form-data`` or urlencoded fields.

Mailgun and SendGrid post each received message as an HTML form: text fields
(the sender, the raw MIME, the signature) and, in their "parsed" modes, one
file field per attachment. The standard library parses both encodings, so
no upload machinery (and no Django request) is needed: the body is already
bounded in size by the caller, and a form of a few fields is held in memory
as the message would be on the SMTP path anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl

__all__ = ["FormError", "FormFile", "InboundForm", "parse_form"]


class FormError(ValueError):
    """The body is not a form this module can read (the adapter answers 400)."""


@dataclass(frozen=True)
class FormFile:
    """One uploaded file field: its field name, file name, declared type and bytes."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class InboundForm:
    """The fields of a form (last value wins for repeated names) and its file fields."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, FormFile] = field(default_factory=dict)
    #: Text fields as raw bytes (``email`` in SendGrid's raw mode may be 8-bit MIME).
    raw: dict[str, bytes] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


_PARSER = BytesParser(policy=policy.HTTP)


def parse_form(content_type: str, body: bytes) -> InboundForm:
    """Parse a POST body by its ``Content-Type``.

    Raises:
        FormError: an unsupported content type, or multipart without a boundary.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as exc:
            raise FormError("form body is not UTF-8") from exc
        values = dict(pairs)
        return InboundForm(fields=values, raw={k: v.encode() for k, v in values.items()})
    if kind != "multipart/form-data":
        raise FormError(f"unsupported content type {kind!r}")
    if "boundary=" not in content_type.lower():
        raise FormError("multipart body without a boundary")
    # The email package reads multipart bodies; give it the header it needs.
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = _PARSER.parsebytes(head + body)
    if not message.is_multipart():
        raise FormError("multipart body could not be split into parts")
    fields: dict[str, str] = {}
    raw: dict[str, bytes] = {}
    files: dict[str, FormFile] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = FormFile(name, filename, part.get_content_type(), data)
            continue
        charset = part.get_content_charset() or "utf-8"
        raw[name] = data
        try:
            fields[name] = data.decode(charset, "replace")
        except LookupError:  # an unknown charset name
            fields[name] = data.decode("utf-8", "replace")
    return InboundForm(fields=fields, files=files, raw=raw)
