"""Refusing WebSocket handshakes from pages of other sites (cross-site WebSocket hijacking).

Browsers send cookies with a WebSocket handshake whatever page opens it, and
the same-origin policy does not apply to WebSockets; only the ``Origin``
header says which site's page is connecting (RFC 6455 section 10.2). A
consumer that trusts ``scope["user"]`` must therefore sit behind a validator
that refuses foreign origins, before the consumer runs.

Patterns are those of Django's ``ALLOWED_HOSTS``, optionally with a scheme
and port:

- ``"example.com"``: that host, any scheme, any port; ``"example.com:8000"``:
  that host on port 8000 (Channels never matches this form: it reads
  ``example.com`` as a scheme).
- ``".example.com"``: ``example.com`` and all its subdomains.
- ``"https://example.com"``: that scheme and host on the scheme's default
  port (443); ``"http://example.com:8000"``: exactly that port.
- ``"*"``: anything, including no ``Origin`` at all (non-browser clients send
  none, and ``"*"`` means "do not check").

A handshake without ``Origin``, with an ``Origin`` that is not a URL with a
host (such as ``null`` from sandboxed frames and ``file:`` pages), or with
several ``Origin`` headers, is refused unless ``"*"`` is allowed. Other
scope types (HTTP, MQTT...) pass through: for HTTP, Django's CSRF protection
and ``ALLOWED_HOSTS`` already apply, and other protocols have no origin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import ParseResult, urlparse

from django.conf import settings
from django.utils.http import is_same_domain

from hub.consumer import describe_scope
from hub.generic.websocket import AsyncWebsocketConsumer
from hub.types import ASGIApp, Receive, Scope, Send

__all__ = ["AllowedHostsOriginValidator", "OriginValidator", "WebsocketDenier"]

logger = logging.getLogger("hub.security")

#: The port an origin means when it names none, by scheme (RFC 6454 section 4).
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}

#: What ``AllowedHostsOriginValidator`` allows with ``DEBUG`` and empty
#: ``ALLOWED_HOSTS``: the hosts Django's ``HttpRequest.get_host`` allows then.
DEBUG_ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]


class OriginValidator:
    """Runs ``application`` for WebSocket handshakes from allowed origins only.

    Args:
        application: the ASGI application to protect.
        allowed_origins: patterns, as described in this module's docstring.

    Raises:
        TypeError: ``allowed_origins`` is a single string (whose characters
            would otherwise each be taken as a pattern).
    """

    def __init__(self, application: ASGIApp, allowed_origins: Iterable[str]) -> None:
        if isinstance(allowed_origins, str):
            raise TypeError(
                f"allowed_origins must be a list of patterns, got the string "
                f"{allowed_origins!r}; write [{allowed_origins!r}]"
            )
        self.application = application
        self._allowed_origins = list(allowed_origins)

    @property
    def allowed_origins(self) -> list[str]:
        """The patterns an origin is checked against."""
        return self._allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.application(scope, receive, send)
            return
        origins = [value for name, value in scope.get("headers", ()) if name.lower() == b"origin"]
        parsed_origin = _parse_origin(origins[0]) if len(origins) == 1 else None
        if self.valid_origin(parsed_origin):
            await self.application(scope, receive, send)
            return
        logger.warning("%s: handshake refused: %s", describe_scope(scope), _why_refused(origins))
        await WebsocketDenier()(scope, receive, send)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        """Whether the handshake may go on; no origin at all passes only with ``"*"``."""
        if parsed_origin is None and "*" not in self.allowed_origins:
            return False
        return self.validate_origin(parsed_origin)

    def validate_origin(self, parsed_origin: ParseResult | None) -> bool:
        """Whether ``parsed_origin`` matches any allowed pattern; override to decide otherwise."""
        return any(
            pattern == "*" or self.match_allowed_origin(parsed_origin, pattern)
            for pattern in self.allowed_origins
        )

    def match_allowed_origin(self, parsed_origin: ParseResult | None, pattern: str) -> bool:
        """Whether ``parsed_origin`` matches ``pattern`` (host, and scheme and port if given).

        Hosts compare as in ``ALLOWED_HOSTS``: case-insensitively, a leading
        dot covering subdomains. A pattern without scheme ignores the origin's
        scheme, and its port unless the pattern names one; a pattern with a
        scheme must match scheme and port, a missing port meaning the scheme's
        default.
        """
        if parsed_origin is None:
            return False
        try:
            origin_host = parsed_origin.hostname
            if origin_host is None:
                return False
            if "://" not in pattern:
                # urlparse would read "example.com:8000" as scheme "example.com".
                parsed_pattern = urlparse("//" + pattern.lower())
                return is_same_domain(origin_host, parsed_pattern.hostname or "") and (
                    parsed_pattern.port is None
                    or parsed_pattern.port == self.get_origin_port(parsed_origin)
                )
            parsed_pattern = urlparse(pattern.lower())
            return (
                parsed_pattern.scheme == parsed_origin.scheme
                and self.get_origin_port(parsed_origin) == self.get_origin_port(parsed_pattern)
                and is_same_domain(origin_host, parsed_pattern.hostname or "")
            )
        except ValueError:  # a port out of range or not a number: no match
            return False

    def get_origin_port(self, origin: ParseResult) -> int | None:
        """The origin's port, or its scheme's default port, or ``None`` for other schemes.

        Raises:
            ValueError: the port is not a number from 0 to 65535.
        """
        if origin.port is not None:
            return origin.port
        return DEFAULT_PORTS.get(origin.scheme)


def _parse_origin(value: bytes) -> ParseResult | None:
    """``value`` as a URL, or ``None`` when it cannot be one (an unclosed IPv6
    bracket, a port that is not a number up to 65535)."""
    try:
        parsed = urlparse(value.decode("latin-1"))
        _ = parsed.port  # parsed lazily: reading it is what raises
    except ValueError:
        return None
    return parsed


def _why_refused(origins: list[bytes]) -> str:
    if not origins:
        return "no Origin header"
    if len(origins) > 1:
        return f"{len(origins)} Origin headers {[o.decode('latin-1') for o in origins]}"
    return f"Origin {origins[0].decode('latin-1')!r} is not allowed"


class AllowedHostsOriginValidator(OriginValidator):
    """``OriginValidator`` allowing the hosts of ``settings.ALLOWED_HOSTS``.

    The setting is read on each handshake, as Django reads it on each
    request, so the two never disagree (and ``override_settings`` works in
    tests). With ``DEBUG`` and an empty ``ALLOWED_HOSTS`` it allows what Django
    allows then: ``localhost``, ``127.0.0.1`` and ``[::1]``.

    Args:
        application: the ASGI application to protect.
    """

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    @property
    def allowed_origins(self) -> list[str]:
        """``ALLOWED_HOSTS``, or Django's development defaults under ``DEBUG``."""
        allowed_hosts: list[str] = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed_hosts:
            return DEBUG_ALLOWED_HOSTS
        return allowed_hosts


class WebsocketDenier(AsyncWebsocketConsumer):
    """Refuses every WebSocket handshake: the server answers HTTP 403."""

    async def connect(self) -> None:
        await self.close()
