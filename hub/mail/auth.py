"""SMTP AUTH against Django's users: ``django.contrib.auth.authenticate()``.

The protocol server asks the application (``smtp.auth``); hub's consumers and
the recipient router answer with these functions, so the ``AUTHENTICATION_BACKENDS``
that log users into the site also check mail clients' passwords.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate

from hub.db import database_sync_to_async


def authenticate_user(login: str, password: str) -> Any:
    """The active Django user with these credentials, or ``None`` (runs the ORM: sync)."""
    user = authenticate(None, username=login, password=password)
    if user is None or not getattr(user, "is_active", True):
        return None
    return user


async def aauthenticate_user(login: str, password: str) -> Any:
    """:func:`authenticate_user` from async code, in the ORM thread."""
    return await database_sync_to_async(authenticate_user)(login, password)


async def authenticate_identity(login: str, password: str) -> str | None:
    """The username to put in ``smtp.auth.accept``, or ``None`` to refuse."""
    user = await aauthenticate_user(login, password)
    return None if user is None else str(user.get_username())
