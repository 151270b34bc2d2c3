"""Pushing a received message to a channel-layer group (a dashboard, a ticket's watchers).

The event is small and serializable by every layer (msgpack, JSON): the
envelope, the headers people read, the text body cut to a size, and each
attachment's name, type and size, never its bytes (store those, and send a
link). Consumers in the group get it in their ``mail_received`` handler.
"""

from __future__ import annotations

from typing import Any

from hub.layers import get_channel_layer
from hub.mail.message import Envelope, InboundEmail

#: Characters of the text body put in the event; a preview, not the message.
TEXT_PREVIEW_LENGTH = 2000


def mail_event(
    envelope: Envelope, email: InboundEmail, *, event_type: str = "mail.received"
) -> dict[str, Any]:
    """The group event for one message."""
    return {
        "type": event_type,
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "user": envelope.user,
        "subject": email.subject,
        "sender": email.sender,
        "text": email.text[:TEXT_PREVIEW_LENGTH],
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in email.attachments
        ],
    }


async def push_to_group(
    group: str,
    envelope: Envelope,
    email: InboundEmail,
    *,
    event_type: str = "mail.received",
    alias: str | None = None,
) -> None:
    """``group_send`` :func:`mail_event` to ``group`` on the layer ``alias`` (default layer).

    Raises:
        RuntimeError: no channel layer is configured.
    """
    layer = get_channel_layer(alias) if alias else get_channel_layer()
    if layer is None:
        raise RuntimeError("push_to_group needs a channel layer; set CHANNEL_LAYERS")
    await layer.group_send(group, mail_event(envelope, email, event_type=event_type))
