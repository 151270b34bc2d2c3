"""Reaching the Django ORM from async code.

Django's database connections belong to the thread that opened them and are
closed by the request cycle when they are too old or broken. Async consumers
have no request cycle, so every piece of ORM work they do must run in a
thread through :data:`database_sync_to_async`, which closes stale connections
before and after the call, as ``django.core.handlers`` does around a request.

It is asgiref's ``SyncToAsync`` with ``thread_sensitive=True``: all ORM calls
from one context run in the same thread, so transactions and connection state
behave as they do in synchronous Django code.
"""

from collections.abc import Callable
from typing import Any

from asgiref.sync import SyncToAsync, sync_to_async
from django.db import close_old_connections


class DatabaseSyncToAsync(SyncToAsync[Any, Any]):
    """``SyncToAsync`` that closes stale database connections around each call."""

    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)  # type: ignore[no-untyped-call]
        finally:
            close_old_connections()


#: Decorator or wrapper: ``await database_sync_to_async(fetch_user)(pk)``.
database_sync_to_async: Callable[..., Any] = DatabaseSyncToAsync


async def aclose_old_connections() -> None:
    """Close stale connections of the ORM thread from async code."""
    await sync_to_async(close_old_connections)()
