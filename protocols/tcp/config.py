"""Settings of one raw TCP listener: framing, limits, TLS and PROXY protocol in one place.

Each field has a default and a comment saying where the number comes from.
The runner builds one ``TcpConfig`` per named listener from
``--tcp NAME=HOST:PORT?option=value&...`` (string values are converted by
field type) or ``HUB_LISTENERS``, and hands it to
:class:`protocols.tcp.server.TcpServer`; nothing else in the package reads
settings. Framing options, on the command line::

    --tcp "gps=0.0.0.0:5000?framing=line&delimiter=\\r\\n&max_frame_size=512"
    --tcp "plc=0.0.0.0:5001?framing=length&length_bytes=2&byte_order=big&length_offset=1"
    --tcp "meter=0.0.0.0:5002?framing=custom&framer=myapp.framing:MeterFramer"
"""

from __future__ import annotations

import dataclasses
import importlib
import ssl
from collections.abc import Sequence
from typing import Any

from protocols.http_ws.tls import server_ssl_context

from .framing import (
    DEFAULT_MAX_FRAME_SIZE,
    ByteOrder,
    Framer,
    Framing,
    LengthPrefixFramer,
    LineFramer,
    RawFramer,
)

KIB = 1024


@dataclasses.dataclass(frozen=True, slots=True)
class TcpConfig:
    """Address, framing, limits, timeouts and security of one raw TCP listener."""

    # Where to listen. ``port=0`` asks the OS for a free port (read it back from
    # ``TcpServer.bound_addresses``); ``uds`` listens on a unix socket instead.
    host: str = "127.0.0.1"
    port: int = 7000
    uds: str | None = None
    # The listener's name: ``scope["listener"]``, what routers route on, and the
    # start of every log line. ``None``: "default".
    name: str | None = None
    # Kernel accept queue; 2048, as the HTTP listener (a reconnect storm of devices
    # after a network outage arrives at once).
    backlog: int = 2048

    # How the byte stream is cut into frames: raw | line | length | custom.
    framing: Framing = Framing.RAW
    # Largest frame in either direction, without delimiter or length field (64 KiB).
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    # framing=line: the delimiter, with backslash escapes (\n, \r\n, \x00) as a
    # command line cannot carry the bytes themselves.
    delimiter: str = "\\n"
    # framing=length: width of the length field (1, 2 or 4 bytes) and its byte order;
    # 2 bytes big-endian is the common network convention (Modbus/TCP, DNS over TCP).
    length_bytes: int = 2
    byte_order: ByteOrder = ByteOrder.BIG
    # framing=length: bytes of fixed header before the length field (a start marker,
    # a message type); they stay in the frame the application sees.
    length_offset: int = 0
    # framing=length: the length field holds len(payload) + this (e.g. length_bytes
    # when the length counts itself).
    length_adjustment: int = 0
    # framing=custom: "module:Class" of a framer (see protocols.tcp.framing.Framer).
    framer: str | None = None
    # Report the peer's half-close as tcp.eof and keep the connection open for
    # sending; off, a half-close ends the connection as most device protocols expect.
    half_close: bool = False

    # Frames queued for an app that is not receiving before reading pauses; 64 keeps
    # a burst of small lines flowing without holding more than 64 frames per connection.
    max_queue: int = 64
    # Bytes queued in the transport before the app's send() awaits the peer
    # (asyncio's default transport high-water mark is 64 KiB).
    write_buffer_high_water: int = 64 * KIB
    # Seconds without receiving anything before the connection is closed; devices
    # usually send a heartbeat every 1-5 minutes, so 10 minutes catches dead
    # peers (lost without a FIN) without cutting quiet ones. None: never.
    idle_timeout: float | None = 600.0
    # Seconds for the TLS handshake and the PROXY header; 10 s, as the HTTP listener
    # allows for a request head, defeats connections that never start.
    handshake_timeout: float = 10.0

    # Open connections on this listener; past it new ones are closed at once.
    # 10,000 fits the default 20,000 file descriptors of a hub process.
    max_connections: int = 10_000
    # Open connections from one client host (after the PROXY header, the original
    # client); 100 stops one misbehaving device or NAT from taking the listener.
    max_connections_per_client: int = 100

    # TLS: certificate chain and private key (PEM paths) turn TLS on for this listener.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    # CA bundle used to verify client certificates; with ``ssl_cert_reqs``.
    ssl_ca_certs: str | None = None
    # ssl.CERT_NONE: no client certificates; CERT_OPTIONAL / CERT_REQUIRED for mutual TLS.
    ssl_cert_reqs: ssl.VerifyMode = ssl.CERT_NONE

    # Peers that must start with a PROXY protocol v1/v2 header: IPs, CIDR networks,
    # "*" for any, "unix" for unix-socket peers. Empty: no PROXY headers are read.
    proxy_protocol: Sequence[str] = ()

    # Grace period of ``TcpServer.wait_closed()`` when the caller gives none: apps get
    # this long to return after their tcp.disconnect("shutdown") before being cancelled.
    shutdown_grace: float = 10.0

    def __post_init__(self) -> None:
        # Coerce strings (HUB_LISTENERS dicts) and fail at startup, not at the first
        # connection: build a framer once to validate the framing options.
        object.__setattr__(self, "framing", Framing(self.framing))
        object.__setattr__(self, "byte_order", ByteOrder(self.byte_order))
        for field in ("max_queue", "write_buffer_high_water", "max_connections"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1, got {getattr(self, field)}")
        if self.max_connections_per_client < 1:
            raise ValueError(
                f"max_connections_per_client must be at least 1, "
                f"got {self.max_connections_per_client}"
            )
        if self.framing is Framing.CUSTOM and not self.framer:
            raise ValueError("framing=custom needs framer=module:Class")
        self.make_framer()

    @property
    def is_tls(self) -> bool:
        """Whether this listener serves TLS."""
        return self.ssl_certfile is not None

    @property
    def listener(self) -> str:
        """``scope["listener"]``."""
        return self.name or "default"

    @property
    def delimiter_bytes(self) -> bytes:
        """``delimiter`` with its backslash escapes decoded: ``"\\r\\n"`` -> ``b"\\r\\n"``."""
        return self.delimiter.encode("latin-1").decode("unicode_escape").encode("latin-1")

    def framer_class(self) -> type[Framer]:
        """The class of ``framer=module:Class``.

        Raises:
            ValueError: it cannot be imported or is not a framer.
        """
        assert self.framer is not None
        module_name, _, class_name = self.framer.partition(":")
        try:
            framer_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"Cannot import framer {self.framer!r}: {exc}") from exc
        for method in ("receive_data", "receive_eof", "encode"):
            if not callable(getattr(framer_class, method, None)):
                raise ValueError(f"framer {self.framer!r} has no {method}() method")
        result: type[Framer] = framer_class
        return result

    def make_framer(self) -> Framer:
        """A new framer for one connection.

        Raises:
            ValueError: the framing options are invalid.
        """
        framing = self.framing
        if framing is Framing.LINE:
            return LineFramer(self.delimiter_bytes, self.max_frame_size)
        if framing is Framing.LENGTH:
            return LengthPrefixFramer(
                self.length_bytes,
                self.byte_order,
                self.length_offset,
                self.length_adjustment,
                self.max_frame_size,
            )
        if framing is Framing.CUSTOM:
            return self.framer_class()(max_frame_size=self.max_frame_size)  # type: ignore[call-arg]
        return RawFramer(self.max_frame_size)

    def framing_scope(self) -> dict[str, Any]:
        """``scope["framing"]``: what one ``tcp.receive`` holds on this listener."""
        description: dict[str, Any] = {
            "mode": self.framing.value,
            "max_frame_size": self.max_frame_size,
        }
        if self.framing is Framing.LINE:
            description["delimiter"] = self.delimiter_bytes
        elif self.framing is Framing.LENGTH:
            description["length_bytes"] = self.length_bytes
            description["byte_order"] = self.byte_order.value
            description["length_offset"] = self.length_offset
            description["length_adjustment"] = self.length_adjustment
        elif self.framing is Framing.CUSTOM:
            description["framer"] = self.framer
        return description

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
