"""The broker's shared state: who subscribed to what, retained messages, offline sessions.

Everything here is reached through ``async`` methods of :class:`BrokerState`,
so a store shared by many processes (Redis, a database) can implement the
same interface; :class:`MemoryBrokerState`, the default, serves one process.
Nothing else in the broker assumes one process: messages travel to online
clients through the channel layer (``layer.send(channel_name, ...)``), which
crosses processes once the layer does.

The registry keeps, per Client Identifier, the channel of its live consumer
(``None`` while a persistent session has no connection) and its
subscriptions. Operations that a consumer does for "its" client take the
consumer's channel and do nothing when another consumer owns the client id
now (a takeover raced the old connection's cleanup).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from protocols.mqtt.topics import parse_shared_subscription, topic_matches

#: Messages kept per offline session; 1000, as the server's max_queued_messages
#: and mosquitto's default.
MAX_OFFLINE_MESSAGES = 1000

#: Routes :class:`MemoryBrokerState` remembers (a topic and publisher each)
#: before starting over; enough for the topics in use at once, bounded for a
#: fleet that publishes each to a topic of its own.
MATCH_CACHE_SIZE = 4096


@dataclass(slots=True)
class SubscriptionOptions:
    """One granted subscription of a client (v5 3.8.3.1 options)."""

    qos: int
    no_local: bool = False
    retain_as_published: bool = False
    subscription_identifier: int | None = None


@dataclass(slots=True)
class Delivery:
    """Where one published message goes: a client, its channel, QoS and identifiers."""

    client_id: str
    channel: str | None
    qos: int
    retain_as_published: bool = False
    subscription_identifiers: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Client:
    channel: str | None
    subscriptions: dict[str, SubscriptionOptions] = field(default_factory=dict)
    #: Messages kept while offline; created with the first (an empty deque is 600 bytes).
    queue: deque[tuple[float, dict[str, Any]]] | None = None
    expires_at: float | None = None


class BrokerState:
    """The interface of the broker's store (see the module docstring)."""

    async def attach(self, client_id: str, channel: str, clean: bool) -> bool:
        """Make ``channel`` the client's; return whether a session existed (and is kept)."""
        raise NotImplementedError

    async def detach(self, client_id: str, channel: str, expiry: int) -> None:
        """The client's connection ended: keep its session ``expiry`` seconds, or drop it."""
        raise NotImplementedError

    async def subscribe(
        self, client_id: str, channel: str, topic_filter: str, options: SubscriptionOptions
    ) -> bool:
        """Add or replace a subscription; return whether it is new."""
        raise NotImplementedError

    async def unsubscribe(self, client_id: str, channel: str, topic_filter: str) -> bool:
        """Remove a subscription; return whether it existed."""
        raise NotImplementedError

    async def match(self, topic: str, publisher: str) -> list[Delivery]:
        """Every client a message to ``topic`` from ``publisher`` reaches, once each."""
        raise NotImplementedError

    async def enqueue(self, client_id: str, message: dict[str, Any]) -> None:
        """Keep a message for a client without a connection."""
        raise NotImplementedError

    async def drain(self, client_id: str) -> list[tuple[float, dict[str, Any]]]:
        """The messages kept for a client, with the time each was kept; forgets them."""
        raise NotImplementedError

    async def retain(self, topic: str, message: dict[str, Any] | None) -> None:
        """Set (or, with None, clear) the retained message of ``topic``."""
        raise NotImplementedError

    async def retained(self, topic_filter: str) -> list[tuple[float, dict[str, Any]]]:
        """The retained messages matching ``topic_filter``, with when each was retained."""
        raise NotImplementedError


