"""The application instance of a session: its receive() hands over every event exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from protocols.smtp.app import ApplicationInstance


class TestReceive:
    async def test_an_event_handed_to_a_receive_cancelled_in_that_turn_goes_to_the_next(
        self,
    ) -> None:
        first_receives: list[asyncio.Future[Any]] = []
        received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            first = asyncio.ensure_future(receive())
            first_receives.append(first)
            with contextlib.suppress(asyncio.CancelledError):
                await first
            received.set_result(await receive())

        instance = ApplicationInstance(
            app, {"type": "smtp"}, asyncio.ensure_future, 5.0, lambda: "test session"
        )
        while instance._receiver is None:
            await asyncio.sleep(0)
        instance.disconnect()  # handed to the waiting receive()...
        first_receives[0].cancel()  # ...which the app gives up in the same turn
        assert await asyncio.wait_for(received, 5) == {"type": "smtp.disconnect"}
        await instance.task
