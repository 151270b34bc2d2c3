"""``TcpCommunicator``: test a TCP consumer without a server or a socket.

It builds the scope a hub TCP listener would (``docs/specs/tcp.md``) and
speaks the events: ``connect()`` answers whether the consumer accepted,
``send_to()`` delivers one frame, ``receive_from()`` returns the next frame
the consumer sent::

    communicator = TcpCommunicator(GpsConsumer.as_asgi(), listener="gps", framing="line")
    assert await communicator.connect()
    await communicator.send_to(b"$POS,42,52.37,4.89")
    assert await communicator.receive_from() == b"OK"
    await communicator.disconnect()
"""

from __future__ import annotations

from typing import Any

from hub.testing.application import ApplicationCommunicator
from hub.types import ASGIApp, Message
from protocols.tcp import TcpConfig


class TcpCommunicator(ApplicationCommunicator):
    """Runs ``application`` on a ``tcp`` scope.

    Args:
        application: the ASGI application (a ``ListenerRouter``, ``Consumer.as_asgi()``...).
        listener: ``scope["listener"]``.
        framing: the listener's framing, as the ``--tcp`` options say it
            (``"line"``, or ``{"framing": "length", "length_bytes": 4}``).
        client: ``scope["client"]``.
        tls: ``scope["extensions"]["tls"]``, for consumers that check certificates
            (``{"client_cert_name": "CN=device-42", "client_cert_chain": [...]}``).
        half_close: ``scope["half_close"]``.
    """

    def __init__(
        self,
        application: ASGIApp,
        listener: str = "default",
        framing: str | dict[str, Any] = "raw",
        client: tuple[str, int] | None = ("127.0.0.1", 51000),
        tls: dict[str, Any] | None = None,
        half_close: bool = False,
    ) -> None:
        options = {"framing": framing} if isinstance(framing, str) else dict(framing)
        extensions: dict[str, Any] = {}
        if tls is not None:
            extensions["tls"] = {
                "server_cert": None,
                "client_cert_chain": [],
                "client_cert_name": None,
                "client_cert_error": None,
                "tls_version": 0x0304,
                "cipher_suite": None,
                **tls,
            }
        self.scope: dict[str, Any] = {
            "type": "tcp",
            "asgi": {"version": "3.0", "spec_version": "1.0"},
            "listener": listener,
            "client": client,
            "server": ("127.0.0.1", 7000),
            "framing": TcpConfig(**options).framing_scope(),
            "half_close": half_close,
            "state": {},
            "extensions": extensions,
        }
        super().__init__(application, self.scope)

    async def connect(self, timeout: float = 1) -> bool:
        """Open the connection; ``True`` if the application accepted it."""
        await self.send_input({"type": "tcp.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "tcp.close":
            return False
        if response["type"] != "tcp.accept":
            raise AssertionError(f"Expected 'tcp.accept' or 'tcp.close', got {response!r:.200}")
        return True

    async def send_to(self, data: bytes) -> None:
        """Deliver one frame from the device."""
        if not isinstance(data, bytes):
            raise TypeError(f"send_to() takes bytes, got {type(data).__name__}")
        await self.send_input({"type": "tcp.receive", "bytes": data})

    async def send_eof_to(self) -> None:
        """The device half-closes (``tcp.eof``)."""
        await self.send_input({"type": "tcp.eof"})

    async def receive_from(self, timeout: float = 1) -> bytes:
        """The next frame the application sent; fails if it closed instead."""
        response = await self.receive_output(timeout)
        return _payload(response)

    async def receive_close(self, timeout: float = 1) -> None:
        """Wait for the application to close the connection."""
        response = await self.receive_output(timeout)
        if response["type"] != "tcp.close":
            raise AssertionError(f"Expected 'tcp.close', got {response!r:.200}")

    async def disconnect(self, reason: str = "peer_closed", timeout: float = 1) -> None:
        """The connection ends (the device left, by default); wait for the app to finish."""
        await self.send_input({"type": "tcp.disconnect", "reason": reason, "message": ""})
        await self.wait(timeout)


def _payload(response: Message) -> bytes:
    if response["type"] != "tcp.send":
        raise AssertionError(f"Expected 'tcp.send', got {response!r:.200}")
    data: bytes = response.get("bytes", b"")
    return data
