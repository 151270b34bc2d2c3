"""The wire duties of one open MQTT connection: QoS flows, windows, requests, rate.

What the server does on its own once a connection is accepted, so the
application only decides (``docs/specs/mqtt.md``):

- **Inbound PUBLISH** (4.3): QoS 1/2 messages wait in ``pending`` (receive
  order) until the application's ``mqtt.puback``; acknowledgements leave in
  receive order (4.6). At most ``receive_maximum`` wait (v5: 0x93 past it). A
  resent QoS 2 message whose PUBREC was sent is answered, not delivered.
- **Outbound PUBLISH**: Packet Identifiers, the in-flight window (the
  client's Receive Maximum capped by ``max_inflight``), the session's queue
  behind it (``max_queued_messages``), PUBREL/PUBCOMP, resend on resume,
  message expiry counted down in the queue, the client's Maximum Packet Size.
- **SUBSCRIBE / UNSUBSCRIBE**: requests wait for their answer (with
  ``answer_timeout``); granted filters are counted against ``max_subscriptions``.
- **Publish rate**: past ``max_publish_rate`` PUBLISH in one second, the
  packets already read wait (``hold``, the protocol's ``backlog``) and reading
  pauses until the next second.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .codes import QoS, ReasonCode
from .errors import OutgoingPacketTooLarge
from .messages import (
    PUBLISH_PROPERTIES,
    Message,
    properties_from_dict,
    properties_to_dict,
    reason_properties,
)
from .packets import (
    Auth,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    new_publish,
)
from .properties import EMPTY_PROPERTIES
from .session import QueuedMessage, Session
from .topics import is_valid_topic_name

if TYPE_CHECKING:
    from .protocol import MqttProtocol

# Bound once: on Python 3.11 ``QoS.AT_LEAST_ONCE`` runs the enum's descriptor (~1,000
# instructions), and these are compared per message.
_AT_MOST_ONCE, _AT_LEAST_ONCE, _EXACTLY_ONCE = QoS
_QOS = (_AT_MOST_ONCE, _AT_LEAST_ONCE, _EXACTLY_ONCE)
_SUCCESS = ReasonCode.SUCCESS
#: ``ReasonCode(n)`` without the enum's lookup on the per-message path.
_REASON_CODES: dict[int, ReasonCode] = {int(code): code for code in ReasonCode}


class _Request:
    """A SUBSCRIBE or UNSUBSCRIBE waiting for the application's answer."""

    __slots__ = ("filters", "quota", "timer")

    def __init__(self, filters: list[str], quota: list[int], timer: Any) -> None:
        self.filters = filters  # every filter of the packet, in order
        self.quota = quota  # positions refused 0x97 without asking the application
        self.timer = timer


