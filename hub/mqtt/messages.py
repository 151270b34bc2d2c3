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

        Its slots are set on a twin class without the frozen ``__setattr__``,
        then the instance made an ``MqttMessage``: a frozen dataclass's
        ``__init__`` goes through ``object.__setattr__`` for each field, and
        even a slot's own ``__set__`` is a call, where a plain slot store is not.
        """
        topic, payload = event["topic"], event.get("payload", b"")
        qos, retain, dup = event.get("qos", 0), event.get("retain", False), event.get("dup", False)
        properties = event.get("properties") or {}
        if cls is not MqttMessage:  # a subclass has a layout of its own
            return cls(topic, payload, qos, retain, dup, properties)
        message: Any = _new_object(_UnfrozenMessage)
        message.topic = topic
        message.payload = payload
        message.qos = qos
        message.retain = retain
        message.dup = dup
        message.properties = properties
        message.__class__ = MqttMessage  # allowed: same slots, same layout
        made: MqttMessage = message
        return made

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (raises ``UnicodeDecodeError``)."""
        return self.payload.decode()

    def json(self) -> Any:
        """The payload parsed as JSON (raises ``ValueError``)."""
        return json.loads(self.payload)


class _UnfrozenMessage:
    """:class:`MqttMessage`'s slots without the frozen ``__setattr__`` (see ``from_event``)."""

    __slots__ = MqttMessage.__slots__  # the same layout, so an instance can become one


_new_object = object.__new__
