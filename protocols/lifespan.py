"""The ASGI lifespan protocol, run once per process for all of its listeners.

asgiref's ``specs/lifespan.rst``: one application instance with scope
``{"type": "lifespan", "asgi": {...}, "state": {...}}`` receives
``lifespan.startup`` before any connection is served and
``lifespan.shutdown`` after the last one, answering each with
``*.complete`` or ``*.failed``. The ``state`` dict it fills during startup is
copied into the scope of every request and WebSocket, on every listener:
pass :attr:`Lifespan.state` to each server as ``lifespan_state``.

An application that raises before answering ``lifespan.startup`` does not
support lifespan (a plain Django ASGIHandler raises on unknown scope types):
by default that is logged and serving goes on; ``required=True`` makes it an
error instead. ``lifespan.startup.failed`` is always an error.

    lifespan = Lifespan(app)
    await lifespan.startup()             # raises LifespanFailure
    server = HttpWsServer(app, config, lifespan_state=lifespan.state)
    ...
    await lifespan.shutdown()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

logger = logging.getLogger("protocols.lifespan")

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]


class LifespanFailure(RuntimeError):
    """The application refused to start (or stop): ``lifespan.*.failed`` or an exception."""


class Lifespan:
    """Drive one lifespan application instance through startup and shutdown."""

    def __init__(self, app: ASGIApp, *, required: bool = False) -> None:
        self.app = app
        self.required = required
        self.state: dict[str, Any] = {}
        self.supported = True
        self._receive_queue: asyncio.Queue[Message] = asyncio.Queue()
        self._answers: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # The event whose answer send() accepts next; None once it has been answered.
        self._expected: str | None = None
        self._answered = ""

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises:
            LifespanFailure: on ``lifespan.startup.failed``, or when the app raises
                and ``required`` is set.
        """
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._exchange("lifespan.startup")

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown``, wait for the answer and for the app to return.

        Raises:
            LifespanFailure: on ``lifespan.shutdown.failed``.
        """
        if self._task is None or not self.supported:
            return
        try:
            await self._exchange("lifespan.shutdown")
        finally:
            if not self._task.done():
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _exchange(self, event: str) -> None:
        task = self._task
        assert task is not None
        self._expected = event
        await self._receive_queue.put({"type": event})
        answer_task = asyncio.ensure_future(self._answers.get())
        await asyncio.wait({answer_task, task}, return_when=asyncio.FIRST_COMPLETED)
        if not answer_task.done():
            answer_task.cancel()
            await asyncio.gather(answer_task, return_exceptions=True)
            exc = task.exception() if not task.cancelled() else None
            if event == "lifespan.startup" and not self.required:
                self.supported = False
                logger.info("ASGI 'lifespan' protocol appears unsupported (%r).", exc)
                return
            raise LifespanFailure(f"application stopped during {event}: {exc!r}") from exc
        answer = answer_task.result()
        if answer["type"] == f"{event}.failed":
            if event == "lifespan.startup":
                # The server will not start, so no shutdown() comes to end the task.
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            raise LifespanFailure(f"{event} failed: {answer.get('message', '')}")

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        await self.app(scope, self._receive_queue.get, self._send)

    async def _send(self, message: Message) -> None:
        event = self._expected
        message_type = message.get("type")
        if event is None:
            raise RuntimeError(
                f"Unexpected ASGI message {message_type!r}: {self._answered!r} was already answered"
            )
        expected = (f"{event}.complete", f"{event}.failed")
        if message_type not in expected:
            names = " or ".join(f"'{name}'" for name in expected)
            raise RuntimeError(f"Expected ASGI message {names}, but got {message_type!r}")
        self._expected, self._answered = None, event
        await self._answers.put(message)
