"""``BaseMiddleware`` and scope isolation across hub's middlewares."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from hub.auth import AuthMiddlewareStack
from hub.middleware import BaseMiddleware
from hub.sessions import CookieMiddleware, SessionMiddlewareStack
from hub.types import ASGIApp, Message, Receive, Scope, Send

# Autouse: these tests open the ORM thread's connection too. It belongs in
# tests/conftest.py, for every module that reaches the database from a consumer.


def websocket_scope() -> dict[str, Any]:
    return {
        "type": "websocket",
        "path": "/ws/",
        "headers": [(b"origin", b"http://example.com"), (b"cookie", b"theme=dark")],
        "state": {},
    }


class RecordingApp:
    """An inner application that records the scope it got, then changes it."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(dict(scope))
        scope["added_by_inner"] = True
        scope["path"] = "/changed/"


async def no_receive() -> Message:
    raise AssertionError("the application should not receive")


async def no_send(message: Message) -> None:
    raise AssertionError(f"the application should not send, sent {message!r}")


class AddsKey(BaseMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = dict(scope)
        scope["added_by_middleware"] = "yes"
        await super().__call__(scope, receive, send)


class TestBaseMiddleware:
    async def test_the_inner_application_gets_the_scope_contents(self) -> None:
        inner = RecordingApp()
        scope = websocket_scope()
        await BaseMiddleware(inner)(scope, no_receive, no_send)
        assert inner.scopes == [websocket_scope()]

    async def test_keys_the_inner_application_sets_do_not_reach_the_caller(self) -> None:
        inner = RecordingApp()
        scope = websocket_scope()
        await BaseMiddleware(inner)(scope, no_receive, no_send)
        assert scope == websocket_scope()

    async def test_a_subclass_adds_keys_for_the_inner_application_only(self) -> None:
        inner = RecordingApp()
        scope = websocket_scope()
        await AddsKey(inner)(scope, no_receive, no_send)
        assert inner.scopes[0]["added_by_middleware"] == "yes"
        assert "added_by_middleware" not in scope

    async def test_two_connections_through_one_instance_do_not_share_keys(self) -> None:
        inner = RecordingApp()
        middleware = AddsKey(inner)
        await middleware(websocket_scope(), no_receive, no_send)
        await middleware(websocket_scope(), no_receive, no_send)
        assert ["added_by_inner" in scope for scope in inner.scopes] == [False, False]


MIDDLEWARES: dict[str, Callable[[ASGIApp], ASGIApp]] = {
    "BaseMiddleware": BaseMiddleware,
    "CookieMiddleware": CookieMiddleware,
    "SessionMiddlewareStack": SessionMiddlewareStack,
    "AuthMiddlewareStack": AuthMiddlewareStack,
}


@pytest.mark.django_db(transaction=True)
class TestCallersScopeIsUnchanged:
    @pytest.mark.parametrize("wrap", MIDDLEWARES.values(), ids=MIDDLEWARES.keys())
    async def test_middleware_leaves_the_callers_scope_as_it_was(
        self, wrap: Callable[[ASGIApp], ASGIApp]
    ) -> None:
        inner = RecordingApp()
        scope = websocket_scope()
        before = copy.deepcopy(scope)
        await wrap(inner)(scope, no_receive, no_send)
        assert len(inner.scopes) == 1
        assert scope == before
