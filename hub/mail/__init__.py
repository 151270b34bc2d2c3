"""Inbound mail for consumers: the parsed message, and helpers for the common jobs.

- :mod:`hub.mail.message`: :class:`Envelope` (who sent what to whom, as the
  SMTP session said) and :class:`InboundEmail` (the message parsed with
  ``email.policy.default``, with ``subject``, ``sender``, ``text``, ``html`` and
  ``attachments`` as plain properties);
- :mod:`hub.mail.auth`: SMTP AUTH against Django's ``authenticate()``;
- :mod:`hub.mail.groups`: push a received message to a channel-layer group;
- :mod:`hub.mail.store`: store a message and its attachments with Django models.
"""

from hub.mail.message import Attachment, Envelope, InboundEmail, parse_email

__all__ = ["Attachment", "Envelope", "InboundEmail", "parse_email"]
