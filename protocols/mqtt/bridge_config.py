"""Settings of one MQTT bridge: the broker, the session, the subscriptions, the retry policy.

A bridge is configured from one URL, the way ``hub run --mqtt-bridge URL``
and ``HUB_LISTENERS`` write it::

    mqtt://user:secret@broker:1883/?client_id=hub-1&subscribe=sensors/%23&qos=1&share=hub&version=5

``mqtts://`` turns TLS on (port 8883 by default). The query string sets any
field of :class:`MqttBridgeConfig` (``subscribe`` may repeat); values are
converted by field type. What the URL names wins over the fields given beside
it, so the runner may pass its default ``host``/``port`` along with ``url``.
Fields may also be given directly, without a URL.

Nothing else in the bridge reads settings.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import types
import typing
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

#: MQTT's IANA ports, without and with TLS.
MQTT_PORT = 1883
MQTTS_PORT = 8883

_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True, "tls": True}
_VERSIONS = {"5": 5, "5.0": 5, "4": 4, "3.1.1": 4, "311": 4}


@dataclasses.dataclass(frozen=True, slots=True)
class MqttBridgeConfig:
    """Broker, session, subscriptions and retry policy of one bridge connection."""

    # The broker as one URL (see the module docstring); its parts override the
    # fields below. None: use the fields as given.
    url: str | None = None
    # The broker's address; 1883 is MQTT's IANA port (8883 with TLS).
    host: str = "127.0.0.1"
    port: int = MQTT_PORT
    # A broker listening on a unix socket instead (mosquitto's ``listener 0 PATH``).
    uds: str | None = None
    # The bridge's name: ``scope["listener"]``, log lines and the channel the
    # publish helper (hub.mqtt.bridge.publish) sends to.
    name: str | None = None

    # Client Identifier at the broker. None: ``hub-<hostname>``. It must be stable
    # across restarts for the persistent session to resume.
    client_id: str | None = None
    # Worker index under ``--workers N``: appended as ``-<worker>`` so each worker
    # has its own session (a shared subscription splits the load between them).
    worker: int | None = None
    # Login at the broker.
    username: str | None = None
    password: str | None = None
    # 5 (MQTT 5.0, needed for session expiry and reason codes) or 4 (MQTT 3.1.1).
    version: int = 5

    # Topic filters subscribed on every connection; empty: a publish-only bridge.
    subscribe: tuple[str, ...] = ()
    # Maximum QoS asked for each subscription; 1 (at least once) is what the
    # acknowledge-after-handler guarantee needs, at one round trip per message.
    qos: int = 1
    # Shared subscription group: each filter becomes ``$share/<share>/<filter>``,
    # so the bridges of N hub workers split the messages (MQTT 5.0 4.8.2).
    share: str | None = None

    # False resumes the broker session, so QoS 1/2 messages published while hub
    # was down are delivered when it is back. True starts from nothing each time.
    clean_start: bool = False
    # Seconds the broker keeps the session after hub disconnects (v5); an hour
    # covers a deploy or a restart without holding a gone worker's backlog forever.
    session_expiry: int = 3600
    # Keep Alive in seconds; 60, paho's and mosquitto_sub's default.
    keep_alive: int = 60
    # QoS 1/2 messages the broker may send before hub acknowledges any (v5 Receive
    # Maximum; mosquitto caps it with its own max_inflight_messages, 20).
    receive_maximum: int = 100
    # Unacknowledged QoS 1/2 messages hub publishes at once (paho's default, 20).
    max_inflight: int = 20
    # QoS 1/2 messages waiting behind a full in-flight window; past it a publish is
    # dropped and logged (mosquitto's max_queued_messages, 1000).
    max_queued_messages: int = 1000
    # Events queued for an application that is not receiving before reading from
    # the broker pauses (the broker then holds the messages); as MqttConfig.
    max_queue: int = 64

    # Seconds for TCP connect, TLS handshake and CONNACK together.
    connect_timeout: float = 10.0
    # Seconds the application has to answer mqtt.connect.
    connect_answer_timeout: float = 10.0
    # Reconnect delays: the first retry after ``reconnect_min`` seconds, doubling
    # up to ``reconnect_max``, each with up to ``reconnect_jitter`` of it added at
    # random so N workers do not reconnect in lockstep after a broker restart.
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    reconnect_jitter: float = 0.5

    # TLS (on with ``mqtts://`` or ``tls=true``): CA bundle that signs the broker's
    # certificate (None: the system's), and a client certificate for mutual TLS.
    tls: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # Skip the broker hostname check (test brokers with self-made certificates only).
    tls_insecure: bool = False

    # Grace period of ``MqttBridge.wait_closed()`` when the caller gives none.
    shutdown_grace: float = 10.0

    def __post_init__(self) -> None:
        if self.url is not None:
            for key, value in parse_url(self.url).items():
                object.__setattr__(self, key, value)
        if isinstance(self.subscribe, str):  # one filter given as a plain string
            object.__setattr__(self, "subscribe", (self.subscribe,))
        if self.version not in (4, 5):
            raise ValueError(f"version must be 5 (MQTT 5.0) or 4 (3.1.1), got {self.version}")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {self.qos}")
        for field in ("receive_maximum", "max_inflight", "max_queued_messages", "max_queue"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1, got {getattr(self, field)}")
        if self.receive_maximum > 65_535:
            raise ValueError(f"receive_maximum must be at most 65535, got {self.receive_maximum}")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise ValueError(
                f"need 0 < reconnect_min <= reconnect_max, got "
                f"{self.reconnect_min} and {self.reconnect_max}"
            )
        if self.share is not None and ("/" in self.share or "+" in self.share or "#" in self.share):
            raise ValueError(f"share must be a group name without '/', '+', '#': {self.share!r}")

    @property
    def listener(self) -> str:
        """``scope["listener"]``."""
        return self.name or "default"

    @property
    def is_tls(self) -> bool:
        return self.tls

    @property
    def effective_client_id(self) -> str:
        """The Client Identifier sent to the broker (worker suffix included)."""
        base = self.client_id or f"hub-{socket.gethostname()}"
        return base if self.worker is None else f"{base}-{self.worker}"

    @property
    def topic_filters(self) -> tuple[str, ...]:
        """The filters as subscribed: ``$share/<share>/`` prefixed when sharing."""
        if self.share is None:
            return self.subscribe
        return tuple(f"$share/{self.share}/{topic_filter}" for topic_filter in self.subscribe)

    @property
    def broker_url(self) -> str:
        """The broker for log lines, without the password."""
        scheme = "mqtts" if self.tls else "mqtt"
        if self.uds is not None:
            return f"{scheme}+unix://{self.uds}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{host}:{self.port}"

    def create_ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context, or None when TLS is off.

        Raises:
            OSError / ssl.SSLError: a CA, certificate or key file cannot be loaded.
        """
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_ca_certs)
        if self.ssl_certfile is not None:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        if self.tls_insecure:
            context.check_hostname = False
        return context


