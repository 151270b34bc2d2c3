"""The SMTP/LMTP server of one listener: sessions, their limits, and graceful shutdown.

Shape, as the runner uses it (the same as every hub protocol server)::

    server = SmtpServer(app, SmtpConfig(host="0.0.0.0", port=25), lifespan_state=state)
    await server.start()                 # binds; port 0 picks a free port
    server.bound_addresses               # [("0.0.0.0", 25)] or ["/run/hub-lmtp.sock"]
    server.close()                       # stop accepting; idle sessions get 421
    await server.wait_closed()           # messages in progress finish within the grace

aiosmtpd's ``Controller`` runs its server in a thread with its own event loop;
hub serves each session with aiosmtpd's ``SMTP`` protocol directly from
``loop.create_server()``, in the caller's loop, next to every other listener.

Shutdown in order: the listening sockets stop accepting; sessions waiting
for a command get ``421 4.3.2`` and close; a session receiving or handing over
a message finishes it (the client gets the app's answer) and gets 421 at its
next command. What is still open after ``grace_seconds`` (default
``config.shutdown_grace``) is aborted, and every application task still
running is cancelled and awaited, so nothing outlives ``wait_closed()``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from typing import Any

from protocols.http_ws.proxy import TrustedProxies
from protocols.http_ws.tls import server_tls_details, tls_extension
from protocols.serving import ConnectionSet, ListeningServer

from . import replies
from .config import SmtpConfig
from .messages import ASGIApp
from .replies import Reply
from .session import LmtpSession, SmtpSession

logger = logging.getLogger("protocols.smtp.error")


class Listener(ConnectionSet["SmtpSession"]):
    """What every session of one listening socket shares: app, config, counts, tasks, logs."""

    def __init__(
        self,
        app: ASGIApp,
        config: SmtpConfig,
        lifespan_state: dict[str, Any] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__()
        self.app = app
        self.config = config
        self.name = config.listener_name()
        self.lifespan_state = lifespan_state
        self.ssl_context = ssl_context
        self.loop = asyncio.get_running_loop()
        self.hostname = config.server_hostname()
        self.mechanisms = tuple(m.upper() for m in config.auth_mechanisms)
        unknown = set(self.mechanisms) - {"PLAIN", "LOGIN"}
        if unknown:
            raise ValueError(f"{self.name}: unsupported auth_mechanisms {sorted(unknown)}")
        self.local_domains = frozenset(domain.lower() for domain in config.local_domains)
        self.trusted_proxies = TrustedProxies(config.proxy_protocol_from)
        self.per_host: Counter[str] = Counter()
        self.server_cert, self.cipher_ids = server_tls_details(ssl_context, config.ssl_certfile)

    # Limits

    def admit(self, session: SmtpSession, *, proxied: bool) -> Reply | None:
        """Count a new session; the 421 to send instead of the greeting when over a limit."""
        if len(self.connections) > self.config.max_sessions:
            self.log_info(session.peer, f"refused: {self.config.max_sessions} sessions open")
            return replies.SERVER_BUSY
        return None if proxied else self.admit_client(session)

    def admit_client(self, session: SmtpSession) -> Reply | None:
        """Count the session against its client address (after PROXY, the real client's)."""
        host = session.client[0] if session.client else None
        if host is None:
            return None
        if self.per_host[host] >= self.config.max_sessions_per_ip:
            self.log_info(
                session.peer, f"refused: {self.config.max_sessions_per_ip} sessions from {host}"
            )
            return replies.CLIENT_BUSY
        self.per_host[host] += 1
        session.counted_host = host
        return None

    def forget(self, session: SmtpSession) -> None:
        host = session.counted_host
        if host is not None:
            session.counted_host = None
            self.per_host[host] -= 1
            if self.per_host[host] <= 0:
                del self.per_host[host]
        super().forget(session)

    # Tasks

    def reap(self, task: asyncio.Task[None]) -> None:
        """After ``smtp.disconnect``, give the app ``app_timeout`` to return, then cancel it."""
        if not task.done():
            handle = self.loop.call_later(self.config.app_timeout, task.cancel)
            task.add_done_callback(lambda _: handle.cancel())

    # TLS and logs

    def tls_details(self, ssl_object: ssl.SSLObject) -> dict[str, Any]:
        return tls_extension(ssl_object, self.server_cert, self.cipher_ids)

    def log_error(self, peer: str, reason: str, exc: BaseException | None = None) -> None:
        """One error line naming listener, peer and reason."""
        logger.error("%s %s: %s", self.name, peer, reason, exc_info=exc)

    def log_info(self, peer: str, reason: str) -> None:
        logger.info("%s %s: %s", self.name, peer, reason)


class SmtpServer(ListeningServer):
    """Serve one ASGI application over SMTP (or LMTP) on one listener."""

    config_class = SmtpConfig
    config: SmtpConfig
    _listener: Listener | None

    async def start(self) -> None:
        """Bind and start accepting sessions.

        Raises:
            OSError: the address is in use or cannot be bound.
            ValueError: the config asks for TLS without a certificate, or an
                unknown AUTH mechanism.
            ssl.SSLError: the certificate or key cannot be loaded.
        """
        config = self.config
        ssl_context = config.create_ssl_context()
        listener = Listener(self.app, config, self.lifespan_state, ssl_context)
        self._listener = listener
        session_class = LmtpSession if config.lmtp else SmtpSession
        implicit = ssl_context if config.implicit_tls else None

        def factory() -> SmtpSession:
            return session_class(listener)

        await self._listen(factory, self._sock, ssl=implicit)
        where = self._where()
        if config.name is None and where is not None:
            listener.name = f"{'lmtp' if config.lmtp else 'smtp'} {where}"
