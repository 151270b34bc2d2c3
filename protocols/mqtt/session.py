"""The wire state of one MQTT session, which may outlive its network connection.

MQTT 3.1.1 and 5.0 section 4.1: a session's state on the server is the
client's subscriptions, the QoS 1/2 messages sent but not completely
acknowledged, the QoS 1/2 messages waiting to be sent, and the QoS 2 messages
received but not completely acknowledged. The subscriptions (and messages
queued while no connection exists) belong to the application: it routes
messages and knows which client wants what. The rest is wire state, kept
here by the server, because only the server knows Packet Identifiers:

- ``outbound``: PUBLISH sent (QoS 1/2) and waiting for PUBACK / PUBREC, in
  the order sent (dicts keep insertion order), resent with DUP when the
  session resumes (4.4);
- ``released``: QoS 2 messages whose PUBREC arrived and whose PUBREL was
  sent, waiting for PUBCOMP (PUBREL is resent on resume);
- ``queue``: QoS 1/2 messages waiting behind a full in-flight window;
- ``inbound_qos2``: Packet Identifiers of received QoS 2 messages the
  application handled (PUBREC sent), waiting for PUBREL: a resent PUBLISH
  with one of them is answered, not delivered again (exactly once, 4.3.3).

A :class:`Session` belongs to one connection at a time; the server keeps it
by Client Identifier while no connection holds it, until it expires.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .packets import Publish

#: Packet Identifiers are 1-65535 (2.2.1).
MAX_PACKET_ID = 65_535


@dataclass(slots=True)
class QueuedMessage:
    """A PUBLISH waiting for the in-flight window, and when it was queued (loop time)."""

    publish: Publish
    queued_at: float


@dataclass(slots=True)
class Session:
    """The server's wire state of one Client Identifier (see the module docstring)."""

    client_id: str
    outbound: dict[int, Publish] = field(default_factory=dict)
    #: Packet Identifiers as the keys of dicts, not sets: an empty dict is 64
    #: bytes, an empty set 216, and a session per idle device adds up.
    released: dict[int, None] = field(default_factory=dict)
    #: Created with its first message (an empty deque is 600 bytes).
    queue: deque[QueuedMessage] | None = None
    inbound_qos2: dict[int, None] = field(default_factory=dict)
    #: Loop time when the session expires while no connection holds it; None: held.
    expires_at: float | None = None
    _last_id: int = 0

    @property
    def in_flight(self) -> int:
        """Outbound QoS 1/2 messages not completely acknowledged."""
        return len(self.outbound) + len(self.released)

    def allocate_packet_id(self) -> int:
        """A Packet Identifier not used by any outbound message in flight.

        Callers keep ``in_flight`` below the window (at most 65535), so a free
        identifier always exists.
        """
        last = self._last_id
        outbound, released = self.outbound, self.released
        while True:
            last = last + 1 if last < MAX_PACKET_ID else 1
            if last not in outbound and last not in released:
                self._last_id = last
                return last
