"""MQTT consumers: decide on CONNECT and SUBSCRIBE, handle PUBLISH, publish to the device.

A consumer serves one device connection (``docs/specs/mqtt.md``)::

    class Sensors(AsyncMqttConsumer):
        routes = TopicRouter([topic("sensors/<device>/temperature", "temperature")])

        async def temperature(self, message, device):
            await Reading.objects.acreate(device=device, value=float(message.text))

        async def authorize_publish(self, topic):
            return topic.startswith(f"sensors/{self.scope['username']}/")

**Connect.** A CONNECT with a username is authenticated with
:meth:`~AsyncMqttConsumer.authenticate` (Django's ``authenticate()`` by
default: override it for a device model); a wrong password is refused with
0x86 (3.1.1: 0x04). A CONNECT without one is refused with 0x87 (3.1.1:
0x05) unless ``allow_anonymous`` (default: the ``HUB_MQTT_ALLOW_ANONYMOUS``
setting, ``False``). Then :meth:`connect` may refuse with :class:`Refuse`.

**Enhanced authentication** (MQTT 5.0 4.12). A CONNECT naming an
Authentication Method is refused with 0x8C unless the method is in
``authentication_methods``; then :meth:`~AsyncMqttConsumer.authenticate_step`
runs the exchange instead of :meth:`authenticate` (the username is not
checked): it returns a :class:`Challenge` to send the client data and wait for
its answer, the user (or device) to accept (:class:`Accept` to add final data),
or None to refuse with 0x87. The same hook answers a client's
re-authentication (a failure then disconnects with 0x87).

**Publish.** A message the client may publish (:meth:`authorize_publish`)
goes to the route's method (with the captured levels as keyword arguments)
or, without ``routes``, to :meth:`receive`. QoS 1/2 messages are
acknowledged *after* the handler returned; if it raises, the consumer stops,
the client gets DISCONNECT 0x80 and the message stays unacknowledged, so the
client sends it again.

**Subscribe.** Each filter is checked with :meth:`authorize_subscribe`
(refused: 0x87) and granted by :meth:`subscribe` (the QoS asked by default).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from asgiref.sync import async_to_sync
from django.conf import settings

from hub.consumer import AsyncConsumer, SyncConsumer
from hub.exceptions import NoRouteFound, StopConsumer
from hub.mail.auth import aauthenticate_user, authenticate_user
from hub.types import Message
from protocols.mqtt.codes import REASON_CODES_BY_PACKET, PacketType

from .messages import MqttMessage
from .routing import TopicRouter

logger = logging.getLogger("hub.mqtt")

#: v5 reason codes the consumers use (the server translates them for 3.1.1).
SUCCESS = 0x00
NO_MATCHING_SUBSCRIBERS = 0x10
CONTINUE_AUTHENTICATION = 0x18
RE_AUTHENTICATE = 0x19
UNSPECIFIED_ERROR = 0x80
BAD_USER_NAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
BAD_AUTHENTICATION_METHOD = 0x8C
#: What a DISCONNECT may carry (a refused re-authentication ends with one).
DISCONNECT_CODES = frozenset(int(code) for code in REASON_CODES_BY_PACKET[PacketType.DISCONNECT])


class Refuse(Exception):
    """Raise from ``connect()``/``subscribe()``/a publish handler to refuse with a reason code.

    Args:
        reason_code: an MQTT 5.0 reason code (0x80 or above): 0x87 Not
            authorized, 0x88 Server unavailable, 0x97 Quota exceeded...
        reason_string: sent to v5 clients as the Reason String.
    """

    def __init__(self, reason_code: int = NOT_AUTHORIZED, reason_string: str | None = None):
        super().__init__(reason_code, reason_string)
        self.reason_code = reason_code
        self.reason_string = reason_string


@dataclass(frozen=True, slots=True)
class Challenge:
    """Returned by ``authenticate_step()``: send ``data`` to the client, wait for its answer."""

    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Accept:
    """Returned by ``authenticate_step()``: accept ``user``, sending the client final ``data``.

    Returning the user alone accepts too; ``Accept`` is for methods whose last
    word is the server's (SCRAM's server signature).
    """

    user: Any
    data: bytes | None = None


def _auth_outcome(outcome: Any) -> tuple[str, Any, bytes | None]:
    """``("challenge" | "accept" | "refuse", user, data)`` of an ``authenticate_step()`` result."""
    if isinstance(outcome, Challenge):
        return "challenge", None, outcome.data
    if isinstance(outcome, Accept):
        return "accept", outcome.user, outcome.data
    if outcome is None:
        return "refuse", None, None
    return "accept", outcome, None


def _auth_refusal_line(method: str, connecting: bool, step: int, answer: Message) -> str:
    what = "authentication" if connecting else "re-authentication"
    return f"{what} with {method!r} refused at step {step} ({answer['reason_code']:#04x})"


def _auth_answer(
    state: str, data: bytes | None, method: str, connecting: bool, code: int
) -> Message:
    """The ``mqtt.auth``, ``mqtt.connack`` or ``mqtt.disconnect`` for one step's outcome."""
    if state == "challenge":
        return {
            "type": "mqtt.auth",
            "reason_code": CONTINUE_AUTHENTICATION,
            "authentication_data": data,
        }
    if state == "refuse":
        if connecting:
            return _answer("mqtt.connack", code)
        # Refuse(0x86) fits a CONNACK, not a DISCONNECT: that ends with 0x87.
        return _answer("mqtt.disconnect", code if code in DISCONNECT_CODES else NOT_AUTHORIZED)
    if connecting:  # the caller completes the mqtt.connack
        return {
            "type": "mqtt.connack",
            "authentication_method": method,
            "authentication_data": data,
        }
    return {"type": "mqtt.auth", "reason_code": SUCCESS, "authentication_data": data}


