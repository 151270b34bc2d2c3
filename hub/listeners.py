"""Listeners: which protocol server listens where, with which options.

A listener is written the same way on the command line and in settings::

    hub run --http 0.0.0.0:8000 --http "0.0.0.0:8443?ssl_certfile=c.pem&ssl_keyfile=k.pem"
    HUB_LISTENERS = ["http://0.0.0.0:8000", {"protocol": "http", "port": 8443, ...}]

The part after ``?`` sets fields of the protocol's config dataclass (for HTTP,
:class:`protocols.http_ws.HttpWsConfig`), converted to each field's type; an
unknown option is an error that lists the valid ones. ``unix:/path`` listens
on a unix socket. A protocol whose listeners have names (TCP) takes
``NAME=HOST:PORT``.

Every protocol server registered in :data:`PROTOCOLS` has one shape, so the
runner drives them all alike: ``Server(app, config, lifespan_state=...,
sock=...)``, ``await start()``, ``bound_addresses``, ``close()``,
``await wait_closed(grace_seconds)``.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import ssl
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl


class ListenerServer(Protocol):
    """What the runner needs of a protocol server."""

    config: Any

    async def start(self) -> None: ...

    @property
    def bound_addresses(self) -> list[Any]: ...

    def close(self) -> None: ...

    async def wait_closed(self, grace_seconds: float | None = None) -> None: ...


@dataclass(frozen=True)
class ProtocolEntry:
    """A protocol the runner can serve.

    Attributes:
        name: the flag and settings name (``http`` gives ``--http``).
        server: ``"module:Class"`` of the server.
        config: ``"module:Class"`` of its config dataclass.
        scheme: URL scheme shown in the banner; ``tls_scheme`` when TLS is on.
        default_port: the port used when only a host is given.
        named: listeners of this protocol carry a name (``NAME=HOST:PORT``).
        outbound: the "listener" is a client of another server (the MQTT bridge):
            its address is that server's URL, given whole as the ``url`` option,
            and nothing is bound.
        help: one line for ``--help``.
    """

    name: str
    server: str
    config: str
    scheme: str
    tls_scheme: str
    default_port: int
    help: str
    named: bool = False
    outbound: bool = False

    def load(self, path: str) -> Any:
        module, _, attribute = path.partition(":")
        return getattr(importlib.import_module(module), attribute)


#: Every protocol hub serves, by flag name.
PROTOCOLS: dict[str, ProtocolEntry] = {
    "http": ProtocolEntry(
        name="http",
        server="protocols.http_ws:HttpWsServer",
        config="protocols.http_ws:HttpWsConfig",
        scheme="http",
        tls_scheme="https",
        default_port=8000,
        help="HTTP/1.1 + WebSocket listener HOST:PORT[?option=value&...] or unix:PATH",
    ),
    "mqtt": ProtocolEntry(
        name="mqtt",
        server="protocols.mqtt:MqttServer",
        config="protocols.mqtt:MqttConfig",
        scheme="mqtt",
        tls_scheme="mqtts",
        default_port=1883,
        help="MQTT 3.1.1/5.0 listener HOST:PORT[?option=value&...]",
    ),
    "mqtt-bridge": ProtocolEntry(
        name="mqtt-bridge",
        server="protocols.mqtt.bridge:MqttBridge",
        config="protocols.mqtt.bridge:MqttBridgeConfig",
        scheme="mqtt",
        tls_scheme="mqtts",
        default_port=1883,
        help="client of an external MQTT broker, as a URL: "
        "mqtt[s]://user:pass@host:port/?client_id=hub&subscribe=sensors/%%23&qos=1&share=hub",
        outbound=True,
    ),
    "smtp": ProtocolEntry(
        name="smtp",
        server="protocols.smtp:SmtpServer",
        config="protocols.smtp:SmtpConfig",
        scheme="smtp",
        tls_scheme="smtps",
        default_port=2525,
        help="SMTP/LMTP listener HOST:PORT[?option=value&...]",
    ),
    "tcp": ProtocolEntry(
        name="tcp",
        server="protocols.tcp:TcpServer",
        config="protocols.tcp:TcpConfig",
        scheme="tcp",
        tls_scheme="tls",
        default_port=7000,
        help="raw TCP listener NAME=HOST:PORT[?framing=line&...]",
        named=True,
    ),
}


@dataclass
class ListenerSpec:
    """One listener: a protocol, an address and that protocol's options."""

    protocol: str
    host: str = "127.0.0.1"
    port: int | None = None
    uds: str | None = None
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def entry(self) -> ProtocolEntry:
        return PROTOCOLS[self.protocol]

    def build_config(self, **overrides: Any) -> Any:
        """The protocol's config dataclass for this listener.

        Raises:
            ValueError: an option is unknown or its value does not fit its type.
        """
        config_class = self.entry.load(self.entry.config)
        values: dict[str, Any] = {"host": self.host, "uds": self.uds}
        values["port"] = self.entry.default_port if self.port is None else self.port
        if self.name is not None:
            values["name"] = self.name
        values.update(self.options)
        values.update(overrides)
        return coerce_config(config_class, values, what=f"{self.protocol} listener")

    def describe(self) -> str:
        if self.uds:
            return f"{self.protocol} unix:{self.uds}"
        prefix = f"{self.name}=" if self.name else ""
        return f"{self.protocol} {prefix}{self.host}:{self.port}"


