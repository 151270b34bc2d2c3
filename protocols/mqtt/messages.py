"""The ASGI vocabulary of the MQTT extension spec (``docs/specs/mqtt.md``), named once.

Scope and events as ``TypedDict`` so that the server's code and an
application's type checker agree on every key, plus the two conversions
between the codec's typed :class:`~protocols.mqtt.properties.Properties` and
the plain dicts ASGI messages carry (dicts, because messages cross channel
layers and processes, where only plain data travels).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import fields
from typing import Any, Literal, NotRequired, TypedDict

from .properties import EMPTY_PROPERTIES, Properties

ASGI_VERSION = {"version": "3.0", "spec_version": "1.2"}
"""``scope["asgi"]``: ASGI 3 with the MQTT extension spec 1.2 (1.2 added ``mqtt.auth``)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Session Expiry Interval meaning "never" (v5 3.1.2.11.2), and 3.1.1's Clean Session 0.
NEVER_EXPIRES = 0xFFFFFFFF


class PeerDisconnected(OSError):
    """``send()`` of a message for the client after its connection closed."""


class MqttScope(TypedDict):
    type: Literal["mqtt"]
    asgi: dict[str, str]
    mode: Literal["direct", "bridge"]
    listener: str
    protocol_version: int
    client_id: str
    client_id_assigned: bool
    username: str | None
    keep_alive: int
    clean_start: bool
    session_expiry_interval: int
    will: dict[str, Any] | None
    properties: dict[str, Any]
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    state: NotRequired[dict[str, Any]]
    extensions: dict[str, Any]


class MqttConnectEvent(TypedDict):
    type: Literal["mqtt.connect"]
    password: bytes | None
    authentication_method: NotRequired[str]
    authentication_data: NotRequired[bytes | None]


class MqttAuthEvent(TypedDict):
    """``mqtt.auth`` both ways; ``authentication_method`` only in received ones."""

    type: Literal["mqtt.auth"]
    reason_code: NotRequired[int]
    authentication_method: NotRequired[str]
    authentication_data: NotRequired[bytes | None]
    reason_string: NotRequired[str]
    user_properties: NotRequired[list[tuple[str, str]]]


class MqttConnackEvent(TypedDict):
    type: Literal["mqtt.connack"]
    reason_code: NotRequired[int]
    session_present: NotRequired[bool]
    reason_string: NotRequired[str]
    user_properties: NotRequired[list[tuple[str, str]]]
    authentication_method: NotRequired[str]
    authentication_data: NotRequired[bytes | None]


class MqttSubscribeEvent(TypedDict):
    type: Literal["mqtt.subscribe"]
    packet_id: int
    subscriptions: list[dict[str, Any]]
    subscription_identifier: int | None
    user_properties: list[tuple[str, str]]


class MqttSubackEvent(TypedDict):
    type: Literal["mqtt.suback"]
    packet_id: NotRequired[int]
    reason_codes: list[int]
    reason_string: NotRequired[str]
    user_properties: NotRequired[list[tuple[str, str]]]


class MqttUnsubscribeEvent(TypedDict):
    type: Literal["mqtt.unsubscribe"]
    packet_id: int
    topic_filters: list[str]
    user_properties: list[tuple[str, str]]


class MqttUnsubackEvent(TypedDict):
    type: Literal["mqtt.unsuback"]
    packet_id: NotRequired[int]
    reason_codes: NotRequired[list[int]]


class MqttPublishEvent(TypedDict):
    """``mqtt.publish`` both ways; ``dup`` and ``packet_id`` only in received ones."""

    type: Literal["mqtt.publish"]
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: NotRequired[bool]
    packet_id: NotRequired[int | None]
    properties: NotRequired[dict[str, Any]]


class MqttPubackEvent(TypedDict):
    type: Literal["mqtt.puback"]
    packet_id: NotRequired[int]
    reason_code: NotRequired[int]


class MqttDisconnectEvent(TypedDict):
    """``mqtt.disconnect`` both ways; the last three keys only in received ones."""

    type: Literal["mqtt.disconnect"]
    reason_code: NotRequired[int]
    reason_string: NotRequired[str]
    reason: NotRequired[str]
    publish_will: NotRequired[bool]
    session_expiry_interval: NotRequired[int]


_PROPERTY_NAMES = tuple(field.name for field in fields(Properties))
_PROPERTY_SET = frozenset(_PROPERTY_NAMES)
_REPEATED = ("user_properties", "subscription_identifiers")


def properties_to_dict(properties: Properties) -> dict[str, Any]:
    """The properties that are set, as a dict keyed by attribute name (``{}`` for none)."""
    if properties is EMPTY_PROPERTIES:
        return {}
    result: dict[str, Any] = {}
    for name in _PROPERTY_NAMES:
        value = getattr(properties, name)
        if value is not None and value != ():
            result[name] = [list(pair) for pair in value] if name == "user_properties" else value
    if "subscription_identifiers" in result:
        result["subscription_identifiers"] = list(result["subscription_identifiers"])
    return result


def properties_from_dict(values: Mapping[str, Any] | None, allowed: Iterable[str]) -> Properties:
    """:class:`Properties` from an application's dict, keeping only ``allowed`` names.

    Raises:
        ValueError: a name is not an MQTT 5.0 property.
    """
    if not values:
        return EMPTY_PROPERTIES
    keep = set(allowed)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in _PROPERTY_SET:
            raise ValueError(f"{name!r} is not an MQTT 5.0 property (expected one of {keep})")
        if name not in keep or value is None:
            continue
        if name == "user_properties":
            value = tuple((str(key), str(item)) for key, item in value)
        elif name == "subscription_identifiers":
            value = tuple(int(item) for item in value)
        elif name == "correlation_data" and not isinstance(value, bytes):
            value = bytes(value)
        kwargs[name] = value
    return Properties(**kwargs) if kwargs else EMPTY_PROPERTIES


#: Properties an application may set on a PUBLISH it sends (v5 3.3.2.3).
PUBLISH_PROPERTIES = (
    "payload_format_indicator",
    "message_expiry_interval",
    "content_type",
    "response_topic",
    "correlation_data",
    "subscription_identifiers",
    "user_properties",
)

#: Properties an application may set on CONNACK, DISCONNECT and acknowledgements.
REASON_PROPERTIES = ("reason_string", "user_properties")


def reason_properties(message: Mapping[str, Any]) -> Properties:
    """The ``reason_string`` and ``user_properties`` keys of an application's message."""
    if "reason_string" not in message and "user_properties" not in message:
        return EMPTY_PROPERTIES
    return properties_from_dict(
        {name: message[name] for name in REASON_PROPERTIES if name in message}, REASON_PROPERTIES
    )


def unexpected(expected: tuple[str, ...], got: object) -> RuntimeError:
    """The error ``send()`` raises for a message out of order."""
    names = " or ".join(repr(name) for name in expected) or "no message"
    return RuntimeError(f"Expected ASGI message {names}, but got {got!r}")
