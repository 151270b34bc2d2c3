"""What every channel layer shares: the API, name validation and capacities.

The channel layer API is Channels' (``send``, ``receive``, ``new_channel``,
plus the ``groups`` and ``flush`` extensions), so a third-party layer written
for Channels, such as ``channels_redis``, can back hub and hub's layers can
back Channels.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from hub.types import Message

#: Channels' limit, kept so names valid on one are valid on the other.
MAX_NAME_LENGTH = 100

CHANNEL_NAME_RE = re.compile(r"[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?")
GROUP_NAME_RE = re.compile(r"[a-zA-Z\d\-_.]+")

CapacityPattern = str | re.Pattern[str]


class BaseChannelLayer:
    """Common behaviour of channel layers; backends override the API methods.

    Args:
        expiry: seconds a message waits in a channel before it is dropped.
        capacity: messages a channel holds before ``send`` raises ``ChannelFull``.
        channel_capacity: per-name capacities, ``{pattern: capacity}``; a string
            pattern is a glob (``"http.response!*"``), a compiled regex is used as
            it is. The first matching pattern wins.
    """

    MAX_NAME_LENGTH: ClassVar[int] = MAX_NAME_LENGTH
    extensions: ClassVar[list[str]] = []

    def __init__(
        self,
        expiry: float = 60,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
    ) -> None:
        self.expiry = expiry
        self.capacity = capacity
        self.channel_capacity = self.compile_capacities(channel_capacity or {})

    def compile_capacities(
        self, channel_capacity: Mapping[CapacityPattern, int]
    ) -> list[tuple[re.Pattern[str], int]]:
        """Turn ``{glob_or_regex: capacity}`` into the list ``get_capacity`` scans."""
        compiled = []
        for pattern, capacity in channel_capacity.items():
            if isinstance(pattern, str):
                pattern = re.compile(fnmatch.translate(pattern))
            compiled.append((pattern, capacity))
        return compiled

    def get_capacity(self, channel: str) -> int:
        """The capacity of ``channel``: the first matching pattern's, or the default."""
        for pattern, capacity in self.channel_capacity:
            if pattern.match(channel):
                return capacity
        return self.capacity

    def match_type_and_length(self, name: object) -> bool:
        return isinstance(name, str) and len(name) < self.MAX_NAME_LENGTH

    def require_valid_channel_name(self, name: object, receive: bool = False) -> bool:
        """Raise ``TypeError`` naming the problem unless ``name`` is a valid channel name.

        With ``receive=True``, a process-specific name (with ``!``) must end at
        the ``!``, as the channel layer spec requires of ``receive``.
        """
        _require_name("Channel", name, CHANNEL_NAME_RE, self.MAX_NAME_LENGTH)
        assert isinstance(name, str)
        if receive and "!" in name and not name.endswith("!"):
            raise TypeError(
                f"Specific channel names in receive() must end at the '!', got {name!r}"
            )
        return True

    def require_valid_group_name(self, name: object) -> bool:
        """Raise ``TypeError`` naming the problem unless ``name`` is a valid group name."""
        _require_name("Group", name, GROUP_NAME_RE, self.MAX_NAME_LENGTH)
        return True

    def valid_channel_names(self, names: Iterable[str], receive: bool = False) -> bool:
        names = list(names)
        if not names:
            raise TypeError("Channel names must be a non-empty list")
        for name in names:
            self.require_valid_channel_name(name, receive=receive)
        return True

    def non_local_name(self, name: str) -> str:
        """The part of a process-specific name up to and including ``!``."""
        if "!" in name:
            return name[: name.index("!") + 1]
        return name

    async def send(self, channel: str, message: Message) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement send()")

    async def receive(self, channel: str) -> Message:
        raise NotImplementedError(f"{type(self).__name__} does not implement receive()")

    async def new_channel(self, prefix: str = "specific") -> str:
        raise NotImplementedError(f"{type(self).__name__} does not implement new_channel()")

    async def flush(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no flush extension")

    async def group_add(self, group: str, channel: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no groups extension")

    async def group_discard(self, group: str, channel: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no groups extension")

    async def group_send(self, group: str, message: Message) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no groups extension")

    async def close(self) -> None:
        """Release the layer's connections; the in-memory layer has none."""


def _require_name(kind: str, name: object, pattern: re.Pattern[str], max_length: int) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, got {type(name).__name__}: {name!r}")
    if len(name) >= max_length:
        raise TypeError(
            f"{kind} name is {len(name)} characters long, "
            f"expected fewer than {max_length}: {name[:40]!r}..."
        )
    if not pattern.fullmatch(name):
        raise TypeError(
            f"{kind} name {name!r} is invalid: use only ASCII letters, digits, "
            "hyphens, underscores and periods"
            + (" (and one '!' for a process-specific channel)" if kind == "Channel" else "")
        )


def require_message(message: Any) -> None:
    """Raise ``TypeError`` unless ``message`` is a dict with a str ``type``."""
    if not isinstance(message, dict):
        raise TypeError(f"A message must be a dict, got {type(message).__name__}")
    if not isinstance(message.get("type"), str):
        raise TypeError(f"A message needs a str 'type' key, got {message!r:.120}")
