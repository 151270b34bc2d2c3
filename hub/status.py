"""What this process is doing: listeners, live connections, message and error counts.

One :data:`STATUS` per process, fed by consumers (each connection registers
itself; each handled message, send and crash is counted by scope type) and by
the runner (listeners, draining). The admin's "Hub status" page, the health
and readiness views and the Prometheus collector read it. Counting is a few
integer increments per message, cheap enough to stay on by default.

Handler durations are sampled: one handler run in ``HUB_HANDLER_TIMING_EVERY``
(8) is timed. Reading the clock twice costs more than all the counting (on a
raw TCP line consumer, ~5 % of the instructions per line); one run in eight
gives the same distribution. 1 times every run.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from hub.conf import hub_setting

#: Upper bounds (seconds) of the handler latency histogram buckets.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(slots=True)
class Connection:
    """One live consumer instance (one per connection: slots keep it small)."""

    key: str
    consumer: str
    protocol: str
    summary: str
    channel_name: str | None
    connected_at: float = field(default_factory=time.time)


@dataclass(slots=True)
class Traffic:
    """One protocol's messages: handled (a sample timed), and sent.

    Consumers keep their protocol's Traffic and update its fields directly:
    this is every message's path, and an attribute is cheaper to bump than a
    Counter key.
    """

    #: Messages handled.
    handled: int = 0
    #: One handled message in this many is timed into ``counts`` and ``total``.
    timed_every: int = 8
    #: Timed handler runs by duration: ``counts[i]`` took at most
    #: ``LATENCY_BUCKETS[i]`` seconds (the last, longer); :func:`bucket` gives ``i``.
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    #: Seconds spent in the timed handler runs, in all.
    total: float = 0.0
    #: Messages sent to clients.
    sent: int = 0


def bucket(seconds: float) -> int:
    """The index in :attr:`Traffic.counts` of a handler that took ``seconds``."""
    return bisect.bisect_left(LATENCY_BUCKETS, seconds)


#: The first bucket's bound. Most handlers finish within it, and one comparison
#: is far cheaper than a call to :func:`bucket` (a bisection comparing floats):
#: consumers count ``0 if elapsed <= FASTEST else bucket(elapsed)``.
FASTEST = LATENCY_BUCKETS[0]


class HubStatus:
    """The counters and registries of one process."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.listeners: list[tuple[str, str]] = []
        self.draining = False
        self.connections: dict[str, Connection] = {}
        self.connections_total: Counter[str] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.traffic: dict[str, Traffic] = {}

    def connected(self, connection: Connection) -> None:
        self.connections[connection.key] = connection
        self.connections_total[connection.protocol] += 1

    def disconnected(self, key: str) -> None:
        self.connections.pop(key, None)

    def traffic_for(self, protocol: str) -> Traffic:
        """The message counts of ``protocol``; consumers keep them and count."""
        traffic = self.traffic.get(protocol)
        if traffic is None:
            every = hub_setting("HUB_HANDLER_TIMING_EVERY")
            if not isinstance(every, int) or every < 1:
                raise ImproperlyConfigured(
                    f"HUB_HANDLER_TIMING_EVERY must be a whole number of at least 1, got {every!r}"
                )
            traffic = self.traffic[protocol] = Traffic(timed_every=every)
        return traffic

    @property
    def messages_in(self) -> Counter[str]:
        """Messages handled, by protocol."""
        return Counter({protocol: t.handled for protocol, t in self.traffic.items()})

    @property
    def messages_out(self) -> Counter[str]:
        """Messages sent to clients, by protocol."""
        return Counter({protocol: t.sent for protocol, t in self.traffic.items()})

    def error(self, protocol: str, kind: str) -> None:
        self.errors[(protocol, kind)] += 1

    def open_connections(self) -> Counter[str]:
        """Live connections by protocol."""
        return Counter(connection.protocol for connection in self.connections.values())

    def snapshot(self) -> dict[str, Any]:
        """Everything above as plain data (for the status page and its WebSocket)."""
        return {
            "time": time.time(),
            "uptime": time.time() - self.started_at,
            "draining": self.draining,
            "listeners": [{"protocol": p, "url": u} for p, u in self.listeners],
            "open_connections": dict(self.open_connections()),
            "connections_total": dict(self.connections_total),
            "messages_in": dict(self.messages_in),
            "messages_out": dict(self.messages_out),
            "errors": {f"{p}/{k}": n for (p, k), n in self.errors.items()},
            "connections": [
                {
                    "key": c.key,
                    "consumer": c.consumer,
                    "protocol": c.protocol,
                    "summary": c.summary,
                    "channel_name": c.channel_name,
                    "connected_at": c.connected_at,
                }
                for c in sorted(self.connections.values(), key=lambda c: c.connected_at)
            ],
        }


#: This process's status.
STATUS = HubStatus()
