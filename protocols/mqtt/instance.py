"""The application instance of one MQTT connection: its inbox, ``receive``, ``send`` and task.

A part of :class:`~protocols.mqtt.protocol.MqttProtocol` (its state is in
:class:`~.base.ProtocolBase`). A connection has exactly one application
instance, so the protocol object is also the instance's ``receive``/``send``
(as :mod:`protocols.tcp.connection` does), which keeps an idle connection
small.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .base import CLOSED, Phase, ProtocolBase
from .codes import ReasonCode
from .messages import Message, PeerDisconnected, reason_properties, unexpected

if TYPE_CHECKING:
    from .properties import Properties

# Bound once: on Python 3.11 ``Phase.OPEN`` runs the enum's descriptor (~1,000 instructions).
_CONNECTING, _OPEN, _CLOSED = Phase.CONNECTING, Phase.OPEN, Phase.CLOSED

#: What ``send()`` accepts in each phase; anything else is out of order.
EXPECTED: dict[Phase, tuple[str, ...]] = {
    Phase.CONNECTING: ("mqtt.connack", "mqtt.disconnect"),
    Phase.OPEN: ("mqtt.publish", "mqtt.puback", "mqtt.suback", "mqtt.unsuback", "mqtt.disconnect"),
}


class ApplicationInstance(ProtocolBase):
    """The application side of :class:`~protocols.mqtt.protocol.MqttProtocol`."""

    __slots__ = ()

    if TYPE_CHECKING:  # the CONNECT answers, in :class:`~.handshake.Handshake`

        def refuse(self, code: ReasonCode, properties: Properties | None = None) -> None: ...
        def accept(self, message: Message) -> None: ...

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def deliver(self, message: Message) -> None:
        """Queue an event for the application; pause reading past ``max_queue``."""
        queue = self.queue
        queue.append(message)
        self.wake()
        if len(queue) - self.head >= self.config.max_queue:
            self.flow.pause_reading()

    def queued(self) -> int:
        """Events queued for the application and not received yet."""
        return len(self.queue) - self.head

    async def receive(self) -> Message:
        queue = self.queue
        while self.head >= len(queue):
            if self.disconnect is not None:
                return self.disconnect
            if self.flow.read_paused and self.phase is _OPEN and self.wire is not None:
                self.wire.maybe_resume_reading()
            waiter = self.waiter = self.loop.create_future()
            await waiter
        head = self.head
        message = queue[head]
        if head + 1 < len(queue):
            self.head = head + 1
        else:  # caught up: drop the list's storage, an idle connection keeps none
            queue.clear()
            self.head = 0
        return message

    async def send(self, message: Message) -> None:
        message_type = message.get("type")
        phase = self.phase
        if phase is _OPEN and self.transport.is_closing():
            # Closed (by us, or a failed socket write) but connection_lost() has not
            # run yet: the bytes would be dropped, and asyncio logs a warning per
            # write past the fifth. Behave as after the close.
            phase = _CLOSED
        if phase is _OPEN:
            wire = self.wire
            assert wire is not None
            if message_type == "mqtt.publish":
                wire.app_publish(message)
                if self.flow.write_paused:
                    await self.flow.drain()
                return
            if message_type == "mqtt.puback":
                wire.app_puback(message)
                return
            if message_type == "mqtt.suback":
                wire.app_suback(message)
                return
            if message_type == "mqtt.unsuback":
                wire.app_unsuback(message)
                return
            if message_type == "mqtt.disconnect":
                code = ReasonCode(int(message.get("reason_code", 0)))
                self.publish_will = True
                self.close_with(code, CLOSED, reason_string=message.get("reason_string"))
                return
            if message_type == "mqtt.auth" and self.auth is not None:
                self.auth.app_auth(message)
                return
        elif phase is _CONNECTING:
            if message_type == "mqtt.connack":
                code = ReasonCode(int(message.get("reason_code", 0)))
                if code.is_failure:
                    self.log("info", f"CONNECT refused by the application ({code:#04x})")
                    self.refuse(code, reason_properties(message))
                elif self.auth is not None and "authentication_method" not in message:
                    self.log(
                        "info",
                        f"CONNECT refused: Authentication Method {self.auth.method!r} not "
                        "taken up by the application (its mqtt.connack names none) (0x8c)",
                    )
                    self.refuse(ReasonCode.BAD_AUTHENTICATION_METHOD)
                else:
                    self.accept(message)
                return
            if message_type == "mqtt.auth" and self.auth is not None:
                self.auth.app_auth(message)
                return
            if message_type == "mqtt.disconnect":
                code = ReasonCode(int(message.get("reason_code", ReasonCode.UNSPECIFIED_ERROR)))
                self.log("info", f"CONNECT refused by the application ({code:#04x})")
                self.refuse(code)
                return
        elif phase is _CLOSED:
            if message_type == "mqtt.publish":
                raise PeerDisconnected(f"connection closed ({self.reason or 'closing'})")
            return
        raise unexpected(EXPECTED.get(phase, ()), message_type)

    async def run_asgi(self) -> None:
        """Run the application instance; list its failure paths as the spec does."""
        try:
            result: object = await self.listener.app(  # type: ignore[func-returns-value]
                self.scope, self.receive, self.send
            )
        except PeerDisconnected:
            pass
        except asyncio.CancelledError:
            self.abort()
            raise
        except Exception as exc:
            self.log("error", f"application crashed: {type(exc).__name__}: {exc}", exc_info=True)
        else:
            if result is not None:
                self.log("error", f"application returned a value (expected None): {result!r:.100}")
            elif self.phase is Phase.CONNECTING:
                self.log("error", "application returned without answering mqtt.connect")
        if self.phase is Phase.CONNECTING:
            self.refuse(ReasonCode.UNSPECIFIED_ERROR)
        elif self.phase is Phase.OPEN:
            self.close_with(ReasonCode.UNSPECIFIED_ERROR, CLOSED)
