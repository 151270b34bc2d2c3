"""The raw TCP server of one named listener, and its graceful shutdown.

Shape, as the runner uses it (the same as every hub protocol server)::

    server = TcpServer(app, TcpConfig(name="gps", host="0.0.0.0", port=5000,
                                      framing=Framing.LINE), lifespan_state=state)
    await server.start()                 # binds; port 0 picks a free port
    server.bound_addresses               # [("0.0.0.0", 5000)] or ["/run/gps.sock"]
    ...
    server.close()                       # stop accepting; every connection closes and
                                         # its app receives tcp.disconnect "shutdown"
    await server.wait_closed()           # apps get the grace period to return, then
                                         # what is left is aborted and cancelled

One :class:`Listener` holds what the connections share (app, config, TLS
context, counters, the read buffer, the log prefix); each connection is a
:class:`~protocols.tcp.connection.TcpConnection`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from protocols.deadlines import Deadlines
from protocols.http_ws.proxy import TrustedProxies
from protocols.http_ws.tls import server_tls_details
from protocols.serving import ConnectionSet, ListeningServer

from .config import TcpConfig
from .connection import DirectTcpConnection, ProxiedTcpConnection, TcpConnection
from .messages import ASGIApp

logger = logging.getLogger("protocols.tcp")

#: Size of the read buffer all connections of a listener share: 64 KiB, asyncio's
#: own read size, so one read takes what a fast peer has sent.
READ_BUFFER_SIZE = 64 * 1024


class Listener(ConnectionSet["TcpConnection"]):
    """Shared, mostly read-only context of one listening socket."""

    def __init__(
        self,
        app: ASGIApp,
        config: TcpConfig,
        lifespan_state: dict[str, Any] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__()
        self.app = app
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.name = f"tcp {config.listener}"
        self.lifespan_state = lifespan_state
        self.ssl_context = ssl_context
        # With PROXY protocol the header precedes the TLS handshake, so each connection
        # starts TLS itself once the header is read; otherwise the listening socket does.
        self.start_tls = ssl_context is not None and bool(config.proxy_protocol)
        self.proxy_peers = TrustedProxies(config.proxy_protocol)
        self.framing = config.framing_scope()
        self.read_buffer = memoryview(bytearray(READ_BUFFER_SIZE))
        self.per_client: dict[str, int] = {}
        #: The connections' idle timeouts, in one timer.
        self.deadlines = Deadlines(self.loop)
        #: What a connection's send() returns when there is nothing to wait for.
        self.written: asyncio.Future[None] = self.loop.create_future()
        self.written.set_result(None)
        self.server_cert, self.cipher_ids = server_tls_details(ssl_context, config.ssl_certfile)

    def log_error(self, peer: str, reason: str, exc_info: bool | BaseException = False) -> None:
        """One line naming listener, peer and reason: ``tcp gps 10.0.0.7:52114: ...``."""
        logger.error("%s %s: %s", self.name, peer, reason, exc_info=exc_info)

    def log_warning(self, peer: str, reason: str) -> None:
        logger.warning("%s %s: %s", self.name, peer, reason)

    def log_info(self, peer: str, reason: str) -> None:
        logger.info("%s %s: %s", self.name, peer, reason)


class TcpServer(ListeningServer):
    """Serve one ASGI 3 application over raw TCP on one listener (see the module docstring)."""

    config_class = TcpConfig
    config: TcpConfig
    _listener: Listener | None

    async def start(self) -> None:
        """Bind and start accepting connections.

        Raises:
            OSError: if the address is in use or cannot be bound.
            ssl.SSLError: if the TLS certificate or key cannot be loaded.
        """
        config = self.config
        listener = Listener(self.app, config, self.lifespan_state, config.create_ssl_context())
        self._listener = listener

        connection_class = ProxiedTcpConnection if listener.proxy_peers else DirectTcpConnection

        def factory() -> TcpConnection:
            return connection_class(listener)

        tls: dict[str, Any] = {}
        if listener.ssl_context is not None and not listener.start_tls:
            tls = {"ssl": listener.ssl_context, "ssl_handshake_timeout": config.handshake_timeout}
        await self._listen(factory, self._sock, **tls)
        where = self._where()
        if where is not None:
            listener.name = f"tcp {config.listener} {where}"
