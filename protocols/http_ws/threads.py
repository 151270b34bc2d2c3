"""Reused threads for the synchronous code of HTTP requests (Django's sync views).

Django's ASGI handler wraps each request in asgiref's ``ThreadSensitiveContext``,
so every ``sync_to_async`` call of that request (the view, the
``request_started``/``request_finished`` receivers, ``response.close()``)
runs on one thread of its own. asgiref makes that thread for the request and
joins it afterwards (from yet another thread since asgiref 3.13): two thread
starts per request, about two thirds of the server's CPU time for a "hello"
view.

:class:`SyncThreadPool` keeps those threads. Before the application runs,
the request's task is given a thread-sensitive context whose executor is an
idle single-thread executor from the pool; Django's own context then finds
one already set and leaves it alone (asgiref: "only the outer-most
ThreadSensitiveContext sets the context"). The request still has its thread
to itself while it runs, as with asgiref alone; afterwards the thread serves
a later request instead of exiting, as in a threaded WSGI server, so
thread-local state (a persistent database connection with ``CONN_MAX_AGE``)
outlives the request just as it does there.

A thread goes back to the pool only when its last job has finished: if the
request was cancelled, or the application left a task running sync code
behind, the thread exits once that code returns, and the request ends then
(as when asgiref's own context joins its thread).
A task of the request that outlives it and calls thread-sensitive code later
finds no executor for the context and gets a new one, as it would with
Django's own context.

The pool sets asgiref's ``SyncToAsync.thread_sensitive_context`` and
``context_to_thread_executor`` (asgiref 3.3 and later; asgiref is the ASGI
reference library, not Django, so this package still never imports Django).
With ``size=0`` applications run as they are, and an application that does
not use asgiref never starts a pooled thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import SyncToAsync, ThreadSensitiveContext

# The two class attributes asgiref's thread-sensitive calls look up (asgiref >= 3.3).
_HAS_CONTEXT_EXECUTORS = hasattr(SyncToAsync, "thread_sensitive_context") and hasattr(
    SyncToAsync, "context_to_thread_executor"
)


class _SingleThread(ThreadPoolExecutor):
    """One worker thread that remembers its last job, to tell when it is idle."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="hub-sync")
        self.last: Future[Any] | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        self.last = future
        return future

    @property
    def idle(self) -> bool:
        # One worker runs jobs in order: once the last is done, all are.
        last = self.last
        return last is None or last.done()


#: What :meth:`SyncThreadPool.enter` hands out: the request's context and its thread.
Lease = tuple[ThreadSensitiveContext, _SingleThread]


class SyncThreadPool:
    """Idle single-thread executors for the thread-sensitive code of requests.

    Args:
        size: most idle threads kept; 0 turns the pool off.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.enabled = size > 0 and _HAS_CONTEXT_EXECUTORS
        self._idle: list[_SingleThread] = []

    def enter(self) -> Lease | None:
        """Give the current task a thread-sensitive context backed by a pooled thread.

        Call it first thing in the request's own task (its context is the
        request's alone); pass the result to :meth:`leave` when the
        application has returned. Returns ``None`` when the pool is off.
        """
        if not self.enabled:
            return None
        executor = self._idle.pop() if self._idle else _SingleThread()
        context = ThreadSensitiveContext()
        SyncToAsync.thread_sensitive_context.set(context)
        SyncToAsync.context_to_thread_executor[context] = executor
        return (context, executor)

    def leave(self, lease: Lease | None) -> asyncio.Future[Any] | None:
        """Take the request's thread back: keep it if idle, else let it exit.

        Returns a future to await when the thread is still running sync code
        the request left behind: the request ends once that code has, as it
        does when asgiref's own context joins its thread.
        """
        if lease is None:
            return None
        context, executor = lease
        owned = SyncToAsync.context_to_thread_executor.pop(context, None) is executor
        idle = executor.idle
        if owned and idle and len(self._idle) < self.size:
            self._idle.append(executor)
            return None
        executor.shutdown(wait=False)
        if idle or executor.last is None:
            return None
        return asyncio.wrap_future(executor.last)

    def close(self) -> None:
        """Let every idle thread exit (in-flight ones exit when their request leaves)."""
        self.size = 0
        idle, self._idle = self._idle, []
        for executor in idle:
            executor.shutdown(wait=False)
