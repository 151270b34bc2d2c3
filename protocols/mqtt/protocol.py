"""One MQTT client connection: the asyncio protocol, from accept to close.

:class:`MqttProtocol` reads packets and keeps the timers; its state, writes
and close are in :mod:`.base`, and its two other parts live next door:
:mod:`.handshake` (CONNECT to CONNACK) and :mod:`.instance` (the application
instance's ``receive``/``send``: a connection has exactly one, so one object
is both, which keeps an idle connection small).

Phases (:class:`~.base.Phase`), in order (``send()`` checks the
application's messages against them):

- ``AWAITING_CONNECT``: no CONNECT yet; no application yet. Closed after
  ``connect_timeout``.
- ``CONNECTING``: CONNECT received, ``mqtt.connect`` queued; reading is paused
  (the codec keeps pipelined packets until CONNACK) until the application
  answers ``mqtt.connack`` or ``mqtt.disconnect``.
- ``OPEN``: packets flow both ways; the wire duties of
  :mod:`protocols.mqtt.flow` run.
- ``CLOSED``: the transport is gone; ``mqtt.disconnect`` is queued.

``data_received`` cannot raise: a :class:`ProtocolError` from the codec is
answered with its ``data_to_send`` and the connection closed.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from protocols.http_ws.flow import FlowControl

from .base import KEEP_ALIVE, LOST, SHUTDOWN, TAKEN_OVER, Phase
from .codes import ReasonCode
from .errors import ProtocolError
from .handshake import Handshake
from .instance import ApplicationInstance
from .packets import Auth, Connect, Packet


def _address(name: tuple[Any, ...]) -> tuple[str, int]:
    """``(host, port)`` of a socket address; the transport's own tuple when it is one."""
    if len(name) == 2 and type(name[0]) is str and type(name[1]) is int:
        return cast(tuple[str, int], name)  # kept by the transport anyway: no copy
    return (str(name[0]), int(name[1]))


class MqttProtocol(Handshake, ApplicationInstance):
    """One MQTT connection, from accept to close, and its application instance.

    The slots are all in :class:`~.base.ProtocolBase`; the parts add none.
    """

    __slots__ = ()

    # Accepting ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast, don't check.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        listener = self.listener
        peername = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        if isinstance(peername, tuple):
            self.client = _address(peername)
        if isinstance(sockname, tuple):
            self.server = _address(sockname)
        elif isinstance(sockname, str) and sockname:
            self.server = (sockname, None)
        if listener.closing:
            transport.abort()
            return
        if len(listener.connections) >= self.config.max_connections:
            self.log(
                "warning",
                f"connection refused: {self.config.max_connections} "
                "connections open (max_connections)",
            )
            transport.abort()
            return
        listener.add(self)
        self.counted = True
        transport.set_write_buffer_limits(high=self.config.write_buffer_high_water)
        self.flow = FlowControl(transport)
        self.deadline = self.loop.time() + self.config.connect_timeout
        listener.deadlines.add(self, self.deadline)

    def deadline_reached(self, now: float) -> None:
        """The listener's timer wheel asks: act on the deadline of this phase, if it passed."""
        if self.phase is Phase.OPEN:
            self.check_keep_alive(now)
        elif self.phase is not Phase.CLOSED:
            if now < self.deadline:
                self.listener.deadlines.add(self, self.deadline)
            elif self.phase is Phase.AWAITING_CONNECT:
                self.connect_expired()
            else:
                self.connect_answer_expired()

    def connect_expired(self) -> None:
        if self.phase is Phase.AWAITING_CONNECT:
            self.log("info", f"no CONNECT within {self.config.connect_timeout} s (connect_timeout)")
            self.transport.abort()

    # asyncio.Protocol ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        try:
            packets = self.conn.receive_data(data)
        except ProtocolError as error:
            self.protocol_failed(error)
            return
        if packets:
            if self.backlog is not None:  # read before the pause took effect: keep the order
                self.backlog.extend(packets)
            else:
                self.handle_packets(packets)

    def handle_packets(self, packets: list[Packet]) -> None:
        wire = self.wire
        for index, packet in enumerate(packets):
            if wire is not None:
                if not wire.handle(packet):
                    return
                if wire.hold:  # over max_publish_rate: the rest waits for the next second
                    self.backlog = packets[index + 1 :]
                    return
            elif isinstance(packet, Connect):
                self.handle_connect(packet)
            elif isinstance(packet, Auth) and self.auth is not None:
                self.auth.client_auth(packet)  # the codec let it through: the client's turn

    def handle_backlog(self) -> None:
        """Handle the packets held back by the publish rate (they may be held again)."""
        packets, self.backlog = self.backlog, None
        if packets and self.phase is Phase.OPEN:
            self.handle_packets(packets)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.phase is Phase.CLOSED:
            return
        was_open = self.phase is Phase.OPEN
        self.phase = Phase.CLOSED
        listener = self.listener
        if self.slot:
            listener.deadlines.remove(self)
        self.out = None
        if self.flow is not None:
            self.flow.resume_writing()
        if self.counted:
            listener.forget(self)
        if self.wire is not None:
            self.wire.close()
        if self.auth is not None:
            self.auth.close()
        if was_open:
            listener.release(self, self.session_expiry)
        if self.reason is None:
            self.reason = LOST
        if self.started:
            self.disconnect = {
                "type": "mqtt.disconnect",
                "reason_code": int(self.reason_code),
                "reason": self.reason,
                "publish_will": self.publish_will
                and self.connect is not None
                and self.connect.will is not None,
                "session_expiry_interval": self.session_expiry,
            }
            self.wake()

    # Timers, takeover, shutdown -----------------------------------------------------

    def check_keep_alive(self, now: float) -> None:
        if self.phase is not Phase.OPEN:
            return
        assert self.connect is not None
        limit = self.connect.keep_alive * 1.5
        if not limit:
            return  # Keep Alive 0: no deadline (this was the CONNECT's)
        if self.flow.read_paused:
            self.last_read = now  # we are not reading: the client is not idle
        deadline = self.last_read + limit
        if deadline > now:
            self.listener.deadlines.add(self, deadline)
            return
        self.log("info", f"nothing received for {limit:g} s (1.5 x keep alive), closing")
        self.close_with(ReasonCode.KEEP_ALIVE_TIMEOUT, KEEP_ALIVE)

    def take_over(self) -> None:
        """Another connection with this client id was accepted (v5 DISCONNECT 0x8E)."""
        self.log("info", "session taken over by a new connection")
        self.close_with(ReasonCode.SESSION_TAKEN_OVER, TAKEN_OVER)

    def shutdown(self) -> None:
        """Server shutdown: v5 DISCONNECT 0x8B, close; the app gets reason "shutdown"."""
        if self.phase is Phase.AWAITING_CONNECT:
            self.transport.abort()
            return
        if self.phase is Phase.CONNECTING:
            self.reason = SHUTDOWN
            self.refuse(ReasonCode.SERVER_UNAVAILABLE)
            self.reason = SHUTDOWN
            return
        self.close_with(ReasonCode.SERVER_SHUTTING_DOWN, SHUTDOWN)