def _answer(kind: str, code: int, reason_string: str | None = None) -> Message:
    answer: Message = {"type": kind, "reason_code": code}
    if reason_string:
        answer["reason_string"] = reason_string
    return answer


def _publish_message(
    topic: str, payload: bytes | str, qos: int, retain: bool, properties: dict[str, Any]
) -> Message:
    return {
        "type": "mqtt.publish",
        "topic": topic,
        "payload": payload.encode() if isinstance(payload, str) else payload,
        "qos": qos,
        "retain": retain,
        "properties": properties,
    }


class _MqttBase:
    """What both consumers share: groups, routes, anonymous policy, the Django user."""

    #: Groups joined on connect and left on disconnect.
    groups: list[str] | None = None
    #: Routes for received messages; None: every message goes to ``receive()``.
    routes: ClassVar[TopicRouter | None] = None
    #: Accept CONNECT without a username; None: the HUB_MQTT_ALLOW_ANONYMOUS setting.
    allow_anonymous: ClassVar[bool | None] = None
    #: Enhanced authentication methods ``authenticate_step()`` knows (v5 CONNECT
    #: Authentication Method); a CONNECT naming another is refused with 0x8C.
    authentication_methods: ClassVar[tuple[str, ...]] = ()

    scope: Any
    #: The authenticated Django user (or device object), None for anonymous clients.
    user: Any = None
    #: Enhanced authentication: the step of the running exchange (0: its first
    #: message, the CONNECT or a re-authentication), and whether CONNACK is due.
    auth_step: int = 0
    _auth_connecting = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.groups is None:
            self.groups = []

    @property
    def client_id(self) -> str:
        return str(self.scope["client_id"])

    def anonymous_allowed(self) -> bool:
        if self.scope.get("mode") == "bridge":
            return True  # hub's own connection to a broker: there is no device to authenticate
        if self.allow_anonymous is not None:
            return self.allow_anonymous
        return bool(getattr(settings, "HUB_MQTT_ALLOW_ANONYMOUS", False))

    def auth_method(self, event: Message) -> tuple[str | None, Message | None]:
        """The CONNECT's Authentication Method, and the refusal when this class lacks it."""
        method = event.get("authentication_method")
        if method is None or method in self.authentication_methods:
            return method, None
        logger.info("%s: unknown authentication method %r", self._describe(), method)  # type: ignore[attr-defined]
        return method, _answer("mqtt.connack", BAD_AUTHENTICATION_METHOD)

    def _log_auth_refusal(self, method: str, connecting: bool, answer: Message) -> None:
        line = _auth_refusal_line(method, connecting, self.auth_step, answer)
        logger.info("%s: %s", self._describe(), line)  # type: ignore[attr-defined]

    def auth_step_begins(self, event: Message) -> None:
        if event["type"] == "mqtt.connect" or event.get("reason_code") == RE_AUTHENTICATE:
            self.auth_step = 0
        else:
            self.auth_step += 1

    def route(self, message: MqttMessage) -> tuple[Any, dict[str, Any]]:
        """The bound handler and keyword arguments for a received message."""
        if self.routes is None:
            return self.receive, {}  # type: ignore[attr-defined]
        target, kwargs = self.routes.match(message.topic)
        handler = getattr(self, target) if isinstance(target, str) else target
        return handler, kwargs


