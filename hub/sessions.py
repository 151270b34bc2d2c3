"""Cookies and Django sessions in the scope, for HTTP and WebSocket connections.

``CookieMiddleware`` parses the ``Cookie`` request header into
``scope["cookies"]`` (the same dict as Django's ``request.COOKIES``), and its
``set_cookie`` / ``delete_cookie`` add ``Set-Cookie`` to an
``http.response.start`` message with the meaning Django's
``HttpResponse.set_cookie`` gives each argument.

``SessionMiddleware`` puts a ``SessionStore`` of ``settings.SESSION_ENGINE`` in
``scope["session"]``, keyed by the session cookie. Creating the store costs
nothing: it reads the session backend on first access, and that access is ORM
(or cache, or file) work, so consumers reach it through
:data:`hub.db.database_sync_to_async` or the store's async methods
(``aget``, ``aset``, ``asave`` on Django 5.1+).

When the session is saved:

- HTTP: when the application starts its response, as Django's own
  ``SessionMiddleware`` does: a modified session (or any session, under
  ``SESSION_SAVE_EVERY_REQUEST``) is saved and its cookie set, unless the status
  is 500 or more; an emptied session (after ``logout``) has its cookie deleted;
  a session that was read adds ``Vary: Cookie`` so caches keep users apart.
- WebSocket: never by the middleware. Once the handshake is answered there is
  no response left to carry a cookie, and a consumer may change its session
  many times over a connection's life, so it saves when it means to, as in
  Channels: ``await database_sync_to_async(self.scope["session"].save)()``.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from http.cookies import SimpleCookie
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.http import parse_cookie
from django.utils import timezone
from django.utils.http import http_date

from hub.db import database_sync_to_async
from hub.types import ASGIApp, Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]

#: The values ``SameSite`` may take (RFC 6265bis section 4.1.2.7), compared lowercased.
SAMESITE_VALUES = ("lax", "strict", "none")

#: The messages that may carry ``Set-Cookie``: those that start an HTTP response.
RESPONSE_START_TYPES = ("http.response.start", "websocket.http.response.start")

#: What ``delete_cookie`` sends as ``Expires``: the epoch, so every browser drops it.
EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def parse_cookies(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The cookies of a request's headers, as Django's ``request.COOKIES``.

    HTTP/2 and HTTP/3 clients may split cookies over several ``cookie``
    headers (RFC 9113 section 8.2.3); they are joined before parsing, so no
    cookie is lost whichever server produced the scope.
    """
    values = [value.decode("latin-1") for name, value in headers if name.lower() == b"cookie"]
    return parse_cookie("; ".join(values)) if values else {}


class CookieMiddleware:
    """Adds ``scope["cookies"]``, parsed from the ``Cookie`` headers.

    Args:
        inner: the ASGI application to run with the cookies in its scope.

    Raises:
        ValueError: from ``__call__``, when the scope has no ``headers``
            (only HTTP and WebSocket scopes carry cookies).
    """

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "headers" not in scope:
            raise ValueError(
                f"CookieMiddleware needs scope['headers'], and this {scope.get('type')!r} "
                "scope has none: use it only around HTTP and WebSocket applications"
            )
        await self.inner(dict(scope, cookies=parse_cookies(scope["headers"])), receive, send)

    @classmethod
    def set_cookie(
        cls,
        message: Message,
        key: str,
        value: str = "",
        max_age: int | float | datetime.timedelta | None = None,
        expires: str | datetime.datetime | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool | None = False,
        httponly: bool | None = False,
        samesite: str | None = "lax",
    ) -> None:
        """Add a ``Set-Cookie`` header to ``message``, which must start a response.

        Each argument means what it means in Django's ``HttpResponse.set_cookie``;
        only ``samesite`` defaults differently ("lax", as in Channels, because
        browsers treat a cookie without it as "lax" anyway, and saying so is
        clearer than relying on it).

        Args:
            message: an ``http.response.start`` (or
                ``websocket.http.response.start``) message; changed in place.
            key: the cookie name.
            value: the cookie value.
            max_age: seconds (or a ``timedelta``) until the cookie expires;
                ``Expires`` is set to match, for clients that ignore ``Max-Age``.
            expires: an HTTP date string, or a ``datetime`` (naive means UTC)
                from which ``max_age`` is computed.
            path: the path the cookie is sent to; ``None`` for none.
            domain: the domain the cookie is sent to; ``None`` for this host only.
            secure: send the cookie over HTTPS only.
            httponly: hide the cookie from JavaScript.
            samesite: "lax", "strict", "none", or ``None`` to leave it out.

        Raises:
            ValueError: ``message`` does not start a response, ``samesite`` is
                not one of the three values, or both ``expires`` (as a
                datetime) and ``max_age`` are given.
        """
        if message.get("type") not in RESPONSE_START_TYPES:
            raise ValueError(
                f"Set-Cookie can only be added to a message starting a response "
                f"{RESPONSE_START_TYPES}, not to {message.get('type')!r}"
            )
        cookies: SimpleCookie = SimpleCookie()
        cookies[key] = value
        morsel = cookies[key]
        if isinstance(expires, datetime.datetime):
            if max_age is not None:
                raise ValueError(
                    f"Cookie {key!r}: give expires={expires!r} or max_age={max_age!r}, not both"
                )
            when: datetime.datetime = expires
            if timezone.is_naive(when):
                when = timezone.make_aware(when, datetime.UTC)
            # One second more, because the fraction lost turning the delta into
            # whole seconds would otherwise make the Expires date one second early.
            delta = when - datetime.datetime.now(tz=datetime.UTC)
            delta += datetime.timedelta(seconds=1)
            max_age = max(0, delta.days * 86400 + delta.seconds)
            expires = None
        morsel["expires"] = expires or ""
        if max_age is not None:
            if isinstance(max_age, datetime.timedelta):
                max_age = max_age.total_seconds()
            morsel["max-age"] = int(max_age)
            if not expires:
                morsel["expires"] = http_date(time.time() + max_age)
        if path is not None:
            morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite:
            if samesite.lower() not in SAMESITE_VALUES:
                raise ValueError(
                    f"Cookie {key!r}: samesite must be one of {SAMESITE_VALUES}, got {samesite!r}"
                )
            morsel["samesite"] = samesite
        header = (b"set-cookie", morsel.OutputString().encode("utf-8"))
        message["headers"] = [*message.get("headers", ()), header]

    @classmethod
    def delete_cookie(
        cls,
        message: Message,
        key: str,
        path: str | None = "/",
        domain: str | None = None,
        samesite: str | None = None,
    ) -> None:
        """Add a ``Set-Cookie`` to ``message`` that makes the browser drop cookie ``key``.

        ``path`` and ``domain`` must be those the cookie was set with, or the
        browser keeps it. As in Django, the deletion is marked ``Secure`` when
        browsers would otherwise ignore it: for ``__Secure-`` and ``__Host-``
        names and for ``SameSite=None``.
        """
        secure = key.startswith(("__Secure-", "__Host-")) or (
            samesite is not None and samesite.lower() == "none"
        )
        cls.set_cookie(
            message,
            key,
            max_age=0,
            expires=EPOCH,
            path=path,
            domain=domain,
            secure=secure,
            samesite=samesite,
        )


