"""Back-pressure between a socket and an application, in both directions.

Reading: the connection pauses the transport once it holds more than a
high-water mark of data the application has not received yet (request body
bytes, WebSocket messages), and resumes when the application catches up. So a
client that sends faster than the app reads fills the kernel's buffers and
TCP window, not ours.

Writing: asyncio calls ``pause_writing()`` on the protocol when the
transport's buffer passes ``write_buffer_high_water`` and ``resume_writing()``
when it drains. The application's ``send()`` awaits :meth:`FlowControl.drain`
in between, so a peer that stops reading blocks the sender instead of growing
the buffer without bound.
"""

from __future__ import annotations

import asyncio


class FlowControl:
    """Pause/resume state of one transport, shared by the connection and its app."""

    __slots__ = ("_drain_waiter", "_transport", "read_paused", "write_paused")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            # The transport may be closing already; resuming it then is a no-op.
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        """Wake every sender waiting in :meth:`drain`; also called on connection loss."""
        self.write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its high-water mark or it is lost.

        Callers check whether the connection is still open afterwards.
        """
        if not self.write_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain_waiter)
