"""Storing a received message, and its attachments as files, with your Django models.

hub ships no models (your project owns its tables and migrations); these
functions fill the fields your models have, by name, and leave the rest::

    class Mail(models.Model):
        mail_from = models.CharField(max_length=254)
        rcpt_tos = models.TextField()              # one address per line
        subject = models.CharField(max_length=998)
        text = models.TextField()
        raw = models.FileField(upload_to="mail/")  # or models.BinaryField()
        ticket = models.ForeignKey(Ticket, ...)

    class MailAttachment(models.Model):
        message = models.ForeignKey(Mail, on_delete=models.CASCADE)
        file = models.FileField(upload_to="mail/attachments/")
        filename = models.CharField(max_length=255)
        content_type = models.CharField(max_length=255)
        size = models.PositiveIntegerField()

    mail = await astore_message(Mail, envelope, email, attachment_model=MailAttachment,
                                ticket_id=ticket)

Message fields filled when present: ``mail_from``, ``rcpt_tos``, ``user``
(the authenticated identity), ``helo``, ``subject``, ``sender``, ``text``,
``html``, ``raw`` (the message bytes: a file for a ``FileField``, bytes for a
``BinaryField``). Attachment fields: ``file`` or ``data``, ``filename``,
``content_type``, ``size``, and the foreign key named by ``attachment_fk``.
Everything is saved in one transaction: a message is stored whole or not at
all, so an error leaves nothing behind and the sender, told 451, retries.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.files.base import ContentFile
from django.db import models, transaction

from hub.db import database_sync_to_async
from hub.mail.message import Attachment, Envelope, InboundEmail


def store_message(
    model: type[models.Model],
    envelope: Envelope,
    email: InboundEmail,
    *,
    attachment_model: type[models.Model] | None = None,
    attachment_fk: str = "message",
    **fields: Any,
) -> models.Model:
    """Save ``envelope`` and ``email`` as a ``model`` row (and attachment rows); sync, ORM.

    ``fields`` are extra values for the message row (``ticket_id=1234``).

    Raises:
        django.core.exceptions.FieldDoesNotExist: ``attachment_fk`` is not a
            field of ``attachment_model``.
    """
    values = {
        "mail_from": envelope.mail_from,
        "rcpt_tos": "\n".join(envelope.rcpt_tos),
        "user": envelope.user,
        "helo": envelope.helo,
        "subject": email.subject,
        "sender": email.sender,
        "text": email.text,
        "html": email.html,
    }
    names = _field_names(model)
    row = {name: value for name, value in values.items() if name in names}
    row.update(fields)
    with transaction.atomic():
        instance = model(**row)
        if "raw" in names:
            _set_bytes(instance, "raw", envelope.data, f"{secrets.token_hex(8)}.eml")
        instance.save()
        if attachment_model is not None:
            attachment_model._meta.get_field(attachment_fk)
            for attachment in email.attachments:
                _store_attachment(attachment_model, attachment_fk, instance, attachment)
    return instance


async def astore_message(
    model: type[models.Model],
    envelope: Envelope,
    email: InboundEmail,
    **options: Any,
) -> models.Model:
    """:func:`store_message` from async code, in the ORM thread."""
    stored: models.Model = await database_sync_to_async(store_message)(
        model, envelope, email, **options
    )
    return stored


def _store_attachment(
    model: type[models.Model], fk: str, message: models.Model, attachment: Attachment
) -> None:
    names = _field_names(model)
    values = {
        "filename": attachment.filename or "",
        "content_type": attachment.content_type,
        "size": attachment.size,
    }
    row = {name: value for name, value in values.items() if name in names}
    row[fk] = message
    instance = model(**row)
    for name in ("file", "data"):
        if name in names:
            _set_bytes(instance, name, attachment.data, attachment.filename or "attachment")
    instance.save()


def _set_bytes(instance: models.Model, name: str, data: bytes, filename: str) -> None:
    """Bytes into a ``FileField`` (saved to its storage) or a ``BinaryField``."""
    field = instance._meta.get_field(name)
    if isinstance(field, models.FileField):
        getattr(instance, name).save(filename, ContentFile(data), save=False)
    else:
        setattr(instance, name, data)


def _field_names(model: type[models.Model]) -> set[str]:
    return {field.name for field in model._meta.get_fields()}