class AsyncMqttConsumer(_MqttBase, AsyncConsumer):
    """An MQTT device consumer with async handlers (see the module docstring)."""

    # -- Hooks to override ------------------------------------------------------

    async def authenticate(self, username: str, password: bytes | None) -> Any:
        """The user (or device) with these credentials, or None: Django's by default."""
        try:
            text = (password or b"").decode()
        except UnicodeDecodeError:
            return None
        return await aauthenticate_user(username, text)

    async def authenticate_step(self, method: str, data: bytes | None) -> Any:
        """One step of enhanced authentication with ``method`` (one of ``authentication_methods``).

        ``data`` is the client's Authentication Data; ``self.auth_step`` is 0
        for the first (CONNECT, or a re-authentication) and counts the
        client's answers. Return :class:`Challenge` to send the client data
        and be called with its answer, the user (or device) to accept
        (:class:`Accept` with final data), or None to refuse (0x87); or raise
        :class:`Refuse`.
        """
        return None

    async def connect(self) -> bool | None:
        """Called after authentication; raise :class:`Refuse` to refuse.

        Returns whether a session is present (``session_present``); None: no.
        """
        return None

    async def connected(self) -> None:
        """Called once CONNACK is sent (messages may be published from here)."""

    async def authorize_publish(self, topic: str) -> bool:
        """Whether the client may publish to ``topic``; refused QoS 1/2 get 0x87."""
        return True

    async def authorize_subscribe(self, topic_filter: str, qos: int) -> bool:
        """Whether the client may subscribe to ``topic_filter``; refused: 0x87."""
        return True

    async def subscribe(self, topic_filter: str, qos: int, options: dict[str, Any]) -> int:
        """Grant a subscription: return the granted QoS (at most ``qos``), or raise Refuse."""
        return qos

    async def subscribed(self, granted: list[tuple[dict[str, Any], int]]) -> None:
        """Called after SUBACK with each (subscription, granted QoS or failure code)."""

    async def unsubscribe(self, topic_filter: str) -> None:
        """Called for each filter of an UNSUBSCRIBE."""

    async def receive(self, message: MqttMessage) -> None:
        """Handle a message the client published (without ``routes``)."""

    async def disconnect(self, event: Message) -> None:
        """Called when the connection is gone (``event`` is ``mqtt.disconnect``)."""

    # -- Conveniences -----------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        qos: int = 0,
        retain: bool = False,
        **properties: Any,
    ) -> None:
        """Publish to the device (v5 properties as keyword arguments)."""
        await self.send(_publish_message(topic, payload, qos, retain, properties))

    async def close(self, reason_code: int = SUCCESS, reason_string: str | None = None) -> None:
        """Disconnect the device (v5 DISCONNECT ``reason_code``)."""
        await self.send(_answer("mqtt.disconnect", reason_code, reason_string))

    # -- Event handlers ---------------------------------------------------------

    async def mqtt_connect(self, event: Message) -> None:
        method, refusal = self.auth_method(event)
        if refusal is not None:
            await self.send(refusal)
            raise StopConsumer
        if method is not None:
            self._auth_connecting = True
            await self.mqtt_auth(event)
            return
        username = self.scope.get("username")
        if username is None:
            if not self.anonymous_allowed():
                await self.send(_answer("mqtt.connack", NOT_AUTHORIZED))
                raise StopConsumer
        else:
            self.user = await self.authenticate(username, event.get("password"))
            if self.user is None:
                await self.send(_answer("mqtt.connack", BAD_USER_NAME_OR_PASSWORD))
                raise StopConsumer
        await self._accept({"type": "mqtt.connack"})

    async def mqtt_auth(self, event: Message) -> None:
        """A step of enhanced authentication (the CONNECT's, or the client's AUTH)."""
        self.auth_step_begins(event)
        method = event["authentication_method"]
        connecting = self._auth_connecting
        code = NOT_AUTHORIZED
        try:
            outcome = await self.authenticate_step(method, event.get("authentication_data"))
        except Refuse as exc:
            outcome, code = None, exc.reason_code
        state, user, data = _auth_outcome(outcome)
        answer = _auth_answer(state, data, method, connecting, code)
        if state == "refuse":
            self._log_auth_refusal(method, connecting, answer)
        if state == "accept":
            self.user = user
            if connecting:
                self._auth_connecting = False
                await self._accept(answer)
                return
        await self.send(answer)
        if state == "refuse" and connecting:
            raise StopConsumer

    async def _accept(self, connack: Message) -> None:
        """Authenticated: ask :meth:`connect`, join the groups, send ``connack``."""
        try:
            session_present = await self.connect()
        except Refuse as exc:
            await self.send(_answer("mqtt.connack", exc.reason_code, exc.reason_string))
            raise StopConsumer from None
        for group in self.groups or ():
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send({**connack, "session_present": bool(session_present)})
        await self.connected()

    async def mqtt_publish(self, event: Message) -> None:
        message = MqttMessage.from_event(event)
        code = SUCCESS
        # This runs for every message: the default hook, which allows all, is not
        # awaited, and a handler without captured levels is called without **{}.
        if type(self).authorize_publish is not AsyncMqttConsumer.authorize_publish and not (
            await self.authorize_publish(message.topic)
        ):
            code = NOT_AUTHORIZED
        else:
            try:
                handler, kwargs = self.route(message)
                if kwargs:
                    await handler(message, **kwargs)
                else:
                    await handler(message)
            except Refuse as exc:
                code = exc.reason_code
            except NoRouteFound as exc:
                logger.warning("%s: %s", self._describe(), exc)
                code = NO_MATCHING_SUBSCRIBERS
        if message.qos:
            await self.send(
                {"type": "mqtt.puback", "packet_id": event["packet_id"], "reason_code": code}
            )

    async def mqtt_subscribe(self, event: Message) -> None:
        granted: list[tuple[dict[str, Any], int]] = []
        for subscription in event["subscriptions"]:
            topic_filter, qos = subscription["topic_filter"], subscription["qos"]
            options = dict(
                subscription, subscription_identifier=event.get("subscription_identifier")
            )
            if not await self.authorize_subscribe(topic_filter, qos):
                granted.append((subscription, NOT_AUTHORIZED))
                continue
            try:
                granted.append((subscription, await self.subscribe(topic_filter, qos, options)))
            except Refuse as exc:
                granted.append((subscription, exc.reason_code))
        await self.send(
            {
                "type": "mqtt.suback",
                "packet_id": event["packet_id"],
                "reason_codes": [code for _, code in granted],
            }
        )
        await self.subscribed(granted)

    async def mqtt_unsubscribe(self, event: Message) -> None:
        for topic_filter in event["topic_filters"]:
            await self.unsubscribe(topic_filter)
        await self.send({"type": "mqtt.unsuback", "packet_id": event["packet_id"]})

    async def mqtt_disconnect(self, event: Message) -> None:
        await self.disconnect(event)
        raise StopConsumer


