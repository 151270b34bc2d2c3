"""What every hub protocol server shares once it listens: sockets, addresses, shutdown.

Each protocol's server (HTTP/WebSocket, MQTT, SMTP, TCP) binds in its own
``start()``, setting ``_server`` (the ``asyncio.Server``) and ``_listener``:
a :class:`ConnectionSet` (``closing``, ``tasks``: the application tasks,
``wait_idle()``), whose connections (:meth:`ListeningServer._connections`)
have ``shutdown()`` (finish what is in flight, then close with the protocol's
goodbye: WebSocket 1001, MQTT 0x8B, SMTP 421, TCP reason "shutdown") and
``abort()``. The rest, the shutdown sequence above all, is here once:

1. ``close()``: stop accepting and ask every connection to finish;
2. ``wait_closed(grace)``: wait for them and their applications, at most the
   grace period; then abort the connections left and cancel and await every
   application task, so nothing outlives the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

C = TypeVar("C")


class ConnectionSet(Generic[C]):
    """A listener's open connections and application tasks: what shutdown waits for."""

    def __init__(self) -> None:
        self.connections: set[C] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self._idle: asyncio.Event | None = None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a coroutine of a connection as a task that shutdown can find."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def add(self, connection: C) -> None:
        self.connections.add(connection)

    def forget(self, connection: C) -> None:
        """``connection`` is closed; wake :meth:`wait_idle` when it was the last."""
        self.connections.discard(connection)
        if not self.connections and self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no connection is open."""
        if self.connections:
            self._idle = asyncio.Event()
            await self._idle.wait()


class ListeningServer:
    """The listening half of a protocol server (see the module docstring).

    Args:
        app: an ASGI 3 application speaking the server's protocol (its spec is
            in ``docs/specs/``).
        config: addresses, limits and timeouts; defaults to ``config_class()``.
        lifespan_state: the ``state`` dict filled during lifespan startup; a copy
            goes into every scope. ``None`` leaves ``state`` out of scopes.
        sock: an already bound socket (worker processes); ``config.host``,
            ``port`` and ``uds`` are then ignored.
    """

    #: The protocol's config dataclass, built with its defaults when none is given.
    config_class: type[Any]
    config: Any
    _listener: Any

    def __init__(
        self,
        app: Any,
        config: Any = None,
        *,
        lifespan_state: dict[str, Any] | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self.config = config or self.config_class()
        self.app = app
        self.lifespan_state = lifespan_state
        self._sock = sock
        self._server: asyncio.Server | None = None
        self._listener = None

    async def _listen(
        self,
        factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket | None,
        **options: Any,
    ) -> None:
        """Serve ``factory`` on ``sock`` (workers), else on the config's ``uds`` or host and port.

        ``options`` go to asyncio's ``create_server`` (``ssl``, handshake timeout).
        """
        loop = asyncio.get_running_loop()
        options["backlog"] = self.config.backlog
        if sock is not None:
            unix = sock.family == socket.AF_UNIX
            create = loop.create_unix_server if unix else loop.create_server
            self._server = await create(factory, sock=sock, **options)
        elif self.config.uds is not None:
            self._server = await loop.create_unix_server(factory, path=self.config.uds, **options)
        else:
            self._server = await loop.create_server(
                factory, self.config.host, self.config.port, **options
            )

    def _where(self) -> str | None:
        """The first bound address as log lines name it: ``host:port`` or ``unix:PATH``."""
        addresses = self.bound_addresses
        if not addresses:
            return None
        address = addresses[0]
        return f"unix:{address}" if isinstance(address, str) else f"{address[0]}:{address[1]}"

    def _connections(self) -> list[Any]:
        """The open connections; a protocol whose listener names them otherwise overrides it."""
        return list(self._listener.connections)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (empty before ``start()``)."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    @property
    def bound_addresses(self) -> list[Any]:
        """``(host, port)`` per TCP socket (the real port when ``port=0``), or the unix path."""
        return [
            sock.getsockname()[:2] if sock.family != socket.AF_UNIX else sock.getsockname()
            for sock in self.sockets
        ]

    @property
    def connection_count(self) -> int:
        """Open connections, including those still in their handshake."""
        return len(self._connections()) if self._listener is not None else 0

    def close(self) -> None:
        """Stop accepting and ask every connection to finish."""
        listener = self._listener
        if listener is None or listener.closing:
            return
        listener.closing = True
        assert self._server is not None
        self._server.close()
        for connection in self._connections():
            connection.shutdown()

    async def wait_closed(self, grace_seconds: float | None = None) -> None:
        """Wait for connections to finish, then abort the rest and cancel application tasks."""
        listener = self._listener
        if listener is None:
            return
        self.close()
        grace = self.config.shutdown_grace if grace_seconds is None else grace_seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await listener.wait_idle()
                if listener.tasks:
                    await asyncio.wait(set(listener.tasks))
        for connection in self._connections():
            connection.abort()
        tasks = set(listener.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        assert self._server is not None
        await self._server.wait_closed()
