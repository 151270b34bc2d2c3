"""The MQTT server of one listener: connections, client ids, sessions, graceful shutdown.

Shape, as the runner uses it (the same as every hub protocol server)::

    server = MqttServer(app, MqttConfig(host="0.0.0.0", port=1883), lifespan_state=state)
    await server.start()                 # binds; port 0 picks a free port
    server.bound_addresses               # [("0.0.0.0", 1883)]
    ...
    server.close()                       # stop accepting; v5 clients get DISCONNECT 0x8B,
                                         # apps get mqtt.disconnect "shutdown"
    await server.wait_closed()           # apps get the grace period to return, then
                                         # what is left is aborted and cancelled

One :class:`Listener` holds what the connections share: the app, the config,
TLS details, the live connection of each Client Identifier (for takeover,
MQTT-3.1.4-3) and the wire :class:`~protocols.mqtt.session.Session` of each
disconnected client whose session has not expired. Each connection is a
:class:`~protocols.mqtt.protocol.MqttProtocol`; what it does after CONNACK
lives in :mod:`protocols.mqtt.flow`.

Sessions and takeover are per listener and per process: a client that
reconnects to another process (``--workers``) or listener starts with a new
wire session (its application-level session, subscriptions and queued
messages, is the application's, on the channel layer).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from protocols.deadlines import Deadlines
from protocols.http_ws.tls import server_tls_details
from protocols.serving import ConnectionSet, ListeningServer

from .config import MqttConfig
from .messages import ASGIApp
from .protocol import MqttProtocol
from .session import Session

logger = logging.getLogger("protocols.mqtt")

#: Seconds between sweeps of expired sessions; a minute keeps memory of gone
#: devices bounded without scanning on every disconnect.
SESSION_SWEEP_INTERVAL = 60.0

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class Listener(ConnectionSet["MqttProtocol"]):
    """Shared context of one listening socket (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        config: MqttConfig,
        lifespan_state: dict[str, Any] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__()
        self.app = app
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.name = f"mqtt {config.listener}"
        self.lifespan_state = lifespan_state
        self.clients: dict[str, MqttProtocol] = {}
        self.sessions: dict[str, Session] = {}
        #: The connections' CONNECT, answer and keep-alive deadlines, in one timer.
        self.deadlines = Deadlines(self.loop)
        self._next_sweep = self.loop.time() + SESSION_SWEEP_INTERVAL
        self.server_cert, self.cipher_ids = server_tls_details(ssl_context, config.ssl_certfile)

    def claim(self, connection: MqttProtocol, session_present: bool) -> Session:
        """Make ``connection`` the one of its client id; return the session it continues.

        A live connection with the same client id is taken over (closed with
        0x8E) first. With ``session_present`` the kept wire session is resumed,
        otherwise it is discarded (MQTT-3.1.2-4).
        """
        client_id = connection.client_id
        old = self.clients.get(client_id)
        if old is not None and old is not connection:
            old.take_over()  # its connection_lost() releases the session, now or soon
            session = old.wire.session if old.wire is not None else None
            if old.wire is not None:
                old.wire.closed = True
            self.sessions.pop(client_id, None)
        else:
            session = self.sessions.pop(client_id, None)
            expires_at = session.expires_at if session is not None else None
            if expires_at is not None and expires_at <= self.loop.time():
                session = None
        self.clients[client_id] = connection
        if session is None or not session_present:
            session = Session(client_id)
        session.expires_at = None
        return session

    def release(self, connection: MqttProtocol, session_expiry: int) -> None:
        """``connection`` closed: keep its session for ``session_expiry`` seconds."""
        client_id = connection.client_id
        if self.clients.get(client_id) is connection:
            del self.clients[client_id]
            wire = connection.wire
            if session_expiry and wire is not None:
                now = self.loop.time()
                wire.session.expires_at = now + session_expiry
                self.sessions[client_id] = wire.session
                if now >= self._next_sweep:
                    self.sweep(now)

    def sweep(self, now: float) -> None:
        self._next_sweep = now + SESSION_SWEEP_INTERVAL
        expired = [
            client_id
            for client_id, session in self.sessions.items()
            if session.expires_at is not None and session.expires_at <= now
        ]
        for client_id in expired:
            del self.sessions[client_id]

    def log(self, level: str, text: str, exc_info: bool = False) -> None:
        """One line: ``mqtt default 0.0.0.0:1883 10.0.0.7:52114 sensor-7: reason``."""
        logger.log(_LEVELS[level], "%s %s", self.name, text, exc_info=exc_info)


class MqttServer(ListeningServer):
    """Serve one ASGI 3 application over MQTT 3.1.1 / 5.0 on one listener."""

    config_class = MqttConfig
    config: MqttConfig
    _listener: Listener | None

    async def start(self) -> None:
        """Bind and start accepting connections.

        Raises:
            OSError: if the address is in use or cannot be bound.
            ssl.SSLError: if the TLS certificate or key cannot be loaded.
        """
        config = self.config
        context = config.create_ssl_context()
        listener = Listener(self.app, config, self.lifespan_state, context)
        self._listener = listener

        def factory() -> MqttProtocol:
            return MqttProtocol(listener)

        options: dict[str, Any] = {"ssl": context}
        if context is not None:
            options["ssl_handshake_timeout"] = config.connect_timeout
        await self._listen(factory, self._sock, **options)
        where = self._where()
        if where is not None:
            listener.name = f"mqtt {config.listener} {where}"
