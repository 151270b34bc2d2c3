"""``MqttMessage``: one application message as a consumer's handler receives it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hub.types import Message


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """A PUBLISH received from the client (``mqtt.publish`` of ``docs/specs/mqtt.md``)."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    #: v5 properties by name (``response_topic``, ``user_properties``...); ``{}`` for 3.1.1.
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: Message) -> MqttMessage:
        return cls(
            event["topic"],
            event.get("payload", b""),
            event.get("qos", 0),
            event.get("retain", False),
            event.get("dup", False),
            event.get("properties") or {},
        )

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (raises ``UnicodeDecodeError``)."""
        return self.payload.decode()

    def json(self) -> Any:
        """The payload parsed as JSON (raises ``ValueError``)."""
        return json.loads(self.payload)