def parse_listener(protocol: str, text: str) -> ListenerSpec:
    """Parse ``[NAME=]HOST:PORT[?options]``, ``PORT``, ``[::1]:PORT`` or ``unix:PATH``.

    Raises:
        ValueError: the protocol is unknown or the address does not parse.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"Unknown protocol {protocol!r}; hub serves: {', '.join(PROTOCOLS)}")
    entry = PROTOCOLS[protocol]
    if entry.outbound:
        return ListenerSpec(protocol, options={"url": text})
    address, _, query = text.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    name = None
    if entry.named:
        name, equals, address = address.partition("=")
        if not equals or not name:
            raise ValueError(f"A {protocol} listener needs a name: NAME=HOST:PORT, got {text!r}")
    if address.startswith("unix:"):
        return ListenerSpec(protocol, uds=address[5:], name=name, options=options)
    host, port = _split_host_port(address, text)
    return ListenerSpec(protocol, host=host, port=port, name=name, options=options)


def listener_from_setting(item: str | Mapping[str, Any]) -> ListenerSpec:
    """A listener from one ``HUB_LISTENERS`` entry: ``"proto://address?opts"`` or a dict.

    An outbound entry (the MQTT bridge) is a dict with its URL:
    ``{"protocol": "mqtt-bridge", "url": "mqtt://broker:1883/?subscribe=sensors/%23"}``.
    """
    if isinstance(item, str):
        protocol, separator, rest = item.partition("://")
        if not separator:
            raise ValueError(f"HUB_LISTENERS entry {item!r} needs a scheme, as 'http://HOST:PORT'")
        return parse_listener(protocol, rest)
    values = dict(item)
    protocol = values.pop("protocol", None)
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"HUB_LISTENERS entry {item!r} needs 'protocol', one of: {', '.join(PROTOCOLS)}"
        )
    spec = ListenerSpec(protocol)
    for key in ("host", "port", "uds", "name"):
        if key in values:
            setattr(spec, key, values.pop(key))
    spec.options = values
    return spec


def _split_host_port(address: str, text: str) -> tuple[str, int]:
    if address.isdigit():
        return "127.0.0.1", int(address)
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"Cannot parse listener address {text!r}: expected [IPv6]:PORT")
        port_text = rest[1:]
    else:
        host, colon, port_text = address.rpartition(":")
        if not colon:
            raise ValueError(f"Cannot parse listener address {text!r}: expected HOST:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"Cannot parse listener address {text!r}: bad port {port_text!r}")
    return host or "127.0.0.1", int(port_text)


def coerce_config(config_class: type, values: Mapping[str, Any], what: str) -> Any:
    """``config_class(**values)`` with string values converted to each field's type."""
    hints = typing.get_type_hints(config_class)
    fields = {f.name for f in dataclasses.fields(config_class) if f.init}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(
            f"Unknown option(s) {', '.join(sorted(unknown))} for {what}; "
            f"valid options: {', '.join(sorted(fields))}"
        )
    converted = {}
    for key, value in values.items():
        try:
            converted[key] = _convert(value, hints[key])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Option {key}={value!r} of {what}: {exc}") from exc
    return config_class(**converted)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(value: Any, hint: Any) -> Any:
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arguments = typing.get_args(hint)
        if type(None) in arguments and value.lower() in ("", "none", "null"):
            return None
        for argument in arguments:
            if argument is type(None):
                continue
            try:
                return _convert(value, argument)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"expected {hint}")
    if hint is bool:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError("expected true or false")
    if hint in (int, float):
        return hint(value)
    if hint is str or hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if hint is ssl.VerifyMode:
            value = value.upper() if value.upper().startswith("CERT_") else f"CERT_{value.upper()}"
        try:
            return hint[value]
        except KeyError:
            return hint(value)
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        items = [item.strip() for item in value.split(",") if item.strip()]
        return tuple(items) if origin is tuple or hint is tuple or origin is Sequence else items
    raise TypeError(f"cannot convert a string to {hint}")
