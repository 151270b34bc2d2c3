"""Consumers: one stateful object per connection, one method per event type.

``AsyncConsumer`` and ``SyncConsumer`` have Channels' shape (``as_asgi()``,
``channel_layer``, ``channel_name``, ``dispatch``, ``send``, ``StopConsumer``),
and a few things Channels lacks:

- The event type to handler lookup is cached per class, and a missing handler
  is reported by name: "ChatConsumer has no handler for 'chat.message'
  (expected method chat_message)".
- ``max_concurrent_handlers``: Channels runs one handler at a time per
  consumer, and so does hub by default, so handlers never interleave. A
  consumer whose handlers are independent (each awaits I/O of its own) may
  allow N at once; messages are then still read in order, but may finish out
  of order.
- ``outbound_policy`` / ``outbound_queue_size``: what happens when the client
  reads slower than the consumer sends (see :mod:`hub.outbound`).
- A handler that raises is logged once with the connection it served, the
  client gets its protocol's error (WebSocket close 1011, HTTP 500), and the
  consumer stops; other connections are untouched.
- On exit, whatever the reason, the consumer leaves its ``groups`` and stops
  every task it started.
- Every connection is listed in :data:`hub.status.STATUS` while it lives, and
  its messages, sends and crashes are counted there; an operator can send it
  ``hub.disconnect`` or ``hub.message`` through the channel layer.

Channels' ``AsyncConsumer.dispatch`` closes stale database connections in a
thread before *every* handler; hub does not, because ORM work in async code
goes through :data:`hub.db.database_sync_to_async`, which already does it, and
the extra thread hop per message halves a consumer's throughput.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from asgiref.sync import async_to_sync

from hub import DEFAULT_CHANNEL_LAYER
from hub.db import database_sync_to_async
from hub.exceptions import StopConsumer
from hub.layers import get_channel_layer
from hub.outbound import OutboundPolicy, OutboundQueue, SlowClient
from hub.routing import complete_lifespan
from hub.status import FASTEST, STATUS, Connection, bucket
from hub.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("hub.consumer")

#: What a client is sent when its consumer crashed, by scope type.
CRASH_REPLIES: dict[str, tuple[Message, ...]] = {
    "websocket": ({"type": "websocket.close", "code": 1011},),
    "http": (
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        },
        {"type": "http.response.body", "body": b"Internal Server Error"},
    ),
    # MQTT 5 "Unspecified error"; a 3.1.1 client is simply disconnected.
    "mqtt": ({"type": "mqtt.disconnect", "reason_code": 0x80},),
    "tcp": ({"type": "tcp.close"},),
}

#: What a client is sent when the DISCONNECT outbound policy cuts it off.
SLOW_CLIENT_REPLIES: dict[str, tuple[Message, ...]] = {
    "websocket": ({"type": "websocket.close", "code": 1008, "reason": "client reads too slowly"},),
    # MQTT 5 "Quota exceeded".
    "mqtt": ({"type": "mqtt.disconnect", "reason_code": 0x97},),
    "tcp": ({"type": "tcp.close"},),
}

#: What a client is sent when an operator disconnects it (``hub.disconnect``).
OPERATOR_DISCONNECT_REPLIES: dict[str, tuple[Message, ...]] = {
    "websocket": ({"type": "websocket.close", "code": 1000, "reason": "closed by an operator"},),
    # MQTT 5 "Administrative action".
    "mqtt": ({"type": "mqtt.disconnect", "reason_code": 0x98},),
    "tcp": ({"type": "tcp.close"},),
}

#: How an operator's text (``hub.message``) is sent to a client, by scope type.
OPERATOR_MESSAGES: dict[str, Callable[[str], Message]] = {
    "websocket": lambda text: {"type": "websocket.send", "text": text},
}

#: Seconds a crash or slow-client reply may take before the consumer gives up
#: on it; the peer may be the reason the consumer is stopping.
FAREWELL_TIMEOUT = 5.0

Handler = Callable[[Any, Message], Any]


def get_handler_name(message: Message) -> str:
    """The method name for ``message``'s type: ``"chat.message"`` -> ``chat_message``.

    Raises:
        ValueError: the message has no type, or the type starts with an underscore.
    """
    if "type" not in message:
        raise ValueError(f"Incoming message has no 'type' key: {message!r:.120}")
    name: str = message["type"].replace(".", "_")
    if name.startswith("_"):
        raise ValueError(f"Message type {message['type']!r} is malformed (leading underscore)")
    return name


def describe_scope(scope: Scope) -> str:
    """One line naming a connection for logs: ``websocket /ws/chat/ from 10.0.0.7:52114``.

    The path for HTTP and WebSocket, the client id for MQTT (``mqtt client
    sensor-7 from ...``), the listener name for TCP.
    """
    client_id = scope.get("client_id")
    where = (
        scope.get("path")
        or (f"client {client_id}" if client_id else "")
        or scope.get("listener")
        or ""
    )
    client = scope.get("client")
    peer = f" from {client[0]}:{client[1]}" if client else ""
    return f"{scope.get('type', '?')} {where}{peer}".replace("  ", " ")


class AsyncConsumer:
    """Base consumer: an ASGI application instance per connection.

    Messages from the client (through ``receive``) and from the channel layer
    (on ``channel_name``) are dispatched to the method named after their type.
    """

    _sync: ClassVar[bool] = False
    channel_layer_alias: ClassVar[str] = DEFAULT_CHANNEL_LAYER
    #: Handlers allowed to run at once; 1 keeps Channels' one-at-a-time order.
    max_concurrent_handlers: ClassVar[int] = 1
    #: What ``send`` does when the client reads slower than the consumer sends.
    outbound_policy: ClassVar[OutboundPolicy] = OutboundPolicy.WAIT
    #: Messages queued for a slow client under DROP_OLDEST and DISCONNECT.
    outbound_queue_size: ClassVar[int] = 100
    _handlers: ClassVar[dict[str, Handler | None]] = {}
    _plain_dispatch: ClassVar[bool] = True

    scope: Scope
    channel_layer: Any
    channel_name: str
    base_send: Callable[[Message], Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {}
        # Without an overridden dispatch(), handlers are called without its frame.
        cls._plain_dispatch = cls.dispatch is AsyncConsumer.dispatch
        if cls.max_concurrent_handlers < 1:
            raise ValueError(
                f"{cls.__name__}.max_concurrent_handlers must be at least 1, "
                f"got {cls.max_concurrent_handlers}"
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
        self._server_send = send
        self._outbound: OutboundQueue | None = None
        async_send: Callable[[Message], Awaitable[None]] = send
        if self.outbound_policy is not OutboundPolicy.WAIT:
            self._outbound = OutboundQueue(
                send, self.outbound_queue_size, self.outbound_policy, self._describe
            )
            async_send = self._queued_send
        self.base_send = async_to_sync(async_send) if self._sync else async_send
        self._stopped: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Tasks this consumer started (made with the first: most connections start none).
        self._tasks: set[asyncio.Task[None]] | None = None
        self._busy = False
        # Pumps waiting for their turn: at most one per source, so a list (an
        # empty deque is 760 bytes, on every connection).
        self._turns: list[asyncio.Future[None]] = []
        if self.max_concurrent_handlers > 1:
            self._slots = asyncio.Semaphore(self.max_concurrent_handlers)
        self._protocol = str(scope.get("type", "?"))
        self._traffic = STATUS.traffic_for(self._protocol)
        self._status_key = getattr(self, "channel_name", None) or f"{id(self):x}"
        STATUS.connected(
            Connection(
                key=self._status_key,
                consumer=type(self).__name__,
                protocol=self._protocol,
                summary=describe_scope(scope),
                channel_name=getattr(self, "channel_name", None),
            )
        )
        # The client's messages are read in this task, the channel layer's in a
        # task of its own, started when the first one arrives if the layer says.
        self._main: asyncio.Task[Any] | None = asyncio.current_task()
        self._channel_ready: asyncio.Future[None] | None = None
        try:
            if self.channel_layer is not None:
                self._read_channel_when_ready()
            try:
                await self._pump(receive)
            except asyncio.CancelledError:
                # _stop() interrupts this task when another one stopped the consumer.
                if not self._stopped.done() or self._main is None or self._main.uncancel():
                    raise
            await self._stopped
        except StopConsumer:
            pass
        finally:
            await self._shutdown()

    @property
    def channel_receive(self) -> Callable[[], Awaitable[Message]]:
        """Receive the next message of ``channel_name`` (Channels has it as an attribute).

        Made when asked for: an idle connection does not keep one (a partial is
        ~250 bytes, and most connections never read their channel).
        """
        return functools.partial(self.channel_layer.receive, self.channel_name)

    async def dispatch(self, message: Message) -> None:
        """Call the handler for ``message``'s type."""
        await self._handler_for(message)(self, message)

    def send(self, message: Message) -> Awaitable[None]:
        """Send ``message`` to the client (through the protocol server); await it.

        A plain function returning the server's awaitable, not a coroutine of its
        own: every message a consumer sends passes here.
        """
        self._traffic.sent += 1
        return self.base_send(message)  # type: ignore[no-any-return]

    async def hub_disconnect(self, event: Message) -> None:
        """An operator asked to close this connection (``{"type": "hub.disconnect"}``)."""
        logger.info("%s: disconnected by an operator", self._describe())
        await self._farewell(OPERATOR_DISCONNECT_REPLIES)
        raise StopConsumer

    async def layer_resync(self, message: Message) -> None:
        """The layer reconnected to its backend (a Redis restart or failover).

        Group memberships may have been lost with the backend's data: rejoin
        ``groups``. Override it to rejoin groups joined in ``connect()`` too.
        """
        for group in getattr(self, "groups", None) or ():
            await self.channel_layer.group_add(group, self.channel_name)

    async def hub_message(self, event: Message) -> None:
        """An operator sent this client a text (``{"type": "hub.message", "text": ...}``)."""
        await self._operator_message(event)

    async def _operator_message(self, event: Message) -> None:
        build = OPERATOR_MESSAGES.get(self._protocol)
        if build is None:
            logger.warning(
                "%s: cannot deliver an operator message to a %s client",
                self._describe(),
                self._protocol,
            )
            return
        await self._server_send(build(str(event.get("text", ""))))
        self._traffic.sent += 1

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> ASGIApp:
        """An ASGI application that runs a new ``cls(**initkwargs)`` per connection."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan" and not callable(getattr(cls, "lifespan_startup", None)):
                # Served as the whole application: complete lifespan for it.
                await complete_lifespan(receive, send)
                return
            consumer = cls(**initkwargs)
            await consumer(scope, receive, send)

        app.consumer_class = cls  # type: ignore[attr-defined]
        app.consumer_initkwargs = initkwargs  # type: ignore[attr-defined]
        functools.update_wrapper(app, cls, updated=())
        return app

    # Dispatch machinery

    @classmethod
    def _handler_for(cls, message: Message) -> Handler:
        message_type = message.get("type")
        if not isinstance(message_type, str):
            raise ValueError(f"Message type must be a str, got {message!r:.120}")
        try:
            handler = cls._handlers[message_type]
        except KeyError:
            name = get_handler_name(message)
            handler = getattr(cls, name, None)
            if not callable(handler):
                handler = None
            cls._handlers[message_type] = handler
        if handler is None:
            raise ValueError(
                f"{cls.__name__} has no handler for {message_type!r} "
                f"(expected method {get_handler_name(message)})"
            )
        return handler

    def _read_channel_when_ready(self) -> None:
        """Read the channel layer now, or on its first message (``message_ready``).

        Most connections never get a layer message; without a reader waiting
        in ``receive`` they cost a future each instead of a task.
        """
        message_ready = getattr(self.channel_layer, "message_ready", None)
        if message_ready is None:
            self._start(self._pump(self.channel_receive))
            return
        self._channel_ready = message_ready(self.channel_name)
        self._channel_ready.add_done_callback(self._start_channel_pump)

    def _start_channel_pump(self, ready: asyncio.Future[None]) -> None:
        # Not once _shutdown() began: it may have collected the tasks to stop already.
        if ready is self._channel_ready and not ready.cancelled() and not self._stopped.done():
            self._start(self._pump(self.channel_receive))

    def _start(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: Callable[[], Awaitable[Message]]) -> None:
        """Read messages from one source and run their handlers, until told to stop."""
        stopped = self._stopped
        try:
            if self.max_concurrent_handlers == 1:
                # _handle() inlined: this is the path of every message.
                handlers, plain = self._handlers, self._plain_dispatch
                traffic, clock = self._traffic, time.perf_counter
                every = traffic.timed_every
                while not stopped.done():
                    message = await source()
                    if self._busy:
                        await self._wait_for_turn()
                    else:
                        self._busy = True
                    handled = traffic.handled = traffic.handled + 1
                    # One run in timed_every is timed (hub.status says why); 0.0 is not.
                    started = clock() if handled % every == 0 else 0.0
                    try:
                        if plain:
                            handler = handlers.get(message.get("type", ""))
                            await (handler or self._handler_for(message))(self, message)
                        else:
                            await self.dispatch(message)
                    except StopConsumer:
                        raise
                    except Exception as exc:
                        await self._crashed(message, exc)
                    finally:
                        if started:
                            elapsed = clock() - started
                            traffic.counts[0 if elapsed <= FASTEST else bucket(elapsed)] += 1
                            traffic.total += elapsed
                        if self._turns:
                            self._pass_turn()
                        else:
                            self._busy = False
                    # Waiting for the next message, an idle consumer keeps no
                    # reference to its last one (a SUBSCRIBE event: ~300 bytes).
                    del message
            else:
                slots = self._slots
                while not stopped.done():
                    message = await source()
                    await slots.acquire()
                    self._start(self._handle_concurrently(message))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._stop(exc)

    async def _wait_for_turn(self) -> None:
        """Wait until the handler running now hands over (one handler at a time).

        A lock would do, but this is the per-message path: a flag and a queue
        of futures cost two coroutine frames less per message.
        """
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._pass_turn()
            raise

    def _pass_turn(self) -> None:
        turns = self._turns
        while turns:
            turn = turns.pop(0)
            if not turn.done():
                turn.set_result(None)
                return
        self._busy = False

    async def _handle_concurrently(self, message: Message) -> None:
        try:
            await self._handle(message)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._stop(exc)
        finally:
            self._slots.release()

    async def _handle(self, message: Message) -> None:
        traffic = self._traffic
        handled = traffic.handled = traffic.handled + 1
        started = time.perf_counter() if handled % traffic.timed_every == 0 else 0.0
        try:
            if self._plain_dispatch:
                handler = self._handlers.get(message.get("type", "")) or self._handler_for(message)
                await handler(self, message)
            else:
                await self.dispatch(message)
        except StopConsumer:
            raise
        except Exception as exc:
            await self._crashed(message, exc)
        finally:
            if started:
                elapsed = time.perf_counter() - started
                traffic.counts[0 if elapsed <= FASTEST else bucket(elapsed)] += 1
                traffic.total += elapsed

    async def _crashed(self, message: Message, exc: Exception) -> None:
        """A handler raised: log it, send the client its protocol's error, stop."""
        STATUS.error(self._protocol, "crash")
        logger.error(
            "%s crashed handling %r: %s: %s",
            self._describe(),
            message.get("type"),
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        await self._farewell(CRASH_REPLIES)
        raise StopConsumer from exc

    def _stop(self, exc: BaseException) -> None:
        if not self._stopped.done():
            self._stopped.set_exception(exc)
            main = self._main
            if main is not None and main is not asyncio.current_task():
                main.cancel()

    async def _queued_send(self, message: Message) -> None:
        assert self._outbound is not None
        try:
            self._outbound.put(message)
        except SlowClient as exc:
            logger.warning("%s", exc)
            STATUS.error(self._protocol, "slow_client")
            await self._farewell(SLOW_CLIENT_REPLIES)
            raise StopConsumer from exc

    async def _farewell(self, replies: dict[str, tuple[Message, ...]]) -> None:
        """Send the client its protocol's last words, if it can still hear them."""
        try:
            async with asyncio.timeout(FAREWELL_TIMEOUT):
                for reply in replies.get(self.scope.get("type", ""), ()):
                    await self._server_send(dict(reply))
        except Exception:
            logger.debug("%s: could not send the closing reply", self._describe(), exc_info=True)

    async def _shutdown(self) -> None:
        """Stop every task of this consumer, leave its groups and the status registry."""
        STATUS.disconnected(self._status_key)
        # From here on a task that fails must not interrupt this one (see _stop).
        self._main = None
        ready, self._channel_ready = self._channel_ready, None
        if ready is not None:
            ready.cancel()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks or () if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._stopped.done():
            # Acted on, even when a cancellation overtook it or it came during shutdown.
            self._stopped.exception()
        if self._outbound is not None:
            await self._outbound.close()
        groups = getattr(self, "groups", None)
        if groups and self.channel_layer is not None:
            for group in groups:
                try:
                    await self.channel_layer.group_discard(group, self.channel_name)
                except Exception:
                    logger.warning(
                        "%s: could not leave group %r", self._describe(), group, exc_info=True
                    )

    def _describe(self) -> str:
        return f"{type(self).__name__} {describe_scope(self.scope)}"


class SyncConsumer(AsyncConsumer):
    """A consumer whose handlers are plain functions, run in Django's ORM thread.

    Handlers run through :data:`hub.db.database_sync_to_async`, so they may use
    the ORM directly; ``send`` is synchronous.
    """

    _sync: ClassVar[bool] = True

    @database_sync_to_async
    def dispatch(self, message: Message) -> None:
        """Call the handler for ``message``'s type, in the ORM thread."""
        self._handler_for(message)(self, message)

    def send(self, message: Message) -> None:  # type: ignore[override]
        """Send ``message`` to the client; blocks until the server has taken it."""
        self._traffic.sent += 1
        self.base_send(message)

    def layer_resync(self, message: Message) -> None:  # type: ignore[override]
        """The layer reconnected to its backend: rejoin ``groups`` (see AsyncConsumer)."""
        for group in getattr(self, "groups", None) or ():
            async_to_sync(self.channel_layer.group_add)(group, self.channel_name)

    def hub_disconnect(self, event: Message) -> None:  # type: ignore[override]
        """An operator asked to close this connection (see AsyncConsumer)."""
        logger.info("%s: disconnected by an operator", self._describe())
        async_to_sync(self._farewell)(OPERATOR_DISCONNECT_REPLIES)
        raise StopConsumer

    def hub_message(self, event: Message) -> None:  # type: ignore[override]
        """An operator sent this client a text (see AsyncConsumer)."""
        async_to_sync(self._operator_message)(event)
