"""Django users on connections: ``scope["user"]``, ``login`` and ``logout``.

``AuthMiddleware`` reads the user from the session that ``SessionMiddleware``
put in the scope, once, before the application runs, so a consumer reads
``self.scope["user"]`` without touching the database. ``AuthMiddlewareStack``
is the usual stack: cookies, then the session, then the user.

``get_user``, ``login`` and ``logout`` are coroutines, as in Channels
(``await login(self.scope, user)``). Sessions and user lookups are ORM work,
so each runs its synchronous body through :data:`hub.db.database_sync_to_async`;
they are written as ``async def`` wrappers rather than decorated, so that
their signatures and return types stay visible to type checkers.

They follow ``django.contrib.auth``'s ``get_user`` / ``login`` / ``logout``,
with the scope in place of the request: the session key is cycled on login
(so a session id learnt before login is worthless after it), the session is
checked against the user's password hash (changing the password logs out
other sessions), and ``user_logged_in`` / ``user_logged_out`` are sent with
``request=None``.

Over WebSocket nothing saves the session for the consumer: after ``login`` or
``logout`` call ``await database_sync_to_async(self.scope["session"].save)()``
so the next connection sees the change (see :mod:`hub.sessions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
    user_logged_in,
    user_logged_out,
)
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import constant_time_compare
from django.utils.functional import LazyObject, empty

from hub.db import database_sync_to_async
from hub.middleware import BaseMiddleware
from hub.sessions import CookieMiddleware, SessionMiddleware
from hub.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

__all__ = [
    "AuthMiddleware",
    "AuthMiddlewareStack",
    "UserLazyObject",
    "get_user",
    "login",
    "logout",
]


def _session_of(scope: Scope, caller: str) -> SessionBase:
    try:
        session: SessionBase = scope["session"]
    except KeyError:
        raise ValueError(
            f"{caller} needs scope['session']: wrap the application in SessionMiddleware "
            "or use AuthMiddlewareStack"
        ) from None
    return session


def _user_id_in(session: SessionBase) -> Any:
    # The session stores the primary key as a string; turn it back into the
    # model's type so it compares equal to ``user.pk``.
    return get_user_model()._meta.pk.to_python(session[SESSION_KEY])


async def get_user(scope: Scope) -> AbstractBaseUser | AnonymousUser:
    """The user the scope's session is logged in as, or ``AnonymousUser``.

    The session must still match the user's password hash (or a hash made
    with one of ``SECRET_KEY_FALLBACKS``, and then the session is moved to the
    current hash); a session that matches neither is flushed, which is how a
    password change logs out every other session.

    Raises:
        ValueError: the scope has no session.
    """
    session = _session_of(scope, "get_user()")
    user: AbstractBaseUser | AnonymousUser = await database_sync_to_async(_get_user)(session)
    return user


def _get_user(session: SessionBase) -> AbstractBaseUser | AnonymousUser:
    from django.contrib.auth.models import AnonymousUser

    try:
        user_id = _user_id_in(session)
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return AnonymousUser()
    if not hasattr(user, "get_session_auth_hash"):
        return user
    session_hash = session.get(HASH_SESSION_KEY)
    current_hash = user.get_session_auth_hash()
    if session_hash and constant_time_compare(session_hash, current_hash):
        return user
    fallback_hashes = getattr(user, "get_session_auth_fallback_hash", tuple)
    if session_hash and any(
        constant_time_compare(session_hash, fallback_hash) for fallback_hash in fallback_hashes()
    ):
        session.cycle_key()
        session[HASH_SESSION_KEY] = current_hash
        return user
    session.flush()
    return AnonymousUser()


async def login(scope: Scope, user: AbstractBaseUser | None, backend: str | None = None) -> None:
    """Log ``user`` in on the scope's session and set ``scope["user"]``.

    Data put in the session before login is kept, unless the session belonged
    to another user, in which case it is flushed first. The session is not
    saved: over HTTP ``SessionMiddleware`` saves it with the response; over
    WebSocket the consumer saves it.

    Args:
        scope: the connection's scope, with a session.
        user: the user to log in; ``None`` means ``scope["user"]``, as in Channels.
        backend: the dotted path of the backend that authenticated the user;
            defaults to ``user.backend`` (set by ``authenticate()``), or the
            only entry of ``AUTHENTICATION_BACKENDS``.

    Raises:
        ValueError: no session in the scope; no user given and none
            authenticated in the scope; or several backends and none named.
    """
    session = _session_of(scope, "login()")
    if user is None:
        user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        raise ValueError(
            f"login() needs a user: pass one, or have an authenticated scope['user'] "
            f"(scope['user'] is {scope.get('user')!r})"
        )
    await database_sync_to_async(_login)(scope, session, user, backend)


def _login(scope: Scope, session: SessionBase, user: AbstractBaseUser, backend: str | None) -> None:
    session_auth_hash = (
        user.get_session_auth_hash() if hasattr(user, "get_session_auth_hash") else ""
    )
    if SESSION_KEY in session:
        if _user_id_in(session) != user.pk or (
            session_auth_hash
            and not constant_time_compare(session.get(HASH_SESSION_KEY, ""), session_auth_hash)
        ):
            # Another user's session: start an empty one rather than inherit it.
            session.flush()
    else:
        session.cycle_key()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = _backend_for(user, backend)
    session[HASH_SESSION_KEY] = session_auth_hash
    scope["user"] = user
    user_logged_in.send(sender=user.__class__, request=None, user=user)


def _backend_for(user: AbstractBaseUser, backend: str | None) -> str:
    backend = backend or getattr(user, "backend", None)
    if backend is not None:
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a dotted import path string, got {backend!r}")
        return backend
    backends: list[str] = list(settings.AUTHENTICATION_BACKENDS)
    if len(backends) == 1:
        return backends[0]
    if not backends:
        raise ImproperlyConfigured("AUTHENTICATION_BACKENDS is empty: login() has no backend")
    raise ValueError(
        f"login() cannot choose among {len(backends)} AUTHENTICATION_BACKENDS {backends}: "
        "pass backend=, or log in a user returned by authenticate()"
    )


async def logout(scope: Scope) -> None:
    """Flush the scope's session and make ``scope["user"]`` anonymous.

    ``user_logged_out`` is sent first, while the receivers can still see who
    logged out (not sent when nobody was logged in, as in Channels).

    Raises:
        ValueError: the scope has no session.
    """
    session = _session_of(scope, "logout()")
    await database_sync_to_async(_logout)(scope, session)


def _logout(scope: Scope, session: SessionBase) -> None:
    from django.contrib.auth.models import AnonymousUser

    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        user_logged_out.send(sender=user.__class__, request=None, user=user)
    session.flush()
    if "user" in scope:
        scope["user"] = AnonymousUser()


class UserLazyObject(LazyObject):  # type: ignore[type-arg]
    """``scope["user"]`` until ``AuthMiddleware`` has looked the user up.

    ``AuthMiddleware`` resolves it before running its inner application, so
    only code running in between (an overridden ``resolve_scope``, say) can
    see it unresolved; the error then says so, instead of failing on a
    missing attribute.
    """

    def _setup(self) -> None:
        raise ValueError(
            "scope['user'] was read before AuthMiddleware looked the user up: "
            "read it in the application inside AuthMiddleware, not in a middleware around it"
        )


class AuthMiddleware(BaseMiddleware):
    """Adds ``scope["user"]``: the session's user, or ``AnonymousUser``.

    Needs ``scope["session"]`` (``AuthMiddlewareStack`` provides it). A
    ``scope["user"]`` set by an outer middleware (token auth, say) is kept.
    Subclasses may override ``populate_scope`` and ``resolve_scope``, as in
    Channels, to find the user elsewhere.

    Raises:
        ValueError: from ``__call__``, when the scope has no session.
    """

    def populate_scope(self, scope: Scope) -> None:
        """Put a not-yet-resolved ``UserLazyObject`` in ``scope`` (a copy)."""
        if "session" not in scope:
            raise ValueError(
                "AuthMiddleware needs scope['session']: wrap it in SessionMiddleware "
                "or use AuthMiddlewareStack"
            )
        if "user" not in scope:
            scope["user"] = UserLazyObject()

    async def resolve_scope(self, scope: Scope) -> None:
        """Look the user up once, so the application reads it without the database."""
        user = scope["user"]
        if isinstance(user, UserLazyObject) and user._wrapped is empty:
            user._wrapped = await get_user(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = dict(scope)
        self.populate_scope(scope)
        await self.resolve_scope(scope)
        await self.inner(scope, receive, send)


def AuthMiddlewareStack(inner: ASGIApp) -> CookieMiddleware:
    """``CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))``: users from sessions.

    Named like a class, as in Channels, because it stands where a middleware would.
    """
    return CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))
