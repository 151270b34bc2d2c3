"""The HTTP/1.1 + WebSocket server of one listener, and its graceful shutdown.

Shape, as the runner uses it::

    lifespan = Lifespan(app)
    await lifespan.startup()
    server = HttpWsServer(app, HttpWsConfig(host="0.0.0.0", port=8000),
                          lifespan_state=lifespan.state)
    await server.start()                 # binds; port 0 picks a free port
    server.bound_addresses               # [("0.0.0.0", 8000)] or ["/run/hub.sock"]
    ...
    server.close()                       # stop accepting; idle keep-alives close,
                                         # WebSockets get close 1001
    await server.wait_closed()           # in-flight requests finish within the grace
                                         # period, then app tasks are cancelled
    await lifespan.shutdown()

Shutdown in order: the listening sockets stop accepting; idle HTTP
connections close; busy ones close after their current response; open
WebSockets start the closing handshake with 1001 (going away). Within
``grace_seconds`` (default ``config.shutdown_grace``) everything should have
closed; what has not is aborted, and every application task still running is
cancelled and awaited, so nothing outlives ``wait_closed()``.
"""

from __future__ import annotations

from protocols.serving import ListeningServer

from .config import HttpWsConfig
from .http import HttpProtocol
from .listener import Listener


class HttpWsServer(ListeningServer):
    """Serve one ASGI 3 application over HTTP/1.1 and WebSocket on one listener."""

    config_class = HttpWsConfig
    config: HttpWsConfig
    _listener: Listener | None

    async def start(self) -> None:
        """Bind and start accepting connections.

        Raises:
            OSError: if the address is in use or cannot be bound.
            ssl.SSLError: if the TLS certificate or key cannot be loaded.
        """
        config = self.config
        ssl_context = config.create_ssl_context()
        listener = Listener(self.app, config, self.lifespan_state, ssl_context)
        self._listener = listener

        def factory() -> HttpProtocol:
            return HttpProtocol(listener)

        await self._listen(factory, self._sock, ssl=ssl_context)
        where = self._where()
        if config.name is None and where is not None:
            listener.name = f"http {where}"

    async def wait_closed(self, grace_seconds: float | None = None) -> None:
        """Shut down as every server does, then let the idle sync threads exit."""
        try:
            await super().wait_closed(grace_seconds)
        finally:
            if self._listener is not None:
                self._listener.sync_threads.close()
