"""Routing SMTP recipients to consumers, with captured parts: ``support+<int:ticket>@<domain>``.

An SMTP session has no path: what decides the application is each
``RCPT TO`` address, and one session may carry mail for several. So
:class:`RecipientRouter` is a :class:`~hub.routing.Router` whose ``resolve``
takes a recipient (``scope["recipient"]``), and whose ASGI side serves the
whole session, starting one instance of the routed application per route
and captured values as recipients arrive:

- ``smtp.connect`` is accepted by the router; a route's application gets its
  own ``smtp.connect`` when its first recipient arrives, and may refuse it
  (that recipient is refused with the application's code).
- ``smtp.auth`` is answered by the router (``authenticate``; Django's users by
  default): no route is known before the first recipient.
- ``smtp.rcpt`` goes to the recipient's route; an address no route matches is
  refused with ``550 5.1.1``.
- One message goes to one application instance: once a transaction has a
  recipient accepted by one route, a recipient of another route is answered
  ``452 4.5.3`` ("too many recipients"), which every SMTP client understands
  as "send the rest in another transaction". So ``smtp.message`` has exactly
  one owner and its answer is the answer the client gets; nothing is
  half-delivered.
- ``smtp.disconnect`` goes to every started application.

The child scope gets ``scope["smtp_route"] = {"pattern": ..., "address": ...,
"kwargs": {...}}``, which :class:`hub.generic.smtp.AsyncSmtpConsumer` passes to
its handlers as keyword arguments.

Patterns: literal text with ``<name>`` or ``<converter:name>`` parts; matching
is case-insensitive and covers the whole address. Converters: ``str`` (the
default: no ``@`` or ``+``), ``int``, ``slug``, ``domain``, ``uuid``, ``any``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.exceptions import NoRouteFound
from hub.mail.auth import authenticate_identity
from hub.routing import Router
from hub.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("hub.routing")

Authenticate = Callable[[str, str], Awaitable[str | None]]

#: Converter name -> (regular expression, conversion of the matched text).
CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^@+]+", str),
    "int": (r"[0-9]+", int),
    "slug": (r"[-a-zA-Z0-9_]+", str),
    "domain": (r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?", str.lower),
    "uuid": (r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", uuid.UUID),
    "any": (r".+", str),
}
_PART = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)>")

#: The answer to a recipient no route matches (RFC 3463 5.1.1: bad destination mailbox).
NO_SUCH_RECIPIENT: Message = {
    "type": "smtp.rcpt.reject",
    "code": 550,
    "message": "5.1.1 No such recipient",
}
#: The answer to a recipient of another route than the transaction's (RFC 5321 4.5.3.1.10).
SEND_SEPARATELY: Message = {
    "type": "smtp.rcpt.reject",
    "code": 452,
    "message": "4.5.3 Too many recipients for one delivery, send the rest separately",
}


@dataclass(frozen=True)
class RecipientPattern:
    """A compiled recipient pattern: ``support+<int:ticket>@<domain>``."""

    template: str
    regex: re.Pattern[str]
    converters: dict[str, Callable[[str], Any]]

    @classmethod
    def compile(cls, template: str) -> RecipientPattern:
        """Raises: ValueError for an unknown converter or a repeated name."""
        parts, converters, position = [], {}, 0
        for match in _PART.finditer(template):
            parts.append(re.escape(template[position : match.start()]))
            converter, name = match["converter"] or "str", match["name"]
            if converter not in CONVERTERS:
                raise ValueError(
                    f"Unknown converter {converter!r} in recipient pattern {template!r}; "
                    f"use one of {', '.join(CONVERTERS)}"
                )
            if name in converters:
                raise ValueError(f"{name!r} appears twice in recipient pattern {template!r}")
            expression, convert = CONVERTERS[converter]
            parts.append(f"(?P<{name}>{expression})")
            converters[name] = convert
            position = match.end()
        parts.append(re.escape(template[position:]))
        regex = re.compile("".join(parts), re.IGNORECASE)
        return cls(template, regex, converters)

    def match(self, address: str) -> dict[str, Any] | None:
        """The captured values when ``address`` matches, else ``None``."""
        found = self.regex.fullmatch(address)
        if found is None:
            return None
        try:
            return {name: self.converters[name](value) for name, value in found.groupdict().items()}
        except ValueError:
            return None


@dataclass(frozen=True)
class RecipientRoute:
    pattern: RecipientPattern
    app: ASGIApp


def recipient(pattern: str, app: ASGIApp) -> RecipientRoute:
    """One route of a :class:`RecipientRouter`, as ``path()`` is one of a ``URLRouter``."""
    return RecipientRoute(RecipientPattern.compile(pattern), app)


class RecipientRouter(Router):
    """Routes each recipient of an SMTP session to an application (see the module docstring).

    Args:
        routes: :func:`recipient` entries, tried in order.
        authenticate: ``async (login, password) -> identity or None`` answering
            ``smtp.auth``; Django's ``authenticate()`` by default.
    """

    def __init__(
        self, routes: Sequence[RecipientRoute], authenticate: Authenticate | None = None
    ) -> None:
        self.routes = list(routes)
        self.authenticate = authenticate or authenticate_identity

    def resolve(self, scope: Scope) -> tuple[ASGIApp, Scope]:
        address = scope.get("recipient")
        if not isinstance(address, str):
            raise NoRouteFound(
                f"RecipientRouter resolves a recipient; the {scope.get('type')!r} scope "
                "has no 'recipient' (it serves smtp sessions)"
            )
        for route in self.routes:
            kwargs = route.pattern.match(address)
            if kwargs is None:
                continue
            outer = scope.get("smtp_route", {}).get("kwargs", {})
            child_scope = dict(scope)
            child_scope.pop("recipient")
            child_scope["smtp_route"] = {
                "pattern": route.pattern.template,
                "address": address,
                "kwargs": {**outer, **kwargs},
            }
            if isinstance(route.app, RecipientRouter):
                return route.app.resolve(dict(child_scope, recipient=address))
            return route.app, child_scope
        tried = ", ".join(repr(r.pattern.template) for r in self.routes) or "no routes"
        raise NoRouteFound(f"No route for recipient {address!r} (tried {tried})")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "smtp":
            raise NoRouteFound(f"RecipientRouter serves smtp scopes, got {scope['type']!r}")
        await _RoutedSession(self, scope, send).run(receive)


class _Child:
    """One started application instance of a route, and the answer it owes."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.answer: asyncio.Future[Message] | None = None
        self.task = asyncio.ensure_future(app(scope, self.queue.get, self._send))
        self.task.add_done_callback(self._ended)
        self.connected = False
        self.ask_rcpt = True

    async def _send(self, message: Message) -> None:
        if self.answer is None or self.answer.done():
            raise RuntimeError(
                f"Expected ASGI message nothing (no question), but got {message.get('type')!r}"
            )
        self.answer.set_result(message)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self.answer is not None and not self.answer.done():
            reason = "returned" if task.cancelled() or task.exception() is None else "raised"
            self.answer.set_exception(
                RuntimeError(f"the routed application {reason} without answering")
            )

    async def ask(self, event: Message) -> Message:
        if self.task.done():
            raise RuntimeError("the routed application has ended; it cannot answer")
        self.answer = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(event)
        try:
            return await self.answer
        finally:
            self.answer = None


