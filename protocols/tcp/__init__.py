"""hub's asyncio ASGI server for raw TCP: devices that speak their own byte protocol.

Public API: :class:`TcpServer` (see :mod:`protocols.tcp.server` for the
start/close shape), :class:`TcpConfig` (framing, every limit and timeout,
TLS, PROXY protocol), the framers of :mod:`protocols.tcp.framing` (and the
:class:`Framer` protocol a custom framer implements), and
:class:`PeerDisconnected` (what ``send()`` raises once the peer is gone).
The ASGI messages are specified in ``docs/specs/tcp.md``. Logger:
``protocols.tcp`` (refused connections, timeouts, framing errors, crashed
applications), one line each naming listener, peer and reason.

This package never imports Django or ``hub``.
"""

from .config import TcpConfig
from .framing import (
    ByteOrder,
    Framer,
    FrameTooLarge,
    Framing,
    FramingError,
    IncompleteFrame,
    InvalidFrame,
    LengthPrefixFramer,
    LineFramer,
    RawFramer,
)
from .messages import DisconnectReason, PeerDisconnected
from .server import TcpServer

__all__ = [
    "ByteOrder",
    "DisconnectReason",
    "FrameTooLarge",
    "Framer",
    "Framing",
    "FramingError",
    "IncompleteFrame",
    "InvalidFrame",
    "LengthPrefixFramer",
    "LineFramer",
    "PeerDisconnected",
    "RawFramer",
    "TcpConfig",
    "TcpServer",
]
