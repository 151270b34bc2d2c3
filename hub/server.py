"""The hub server: every listener of one process, in one event loop.

:class:`Hub` owns the listeners, runs the application's lifespan once for all
of them, and shuts down gracefully: on SIGTERM or SIGINT it stops accepting,
lets each protocol finish what is in flight within ``shutdown_grace`` seconds
(WebSockets get close 1001), then runs lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable, Sequence
from typing import Any

from hub.listeners import ListenerServer, ListenerSpec
from hub.status import STATUS
from hub.types import ASGIApp
from protocols.lifespan import Lifespan

logger = logging.getLogger("hub.server")


class Hub:
    """Serve ``app`` on every listener in ``listeners``.

    Args:
        app: the ASGI application.
        listeners: where to listen.
        shutdown_grace: seconds in-flight work gets to finish on shutdown.
        lifespan: run the ASGI lifespan protocol ("auto": if the app supports it;
            "on": it must; "off": never).
        sockets: pre-bound listening sockets by listener index (worker processes).
    """

    def __init__(
        self,
        app: ASGIApp,
        listeners: Sequence[ListenerSpec],
        *,
        shutdown_grace: float = 10.0,
        lifespan: str = "auto",
        sockets: dict[int, socket.socket] | None = None,
    ) -> None:
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', got {lifespan!r}")
        self.app = app
        self.listeners = list(listeners)
        self.shutdown_grace = shutdown_grace
        self.lifespan_mode = lifespan
        self.sockets = sockets or {}
        self.servers: list[tuple[ListenerSpec, ListenerServer]] = []
        self._lifespan: Lifespan | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Run lifespan startup, then bind and start every listener.

        Raises:
            LifespanFailure: the application refused to start.
            OSError: an address is in use or cannot be bound.
            ValueError: a listener's options are invalid.
        """
        state: dict[str, Any] | None = None
        if self.lifespan_mode != "off":
            self._lifespan = Lifespan(self.app, required=self.lifespan_mode == "on")
            await self._lifespan.startup()
            if self._lifespan.supported:
                state = self._lifespan.state
        try:
            for index, spec in enumerate(self.listeners):
                config = spec.build_config()
                server_class = spec.entry.load(spec.entry.server)
                server = server_class(
                    self.app, config, lifespan_state=state, sock=self.sockets.get(index)
                )
                await server.start()
                self.servers.append((spec, server))
        except BaseException:
            await self.wait_closed(grace=0)
            raise

    def urls(self) -> list[tuple[str, str]]:
        """``(protocol, url)`` for every bound address, as the banner shows them."""
        urls = []
        for spec, server in self.servers:
            entry = spec.entry
            scheme = entry.tls_scheme if getattr(server.config, "is_tls", False) else entry.scheme
            prefix = f"{spec.name}=" if spec.name else ""
            for address in server.bound_addresses:
                if isinstance(address, str):
                    urls.append((spec.protocol, f"{prefix}{scheme}+unix://{address}"))
                else:
                    host = f"[{address[0]}]" if ":" in address[0] else address[0]
                    urls.append((spec.protocol, f"{prefix}{scheme}://{host}:{address[1]}"))
        return urls

    def close(self) -> None:
        """Stop accepting on every listener and ask connections to finish."""
        for _, server in self.servers:
            server.close()

    async def wait_closed(self, grace: float | None = None) -> None:
        """Wait for every listener to finish (within the grace), then run lifespan shutdown."""
        grace = self.shutdown_grace if grace is None else grace
        self.close()
        await asyncio.gather(*(server.wait_closed(grace) for _, server in self.servers))
        self.servers.clear()
        if self._lifespan is not None:
            lifespan, self._lifespan = self._lifespan, None
            await lifespan.shutdown()

    def stop(self) -> None:
        """Begin a graceful shutdown (what SIGTERM does)."""
        self._stop.set()

    async def serve(
        self,
        *,
        install_signals: bool = True,
        on_started: Callable[[Hub], None] | None = None,
    ) -> None:
        """Start, log every listener, serve until stopped, then shut down gracefully.

        ``on_started(hub)`` is called once every listener accepts connections.
        """
        if install_signals:
            self._install_signal_handlers()
        await self.start()
        STATUS.listeners = self.urls()
        STATUS.draining = False
        for protocol, url in self.urls():
            logger.info("Listening: %-5s %s", protocol, url)
        if on_started is not None:
            on_started(self)
        try:
            await self._stop.wait()
        finally:
            STATUS.draining = True
            logger.info("Shutting down (grace %.0f s)", self.shutdown_grace)
            await self.wait_closed()
            logger.info("Stopped")

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
