"""One ASGI application instance per SMTP session: questions in, answers out.

The session asks one question at a time (:meth:`ApplicationInstance.ask`) and
waits for one of the two answers :data:`~protocols.smtp.messages.ANSWERS`
allows. The application's failure paths, as the spec lists them:

- it sends a message of the wrong type, or with nothing asked: ``send`` raises
  ``RuntimeError("Expected ASGI message ...")``; a bad code raises ``ValueError``;
- it does not answer within ``app_timeout``: :class:`NoAnswer`;
- it raises or returns: :class:`NoAnswer` for the pending question and for
  every later one.

After a :class:`NoAnswer` the instance counts as gone: later sends are
dropped (a late answer must not answer the next question), and the session
closes at the next command that needs the application.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Coroutine
from typing import Any, cast

from .messages import ANSWERS, ASGIApp, Message, Scope

logger = logging.getLogger("protocols.smtp.error")


class NoAnswer(Exception):
    """The application did not answer a question; ``str()`` says why."""


class ApplicationInstance:
    """Runs ``app(scope, receive, send)`` for one session and carries its answers."""

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
        timeout: float,
        describe: Callable[[], str],
    ) -> None:
        self.scope = scope
        self.timeout = timeout
        self._describe = describe
        self._loop = asyncio.get_running_loop()
        # The events the app has not received yet, and its receive() waiting for one:
        # a deque and one future, lighter than an asyncio.Queue on the per-message path.
        self._inbox: collections.deque[Message] = collections.deque()
        self._receiver: asyncio.Future[Message] | None = None
        self._expected: tuple[str, str] | None = None
        self._answer: asyncio.Future[Any] | None = None
        self._asked: str = ""
        self._check: Callable[[Message], Any] | None = None
        # When the pending question expires, and when the watchdog timer fires (None: unarmed).
        self._deadline = 0.0
        self._watchdog_at: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        #: Why the instance can no longer answer; ``None`` while it can.
        self.gone: str | None = None
        self._disconnected = False
        self.task = spawn(self._run(app))

    async def _run(self, app: ASGIApp) -> None:
        try:
            # Typed to return None; an app that returns a value is still a mistake to report.
            result: Any = await cast(Any, app)(self.scope, self._receive, self._send)
        except asyncio.CancelledError:
            self._finish("the application was cancelled")
            raise
        except BaseException as exc:
            self._finish(f"the application raised {type(exc).__name__}: {exc}", exc)
        else:
            if result is not None:
                self._finish(f"the application returned a value ({result!r:.60})")
            else:
                self._finish("the application returned")

    def _finish(self, reason: str, exc: BaseException | None = None) -> None:
        if self.gone is None:
            self.gone = reason
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(NoAnswer(reason))
        elif exc is not None and not self._disconnected:
            # Nothing was pending: say so now, the session may not ask again.
            logger.error("%s: %s", self._describe(), reason, exc_info=exc)
        elif exc is not None:
            logger.error("%s: after disconnect, %s", self._describe(), reason, exc_info=exc)

    async def _receive(self) -> Message:
        if self._inbox:
            return self._inbox.popleft()
        receiver: asyncio.Future[Message] = self._loop.create_future()
        self._receiver = receiver
        try:
            return await receiver
        except asyncio.CancelledError:
            if receiver.done() and not receiver.cancelled():
                # Handed over as the app gave up waiting: the next receive() gets it.
                self._inbox.appendleft(receiver.result())
            raise
        finally:
            self._receiver = None

    def _deliver(self, event: Message) -> None:
        """Hand ``event`` to the app's pending ``receive()``, or keep it for the next one."""
        receiver = self._receiver
        if receiver is not None and not receiver.done():
            receiver.set_result(event)
        else:
            self._inbox.append(event)

    async def _send(self, message: Message) -> None:
        if self._disconnected or self.gone is not None:
            return
        kind = message.get("type")
        expected = self._expected
        if expected is None or kind not in expected:
            wanted = f"{expected[0]!r} or {expected[1]!r}" if expected else "nothing (no question)"
            raise RuntimeError(f"Expected ASGI message {wanted}, but got {kind!r}")
        assert self._answer is not None
        result = self._check(message) if self._check is not None else message
        self._expected = None
        self._answer.set_result(result)

    async def ask(self, event: Message, *, check: Callable[[Message], Any] | None = None) -> Any:
        """Send ``event`` to the application and return its answer.

        ``check(answer)`` runs inside the application's ``send`` call, so an
        answer it refuses raises out of ``send`` (ValueError), as the spec says.

        Raises:
            NoAnswer: the application is gone, raised, returned or timed out.
        """
        if self.gone is not None:
            raise NoAnswer(self.gone)
        answer: asyncio.Future[Any] = self._loop.create_future()
        kind = event["type"]
        self._answer = answer
        self._asked = kind
        self._expected = ANSWERS[kind]
        self._check = check
        self._deliver(event)
        self._deadline = self._loop.time() + self.timeout
        if self._watchdog_at is None:
            self._arm(self._deadline)
        try:
            return await answer
        except asyncio.CancelledError:
            # The session is ending (EOF, connection lost): the answer has nowhere to go.
            self.disconnect()
            raise
        finally:
            self._expected = None
            self._answer = None
            self._check = None

    # The app_timeout watchdog: one timer per instance, not one per question (a
    # message asks once or three times). It fires no later than the pending
    # question's deadline; a question asked since moves the deadline, and the
    # watchdog then sleeps again until it.

    def _arm(self, when: float) -> None:
        self._watchdog_at = when
        self._watchdog = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._watchdog_at = None
        answer = self._answer
        if answer is None or answer.done():
            return  # nothing pending: the next question arms the watchdog again
        if self._loop.time() < self._deadline:
            self._arm(self._deadline)
            return
        self.gone = f"no answer to {self._asked!r} within {self.timeout:g} s"
        answer.set_exception(NoAnswer(self.gone))

    def disconnect(self) -> None:
        """Tell the application the session is over; its sends are dropped from now on."""
        if not self._disconnected:
            self._disconnected = True
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog_at = None
            self._deliver({"type": "smtp.disconnect"})
