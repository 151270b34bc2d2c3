"""What a consumer receives for one message: its envelope and the parsed email.

The envelope is what the SMTP session said (``MAIL FROM``, the accepted
``RCPT TO`` addresses, who connected and authenticated); the message is what
the sender wrote, headers and body, which may claim anything. Keep them
apart: route and authorize on the envelope, display the message.

The message is parsed with the standard library's ``email`` package and
``email.policy.default`` (RFC 5322/6532 headers decoded to ``str``, MIME parts
walked with ``get_body()`` / ``iter_attachments()``). :class:`InboundEmail` *is*
an :class:`email.message.EmailMessage`, plus the few properties almost every
consumer wants.

The email a consumer receives is parsed when it is first used, not before:
parsing costs more than the rest of hub's work on a small message, and a
consumer that stores or forwards ``envelope.data`` as it came never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any, cast

from hub.types import Message, Scope

if TYPE_CHECKING:
    from hub.mail.authentication import Verdicts


@dataclass(frozen=True)
class Attachment:
    """One attached file: its name as the sender gave it, its MIME type and its bytes."""

    filename: str | None
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


class InboundEmail(EmailMessage):
    """An ``EmailMessage`` (``policy.default``) with convenience properties.

    :meth:`from_bytes` makes one that parses itself on first use: any method,
    property, header lookup or ``len()``/``str()``/``bytes()`` parses it and it
    is an ordinary parsed message from then on.
    """

    @classmethod
    def from_bytes(cls, data: bytes) -> InboundEmail:
        """The message in ``data``, parsed as :func:`parse_email` does when first used."""
        email = cls.__new__(cls)
        # No EmailMessage state yet: its first lookup lands in __getattr__, which parses.
        email.__dict__["_unparsed"] = data
        return email

    if not TYPE_CHECKING:  # mypy keeps checking attribute names on InboundEmail

        def __getattr__(self, name: str) -> Any:
            # Only reached for attributes missing from the instance: before parsing, the
            # message's own state (_headers, _payload, policy, ...); after, none but typos.
            data = self.__dict__.pop("_unparsed", None)
            if data is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            self.__dict__.update(parse_email(data).__dict__)
            return getattr(self, name)

    @property
    def subject(self) -> str:
        """The ``Subject`` header, decoded; ``""`` when there is none."""
        return str(self.get("subject", ""))

    @property
    def sender(self) -> str:
        """The ``From`` header as written (``"Ann <ann@example.com>"``); ``""`` if absent."""
        return str(self.get("from", ""))

    @property
    def to(self) -> list[str]:
        """The addresses of the ``To`` and ``Cc`` headers (what the sender claims)."""
        addresses: list[str] = []
        for name in ("to", "cc"):
            header: Any = self.get(name)
            if header is not None and hasattr(header, "addresses"):
                addresses.extend(address.addr_spec for address in header.addresses)
        return addresses

    @property
    def text(self) -> str:
        """The plain-text body (the preferred ``text/plain`` part), ``\n`` line ends; or ``""``."""
        return _content(self.get_body(preferencelist=("plain",)))

    @property
    def html(self) -> str:
        """The HTML body (the preferred ``text/html`` part); ``""`` if none."""
        return _content(self.get_body(preferencelist=("html",)))

    @property
    def attachments(self) -> list[Attachment]:
        """Every attachment, decoded from its transfer encoding to bytes."""
        found = []
        for part in self.iter_attachments():
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            found.append(Attachment(part.get_filename(), part.get_content_type(), data))
        return found


_PARSER = BytesParser(_class=InboundEmail, policy=policy.default)


def parse_email(data: bytes) -> InboundEmail:
    """Parse raw message bytes (as in ``smtp.message`` ``data``); never raises on bad input.

    Defects (a broken MIME boundary, a bad header) are recorded in each part's
    ``defects`` list, as the ``email`` package does, instead of raising.

    A single-part message (no ``multipart/*`` or ``message/*`` type) is parsed
    as the ``email`` package would, with less work: only the header block goes
    through the parser, and the body becomes the payload in one piece, as the
    feed parser would have joined its lines. For a 100 KiB text message that
    is a tenth of the time; anything unusual takes the full parser.
    """
    head, separator, body = data.partition(b"\r\n\r\n")
    if separator and not data.startswith((b"\r\n", b"\n")):
        message = cast(InboundEmail, _PARSER.parsebytes(head + separator, headersonly=True))
        if not message.defects and message.get_content_maintype() not in _NESTED:
            # BytesParser decodes the same way: ASCII, undecodable bytes kept as surrogates.
            message.set_payload(body.decode("ascii", "surrogateescape"))
            return message
    return cast(InboundEmail, _PARSER.parsebytes(data))


#: Content types whose body the parser splits into parts (so the full parser is needed).
_NESTED = frozenset({"multipart", "message"})


def _content(part: MIMEPart | None) -> str:
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset or broken encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    # SMTP carries CRLF line ends; Python text uses \n.
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""


@dataclass(frozen=True)
class Envelope:
    """One mail transaction as the SMTP session said it (``smtp.message`` in a dataclass).

    Attributes:
        mail_from: the reverse path; ``""`` for bounces (``MAIL FROM:<>``).
        rcpt_tos: the recipients the consumer accepted, in order.
        data: the message bytes, dot-stuffing removed.
        user: the identity the client authenticated as, or ``None``.
        helo: the client's ``EHLO``/``HELO`` name.
        client: ``(host, port)`` of the client, or ``None``.
        tls: the connection's TLS details (asgiref's TLS extension), or ``None``.
        transaction: the number of this transaction in its session, from 1.
        mail_options / rcpt_options: the ESMTP parameters, upper-cased.
        authentication: SPF, DKIM and DMARC verdicts when the consumer checks
            them (``check_authentication``), else ``None``.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    user: str | None = None
    helo: str | None = None
    client: tuple[str, int] | None = None
    tls: dict[str, Any] | None = None
    transaction: int = 1
    mail_options: tuple[str, ...] = ()
    rcpt_options: tuple[str, ...] = ()
    authentication: Verdicts | None = None

    @classmethod
    def from_event(cls, event: Message, scope: Scope | None = None) -> Envelope:
        """The envelope of an ``smtp.message`` event (``scope`` adds the client address)."""
        client = scope.get("client") if scope is not None else None
        return cls(
            mail_from=event["mail_from"],
            rcpt_tos=tuple(event["rcpt_tos"]),
            data=event["data"],
            user=event.get("user"),
            helo=event.get("helo"),
            client=(str(client[0]), int(client[1])) if client else None,
            tls=event.get("tls"),
            transaction=event.get("transaction", 1),
            mail_options=tuple(event.get("mail_options", ())),
            rcpt_options=tuple(event.get("rcpt_options", ())),
        )
