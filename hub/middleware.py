"""``BaseMiddleware``: the shape of an ASGI middleware that adds keys to the scope.

A middleware instance wraps one inner application and serves every connection
that reaches it, so it keeps no per-connection state on ``self``; what it
learns about a connection goes into that connection's scope. It copies the
scope before changing it: the scope it was given belongs to the caller (a
router, another middleware, the server), and a key added for this inner
application must not appear in a sibling's scope or in the next connection's.
"""

from __future__ import annotations

from hub.types import ASGIApp, Receive, Scope, Send


class BaseMiddleware:
    """Wraps ``inner``; subclasses override ``__call__`` and change the copied scope.

    Args:
        inner: the ASGI application to run with the changed scope.
    """

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the inner application on a copy of ``scope``.

        Subclasses that add keys call ``super().__call__(scope, ...)`` after
        changing their own copy, or copy first with ``dict(scope)`` themselves.
        """
        await self.inner(dict(scope), receive, send)
