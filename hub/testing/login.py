"""Logging a test client in as a Django user, as ``django.test.Client.force_login`` does."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest

from hub.db import database_sync_to_async


def session_cookie_for(user: Any, backend: str | None = None) -> bytes:
    """Create a session logged in as ``user``; return its ``Cookie`` header value.

    Any auth middleware stack (hub's or Channels') then finds the user through
    the session, exactly as for a browser that logged in. Needs the database.
    """
    if backend is None:
        backend = settings.AUTHENTICATION_BACKENDS[0]
    engine = import_module(settings.SESSION_ENGINE)
    request = HttpRequest()
    request.session = engine.SessionStore()
    login(request, user, backend)
    request.session.save()
    return f"{settings.SESSION_COOKIE_NAME}={request.session.session_key}".encode()


async def login_headers(
    headers: list[tuple[bytes, bytes]], user: Any, backend: str | None = None
) -> list[tuple[bytes, bytes]]:
    """``headers`` with a session cookie for ``user`` added to (or merged into) ``Cookie``."""
    cookie = await database_sync_to_async(session_cookie_for)(user, backend)
    merged = []
    for name, value in headers:
        if name.lower() == b"cookie":
            cookie = value + b"; " + cookie
        else:
            merged.append((name, value))
    merged.append((b"cookie", cookie))
    return merged
