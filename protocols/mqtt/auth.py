"""Enhanced authentication (MQTT 5.0 section 4.12): the AUTH exchange between client and app.

A v5 CONNECT may name an Authentication Method (SCRAM, Kerberos, a token
scheme). The server does not know any method: the application does, through
``mqtt.auth`` (``docs/specs/mqtt.md``). The server only relays and keeps the
turns honest:

- **While connecting**, the application answers ``mqtt.connect`` with
  ``mqtt.auth`` (a challenge: AUTH 0x18 Continue authentication to the
  client), then gets the client's AUTH 0x18 as an ``mqtt.auth`` event, and so
  on until it sends ``mqtt.connack``. Accepting requires the CONNECT's method
  in the ``mqtt.connack`` (the CONNACK carries it, v5 3.2.2.3.17): an
  application that does not name it did not authenticate with it, and the
  client is refused with 0x8C Bad authentication method (MQTT-4.12.0-1).
- **Once connected**, the client may re-authenticate (AUTH 0x19): the
  application gets ``mqtt.auth`` and answers ``mqtt.auth`` with 0x18 (another
  challenge) or 0x00 (AUTH Success), or ``mqtt.disconnect`` (failed:
  MQTT-4.12.1-2). Other packets keep flowing meanwhile (v5 4.12.1).

The codec checks the packets' order and methods (``MqttConnection.auth_turn``);
this module turns packets into events and back, and keeps the deadlines: the
application has ``connect_answer_timeout`` (while connecting) or
``answer_timeout`` (re-authenticating) for each answer, and a client has
``connect_timeout`` for each AUTH it owes, before CONNACK and after.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .codes import ReasonCode
from .messages import Message, properties_from_dict
from .packets import Auth
from .properties import Properties

if TYPE_CHECKING:
    from .protocol import MqttProtocol

#: What an application's ``mqtt.auth`` may carry besides the data.
_AUTH_PROPERTIES = ("reason_string", "user_properties")


class AuthExchange:
    """The enhanced authentication of one connection whose CONNECT named a method.

    ``turn`` says who acts next: ``"app"`` (an ``mqtt.auth`` event awaits its
    answer), ``"client"`` (an AUTH 0x18 was sent), or ``None``.
    """

    __slots__ = ("method", "protocol", "timer", "turn")

    def __init__(self, protocol: MqttProtocol, method: str) -> None:
        self.protocol = protocol
        self.method = method
        self.turn: str | None = "app"  # the CONNECT is the first step
        self.timer: asyncio.TimerHandle | None = None

    # The client's AUTH --------------------------------------------------------------

    def client_auth(self, packet: Auth) -> None:
        """The client's AUTH 0x18 (its answer) or 0x19 (re-authenticate): ask the app."""
        protocol = self.protocol
        self.turn = "app"
        if self.timer is not None:  # the client's answer came in time
            self.timer.cancel()
            self.timer = None
        event: Message = {
            "type": "mqtt.auth",
            "reason_code": int(packet.reason_code),
            "authentication_method": self.method,
            "authentication_data": packet.properties.authentication_data,
        }
        if protocol.phase.value == "connecting":
            protocol.flow.pause_reading()  # nothing more until the application's answer
            protocol.deadline = protocol.loop.time() + protocol.config.connect_answer_timeout
            protocol.listener.deadlines.add(protocol, protocol.deadline)
        else:
            self.timer = protocol.loop.call_later(
                protocol.config.answer_timeout, self.answer_expired
            )
        protocol.deliver(event)

    def answer_expired(self) -> None:
        """Re-authenticating: the application did not answer within ``answer_timeout``."""
        self.timer = None
        if self.turn == "app":
            self.protocol.log(
                "error",
                f"application did not answer a re-authentication within "
                f"{self.protocol.config.answer_timeout} s (answer_timeout)",
            )
            self.protocol.close_with(ReasonCode.UNSPECIFIED_ERROR, "closed")

    # The application's mqtt.auth ----------------------------------------------------

    def app_auth(self, message: Message) -> None:
        """Send the application's AUTH: 0x18 (a challenge) or, once connected, 0x00.

        Raises:
            RuntimeError: it is not the application's turn.
            ValueError: a reason code other than 0x18, or 0x00 before CONNACK.
        """
        protocol = self.protocol
        if self.turn != "app":
            raise RuntimeError(
                "mqtt.auth sent while no authentication step awaits the application's answer"
            )
        code = int(message.get("reason_code", ReasonCode.CONTINUE_AUTHENTICATION))
        connecting = protocol.phase.value == "connecting"
        allowed = (0x18,) if connecting else (0x18, 0x00)
        if code not in allowed:
            raise ValueError(
                f"mqtt.auth 'reason_code' must be one of {[hex(c) for c in allowed]}, got {code!r}"
                + (" (accept with mqtt.connack)" if connecting else "")
            )
        data = message.get("authentication_data")
        if data is not None and not isinstance(data, bytes):
            raise ValueError(
                f"mqtt.auth 'authentication_data' must be a byte string, got {type(data).__name__}"
            )
        extra = properties_from_dict(
            {name: message[name] for name in _AUTH_PROPERTIES if name in message},
            _AUTH_PROPERTIES,
        )
        properties = Properties(
            authentication_method=self.method,
            authentication_data=data,
            reason_string=extra.reason_string,
            user_properties=extra.user_properties,
        )
        protocol.write(protocol.conn.send(Auth(ReasonCode(code), properties)))
        # Only once written: if that raised, the answer deadline still stands.
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if code == ReasonCode.SUCCESS:
            self.turn = None
            return
        self.turn = "client"
        if connecting:
            protocol.deadline = protocol.loop.time() + protocol.config.connect_timeout
            protocol.listener.deadlines.add(protocol, protocol.deadline)
            protocol.flow.resume_reading()
        else:
            self.timer = protocol.loop.call_later(
                protocol.config.connect_timeout, self.client_reauth_expired
            )

    def client_expired(self) -> None:
        """Connecting: the client did not answer our AUTH within ``connect_timeout``."""
        self.protocol.log(
            "info",
            f"no AUTH from the client within {self.protocol.config.connect_timeout} s "
            "(connect_timeout), CONNECT refused (0x87)",
        )
        self.protocol.refuse(ReasonCode.NOT_AUTHORIZED)

    def client_reauth_expired(self) -> None:
        """Re-authenticating: the client did not answer our AUTH within ``connect_timeout``."""
        self.timer = None
        if self.turn == "client":
            self.protocol.log(
                "info",
                f"no AUTH from the client within {self.protocol.config.connect_timeout} s "
                "(connect_timeout), re-authentication failed (0x87)",
            )
            self.protocol.close_with(ReasonCode.NOT_AUTHORIZED, "closed")

    def connack_properties(self, message: Message) -> Properties:
        """The method (and final data) of an accepting CONNACK.

        Raises:
            ValueError: the application named another method, or data that are not bytes.
            RuntimeError: the client's answer to the last challenge has not come yet.
        """
        if self.turn == "client":
            raise RuntimeError("mqtt.connack accepting while the client's AUTH is awaited")
        method = message.get("authentication_method")
        if method != self.method:
            raise ValueError(
                f"mqtt.connack 'authentication_method' is {method!r}, "
                f"the CONNECT's was {self.method!r}"
            )
        data = message.get("authentication_data")
        if data is not None and not isinstance(data, bytes):
            raise ValueError(
                "mqtt.connack 'authentication_data' must be a byte string, "
                f"got {type(data).__name__}"
            )
        self.turn = None
        return Properties(authentication_method=method, authentication_data=data)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