class _RoutedSession:
    """The router's side of one session: its children and which one owns each transaction."""

    def __init__(self, router: RecipientRouter, scope: Scope, send: Send) -> None:
        self.router = router
        self.scope = scope
        self.send = send
        self.children: dict[tuple[int, str], _Child] = {}
        self.owner: tuple[int, _Child] | None = None  # (transaction, child)

    async def run(self, receive: Receive) -> None:
        try:
            while True:
                event = await receive()
                kind = event["type"]
                if kind == "smtp.connect":
                    await self.send({"type": "smtp.accept"})
                elif kind == "smtp.auth":
                    await self._auth(event)
                elif kind == "smtp.rcpt":
                    await self.send(await self._rcpt(event))
                elif kind == "smtp.message":
                    await self.send(await self._message(event))
                elif kind == "smtp.disconnect":
                    for child in self.children.values():
                        child.queue.put_nowait(event)
                    break
        finally:
            tasks = [child.task for child in self.children.values()]
            if tasks:
                await asyncio.wait(tasks)

    async def _auth(self, event: Message) -> None:
        identity = await self.router.authenticate(event["login"], event["password"])
        if identity is None:
            await self.send({"type": "smtp.auth.reject"})
        else:
            await self.send({"type": "smtp.auth.accept", "user": identity})

    async def _rcpt(self, event: Message) -> Message:
        try:
            app, child_scope = self.router.resolve(dict(self.scope, recipient=event["address"]))
        except NoRouteFound as exc:
            logger.info("%s", exc)
            return NO_SUCH_RECIPIENT
        key = (id(app), repr(sorted(child_scope["smtp_route"]["kwargs"].items())))
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = _Child(app, child_scope)
        owner = self.owner
        if owner is not None and owner[0] == event["transaction"] and owner[1] is not child:
            return SEND_SEPARATELY
        if not child.connected:
            answer = await child.ask({"type": "smtp.connect"})
            if answer["type"] != "smtp.accept":
                return {**answer, "type": "smtp.rcpt.reject"}
            child.connected = True
            child.ask_rcpt = bool(answer.get("rcpt", True))
        answer = await child.ask(event) if child.ask_rcpt else {"type": "smtp.rcpt.accept"}
        if answer["type"] == "smtp.rcpt.accept":
            self.owner = (event["transaction"], child)
        return answer

    async def _message(self, event: Message) -> Message:
        owner = self.owner
        if owner is None or owner[0] != event["transaction"]:
            raise RuntimeError("smtp.message for a transaction no route accepted a recipient of")
        return await owner[1].ask(event)
