"""Routers: small ASGI applications that pick the application for a scope.

Every router is a :class:`Router`: ``resolve(scope)`` returns the application
and the scope it should see, or raises :class:`~hub.exceptions.NoRouteFound`
with a message naming the scope and what was tried. Calling the router runs
the resolved application. The protocol routers of hub (URLs here, MQTT topic
filters, SMTP recipients, TCP listener names in their ``hub.routing``
neighbours) are all this kind of object, so they nest in one another.

When nothing matches an HTTP or WebSocket scope, the router logs a warning and
answers as a web server would (404, or a refused handshake), instead of
raising into the protocol server as Channels does.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls.resolvers import RegexPattern, RoutePattern, URLPattern, URLResolver

from hub.exceptions import NoRouteFound
from hub.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("hub.routing")

#: What the client is told when no route matched, by scope type.
NOT_FOUND_REPLIES: dict[str, tuple[Message, ...]] = {
    "http": (
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        },
        {"type": "http.response.body", "body": b"Not Found"},
    ),
    "websocket": ({"type": "websocket.close", "code": 1000},),
    "tcp": ({"type": "tcp.close"},),
}


def get_default_application() -> ASGIApp:
    """The application named by ``settings.ASGI_APPLICATION`` (``"module.attribute"``)."""
    try:
        path, name = settings.ASGI_APPLICATION.rsplit(".", 1)
    except (ValueError, AttributeError):
        raise ImproperlyConfigured(
            "Set ASGI_APPLICATION to 'module.attribute' of your ASGI application"
        ) from None
    try:
        module = importlib.import_module(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"Cannot import ASGI_APPLICATION module {path!r}: {exc}"
        ) from exc
    try:
        application: ASGIApp = getattr(module, name)
    except AttributeError:
        raise ImproperlyConfigured(f"Module {path} has no {name!r} (ASGI_APPLICATION)") from None
    return application


class Router:
    """Base router: subclasses implement :meth:`resolve`."""

    def resolve(self, scope: Scope) -> tuple[ASGIApp, Scope]:
        """The application for ``scope`` and the scope to call it with.

        Raises:
            NoRouteFound: nothing matched.
        """
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            application, child_scope = self.resolve(scope)
        except NoRouteFound as exc:
            replies = NOT_FOUND_REPLIES.get(scope["type"])
            if replies is None:
                raise
            logger.warning("%s", exc)
            for reply in replies:
                await send(dict(reply))
            return
        await application(child_scope, receive, send)


class ProtocolTypeRouter(Router):
    """Routes on ``scope["type"]``: ``{"http": ..., "websocket": ..., "mqtt": ...}``."""

    def __init__(self, application_mapping: Mapping[str, ASGIApp]) -> None:
        self.application_mapping = dict(application_mapping)

    def resolve(self, scope: Scope) -> tuple[ASGIApp, Scope]:
        try:
            return self.application_mapping[scope["type"]], scope
        except KeyError:
            raise NoRouteFound(
                f"No application configured for scope type {scope['type']!r} "
                f"(ProtocolTypeRouter has: {', '.join(self.application_mapping) or 'nothing'})"
            ) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and "lifespan" not in self.application_mapping:
            await complete_lifespan(receive, send)
            return
        application, child_scope = self.resolve(scope)
        await application(child_scope, receive, send)


async def complete_lifespan(receive: Receive, send: Send) -> None:
    """Answer the lifespan protocol for an application that has nothing to do in it.

    Servers would otherwise log that lifespan is "unsupported" on every start.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class URLRouter(Router):
    """Routes HTTP and WebSocket scopes on their path with Django's ``path()`` / ``re_path()``.

    Captured values reach the application in ``scope["url_route"]`` as
    ``{"args": (...), "kwargs": {...}}``; a nested ``URLRouter`` matches the
    rest of the path and adds its captures to its parent's. ``include()`` is not
    supported: nest a ``URLRouter`` instead.
    """

    #: Nested routers match the remainder of a path, so their parent's
    #: ``path()`` entry must not be anchored at the end.
    _path_routing = True

    def __init__(self, routes: Sequence[URLPattern | URLResolver]) -> None:
        self.routes = list(routes)
        for route in self.routes:
            if isinstance(route, URLResolver) and not getattr(route, "callback", None):
                raise ImproperlyConfigured(
                    f"{route}: include() is not supported in URLRouter; nest a URLRouter instead"
                )
            if getattr(route.callback, "_path_routing", False):
                pattern = route.pattern
                if not isinstance(pattern, RegexPattern | RoutePattern):
                    raise ImproperlyConfigured(f"Unsupported pattern type {type(pattern)}")
                # str() of both pattern types is the source they were built from.
                route.pattern = type(pattern)(str(pattern), pattern.name, is_endpoint=False)

    def resolve(self, scope: Scope) -> tuple[ASGIApp, Scope]:
        path: str | None = scope.get("path_remaining", scope.get("path"))
        if path is None:
            raise NoRouteFound(f"A {scope['type']!r} scope has no 'path' to route on")
        if "path_remaining" not in scope:
            root_path = scope.get("root_path", "")
            if root_path:
                if not path.startswith(root_path):
                    raise NoRouteFound(
                        f"No route for {scope['type']} path {path!r}: "
                        f"it is outside root_path {root_path!r}"
                    )
                path = path[len(root_path) :]
        path = path.lstrip("/")
        outer = scope.get("url_route", {})
        for route in self.routes:
            match = route.pattern.match(path)
            if not match:
                continue
            remaining, args, kwargs = match
            kwargs.update(getattr(route, "default_args", {}))
            child_scope = dict(
                scope,
                path_remaining=remaining,
                url_route={
                    "args": tuple(outer.get("args", ())) + tuple(args),
                    "kwargs": {**outer.get("kwargs", {}), **kwargs},
                },
            )
            callback: Any = route.callback
            if isinstance(callback, URLRouter):
                try:
                    return callback.resolve(child_scope)
                except NoRouteFound:
                    continue
            return callback, child_scope
        tried = ", ".join(repr(str(route.pattern)) for route in self.routes) or "no routes"
        raise NoRouteFound(
            f"No route for {scope['type']} path {scope.get('path', path)!r} (tried {tried})"
        )


class ChannelNameRouter(Router):
    """Routes ``channel`` scopes (background workers) on ``scope["channel"]``."""

    def __init__(self, application_mapping: Mapping[str, ASGIApp]) -> None:
        self.application_mapping = dict(application_mapping)

    def resolve(self, scope: Scope) -> tuple[ASGIApp, Scope]:
        if "channel" not in scope:
            raise NoRouteFound(
                f"ChannelNameRouter got a {scope['type']!r} scope without a 'channel' key; "
                "use it only for worker channels"
            )
        try:
            return self.application_mapping[scope["channel"]], scope
        except KeyError:
            raise NoRouteFound(
                f"No application configured for channel {scope['channel']!r} "
                f"(ChannelNameRouter has: {', '.join(self.application_mapping) or 'nothing'})"
            ) from None
