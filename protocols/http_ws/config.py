"""Settings of one HTTP/WebSocket listener: every limit and timeout in one place.

Each field has a default that is safe for a server facing the internet and a
comment saying where the number comes from. The runner builds one
``HttpWsConfig`` per listener (from Django settings or CLI flags) and hands it
to :class:`protocols.http_ws.server.HttpWsServer`; nothing else in the package
reads settings.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Sequence

from .tls import server_ssl_context

KIB = 1024
MIB = 1024 * KIB


@dataclasses.dataclass(frozen=True, slots=True)
class HttpWsConfig:
    """Addresses, limits, timeouts and features of one HTTP/1.1 + WebSocket listener."""

    # Where to listen. ``port=0`` asks the OS for a free port (read it back from
    # ``HttpWsServer.bound_addresses``); ``uds`` listens on a unix socket instead.
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    # Kernel accept queue; 2048 is the usual web server default (nginx 511, uvicorn 2048).
    backlog: int = 2048
    # Name used in log lines; defaults to "http <host>:<port>" or "http unix:<path>".
    name: str | None = None

    # The ASGI ``root_path`` (WSGI SCRIPT_NAME) when mounted under a URL prefix by a proxy.
    root_path: str = ""
    # Value of the ``Server`` response header; ``None`` sends none (hides the software).
    server_header: str | None = "hub"
    # Emit one INFO line per response on the "protocols.http_ws.access" logger.
    access_log: bool = True

    # TLS: certificate chain and private key (PEM paths) turn TLS on for this listener.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    # CA bundle used to verify client certificates; with ``ssl_cert_reqs``.
    ssl_ca_certs: str | None = None
    # ssl.CERT_NONE: no client certificates; CERT_OPTIONAL / CERT_REQUIRED for mutual TLS.
    ssl_cert_reqs: ssl.VerifyMode = ssl.CERT_NONE

    # Peers allowed to set X-Forwarded-For/-Proto and Forwarded: IPs, CIDR networks,
    # "*" for any, "unix" for unix-socket peers. Empty: the headers are ignored.
    forwarded_allow_ips: Sequence[str] = ()

    # Longest request line + headers (431 above it). Browsers send a few KiB; 64 KiB
    # leaves room for large cookies while bounding memory (nginx allows 4 x 8 KiB lines).
    max_head_size: int = 64 * KIB
    # Most header fields in one request; Apache's LimitRequestFields default is 100.
    max_header_count: int = 100
    # Largest request body; above it the request is answered 413. 16 MiB fits
    # ordinary uploads; raise it for file servers (Django's own limit is 2.5 MiB in memory).
    max_body_size: int = 16 * MIB

    # Time a client may take to send a whole request head after its first byte;
    # 10 s defeats slowloris while tolerating slow mobile links (nginx uses 60 s per read).
    request_head_timeout: float = 10.0
    # Longest silence while a request body is being received (408 or close after it).
    request_body_timeout: float = 30.0
    # Idle time between requests on a keep-alive connection before closing it
    # silently; 5 s, like uvicorn, as browsers reuse connections within a page load.
    keep_alive_timeout: float = 5.0

    # Request body bytes buffered for an app that is not reading, before reading
    # from the socket pauses; 64 KiB is asyncio's default transport high-water mark.
    read_buffer_high_water: int = 64 * KIB
    # Bytes queued in the transport before the app's send() awaits the peer
    # (asyncio's default transport high-water mark is 64 KiB).
    write_buffer_high_water: int = 64 * KIB

    # Idle threads kept for the sync code of HTTP requests (Django views, via asgiref):
    # a request still runs it on a thread of its own, which then serves later requests
    # instead of exiting (asgiref alone starts and joins a thread per request). 64 covers
    # the requests one process runs at once; 0 leaves threads to asgiref.
    sync_threads: int = 64

    # Accept WebSocket upgrades on this listener.
    websocket: bool = True
    # Largest incoming WebSocket message, after decompression (close 1009 above it);
    # 1 MiB, as in the websockets library and Channels.
    ws_max_message_size: int = 1 * MIB
    # Incoming messages queued for an app that is not receiving before reading pauses;
    # 16, as the websockets library's max_queue.
    ws_max_queue: int = 16
    # Negotiate RFC 7692 permessage-deflate when the client offers it. Costs CPU and
    # about 64 KiB of zlib state per connection; saves bandwidth on text messages.
    ws_per_message_deflate: bool = True
    # LZ77 window (2**bits bytes) both ways: 12 bits (4 KiB) as the websockets library's
    # serve() default; small chat and JSON messages compress nearly as well as with 15
    # bits, for an eighth of the memory. The zlib streams exist only once a message
    # is compressed, so idle connections hold none (see deflate.py).
    ws_deflate_window_bits: int = 12
    # zlib memLevel of the compressor (1-9): 5, the websockets default, about 18 KiB
    # with a 12-bit window instead of 84 KiB at zlib's defaults.
    ws_deflate_mem_level: int = 5
    # Seconds between keepalive pings; 20 s, like the websockets library, stays under
    # the 30-60 s idle timeouts of common proxies and NATs. ``None`` disables pings.
    ws_ping_interval: float | None = 20.0
    # Seconds to wait for the pong before closing the connection as dead (1011).
    ws_ping_timeout: float = 20.0
    # Seconds to wait for the client's close frame after sending ours, then drop the TCP
    # connection; 10 s as in the websockets library.
    ws_close_timeout: float = 10.0

    # Grace period of ``HttpWsServer.wait_closed()`` when the caller gives none:
    # in-flight requests get this long to finish before their apps are cancelled.
    shutdown_grace: float = 10.0

    @property
    def is_tls(self) -> bool:
        """Whether this listener serves TLS (https/wss)."""
        return self.ssl_certfile is not None

    def listener_name(self) -> str:
        """The name log lines use for this listener."""
        if self.name is not None:
            return self.name
        if self.uds is not None:
            return f"http unix:{self.uds}"
        return f"http {self.host}:{self.port}"

    def create_ssl_context(self) -> ssl.SSLContext | None:
        """Build the server TLS context, or ``None`` when TLS is off.

        Raises:
            OSError / ssl.SSLError: if a certificate, key or CA file cannot be loaded.
        """
        if self.ssl_certfile is None:
            return None
        context = server_ssl_context(
            self.ssl_certfile,
            self.ssl_keyfile,
            self.ssl_keyfile_password,
            self.ssl_cert_reqs,
            self.ssl_ca_certs,
        )
        # Only HTTP/1.1 is served; advertising it lets ALPN clients settle without h2.
        context.set_alpn_protocols(["http/1.1"])
        return context
