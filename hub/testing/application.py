"""``ApplicationCommunicator``: drive any ASGI application from a test, no server.

It is asgiref's (``send_input``, ``receive_output``, ``receive_nothing``,
``wait``), with types: the application runs in an empty ``contextvars.Context``,
as under a server, so context set by the test does not leak into it.
"""

from __future__ import annotations

from typing import Any

from asgiref.testing import ApplicationCommunicator as _Communicator

from hub.types import ASGIApp, Message, Scope


class ApplicationCommunicator(_Communicator):
    """Runs ``application`` on ``scope``; the test plays the protocol server."""

    def __init__(self, application: ASGIApp, scope: Scope) -> None:
        super().__init__(application, scope)  # type: ignore[no-untyped-call]

    async def send_input(self, message: Message) -> None:
        """Give the application ``message`` as the next result of ``receive()``."""
        await super().send_input(message)  # type: ignore[no-untyped-call]

    async def receive_output(self, timeout: float = 1) -> Message:
        """The next message the application sent; raises ``TimeoutError`` after ``timeout``."""
        message: Message = await super().receive_output(timeout)  # type: ignore[no-untyped-call]
        return message

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        """Whether the application sent nothing for ``timeout`` seconds."""
        nothing: bool = await super().receive_nothing(timeout, interval)  # type: ignore[no-untyped-call]
        return nothing

    async def wait(self, timeout: float = 1) -> None:
        """Wait for the application to return, re-raising what it raised."""
        await super().wait(timeout)  # type: ignore[no-untyped-call]

    def stop(self, exceptions: bool = True) -> Any:
        """Cancel the application if it still runs."""
        return super().stop(exceptions)  # type: ignore[no-untyped-call]
