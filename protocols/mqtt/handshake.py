"""CONNECT to CONNACK: the scope and ``mqtt.connect`` made of a CONNECT, and the answer.

A part of :class:`~protocols.mqtt.protocol.MqttProtocol` (its state is in
:class:`~.base.ProtocolBase`). The ``CONNECTING`` phase starts in
:meth:`Handshake.handle_connect` and ends in :meth:`Handshake.accept`
(``OPEN``) or :meth:`Handshake.refuse`.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, cast

from protocols.http_ws.tls import tls_extension

from .auth import AuthExchange
from .base import CLOSED, Phase, ProtocolBase
from .codes import ProtocolVersion, ReasonCode
from .errors import ProtocolError
from .flow import WireFlow
from .messages import (
    ASGI_VERSION,
    NEVER_EXPIRES,
    Message,
    properties_to_dict,
    reason_properties,
)
from .packets import Connack, Connect
from .properties import Properties

if TYPE_CHECKING:
    from .packets import Packet
    from .protocol import MqttProtocol

#: Connect properties copied to ``scope["properties"]`` (the rest have scope keys).
_SCOPE_PROPERTY_SKIP = ("session_expiry_interval",)


class Handshake(ProtocolBase):
    """The CONNECT side of :class:`~protocols.mqtt.protocol.MqttProtocol`."""

    __slots__ = ()

    if TYPE_CHECKING:  # in :class:`~.instance.ApplicationInstance` and the protocol

        async def run_asgi(self) -> None: ...
        def queued(self) -> int: ...
        def handle_packets(self, packets: list[Packet]) -> None: ...

    def handle_connect(self, packet: Connect) -> None:
        self.flow.pause_reading()
        self.connect = packet
        self.v5 = packet.protocol_version is ProtocolVersion.V5
        assigned = not packet.client_id
        self.client_id = packet.client_id or f"hub-{secrets.token_hex(8)}"
        if self.v5:
            expiry = packet.properties.session_expiry_interval or 0
        else:
            expiry = 0 if packet.clean_start else NEVER_EXPIRES
        self.session_expiry = min(expiry, self.config.max_session_expiry)
        properties = properties_to_dict(packet.properties)
        for name in _SCOPE_PROPERTY_SKIP:
            properties.pop(name, None)
        will = packet.will
        extensions: dict[str, Any] = {}
        ssl_object = self.transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            extensions["tls"] = tls_extension(
                ssl_object, self.listener.server_cert, self.listener.cipher_ids
            )
        self.scope = {
            "type": "mqtt",
            "asgi": ASGI_VERSION,
            "mode": "direct",
            "listener": self.config.listener,
            "protocol_version": int(packet.protocol_version),
            "client_id": self.client_id,
            "client_id_assigned": assigned,
            "username": packet.username,
            "keep_alive": packet.keep_alive,
            "clean_start": packet.clean_start,
            "session_expiry_interval": expiry,
            "will": None
            if will is None
            else {
                "topic": will.topic,
                "payload": will.payload,
                "qos": int(will.qos),
                "retain": will.retain,
                "properties": properties_to_dict(will.properties),
            },
            "properties": properties,
            "client": self.client,
            "server": self.server,
            "extensions": extensions,
        }
        if self.listener.lifespan_state is not None:
            self.scope["state"] = self.listener.lifespan_state.copy()
        event: Message = {"type": "mqtt.connect", "password": packet.password}
        connection = cast("MqttProtocol", self)  # what the collaborators are given
        method = packet.properties.authentication_method
        if method is not None:
            self.auth = AuthExchange(connection, method)
            event["authentication_method"] = method
            event["authentication_data"] = packet.properties.authentication_data
        self.phase = Phase.CONNECTING
        self.started = True
        self.queue.append(event)
        self.deadline = self.loop.time() + self.config.connect_answer_timeout
        self.listener.deadlines.add(connection, self.deadline)
        self.listener.spawn(self.run_asgi())

    def connect_answer_expired(self) -> None:
        if self.phase is Phase.CONNECTING and self.auth is not None and self.auth.turn == "client":
            self.auth.client_expired()
        elif self.phase is Phase.CONNECTING:
            self.log(
                "error",
                f"application did not answer mqtt.connect within "
                f"{self.config.connect_answer_timeout} s (connect_answer_timeout)",
            )
            self.refuse(ReasonCode.SERVER_UNAVAILABLE)

    def refuse(self, code: ReasonCode, properties: Properties | None = None) -> None:
        """Answer CONNECT with a refusing CONNACK and close."""
        if not code.is_failure:
            code = ReasonCode.UNSPECIFIED_ERROR
        self.reason, self.reason_code, self.publish_will = CLOSED, code, False
        packet = Connack(reason_code=code, properties=properties or Properties())
        try:
            self.write(self.conn.send(packet))
        except Exception:
            self.write(self.conn.send(Connack(reason_code=code)))
        self.close_transport()

    def accept(self, message: Message) -> None:
        """The application accepted: take the client id over, CONNACK, resume the session.

        Raises:
            ValueError: the ``mqtt.connack`` names another Authentication Method
                than the CONNECT (see :mod:`.auth`).
        """
        auth = Properties()
        if self.auth is not None:
            auth = self.auth.connack_properties(message)
        elif message.get("authentication_method") is not None:
            raise ValueError(
                "mqtt.connack 'authentication_method' for a CONNECT without one (MQTT-4.12.0-6)"
            )
        listener = self.listener
        connection = cast("MqttProtocol", self)  # what the collaborators are given
        session_present = bool(message.get("session_present", False))
        session = listener.claim(connection, session_present)
        assert self.connect is not None
        connect = self.connect
        config = self.config
        properties = Properties()
        if self.v5:
            given = reason_properties(message)
            requested = connect.properties.session_expiry_interval or 0
            properties = Properties(
                reason_string=given.reason_string,
                user_properties=given.user_properties,
                session_expiry_interval=self.session_expiry
                if self.session_expiry != requested
                else None,
                assigned_client_identifier=self.client_id
                if self.scope["client_id_assigned"]
                else None,
                receive_maximum=config.receive_maximum,
                maximum_packet_size=config.max_packet_size,
                topic_alias_maximum=config.topic_alias_maximum or None,
                authentication_method=auth.authentication_method,
                authentication_data=auth.authentication_data,
            )
        self.phase = Phase.OPEN
        self.publish_will = True
        self.wire = WireFlow(connection, session)
        self.write(self.conn.send(Connack(session_present=session_present, properties=properties)))
        keep_alive = connect.keep_alive
        if keep_alive:
            listener.deadlines.add(connection, self.loop.time() + keep_alive * 1.5)
        self.wire.resume()
        try:
            pipelined = self.conn.receive_data(b"")
        except ProtocolError as error:
            self.protocol_failed(error)
            return
        if pipelined:
            self.handle_packets(pipelined)
        if self.phase is Phase.OPEN and self.queued() < config.max_queue:
            self.flow.resume_reading()
