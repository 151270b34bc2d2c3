"""What every connection of one listener shares: app, config, state, tasks, logs.

One :class:`Listener` is made per :class:`~protocols.http_ws.server.HttpWsServer`.
Connections keep a reference to it instead of a copy of each setting, register
themselves in ``connections`` while open, and start their application
instances through :meth:`Listener.spawn`, which keeps every task in a set so
that shutdown can cancel and await them all.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, Protocol

from protocols.serving import ConnectionSet

from .config import HttpWsConfig
from .messages import ASGIApp
from .proxy import TrustedProxies
from .threads import SyncThreadPool
from .tls import server_tls_details, tls_extension
from .wire import DateHeader

access_logger = logging.getLogger("protocols.http_ws.access")
error_logger = logging.getLogger("protocols.http_ws.error")


class Connection(Protocol):
    """What shutdown needs from an HTTP or WebSocket connection."""

    def shutdown(self) -> None:
        """Stop taking new work; close once the current work is done."""

    def abort(self) -> None:
        """Drop the TCP connection now."""


class ConnectionInfo:
    """Addresses and transport security of one TCP or unix-socket connection."""

    __slots__ = ("client", "peer", "proxied", "scheme", "server", "tls")

    def __init__(
        self,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        tls: dict[str, Any] | None,
        proxied: bool,
    ) -> None:
        self.client = client
        self.server = server
        self.tls = tls
        self.scheme = "https" if tls is not None else "http"
        # Whether the peer is a trusted proxy whose forwarding headers are honoured.
        self.proxied = proxied
        self.peer = format_peer(client)


class Listener(ConnectionSet["Connection"]):
    """Shared, mostly read-only context of one listening socket."""

    def __init__(
        self,
        app: ASGIApp,
        config: HttpWsConfig,
        lifespan_state: dict[str, Any] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__()
        self.app = app
        self.config = config
        self.name = config.listener_name()
        self.lifespan_state = lifespan_state
        self.ssl_context = ssl_context
        self.trusted_proxies = TrustedProxies(config.forwarded_allow_ips)
        self.date = DateHeader()
        self.sync_threads = SyncThreadPool(config.sync_threads)
        self.server_line = (
            b"server: %s\r\n" % config.server_header.encode("latin-1")
            if config.server_header
            else b""
        )
        self.server_cert, self.cipher_ids = server_tls_details(ssl_context, config.ssl_certfile)

    def connection_info(self, transport: asyncio.BaseTransport) -> ConnectionInfo:
        """Read peer, local address and TLS details of a new connection once."""
        peername = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        client = (str(peername[0]), int(peername[1])) if isinstance(peername, tuple) else None
        if isinstance(sockname, tuple):
            server: tuple[str, int | None] | None = (str(sockname[0]), int(sockname[1]))
        elif isinstance(sockname, str) and sockname:
            server = (sockname, None)
        else:
            server = None
        ssl_object = transport.get_extra_info("ssl_object")
        tls = (
            tls_extension(ssl_object, self.server_cert, self.cipher_ids)
            if ssl_object is not None
            else None
        )
        proxied = bool(self.trusted_proxies) and self.trusted_proxies.is_trusted(
            client[0] if client else None
        )
        return ConnectionInfo(client, server, tls, proxied)

    def log_error(self, peer: str, reason: str, exc_info: bool = False) -> None:
        """One error line naming listener, peer and reason."""
        error_logger.error("%s %s: %s", self.name, peer, reason, exc_info=exc_info)

    def log_info(self, peer: str, reason: str) -> None:
        error_logger.info("%s %s: %s", self.name, peer, reason)

    def state_copy(self) -> dict[str, Any] | None:
        """``scope["state"]``: a shallow copy of the lifespan namespace, per the spec."""
        return None if self.lifespan_state is None else self.lifespan_state.copy()


def format_peer(client: tuple[str, int] | None) -> str:
    """``host:port`` of a TCP peer, ``unix`` for a unix-socket peer."""
    if client is None:
        return "unix"
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