class MemoryBrokerState(BrokerState):
    """:class:`BrokerState` in this process's memory (the default)."""

    def __init__(self, max_offline_messages: int = MAX_OFFLINE_MESSAGES) -> None:
        self.max_offline_messages = max_offline_messages
        self.clients: dict[str, _Client] = {}
        # Filter without wildcards -> its client id, or a set of them once there are
        # two: most devices subscribe to a topic of their own, and a set is 216 bytes.
        self.exact: dict[str, str | set[str]] = {}
        self.wildcard: dict[str, set[str]] = {}  # filter with wildcards -> client ids
        self.shared: dict[tuple[str, str], list[str]] = {}  # (group, filter) -> client ids
        self.turns: dict[tuple[str, str], itertools.count[int]] = {}
        self.retained_messages: dict[str, tuple[float, dict[str, Any]]] = {}
        # match() results by (topic, publisher), until any subscription or
        # connection changes: a stream of messages to one topic is routed once.
        self._matches: dict[tuple[str, str], list[Delivery]] = {}

    def _owned(self, client_id: str, channel: str) -> _Client | None:
        client = self.clients.get(client_id)
        return client if client is not None and client.channel == channel else None

    async def attach(self, client_id: str, channel: str, clean: bool) -> bool:
        self._matches.clear()
        client = self.clients.get(client_id)
        expires_at = client.expires_at if client is not None else None
        if expires_at is not None and expires_at <= time.monotonic():
            self._forget(client_id)
            client = None
        if client is None or clean:
            if client is not None:
                self._forget(client_id)
            self.clients[client_id] = _Client(channel)
            return False
        client.channel = channel
        client.expires_at = None
        return True

    async def detach(self, client_id: str, channel: str, expiry: int) -> None:
        client = self._owned(client_id, channel)
        if client is None:
            return
        self._matches.clear()
        if expiry:
            client.channel = None
            client.expires_at = time.monotonic() + expiry
        else:
            self._forget(client_id)

    def _forget(self, client_id: str) -> None:
        client = self.clients.pop(client_id, None)
        if client is None:
            return
        for topic_filter in client.subscriptions:
            self._unindex(client_id, topic_filter)

    def _index(self, client_id: str, topic_filter: str) -> None:
        shared = parse_shared_subscription(topic_filter)
        if shared is not None:
            members = self.shared.setdefault((shared.share_name, shared.topic_filter), [])
            if client_id not in members:
                members.append(client_id)
            return
        if "+" in topic_filter or "#" in topic_filter:
            self.wildcard.setdefault(topic_filter, set()).add(client_id)
            return
        ids = self.exact.get(topic_filter)
        if ids is None:
            self.exact[topic_filter] = client_id
        elif isinstance(ids, str):
            if ids != client_id:
                self.exact[topic_filter] = {ids, client_id}
        else:
            ids.add(client_id)

    def _unindex(self, client_id: str, topic_filter: str) -> None:
        shared = parse_shared_subscription(topic_filter)
        if shared is not None:
            key = (shared.share_name, shared.topic_filter)
            members = self.shared.get(key, [])
            if client_id in members:
                members.remove(client_id)
            if not members:
                self.shared.pop(key, None)
            return
        if "+" in topic_filter or "#" in topic_filter:
            subscribers = self.wildcard.get(topic_filter)
            if subscribers is not None:
                subscribers.discard(client_id)
                if not subscribers:
                    del self.wildcard[topic_filter]
            return
        ids = self.exact.get(topic_filter)
        if ids is None:
            return
        if isinstance(ids, str):
            if ids == client_id:
                del self.exact[topic_filter]
            return
        ids.discard(client_id)
        if len(ids) == 1:
            self.exact[topic_filter] = next(iter(ids))

    async def subscribe(
        self, client_id: str, channel: str, topic_filter: str, options: SubscriptionOptions
    ) -> bool:
        client = self._owned(client_id, channel)
        if client is None:
            return False
        self._matches.clear()
        new = topic_filter not in client.subscriptions
        client.subscriptions[topic_filter] = options
        if new:
            self._index(client_id, topic_filter)
        return new

    async def unsubscribe(self, client_id: str, channel: str, topic_filter: str) -> bool:
        client = self._owned(client_id, channel)
        if client is None or client.subscriptions.pop(topic_filter, None) is None:
            return False
        self._matches.clear()
        self._unindex(client_id, topic_filter)
        return True

    async def match(self, topic: str, publisher: str) -> list[Delivery]:
        """See :meth:`BrokerState.match`; the list is shared by later calls: read it only."""
        key = (topic, publisher)
        deliveries = self._matches.get(key)
        if deliveries is not None:
            return deliveries
        deliveries = self._match(topic, publisher)
        if not self.shared:  # shared subscriptions take turns: asked anew each time
            if len(self._matches) >= MATCH_CACHE_SIZE:
                self._matches.clear()
            self._matches[key] = deliveries
        return deliveries

    def _match(self, topic: str, publisher: str) -> list[Delivery]:
        found: dict[str, Delivery] = {}
        clients = self.clients
        ids = self.exact.get(topic, ())
        candidates: list[tuple[str, str]] = (
            [(ids, topic)] if isinstance(ids, str) else [(client_id, topic) for client_id in ids]
        )
        for topic_filter, ids in self.wildcard.items():
            if topic_matches(topic_filter, topic):
                candidates.extend((client_id, topic_filter) for client_id in ids)
        for client_id, topic_filter in candidates:
            client = clients[client_id]
            options = client.subscriptions[topic_filter]
            if options.no_local and client_id == publisher:
                continue
            self._add(found, client_id, client, options)
        for (group, topic_filter), members in self.shared.items():
            if not members or not topic_matches(topic_filter, topic):
                continue
            turn = next(self.turns.setdefault((group, topic_filter), itertools.count()))
            online = [m for m in members if clients[m].channel is not None] or members
            client_id = online[turn % len(online)]
            client = clients[client_id]
            self._add(
                found, client_id, client, client.subscriptions[f"$share/{group}/{topic_filter}"]
            )
        return list(found.values())

    @staticmethod
    def _add(
        found: dict[str, Delivery], client_id: str, client: _Client, options: SubscriptionOptions
    ) -> None:
        delivery = found.get(client_id)
        if delivery is None:
            delivery = found[client_id] = Delivery(client_id, client.channel, options.qos)
        else:  # overlapping subscriptions: one copy at the highest QoS (MQTT-3.3.5-1)
            delivery.qos = max(delivery.qos, options.qos)
        delivery.retain_as_published |= options.retain_as_published
        if options.subscription_identifier is not None:
            delivery.subscription_identifiers.append(options.subscription_identifier)

    async def enqueue(self, client_id: str, message: dict[str, Any]) -> None:
        client = self.clients.get(client_id)
        if client is not None and client.channel is None:
            if client.queue is None:
                client.queue = deque()
            elif len(client.queue) >= self.max_offline_messages:
                client.queue.popleft()
            client.queue.append((time.monotonic(), message))

    async def drain(self, client_id: str) -> list[tuple[float, dict[str, Any]]]:
        client = self.clients.get(client_id)
        if client is None or client.queue is None:
            return []
        messages = list(client.queue)
        client.queue = None
        return messages

    async def retain(self, topic: str, message: dict[str, Any] | None) -> None:
        if message is None:
            self.retained_messages.pop(topic, None)
        else:
            self.retained_messages[topic] = (time.monotonic(), message)

    async def retained(self, topic_filter: str) -> list[tuple[float, dict[str, Any]]]:
        return [
            item
            for topic, item in self.retained_messages.items()
            if topic_matches(topic_filter, topic)
        ]
