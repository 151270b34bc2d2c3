"""``MqttCommunicator``: test an MQTT consumer or router without a server.

It plays the protocol server's part of ``docs/specs/mqtt.md`` for one device
connection: it builds the ``mqtt`` scope from the CONNECT the device would
send, sends the events a real connection would, and returns what the
application decided::

    communicator = MqttCommunicator(Sensors.as_asgi(), "sensor-7", username="s7", password="pw")
    assert await communicator.connect() == (True, 0)
    assert await communicator.subscribe("commands/s7/#", qos=1) == 1
    assert await communicator.publish("sensors/s7/temperature", b"21.5", qos=1) == 0
    message = await communicator.receive_publish()   # what the app published to the device
    await communicator.disconnect()

Messages the application publishes to the device while the communicator
waits for an answer (a SUBACK, a PUBACK) are kept, in order, for
:meth:`MqttCommunicator.receive_publish`: a broker may deliver a message
before it answers.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from hub.mqtt.messages import MqttMessage
from hub.testing.application import ApplicationCommunicator
from hub.types import ASGIApp, Message
from protocols.mqtt.topics import is_valid_topic_filter, is_valid_topic_name

#: ``session_expiry_interval`` of a 3.1.1 Clean Session 0 session: it never expires.
NEVER_EXPIRES = 0xFFFF_FFFF
#: The reason code of a refusal sent as ``mqtt.disconnect`` before ``mqtt.connack``.
UNSPECIFIED_ERROR = 0x80
#: The server's refusal of an accepting ``mqtt.connack`` that names no Authentication Method.
BAD_AUTHENTICATION_METHOD = 0x8C


class Disconnected(AssertionError):
    """The application closed the connection (``mqtt.disconnect``) instead of answering.

    A consumer whose handler crashed does this (reason code ``0x80``): the
    message it was handling stays unacknowledged.
    """

    def __init__(self, message: Message, expected: str) -> None:
        self.reason_code = int(message.get("reason_code", 0))
        super().__init__(
            f"Expected ASGI message {expected!r}, but the application disconnected "
            f"({self.reason_code:#04x}): {message!r:.200}"
        )


class MqttCommunicator(ApplicationCommunicator):
    """Runs ``application`` on one MQTT client connection.

    Args:
        application: the ASGI application (a consumer's ``as_asgi()``, a router).
        client_id: the CONNECT Client Identifier; ``""`` makes the communicator
            assign one, as a server does (``client_id_assigned``).
        username: the CONNECT User Name (``scope["username"]``); consumers
            authenticate it with ``password``, against Django's users by default.
        password: the CONNECT Password (str is encoded as UTF-8), in ``mqtt.connect``.
        protocol_version: ``5`` (MQTT 5.0) or ``4`` (3.1.1).
        keep_alive: Keep Alive seconds.
        clean_start: Clean Start (v5) / Clean Session (3.1.1).
        session_expiry_interval: the v5 CONNECT property (seconds); for 3.1.1 it
            follows from ``clean_start``, as the spec says.
        will: the Will Message: ``topic``, ``payload`` and optionally ``qos``,
            ``retain``, ``properties`` (``{"will_delay_interval": 30}``).
        properties: other v5 CONNECT properties (``receive_maximum``, ``user_properties``...).
        authentication_method: the v5 Authentication Method (enhanced
            authentication): ``connect()`` then returns ``(False, 0x18)`` while
            the application challenges, and :meth:`auth` answers.
        authentication_data: the CONNECT's Authentication Data.
        client: ``scope["client"]``.
        listener: ``scope["listener"]``.
    """

    def __init__(
        self,
        application: ASGIApp,
        client_id: str = "test-client",
        *,
        username: str | None = None,
        password: bytes | str | None = None,
        protocol_version: int = 5,
        keep_alive: int = 60,
        clean_start: bool = True,
        session_expiry_interval: int = 0,
        will: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        authentication_method: str | None = None,
        authentication_data: bytes | None = None,
        client: tuple[str, int] = ("127.0.0.1", 51000),
        listener: str = "default",
    ) -> None:
        if protocol_version not in (4, 5):
            raise ValueError(f"protocol_version must be 4 or 5, got {protocol_version!r}")
        if protocol_version == 4:
            session_expiry_interval = 0 if clean_start else NEVER_EXPIRES
        assigned = not client_id
        self.scope: dict[str, Any] = {
            "type": "mqtt",
            "asgi": {"version": "3.0", "spec_version": "1.2"},
            "mode": "direct",
            "listener": listener,
            "protocol_version": protocol_version,
            "client_id": client_id or "hub-testclient",
            "client_id_assigned": assigned,
            "username": username,
            "keep_alive": keep_alive,
            "clean_start": clean_start,
            "session_expiry_interval": session_expiry_interval,
            "will": _will(will),
            "properties": dict(properties or {}),
            "client": client,
            "server": ("127.0.0.1", 1883),
            "state": {},
            "extensions": {},
        }
        if authentication_method is not None:
            self.scope["properties"]["authentication_method"] = authentication_method
        super().__init__(application, self.scope)
        self.password = password.encode() if isinstance(password, str) else password
        self.authentication_method = authentication_method
        self.authentication_data = authentication_data
        #: The Authentication Data of the application's last challenge (``mqtt.auth``)
        #: or of its accepting ``mqtt.connack`` / AUTH Success.
        self.challenge: bytes | None = None
        #: The application's ``mqtt.connack`` once :meth:`connect` returned.
        self.connack: Message | None = None
        self._published: deque[Message] = deque()
        self._next_packet_id = 0

    # Connection ---------------------------------------------------------------------

    async def connect(self, timeout: float = 1) -> tuple[bool, int]:
        """Send ``mqtt.connect``; return ``(accepted, reason_code)`` from the answer.

        ``reason_code`` is the v5 code (``0`` when accepted, ``0x86``, ``0x87``...);
        ``self.connack`` keeps the whole answer (``session_present``...).
        """
        event: Message = {"type": "mqtt.connect", "password": self.password}
        if self.authentication_method is not None:
            event["authentication_method"] = self.authentication_method
            event["authentication_data"] = self.authentication_data
        await self.send_input(event)
        return await self._connect_answer(timeout)

    async def auth(
        self, data: bytes | None = None, *, reauthenticate: bool = False, timeout: float = 1
    ) -> tuple[bool, int]:
        """The client's AUTH: an answer to the last challenge, or a re-authentication.

        Returns ``(accepted, reason_code)``: ``(False, 0x18)`` for another
        challenge (its data in ``self.challenge``); ``(True, 0)`` when accepted
        (``mqtt.connack`` while connecting, AUTH Success once connected);
        ``(False, code)`` for a refusal or, once connected, a disconnect.
        """
        if self.authentication_method is None:
            raise AssertionError("AUTH needs an authentication_method (MQTT-4.12.0-7)")
        await self.send_input(
            {
                "type": "mqtt.auth",
                "reason_code": 0x19 if reauthenticate else 0x18,
                "authentication_method": self.authentication_method,
                "authentication_data": data,
            }
        )
        if self.connack is None:
            return await self._connect_answer(timeout)
        while True:
            answer = await self.receive_output(timeout)
            if answer["type"] == "mqtt.publish":
                self._published.append(answer)
                continue
            break
        if answer["type"] == "mqtt.disconnect":
            return False, int(answer.get("reason_code", 0))
        if answer["type"] != "mqtt.auth":
            raise AssertionError(
                f"Expected ASGI message 'mqtt.auth' or 'mqtt.disconnect', but got {answer!r:.200}"
            )
        self.challenge = answer.get("authentication_data")
        code = int(answer.get("reason_code", 0x18))
        return code == 0, code

    async def _connect_answer(self, timeout: float) -> tuple[bool, int]:
        answer = await self.receive_output(timeout)
        if answer["type"] == "mqtt.auth":
            if self.authentication_method is None:
                raise AssertionError("mqtt.auth answering a CONNECT without authentication_method")
            self.challenge = answer.get("authentication_data")
            return False, int(answer.get("reason_code", 0x18))
        if answer["type"] == "mqtt.disconnect":  # a refusal before mqtt.connack (spec)
            return False, int(answer.get("reason_code", UNSPECIFIED_ERROR))
        if answer["type"] != "mqtt.connack":
            raise AssertionError(
                "Expected ASGI message 'mqtt.connack' or 'mqtt.disconnect', "
                f"but got {answer!r:.200}"
            )
        code = int(answer.get("reason_code", 0))
        if code >= UNSPECIFIED_ERROR:
            return False, code
        if self.authentication_method is not None and (
            answer.get("authentication_method") != self.authentication_method
        ):
            # What the server does: an app that does not name the method did not use it.
            return False, BAD_AUTHENTICATION_METHOD
        self.connack = answer
        self.challenge = answer.get("authentication_data")
        return True, code

    @property
    def session_present(self) -> bool:
        """Whether the application's CONNACK said it holds a session."""
        return bool(self.connack and self.connack.get("session_present", False))

    async def disconnect(
        self,
        reason_code: int = 0,
        reason: str = "client",
        *,
        publish_will: bool | None = None,
        session_expiry_interval: int | None = None,
        timeout: float = 1,
    ) -> None:
        """The connection ends; wait for the application to finish.

        By default the client sent DISCONNECT 0x00. ``reason="connection_lost"``
        (with ``reason_code=0x80``) is an abnormal close: the will is then due
        (``publish_will`` follows from ``reason`` and ``reason_code`` unless given).
        """
        if publish_will is None:
            normal = reason == "client" and reason_code == 0
            publish_will = self.scope["will"] is not None and not normal
        if session_expiry_interval is None:
            session_expiry_interval = self.scope["session_expiry_interval"]
        await self.send_input(
            {
                "type": "mqtt.disconnect",
                "reason_code": reason_code,
                "reason": reason,
                "publish_will": publish_will,
                "session_expiry_interval": session_expiry_interval,
            }
        )
        await self.wait(timeout)

    async def receive_disconnect(self, timeout: float = 1) -> int:
        """Wait for the application to close the connection; return its reason code."""
        answer = await self._next(timeout)
        if answer["type"] != "mqtt.disconnect":
            raise AssertionError(f"Expected 'mqtt.disconnect', got {answer!r:.200}")
        return int(answer.get("reason_code", 0))

    # Subscriptions --------------------------------------------------------------------

    async def subscribe(
        self,
        topic_filter: str,
        qos: int = 0,
        *,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: int = 0,
        subscription_identifier: int | None = None,
        timeout: float = 1,
    ) -> int:
        """Subscribe to one filter; return the granted QoS or the failure code (``0x87``...)."""
        subscription = {
            "topic_filter": topic_filter,
            "qos": qos,
            "no_local": no_local,
            "retain_as_published": retain_as_published,
            "retain_handling": retain_handling,
        }
        codes = await self.subscribe_many(
            [subscription], subscription_identifier=subscription_identifier, timeout=timeout
        )
        return codes[0]

    async def subscribe_many(
        self,
        subscriptions: list[tuple[str, int] | dict[str, Any]],
        *,
        subscription_identifier: int | None = None,
        user_properties: list[list[str]] | None = None,
        timeout: float = 1,
    ) -> list[int]:
        """One SUBSCRIBE with several filters (``(filter, qos)`` or full dicts); the codes."""
        entries: list[dict[str, Any]] = [
            dict(item) if isinstance(item, dict) else {"topic_filter": item[0], "qos": item[1]}
            for item in subscriptions
        ]
        for entry in entries:
            if not is_valid_topic_filter(entry["topic_filter"]):
                raise ValueError(f"not a topic filter: {entry['topic_filter']!r}")
            entry.setdefault("no_local", False)
            entry.setdefault("retain_as_published", False)
            entry.setdefault("retain_handling", 0)
        packet_id = self._packet_id()
        await self.send_input(
            {
                "type": "mqtt.subscribe",
                "packet_id": packet_id,
                "subscriptions": entries,
                "subscription_identifier": subscription_identifier,
                "user_properties": list(user_properties or []),
            }
        )
        answer = await self._answer("mqtt.suback", packet_id, timeout)
        codes = [int(code) for code in answer["reason_codes"]]
        if len(codes) != len(entries):
            raise AssertionError(
                f"mqtt.suback has {len(codes)} reason_codes for {len(entries)} subscriptions"
            )
        return codes

    async def unsubscribe(self, *topic_filters: str, timeout: float = 1) -> list[int]:
        """One UNSUBSCRIBE; the reason codes (``0x00`` Success for each by default)."""
        packet_id = self._packet_id()
        await self.send_input(
            {
                "type": "mqtt.unsubscribe",
                "packet_id": packet_id,
                "topic_filters": list(topic_filters),
                "user_properties": [],
            }
        )
        answer = await self._answer("mqtt.unsuback", packet_id, timeout)
        codes = answer.get("reason_codes")
        if codes is None:
            return [0] * len(topic_filters)
        return [int(code) for code in codes]

    # Messages ---------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        qos: int = 0,
        *,
        retain: bool = False,
        dup: bool = False,
        properties: dict[str, Any] | None = None,
        timeout: float = 1,
    ) -> int | None:
        """The device publishes a message.

        Raises:
            Disconnected: the application closed the connection (it crashed:
                ``0x80``) instead of acknowledging.

        Returns:
            For QoS 1/2, the reason code of the application's ``mqtt.puback``
            (``0``, ``0x10`` No matching subscribers, ``0x87``...), once it
            arrived; for QoS 0, ``None`` at once (nothing is acknowledged).
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
        packet_id = self._packet_id() if qos else None
        await self.send_input(
            {
                "type": "mqtt.publish",
                "topic": topic,
                "payload": payload.encode() if isinstance(payload, str) else payload,
                "qos": qos,
                "retain": retain,
                "dup": dup,
                "packet_id": packet_id,
                "properties": dict(properties or {}),
            }
        )
        if packet_id is None:
            return None
        answer = await self._answer("mqtt.puback", packet_id, timeout)
        return int(answer.get("reason_code", 0))

    async def receive_publish(self, timeout: float = 1) -> MqttMessage:
        """The next message the application published to the device."""
        message = self._published.popleft() if self._published else await self._next(timeout)
        if message["type"] != "mqtt.publish":
            raise AssertionError(f"Expected 'mqtt.publish', got {message!r:.200}")
        _check_publish(message)
        return MqttMessage.from_event(message)

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        """Whether the application sent nothing (no kept message either) for ``timeout`` s."""
        if self._published:
            return False
        return await super().receive_nothing(timeout, interval)

    # Internals ----------------------------------------------------------------------------

    def _packet_id(self) -> int:
        self._next_packet_id = self._next_packet_id % 65_535 + 1
        return self._next_packet_id

    async def _next(self, timeout: float) -> Message:
        if self.connack is None:
            raise AssertionError("connect() first: the application has not accepted the connection")
        return await self.receive_output(timeout)

    async def _answer(self, kind: str, packet_id: int, timeout: float) -> Message:
        """Wait for ``kind`` answering ``packet_id``, keeping publishes that come first.

        Raises:
            Disconnected: the application closed the connection instead.
        """
        while True:
            answer = await self._next(timeout)
            if answer["type"] == "mqtt.publish":
                self._published.append(answer)
                continue
            if answer["type"] == "mqtt.disconnect":
                raise Disconnected(answer, kind)
            if answer["type"] != kind:
                raise AssertionError(f"Expected ASGI message {kind!r}, but got {answer!r:.200}")
            answered = answer.get("packet_id", packet_id)  # missing: the oldest, this one
            if answered != packet_id:
                raise AssertionError(
                    f"{kind} names packet_id {answered!r}, expected {packet_id} (the only one "
                    "awaiting an answer)"
                )
            return answer


def _will(will: dict[str, Any] | None) -> dict[str, Any] | None:
    if will is None:
        return None
    payload = will.get("payload", b"")
    return {
        "topic": will["topic"],
        "payload": payload.encode() if isinstance(payload, str) else payload,
        "qos": int(will.get("qos", 0)),
        "retain": bool(will.get("retain", False)),
        "properties": dict(will.get("properties") or {}),
    }


def _check_publish(message: Message) -> None:
    """Fail as the server's ``send()`` would on a message it cannot put on the wire."""
    topic = message.get("topic")
    if not isinstance(topic, str) or not is_valid_topic_name(topic):
        raise AssertionError(f"mqtt.publish 'topic' must be a topic name, got {topic!r}")
    if not isinstance(message.get("payload", b""), bytes | bytearray | memoryview):
        raise AssertionError(
            f"mqtt.publish 'payload' must be a byte string, got {message.get('payload')!r:.100}"
        )
    if message.get("qos", 0) not in (0, 1, 2):
        raise AssertionError(f"mqtt.publish 'qos' must be 0, 1 or 2, got {message.get('qos')!r}")
