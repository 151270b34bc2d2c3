"""Routing raw TCP connections to consumers by the name of the listener they arrived on.

Each ``--tcp NAME=HOST:PORT`` listener serves one device protocol, so the
listener name is what picks the consumer::

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "tcp": ListenerRouter({
            "gps": GpsTrackerConsumer.as_asgi(),
            "plc": PlcGatewayConsumer.as_asgi(),
        }),
    })

A connection on a listener the router does not know is closed with a warning
that names the listener and the names the router has, instead of an
exception in the protocol server.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from hub.exceptions import NoRouteFound
from hub.routing import Router
from hub.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("hub.routing")


class ListenerRouter(Router):
    """Routes ``tcp`` scopes on ``scope["listener"]``."""

    def __init__(self, application_mapping: Mapping[str, ASGIApp]) -> None:
        self.application_mapping = dict(application_mapping)

    def resolve(self, scope: Scope) -> tuple[ASGIApp, Scope]:
        if scope.get("type") != "tcp":
            raise NoRouteFound(
                f"ListenerRouter routes 'tcp' scopes, got a {scope.get('type')!r} scope; "
                "put it under ProtocolTypeRouter's 'tcp' key"
            )
        listener = scope.get("listener", "default")
        try:
            return self.application_mapping[listener], scope
        except KeyError:
            known = ", ".join(repr(name) for name in self.application_mapping) or "nothing"
            raise NoRouteFound(
                f"No application for tcp listener {listener!r} (ListenerRouter has: {known})"
            ) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "tcp":
            await super().__call__(scope, receive, send)
            return
        try:
            application, child_scope = self.resolve(scope)
        except NoRouteFound as exc:
            logger.warning("%s", exc)
            await send({"type": "tcp.close"})
            return
        await application(child_scope, receive, send)
