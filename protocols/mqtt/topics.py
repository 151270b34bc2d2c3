"""Topic names, topic filters, wildcard matching and shared subscriptions (section 4.7).

- A **topic name** (PUBLISH, will) is what a message is published to: at
  least one character, no wildcard (4.7.3, 3.3.2.1).
- A **topic filter** (SUBSCRIBE, UNSUBSCRIBE) may hold wildcards: ``+``
  fills exactly one whole level, ``#`` only as the whole last level
  (4.7.1). ``sport/#`` also matches ``sport`` (4.7.1.2).
- **``$`` topics** (4.7.2): a filter starting with a wildcard does not match
  a topic name starting with ``$`` (``#`` does not see ``$SYS/uptime``).
- **Shared subscriptions** (v5 4.8.2): ``$share/{ShareName}/{filter}``,
  the ShareName at least one character without ``/``, ``+`` or ``#``.

Both kinds are UTF-8 strings of at most 65535 bytes without U+0000; the
reader has checked that already for what arrives on the wire, so these
functions only look at the characters.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARED_PREFIX = "$share/"


@dataclass(frozen=True, slots=True)
class SharedSubscription:
    """A parsed ``$share/{share_name}/{topic_filter}``."""

    share_name: str
    topic_filter: str


def is_valid_topic_name(name: str) -> bool:
    """True if ``name`` can be published to: not empty, no ``+`` or ``#``."""
    return bool(name) and "+" not in name and "#" not in name and "\x00" not in name


def is_valid_topic_filter(topic_filter: str) -> bool:
    """True if ``topic_filter`` follows the wildcard rules of 4.7.1 (shared or not)."""
    if not topic_filter or "\x00" in topic_filter:
        return False
    if "+" not in topic_filter and "#" not in topic_filter:
        return True
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != last):
            return False
        if "+" in level and level != "+":
            return False
    return True


def parse_shared_subscription(topic_filter: str) -> SharedSubscription | None:
    """The share name and filter of a ``$share/...`` filter; None for any other filter.

    Raises:
        ValueError: ``topic_filter`` starts with ``$share/`` but has no valid
            ShareName or no filter after it (v5 4.8.2).
    """
    if not topic_filter.startswith(SHARED_PREFIX):
        return None
    share_name, slash, inner = topic_filter[len(SHARED_PREFIX) :].partition("/")
    if not share_name or "+" in share_name or "#" in share_name:
        raise ValueError(f"shared subscription {topic_filter!r} has no valid ShareName")
    if not slash or not is_valid_topic_filter(inner):
        raise ValueError(f"shared subscription {topic_filter!r} has no valid topic filter")
    return SharedSubscription(share_name, inner)


def topic_matches(topic_filter: str, topic_name: str) -> bool:
    """True if a message published to ``topic_name`` reaches a ``topic_filter`` subscriber.

    ``topic_filter`` is a plain filter (for a shared subscription, pass
    :attr:`SharedSubscription.topic_filter`). Both are assumed valid.
    """
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter == topic_name
    if topic_name.startswith("$") and topic_filter[0] in "+#":
        return False
    names = topic_name.split("/")
    levels = topic_filter.split("/")
    count = len(names)
    for index, level in enumerate(levels):
        if level == "#":
            return True
        if index >= count or (level != "+" and level != names[index]):
            return False
    return len(levels) == count