def session_store_class() -> type[SessionBase]:
    """``SessionStore`` of ``settings.SESSION_ENGINE``, read now so tests may override it."""
    store: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore
    return store


class SessionMiddleware:
    """Adds ``scope["session"]``, the Django session named by the session cookie.

    Must run inside ``CookieMiddleware`` (``SessionMiddlewareStack`` does
    both). When an outer middleware already put a session in the scope, this
    one passes it through and leaves saving to that one, so stacking two
    session middlewares never saves twice.

    Args:
        inner: the ASGI application to run with the session in its scope.

    Raises:
        ValueError: from ``__call__``, when ``scope["cookies"]`` is missing.
    """

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = dict(scope)
        if "session" in scope:
            await self.inner(scope, receive, send)
            return
        if "cookies" not in scope:
            raise ValueError(
                "SessionMiddleware needs scope['cookies']: wrap it in CookieMiddleware "
                "or use SessionMiddlewareStack"
            )
        session_key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        scope["session"] = session_store_class()(session_key)
        if scope["type"] == "http":
            # Only HTTP responses carry the cookie back; other scopes keep the
            # server's send untouched rather than pay a check on every message.
            send = _SessionResponder(scope, send).send
        await self.inner(scope, receive, send)


class _SessionResponder:
    """Saves an HTTP request's session and sets its cookie as the response starts."""

    def __init__(self, scope: Scope, send: Send) -> None:
        self.session: SessionBase = scope["session"]
        self.cookies: dict[str, str] = scope["cookies"]
        self.real_send = send

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            # A copy, so the application's own message dict is not changed.
            message = dict(message)
            await database_sync_to_async(self.finish_session)(message)
        await self.real_send(message)

    def finish_session(self, message: Message) -> None:
        """Save the session and add its cookie headers to ``message``, as Django does.

        Runs in the ORM thread: reading the expiry may load the session, and
        saving writes it.

        Raises:
            SessionInterrupted: the session was deleted (a logout elsewhere)
                while this request was using it.
        """
        session = self.session
        name = settings.SESSION_COOKIE_NAME
        empty = session.is_empty()
        if name in self.cookies and empty:
            CookieMiddleware.delete_cookie(
                message,
                name,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
            _vary_on_cookie(message)
            return
        if session.accessed:
            _vary_on_cookie(message)
        if not (session.modified or settings.SESSION_SAVE_EVERY_REQUEST) or empty:
            return
        if message.get("status", 200) >= 500:
            return
        max_age: int | None = None
        expires: str | None = None
        if not session.get_expire_at_browser_close():
            max_age = session.get_expiry_age()
            expires = http_date(time.time() + max_age)
        try:
            session.save()
        except UpdateError:
            raise SessionInterrupted(
                "The session was deleted before the request completed; "
                "the user may have logged out in a concurrent request."
            ) from None
        CookieMiddleware.set_cookie(
            message,
            name,
            session.session_key or "",
            max_age=max_age,
            expires=expires,
            domain=settings.SESSION_COOKIE_DOMAIN,
            path=settings.SESSION_COOKIE_PATH,
            secure=settings.SESSION_COOKIE_SECURE or None,
            httponly=settings.SESSION_COOKIE_HTTPONLY or None,
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )


def _vary_on_cookie(message: Message) -> None:
    """Add ``Cookie`` to the response's ``Vary`` header unless it is there already."""
    headers: Headers = list(message.get("headers", ()))
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            fields = {field.strip().lower() for field in value.split(b",")}
            if not fields & {b"cookie", b"*"}:
                headers[index] = (name, value + b", Cookie")
            message["headers"] = headers
            return
    message["headers"] = [*headers, (b"vary", b"Cookie")]


def SessionMiddlewareStack(inner: ASGIApp) -> CookieMiddleware:
    """``CookieMiddleware(SessionMiddleware(inner))``: sessions, with the cookies they need.

    Named like a class, as in Channels, because it stands where a middleware would.
    """
    return CookieMiddleware(SessionMiddleware(inner))


__all__ = [
    "CookieMiddleware",
    "SessionMiddleware",
    "SessionMiddlewareStack",
    "parse_cookies",
]
