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
        """The message of an ``mqtt.publish`` event (once per received PUBLISH).

        Its slots are set directly: a frozen dataclass's ``__init__`` goes
        through ``object.__setattr__`` for each field, twice the time.
        """
        message: MqttMessage = object.__new__(cls)
        _SET_TOPIC(message, event["topic"])
        _SET_PAYLOAD(message, event.get("payload", b""))
        _SET_QOS(message, event.get("qos", 0))
        _SET_RETAIN(message, event.get("retain", False))
        _SET_DUP(message, event.get("dup", False))
        _SET_PROPERTIES(message, event.get("properties") or {})
        return message

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (raises ``UnicodeDecodeError``)."""
        return self.payload.decode()

    def json(self) -> Any:
        """The payload parsed as JSON (raises ``ValueError``)."""
        return json.loads(self.payload)


_SET_TOPIC, _SET_PAYLOAD, _SET_QOS, _SET_RETAIN, _SET_DUP, _SET_PROPERTIES = (
    MqttMessage.__dict__[name].__set__
    for name in ("topic", "payload", "qos", "retain", "dup", "properties")
)
