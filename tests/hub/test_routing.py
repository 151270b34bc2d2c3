"""Routers: protocol type, URL (nested, captures, root_path) and channel name."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import include, path, re_path

from hub.exceptions import NoRouteFound
from hub.generic.websocket import AsyncWebsocketConsumer
from hub.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from hub.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator


def named(name):
    """An ASGI app that answers its name and the scope's url_route over HTTP."""

    async def app(scope, receive, send):
        body = f"{name} {scope.get('url_route')}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def get(app, url):
    response = await HttpCommunicator(app, "GET", url).get_response()
    return response["status"], response["body"].decode()


class TestProtocolTypeRouter:
    async def test_routes_on_the_scope_type(self):
        router = ProtocolTypeRouter({"http": named("web")})
        assert await get(router, "/") == (200, "web None")

    async def test_an_unknown_type_names_the_type_and_what_is_configured(self):
        router = ProtocolTypeRouter({"http": named("web"), "websocket": named("ws")})
        expected = r"scope type 'mqtt' \(ProtocolTypeRouter has: http, websocket\)"
        with pytest.raises(NoRouteFound, match=expected):
            await router({"type": "mqtt"}, None, None)


class TestURLRouter:
    async def test_path_captures_reach_the_scope(self):
        router = URLRouter([path("rooms/<str:room>/<int:n>/", named("room"))])
        assert await get(router, "/rooms/lobby/3/") == (
            200,
            "room {'args': (), 'kwargs': {'room': 'lobby', 'n': 3}}",
        )

    async def test_re_path_positional_and_named_groups(self):
        router = URLRouter([re_path(r"^items/(?P<slug>[a-z]+)/$", named("item"))])
        assert await get(router, "/items/abc/") == (
            200,
            "item {'args': (), 'kwargs': {'slug': 'abc'}}",
        )

    async def test_routes_are_tried_in_order(self):
        router = URLRouter([path("a/", named("first")), path("a/", named("second"))])
        assert (await get(router, "/a/"))[1].startswith("first")

    async def test_default_kwargs_are_added(self):
        router = URLRouter([path("x/", named("x"), {"mode": "fast"})])
        assert await get(router, "/x/") == (200, "x {'args': (), 'kwargs': {'mode': 'fast'}}")

    async def test_nested_routers_match_the_rest_of_the_path_and_merge_captures(self):
        inner = URLRouter([path("messages/<int:pk>/", named("message"))])
        router = URLRouter([path("rooms/<str:room>/", inner)])
        assert await get(router, "/rooms/lobby/messages/7/") == (
            200,
            "message {'args': (), 'kwargs': {'room': 'lobby', 'pk': 7}}",
        )

    async def test_a_nested_router_without_a_match_lets_later_routes_try(self):
        inner = URLRouter([path("special/", named("special"))])
        router = URLRouter([path("rooms/", inner), path("rooms/<str:rest>/", named("fallback"))])
        assert (await get(router, "/rooms/other/"))[1].startswith("fallback")

    async def test_root_path_is_stripped_before_matching(self):
        router = URLRouter([path("ws/", named("ws"))])
        communicator = HttpCommunicator(router, "GET", "/prefix/ws/")
        communicator.scope["root_path"] = "/prefix"
        assert (await communicator.get_response())["status"] == 200

    def test_include_is_refused_with_the_alternative(self):
        with pytest.raises(ImproperlyConfigured, match="nest a URLRouter instead"):
            URLRouter([path("x/", include([]))])

    async def test_an_unmatched_http_path_gets_404_and_a_log_line_naming_it(self, caplog):
        router = URLRouter([path("known/", named("known"))])
        with caplog.at_level(logging.WARNING, logger="hub.routing"):
            assert await get(router, "/unknown/") == (404, "Not Found")
        assert "No route for http path '/unknown/' (tried 'known/')" in caplog.text

    async def test_an_unmatched_websocket_path_is_refused(self, caplog):
        router = URLRouter([path("known/", AsyncWebsocketConsumer.as_asgi())])
        communicator = WebsocketCommunicator(router, "/unknown/")
        with caplog.at_level(logging.WARNING, logger="hub.routing"):
            assert await communicator.connect() == (False, 1000)
        assert "No route for websocket path '/unknown/'" in caplog.text

    async def test_resolve_raises_for_programmatic_use(self):
        router = URLRouter([])
        with pytest.raises(NoRouteFound, match="tried no routes"):
            router.resolve({"type": "http", "path": "/x/"})


class TestChannelNameRouter:
    async def test_routes_on_the_channel_name(self):
        seen = []

        async def worker(scope, receive, send):
            seen.append(scope["channel"])

        router = ChannelNameRouter({"thumbnails": worker})
        await ApplicationCommunicator(router, {"type": "channel", "channel": "thumbnails"}).wait()
        assert seen == ["thumbnails"]

    def test_an_unknown_channel_is_named(self):
        router = ChannelNameRouter({"thumbnails": named("t")})
        with pytest.raises(NoRouteFound, match="channel 'email'"):
            router.resolve({"type": "channel", "channel": "email"})

    def test_a_scope_without_a_channel_is_refused(self):
        with pytest.raises(NoRouteFound, match="without a 'channel' key"):
            ChannelNameRouter({}).resolve({"type": "http"})


class TestLifespan:
    async def test_a_router_without_a_lifespan_app_completes_lifespan_itself(self):
        router = ProtocolTypeRouter({"http": named("web")})
        communicator = ApplicationCommunicator(router, {"type": "lifespan", "state": {}})
        await communicator.send_input({"type": "lifespan.startup"})
        assert await communicator.receive_output() == {"type": "lifespan.startup.complete"}
        await communicator.send_input({"type": "lifespan.shutdown"})
        assert await communicator.receive_output() == {"type": "lifespan.shutdown.complete"}
        await communicator.wait()

    async def test_a_lifespan_app_in_the_mapping_is_used(self):
        seen = []

        async def lifespan(scope, receive, send):
            seen.append(scope["type"])

        router = ProtocolTypeRouter({"lifespan": lifespan})
        await ApplicationCommunicator(router, {"type": "lifespan"}).wait()
        assert seen == ["lifespan"]
