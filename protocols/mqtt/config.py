"""Settings of one MQTT listener: address, limits, timeouts and TLS in one place.

Each field has a default and a comment saying where the number comes from.
The runner builds one ``MqttConfig`` per listener from
``--mqtt HOST:PORT?option=value&...`` (string values are converted by field
type) or ``HUB_LISTENERS``, and hands it to
:class:`protocols.mqtt.server.MqttServer`; nothing else in the package reads
settings.
"""

from __future__ import annotations

import dataclasses
import ssl

from protocols.http_ws.tls import server_ssl_context

from .connection import DEFAULT_MAX_PACKET_SIZE

KIB = 1024


@dataclasses.dataclass(frozen=True, slots=True)
class MqttConfig:
    """Address, limits, timeouts and security of one MQTT listener."""

    # Where to listen; 1883 is the IANA port of MQTT (8883 with TLS). ``port=0``
    # asks the OS for a free port; ``uds`` listens on a unix socket instead.
    host: str = "127.0.0.1"
    port: int = 1883
    uds: str | None = None
    # The listener's name: ``scope["listener"]`` and the start of every log line.
    name: str | None = None
    # Kernel accept queue; 2048, as the other listeners (devices reconnect at once
    # after an outage).
    backlog: int = 2048

    # Open connections on this listener; past it new ones are closed at once.
    # 10,000 fits the default 20,000 file descriptors of a hub process.
    max_connections: int = 10_000
    # Largest packet accepted from a client, fixed header included (1 MiB; see
    # protocols.mqtt.connection.DEFAULT_MAX_PACKET_SIZE). Sent in the v5 CONNACK.
    max_packet_size: int = DEFAULT_MAX_PACKET_SIZE
    # Unacknowledged QoS 1/2 PUBLISH a client may have in flight towards the
    # application (the server's Receive Maximum); 100 keeps a fast publisher busy
    # while bounding what one client makes the app hold.
    receive_maximum: int = 100
    # Unacknowledged QoS 1/2 PUBLISH the server sends a client at once (also capped
    # by the client's Receive Maximum); 20, mosquitto's max_inflight_messages.
    max_inflight: int = 20
    # QoS 1/2 messages waiting behind a full in-flight window per session; past it
    # they are dropped and logged. 1000, mosquitto's max_queued_messages.
    max_queued_messages: int = 1000
    # Topic filters one client may hold; past it SUBACK says 0x97 Quota exceeded.
    # 100 is far above what a device subscribes to and bounds the routing tables.
    max_subscriptions: int = 100
    # PUBLISH per second one client may send; over it, reading pauses (the client
    # is slowed, not cut off). 0: no limit, as mosquitto by default.
    max_publish_rate: float = 0.0
    # Topic aliases a v5 client may define (sent in CONNACK); 10 covers a device's
    # few topics at 10 strings per connection.
    topic_alias_maximum: int = 10
    # Name the topics sent to a v5 client by Topic Alias (up to its Topic Alias
    # Maximum). Off, as in mosquitto: it saves bandwidth only for long topics to
    # constrained devices, and costs a little memory per connection.
    topic_alias_out: bool = False
    # Most aliases the server assigns per connection with topic_alias_out (also
    # capped by the client's maximum): a client may announce 65,535; 10, as
    # topic_alias_maximum, bounds the table and covers a device's few topics.
    topic_alias_out_maximum: int = 10
    # Longest session expiry honoured, in seconds (a 3.1.1 Clean Session 0 session
    # never expires by the spec); one day bounds what disconnected devices hold.
    max_session_expiry: int = 86_400

    # Seconds from TCP accept (and TLS) to a complete CONNECT; 10 s, as the other
    # listeners allow for a handshake, defeats connections that never start.
    connect_timeout: float = 10.0
    # Seconds the application has to answer mqtt.connect; past it CONNACK 0x88.
    connect_answer_timeout: float = 10.0
    # Seconds the application has to answer mqtt.subscribe / mqtt.unsubscribe.
    answer_timeout: float = 10.0
    # Events queued for an application that is not receiving before reading pauses.
    max_queue: int = 64
    # Bytes queued in the transport before the app's send() awaits the client
    # (asyncio's default high-water mark is 64 KiB).
    write_buffer_high_water: int = 64 * KIB

    # TLS: certificate chain and private key (PEM paths) turn TLS on (MQTT over TLS).
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    # CA bundle used to verify client certificates; with ``ssl_cert_reqs``.
    ssl_ca_certs: str | None = None
    # ssl.CERT_NONE: no client certificates; CERT_OPTIONAL / CERT_REQUIRED for mutual TLS.
    ssl_cert_reqs: ssl.VerifyMode = ssl.CERT_NONE

    # Grace period of ``MqttServer.wait_closed()`` when the caller gives none.
    shutdown_grace: float = 10.0

    def __post_init__(self) -> None:
        positive = (
            "max_connections",
            "receive_maximum",
            "max_inflight",
            "max_queued_messages",
            "max_subscriptions",
            "max_queue",
            "write_buffer_high_water",
        )
        for field in positive:
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1, got {getattr(self, field)}")
        if self.receive_maximum > 65_535 or self.max_inflight > 65_535:
            raise ValueError("receive_maximum and max_inflight must be at most 65535")
        if not 0 <= self.topic_alias_maximum <= 65_535:
            raise ValueError(f"topic_alias_maximum must be 0-65535, got {self.topic_alias_maximum}")
        if not 0 <= self.topic_alias_out_maximum <= 65_535:
            raise ValueError(
                f"topic_alias_out_maximum must be 0-65535, got {self.topic_alias_out_maximum}"
            )
        if self.max_packet_size < 64:
            raise ValueError(f"max_packet_size must be at least 64, got {self.max_packet_size}")
        if self.max_publish_rate < 0:
            raise ValueError(f"max_publish_rate must be >= 0, got {self.max_publish_rate}")

    @property
    def is_tls(self) -> bool:
        """Whether this listener serves MQTT over TLS."""
        return self.ssl_certfile is not None

    @property
    def listener(self) -> str:
        """``scope["listener"]``."""
        return self.name or "default"

    def create_ssl_context(self) -> ssl.SSLContext | None:
        """Build the server TLS context, or ``None`` when TLS is off.

        Raises:
            OSError / ssl.SSLError: if a certificate, key or CA file cannot be loaded.
        """
        if self.ssl_certfile is None:
            return None
        return server_ssl_context(
            self.ssl_certfile,
            self.ssl_keyfile,
            self.ssl_keyfile_password,
            self.ssl_cert_reqs,
            self.ssl_ca_certs,
        )