class MqttConsumer(_MqttBase, SyncConsumer):
    """An MQTT device consumer with plain (synchronous, ORM-safe) handlers."""

    def authenticate(self, username: str, password: bytes | None) -> Any:
        """The user (or device) with these credentials, or None: Django's by default."""
        try:
            text = (password or b"").decode()
        except UnicodeDecodeError:
            return None
        return authenticate_user(username, text)

    def authenticate_step(self, method: str, data: bytes | None) -> Any:
        """One step of enhanced authentication (see :meth:`AsyncMqttConsumer.authenticate_step`)."""
        return None

    def connect(self) -> bool | None:
        """Called after authentication; raise :class:`Refuse` to refuse."""
        return None

    def authorize_publish(self, topic: str) -> bool:
        return True

    def authorize_subscribe(self, topic_filter: str, qos: int) -> bool:
        return True

    def subscribe(self, topic_filter: str, qos: int, options: dict[str, Any]) -> int:
        return qos

    def unsubscribe(self, topic_filter: str) -> None:
        """Called for each filter of an UNSUBSCRIBE."""

    def receive(self, message: MqttMessage) -> None:
        """Handle a message the client published (without ``routes``)."""

    def disconnect(self, event: Message) -> None:
        """Called when the connection is gone."""

    def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        qos: int = 0,
        retain: bool = False,
        **properties: Any,
    ) -> None:
        """Publish to the device (v5 properties as keyword arguments)."""
        self.send(_publish_message(topic, payload, qos, retain, properties))

    def close(self, reason_code: int = SUCCESS, reason_string: str | None = None) -> None:
        self.send(_answer("mqtt.disconnect", reason_code, reason_string))

    def mqtt_connect(self, event: Message) -> None:
        method, refusal = self.auth_method(event)
        if refusal is not None:
            self.send(refusal)
            raise StopConsumer
        if method is not None:
            self._auth_connecting = True
            self.mqtt_auth(event)
            return
        username = self.scope.get("username")
        if username is None:
            if not self.anonymous_allowed():
                self.send(_answer("mqtt.connack", NOT_AUTHORIZED))
                raise StopConsumer
        else:
            self.user = self.authenticate(username, event.get("password"))
            if self.user is None:
                self.send(_answer("mqtt.connack", BAD_USER_NAME_OR_PASSWORD))
                raise StopConsumer
        self._accept({"type": "mqtt.connack"})

    def mqtt_auth(self, event: Message) -> None:
        """A step of enhanced authentication (the CONNECT's, or the client's AUTH)."""
        self.auth_step_begins(event)
        method = event["authentication_method"]
        connecting = self._auth_connecting
        code = NOT_AUTHORIZED
        try:
            outcome = self.authenticate_step(method, event.get("authentication_data"))
        except Refuse as exc:
            outcome, code = None, exc.reason_code
        state, user, data = _auth_outcome(outcome)
        answer = _auth_answer(state, data, method, connecting, code)
        if state == "refuse":
            self._log_auth_refusal(method, connecting, answer)
        if state == "accept":
            self.user = user
            if connecting:
                self._auth_connecting = False
                self._accept(answer)
                return
        self.send(answer)
        if state == "refuse" and connecting:
            raise StopConsumer

    def _accept(self, connack: Message) -> None:
        try:
            session_present = self.connect()
        except Refuse as exc:
            self.send(_answer("mqtt.connack", exc.reason_code, exc.reason_string))
            raise StopConsumer from None
        for group in self.groups or ():
            async_to_sync(self.channel_layer.group_add)(group, self.channel_name)
        self.send({**connack, "session_present": bool(session_present)})

    def mqtt_publish(self, event: Message) -> None:
        message = MqttMessage.from_event(event)
        code = SUCCESS
        if not self.authorize_publish(message.topic):
            code = NOT_AUTHORIZED
        else:
            try:
                handler, kwargs = self.route(message)
                handler(message, **kwargs)
            except Refuse as exc:
                code = exc.reason_code
            except NoRouteFound as exc:
                logger.warning("%s: %s", self._describe(), exc)
                code = NO_MATCHING_SUBSCRIBERS
        if message.qos:
            self.send({"type": "mqtt.puback", "packet_id": event["packet_id"], "reason_code": code})

    def mqtt_subscribe(self, event: Message) -> None:
        codes: list[int] = []
        for subscription in event["subscriptions"]:
            topic_filter, qos = subscription["topic_filter"], subscription["qos"]
            options = dict(
                subscription, subscription_identifier=event.get("subscription_identifier")
            )
            if not self.authorize_subscribe(topic_filter, qos):
                codes.append(NOT_AUTHORIZED)
                continue
            try:
                codes.append(self.subscribe(topic_filter, qos, options))
            except Refuse as exc:
                codes.append(exc.reason_code)
        self.send({"type": "mqtt.suback", "packet_id": event["packet_id"], "reason_codes": codes})

    def mqtt_unsubscribe(self, event: Message) -> None:
        for topic_filter in event["topic_filters"]:
            self.unsubscribe(topic_filter)
        self.send({"type": "mqtt.unsuback", "packet_id": event["packet_id"]})

    def mqtt_disconnect(self, event: Message) -> None:
        self.disconnect(event)
        raise StopConsumer
