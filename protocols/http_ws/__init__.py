"""hub's asyncio ASGI 3 server for HTTP/1.1 and WebSocket.

Public API: :class:`HttpWsServer` (see :mod:`protocols.http_ws.server` for
the start/close shape), :class:`HttpWsConfig` (every limit and timeout), and
:class:`ClientDisconnected` (what ``send()`` raises once the client is gone).
Loggers: ``protocols.http_ws.access`` (one line per response or handshake)
and ``protocols.http_ws.error`` (application failures, refused requests).

This package never imports Django or ``hub``.
"""

from .config import HttpWsConfig
from .messages import ClientDisconnected
from .server import HttpWsServer

__all__ = ["ClientDisconnected", "HttpWsConfig", "HttpWsServer"]