def parse_url(url: str) -> dict[str, Any]:
    """The config fields a bridge URL sets.

    Raises:
        ValueError: unknown scheme or option, or a value that does not fit its field.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"MQTT bridge URL {url!r}: scheme must be mqtt:// or mqtts://")
    values: dict[str, Any] = {"tls": _SCHEMES[scheme]}
    if parts.hostname:
        values["host"] = parts.hostname
    values["port"] = parts.port or (MQTTS_PORT if values["tls"] else MQTT_PORT)
    if parts.username:
        values["username"] = unquote(parts.username)
    if parts.password is not None:
        values["password"] = unquote(parts.password)
    hints = typing.get_type_hints(MqttBridgeConfig)
    fields = {field.name for field in dataclasses.fields(MqttBridgeConfig)} - {"url"}
    filters: list[str] = []
    for key, text in parse_qsl(parts.query, keep_blank_values=True):
        if key not in fields:
            raise ValueError(
                f"MQTT bridge URL option {key!r} is unknown; valid: {', '.join(sorted(fields))}"
            )
        if key == "subscribe":
            filters.append(text)
        elif key == "version":
            if text not in _VERSIONS:
                raise ValueError(f"MQTT bridge URL: version must be 5 or 3.1.1, got {text!r}")
            values[key] = _VERSIONS[text]
        else:
            try:
                values[key] = convert(text, hints[key])
            except ValueError as exc:
                raise ValueError(f"MQTT bridge URL option {key}={text!r}: {exc}") from None
    if filters:
        values["subscribe"] = tuple(filters)
    return values


def convert(text: str, hint: Any) -> Any:
    """``text`` as a value of the type ``hint`` (str, int, float, bool, optional of those)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        arguments = [argument for argument in typing.get_args(hint) if argument is not type(None)]
        if text.lower() in ("", "none", "null"):
            return None
        hint = arguments[0]
    if hint is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean (true/false), got {text!r}")
    if hint in (int, float, str):
        return hint(text)
    raise ValueError(f"cannot set a {hint} from a URL")
