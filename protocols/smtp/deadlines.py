"""The idle clock of an SMTP session: one timer and a moving deadline.

aiosmtpd cancels and schedules a timer per command (``_reset_timeout``): a
timer handle made and cancelled for every command. hub moves a deadline
instead and keeps one timer per session, which fires no later than the
deadline and, when the deadline has moved on meanwhile, sleeps again until it.
While the application decides, the clock stops (``app_timeout`` bounds that
wait, not ``command_timeout``).

On expiry the client gets 421 before the session is closed (aiosmtpd only
closes it).
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, cast

from aiosmtpd.smtp import SMTP

from . import replies

if TYPE_CHECKING:
    from .server import Listener


class IdleClock(SMTP):
    """aiosmtpd's timeout, as one deadline and one timer (set up by ``_start_clock``)."""

    # Set by the session (see SmtpSession): used to log the timeout.
    listener: Listener
    peer: str

    def _start_clock(self, step: float) -> None:
        """Set the clock up; ``step`` is how far ahead the timer is set at most."""
        # When the session times out (inf while the application decides), and when
        # its one timer fires (None: not armed).
        self._deadline = math.inf
        self._timer_at: float | None = None
        self._timer_step = step

    def _stop_clock(self) -> None:
        """Stop the clock while the application decides; ``_reset_timeout`` restarts it."""
        self._deadline = math.inf

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Restart the idle clock: ``duration`` (default ``command_timeout``) from now.

        The timer is never set further than ``min(command_timeout, data_timeout)``
        ahead, so the next command (whose deadline is sooner than DATA's) finds
        it early enough and does not move it.
        """
        deadline = self.loop.time() + (duration or self._timeout_duration)
        self._deadline = deadline
        timer_at = self._timer_at
        if timer_at is None or timer_at > deadline:
            self._arm_timer(deadline)

    def _arm_timer(self, deadline: float) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        when = min(deadline, self.loop.time() + self._timer_step)
        self._timer_at = when
        self._timeout_handle = self.loop.call_at(when, self._timeout_cb)

    def _timeout_cb(self) -> None:
        self._timer_at = None
        if self.transport is None:
            return
        if self.loop.time() < self._deadline:
            if self._deadline != math.inf:  # inf: the app is deciding, _ask re-arms after
                self._arm_timer(self._deadline)
            return
        if not self.transport.is_closing():
            self.listener.log_info(self.peer, "timed out")
            cast(asyncio.WriteTransport, self.transport).write(f"{replies.TIMEOUT}\r\n".encode())
        super()._timeout_cb()  # type: ignore[no-untyped-call]