class WireFlow:
    """The QoS and request bookkeeping of one open connection (see the module docstring)."""

    __slots__ = (
        "closed",
        "config",
        "conn",
        "hold",
        "pending",
        "protocol",
        "rate_count",
        "rate_second",
        "requests",
        "session",
        "subscriptions",
        "window",
    )

    def __init__(self, protocol: MqttProtocol, session: Session) -> None:
        self.protocol = protocol
        self.session = session
        self.conn = protocol.conn
        config = protocol.config
        self.config = config
        peer_maximum = 65_535
        connect = protocol.connect
        if connect is not None and connect.properties.receive_maximum:
            peer_maximum = connect.properties.receive_maximum
        self.window = min(config.max_inflight, peer_maximum)
        #: Inbound QoS 1/2 waiting for mqtt.puback: packet id -> [qos, reason or None],
        #: in receive order (plain dicts keep it, in 64 bytes where an OrderedDict takes 128).
        self.pending: dict[int, list[Any]] = {}
        self.requests: dict[int, _Request] = {}
        #: Granted filters, a tuple: at most max_subscriptions (100) of them, and a
        #: device's one or two fit in 56 bytes where a set takes 216.
        self.subscriptions: tuple[str, ...] = ()
        self.rate_second = 0
        self.rate_count = 0
        #: Over max_publish_rate: no packet is handled until the next second.
        self.hold = False
        self.closed = False

    def send(self, packet: Packet) -> None:
        """Write ``packet`` to the client."""
        self.protocol.write(self.conn.send(packet))

    # Packets from the client -----------------------------------------------------

    def handle(self, packet: Packet) -> bool:
        """Act on one packet; False when the connection is closing."""
        if isinstance(packet, Publish):
            return self.client_publish(packet)
        if isinstance(packet, Puback):
            self.session.outbound.pop(packet.packet_id, None)
            self.fill_window()
        elif isinstance(packet, Pubrec):
            pid = packet.packet_id
            if self.session.outbound.pop(pid, None) is not None:
                if packet.reason_code.is_failure:
                    self.fill_window()
                else:
                    self.session.released[pid] = None
                    self.send(Pubrel(pid))
            else:
                self.send(Pubrel(pid, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND))
        elif isinstance(packet, Pubcomp):
            self.session.released.pop(packet.packet_id, None)
            self.fill_window()
        elif isinstance(packet, Pubrel):
            pid = packet.packet_id
            if pid in self.session.inbound_qos2:
                del self.session.inbound_qos2[pid]
                self.send(Pubcomp(pid))
            else:
                self.send(Pubcomp(pid, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND))
        elif isinstance(packet, Pingreq):
            self.send(Pingresp())
        elif isinstance(packet, Subscribe):
            self.client_subscribe(packet)
        elif isinstance(packet, Unsubscribe):
            self.client_unsubscribe(packet)
        elif isinstance(packet, Disconnect):
            self.client_disconnect(packet)
            return False
        elif isinstance(packet, Auth) and self.protocol.auth is not None:
            self.protocol.auth.client_auth(packet)  # 0x19 or 0x18, its turn checked by the codec
        return True

    def client_publish(self, packet: Publish) -> bool:
        protocol = self.protocol
        rate = self.config.max_publish_rate
        if rate:
            self.throttle(rate)
        qos = packet.qos
        pid = packet.packet_id
        if qos:
            assert pid is not None
            if pid in self.pending:
                return True  # a resend of a message the application is handling
            if qos is _EXACTLY_ONCE and pid in self.session.inbound_qos2:
                self.send(Pubrec(pid))  # handled already: exactly once
                return True
            maximum = self.config.receive_maximum
            if len(self.pending) >= maximum and protocol.v5:
                protocol.log("info", f"over the Receive Maximum of {maximum}")
                protocol.close_with(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED, "protocol_error")
                return False
            self.pending[pid] = [qos, None]
            if len(self.pending) >= maximum:
                protocol.flow.pause_reading()  # 3.1.1 has no Receive Maximum: slow it down
        properties = packet.properties
        protocol.deliver(
            {
                "type": "mqtt.publish",
                "topic": packet.topic,
                "payload": packet.payload,
                "qos": int(qos),
                "retain": packet.retain,
                "dup": packet.dup,
                "packet_id": pid,
                "properties": {}
                if properties is EMPTY_PROPERTIES
                else properties_to_dict(properties),
            }
        )
        return True

    def throttle(self, rate: float) -> None:
        loop = self.protocol.loop
        now = loop.time()
        second = int(now)
        if second != self.rate_second:
            self.rate_second, self.rate_count = second, 0
        self.rate_count += 1
        if self.rate_count >= rate and not self.hold:
            self.hold = True
            self.protocol.flow.pause_reading()
            loop.call_at(second + 1, self.end_hold)

    def end_hold(self) -> None:
        """A new second: handle what was held back, then read again."""
        self.hold = False
        if self.closed:
            return
        self.protocol.handle_backlog()
        self.maybe_resume_reading()

    def client_subscribe(self, packet: Subscribe) -> None:
        filters = [subscription.topic_filter for subscription in packet.subscriptions]
        quota: list[int] = []
        count = len(self.subscriptions)
        for index, topic_filter in enumerate(filters):
            if topic_filter in self.subscriptions:
                continue
            if count >= self.config.max_subscriptions:
                quota.append(index)
            else:
                count += 1
        asked = [s for index, s in enumerate(packet.subscriptions) if index not in quota]
        if not asked:
            codes = (ReasonCode.QUOTA_EXCEEDED,) * len(filters)
            self.send(Suback(packet.packet_id, codes))
            return
        self.add_request(packet.packet_id, filters, quota)
        properties = packet.properties
        self.protocol.deliver(
            {
                "type": "mqtt.subscribe",
                "packet_id": packet.packet_id,
                "subscriptions": [
                    {
                        "topic_filter": s.topic_filter,
                        "qos": int(s.qos),
                        "no_local": s.no_local,
                        "retain_as_published": s.retain_as_published,
                        "retain_handling": int(s.retain_handling),
                    }
                    for s in asked
                ],
                "subscription_identifier": properties.subscription_identifiers[0]
                if properties.subscription_identifiers
                else None,
                "user_properties": [list(pair) for pair in properties.user_properties],
            }
        )

    def client_unsubscribe(self, packet: Unsubscribe) -> None:
        self.add_request(packet.packet_id, list(packet.topic_filters), [])
        self.protocol.deliver(
            {
                "type": "mqtt.unsubscribe",
                "packet_id": packet.packet_id,
                "topic_filters": list(packet.topic_filters),
                "user_properties": [list(pair) for pair in packet.properties.user_properties],
            }
        )

    def add_request(self, pid: int, filters: list[str], quota: list[int]) -> None:
        protocol = self.protocol
        if pid in self.requests:
            protocol.log("info", f"packet id {pid} reused while its request is open")
            protocol.close_with(ReasonCode.PACKET_IDENTIFIER_IN_USE, "protocol_error")
            return
        timer = protocol.loop.call_later(self.config.answer_timeout, self.request_expired, pid)
        self.requests[pid] = _Request(filters, quota, timer)

    def request_expired(self, pid: int) -> None:
        if pid in self.requests:
            self.protocol.log(
                "error",
                f"application did not answer a SUBSCRIBE/UNSUBSCRIBE within "
                f"{self.config.answer_timeout} s (answer_timeout)",
            )
            self.protocol.close_with(ReasonCode.UNSPECIFIED_ERROR, "closed")

    def client_disconnect(self, packet: Disconnect) -> None:
        protocol = self.protocol
        protocol.reason, protocol.reason_code = "client", packet.reason_code
        protocol.publish_will = packet.reason_code == ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
        expiry = packet.properties.session_expiry_interval
        if expiry is not None:
            protocol.session_expiry = min(expiry, self.config.max_session_expiry)
        protocol.close_transport()

    # Messages from the application -----------------------------------------------

    def app_puback(self, message: Message) -> None:
        pending = self.pending
        pid = message.get("packet_id")
        if pid is None:
            pid = next((key for key, value in pending.items() if value[1] is None), None)
        entry = pending.get(pid)  # type: ignore[arg-type]
        if entry is None or entry[1] is not None:
            raise ValueError(f"mqtt.puback for packet_id {pid!r}, which awaits no acknowledgement")
        code = message.get("reason_code", 0)
        reason = _REASON_CODES.get(code)
        entry[1] = reason if reason is not None else ReasonCode(int(code))
        conn, write, qos2 = self.conn, self.protocol.write, self.session.inbound_qos2
        while pending:
            pid, (qos, code) = next(iter(pending.items()))
            if code is None:
                break
            del pending[pid]
            if qos is _AT_LEAST_ONCE:
                if code is _SUCCESS:
                    write(conn.send_puback(pid))
                else:
                    write(conn.send(Puback(pid, code)))
            else:
                if not code.is_failure:
                    qos2[pid] = None
                write(conn.send(Pubrec(pid, code)))
        if not pending:
            self.pending = {}  # an emptied dict keeps its table; a new empty one has none
        self.maybe_resume_reading()

    def app_suback(self, message: Message) -> None:
        pid, request = self.take_request(message, "mqtt.suback")
        codes = [ReasonCode(int(code)) for code in message["reason_codes"]]
        asked = len(request.filters) - len(request.quota)
        if len(codes) != asked:
            raise ValueError(f"mqtt.suback has {len(codes)} reason_codes for {asked} subscriptions")
        answer = iter(codes)
        full = [
            ReasonCode.QUOTA_EXCEEDED if index in request.quota else next(answer)
            for index in range(len(request.filters))
        ]
        for topic_filter, code in zip(request.filters, full, strict=True):
            if not code.is_failure and topic_filter not in self.subscriptions:
                self.subscriptions += (topic_filter,)
        properties = reason_properties(message)
        self.send(Suback(pid, tuple(full), properties))

    def app_unsuback(self, message: Message) -> None:
        pid, request = self.take_request(message, "mqtt.unsuback")
        codes = message.get("reason_codes")
        if codes is None:
            full = tuple(ReasonCode.SUCCESS for _ in request.filters)
        else:
            full = tuple(ReasonCode(int(code)) for code in codes)
            if len(full) != len(request.filters):
                raise ValueError(
                    f"mqtt.unsuback has {len(full)} reason_codes for {len(request.filters)} filters"
                )
        self.subscriptions = tuple(f for f in self.subscriptions if f not in request.filters)
        self.send(Unsuback(pid, full if self.protocol.v5 else ()))

    def take_request(self, message: Message, kind: str) -> tuple[int, _Request]:
        pid = message.get("packet_id")
        if pid is None and self.requests:
            pid = next(iter(self.requests))
        request = self.requests.pop(pid, None)  # type: ignore[arg-type]
        if request is None:
            raise ValueError(f"{kind} for packet_id {pid!r}, which awaits no answer")
        if not self.requests:
            self.requests = {}  # an emptied dict keeps its table; a new empty one has none
        request.timer.cancel()
        return pid, request  # type: ignore[return-value]

    def app_publish(self, message: Message) -> None:
        topic = message.get("topic")
        if not isinstance(topic, str) or not is_valid_topic_name(topic):
            raise ValueError(f"mqtt.publish 'topic' must be a topic name, got {topic!r}")
        payload = message.get("payload", b"")
        if not isinstance(payload, bytes):
            if not isinstance(payload, bytearray | memoryview):
                raise ValueError(
                    f"mqtt.publish 'payload' must be a byte string, got {type(payload).__name__}"
                )
            payload = bytes(payload)
        qos = _QOS[message.get("qos", 0)]
        retain = bool(message.get("retain", False))
        props = message.get("properties")
        if not qos and not (props and self.protocol.v5):
            # The fan-out path: the same bytes for every subscriber of this message.
            try:
                data = self.conn.send_plain_publish(topic, payload, retain)
            except OutgoingPacketTooLarge as exc:
                self.protocol.log("info", f"message to {topic!r} dropped: {exc}")
                return
            self.protocol.write(data)
            return
        properties = (
            properties_from_dict(props, PUBLISH_PROPERTIES)
            if props and self.protocol.v5
            else EMPTY_PROPERTIES
        )
        if not qos:
            self.send_publish(Publish(topic, payload, qos, retain, None, False, properties))
            return
        session = self.session
        if session.in_flight < self.window and not session.queue:
            pid = session.allocate_packet_id()
            publish = new_publish(topic, payload, qos, retain, pid, False, properties)
            session.outbound[pid] = publish
            self.send_publish(publish)
            return
        publish = new_publish(topic, payload, qos, retain, None, False, properties)
        if session.queue is None:
            session.queue = deque((QueuedMessage(publish, self.protocol.loop.time()),))
        elif len(session.queue) < self.config.max_queued_messages:
            session.queue.append(QueuedMessage(publish, self.protocol.loop.time()))
        else:
            self.protocol.log(
                "warning",
                f"message to {topic!r} dropped: {self.config.max_queued_messages} queued "
                "(max_queued_messages)",
            )

    def send_publish(self, publish: Publish) -> None:
        try:
            self.send(publish)
        except OutgoingPacketTooLarge as exc:
            self.protocol.log("info", f"message to {publish.topic!r} dropped: {exc}")
            if publish.packet_id is not None:
                self.session.outbound.pop(publish.packet_id, None)

    def fill_window(self) -> None:
        """Send queued messages while the in-flight window has room."""
        session = self.session
        queue = session.queue
        if self.closed or not queue:
            return
        now = self.protocol.loop.time()
        while queue and session.in_flight < self.window:
            item = queue.popleft()
            publish = item.publish
            expiry = publish.properties.message_expiry_interval
            if expiry is not None:
                left = expiry - int(now - item.queued_at)
                if left <= 0:
                    continue  # expired while queued (v5 3.3.2.3.3)
                publish = replace(
                    publish, properties=replace(publish.properties, message_expiry_interval=left)
                )
            pid = session.allocate_packet_id()
            publish = new_publish(
                publish.topic,
                publish.payload,
                publish.qos,
                publish.retain,
                pid,
                publish.dup,
                publish.properties,
            )
            session.outbound[pid] = publish
            self.send_publish(publish)
        if not queue:
            session.queue = None

    def resume(self) -> None:
        """After CONNACK: resend what the session had in flight (4.4), then the queue."""
        conn, write = self.conn, self.protocol.write
        for pid, publish in list(self.session.outbound.items()):
            write(conn.send(replace(publish, dup=True, packet_id=pid)))
        for pid in sorted(self.session.released):
            write(conn.send(Pubrel(pid)))
        self.fill_window()

    def maybe_resume_reading(self) -> None:
        protocol = self.protocol
        if (
            protocol.flow.read_paused
            and protocol.phase.value == "open"
            and protocol.queued() < self.config.max_queue
            and len(self.pending) < self.config.receive_maximum
            and not self.hold
        ):
            protocol.flow.resume_reading()

    def close(self) -> None:
        """The connection is gone: stop the request timers (the session stays)."""
        self.closed = True
        for request in self.requests.values():
            request.timer.cancel()
        self.requests.clear()
        self.pending.clear()
