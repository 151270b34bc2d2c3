"""Cookies and sessions in the scope: ``hub.sessions``."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from http.cookies import Morsel, SimpleCookie
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

from hub.db import database_sync_to_async
from hub.generic.websocket import AsyncJsonWebsocketConsumer
from hub.sessions import CookieMiddleware, SessionMiddleware, SessionMiddlewareStack
from hub.testing import HttpCommunicator, WebsocketCommunicator
from hub.types import ASGIApp, Message, Receive, Scope, Send

# Autouse: these tests open the ORM thread's connection too. It belongs in
# tests/conftest.py, for every module that reaches the database from a consumer.

# Helpers


def response_start(**extra: Any) -> Message:
    return {"type": "http.response.start", "status": 200, **extra}


def set_cookies(headers: list[tuple[bytes, bytes]]) -> dict[str, Morsel[str]]:
    """The cookies a response sets, by name, parsed back with the standard library."""
    cookies: dict[str, Morsel[str]] = {}
    for name, value in headers:
        if name == b"set-cookie":
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(value.decode())
            cookies.update(parsed)
    return cookies


def header_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key == name]


class ScopeRecorder:
    def __init__(self) -> None:
        self.scope: Scope = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope


def session_app(touch: Callable[[SessionBase], None] | None = None, status: int = 200) -> ASGIApp:
    """An HTTP application that does ``touch(session)`` in the ORM thread, then answers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if touch is not None:
            await database_sync_to_async(touch)(scope["session"])
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return SessionMiddlewareStack(app)


def write_colour(session: SessionBase) -> None:
    session["colour"] = "blue"


def read_colour(session: SessionBase) -> None:
    session.get("colour")


def flush(session: SessionBase) -> None:
    session.flush()


async def get(app: ASGIApp, cookie: str | None = None) -> dict[str, Any]:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    return await HttpCommunicator(app, "GET", "/", headers=headers).get_response()


async def stored_session(session_key: str) -> dict[str, Any]:
    store = import_module(settings.SESSION_ENGINE).SessionStore

    def load() -> dict[str, Any]:
        data: dict[str, Any] = store(session_key).load()
        return data

    return await database_sync_to_async(load)()


async def new_session(**data: Any) -> str:
    """A saved session holding ``data``; returns its key."""
    store = import_module(settings.SESSION_ENGINE).SessionStore

    def create() -> str:
        session = store()
        session.update(data)
        session.save()
        key: str = session.session_key
        return key

    return await database_sync_to_async(create)()


# Cookies in the scope


class TestCookieParsing:
    async def test_the_cookie_header_becomes_scope_cookies(self) -> None:
        inner = ScopeRecorder()
        scope = {"type": "http", "headers": [(b"cookie", b"a=1; b=two")]}
        await CookieMiddleware(inner)(scope, None, None)  # type: ignore[arg-type]
        assert inner.scope["cookies"] == {"a": "1", "b": "two"}

    async def test_no_cookie_header_gives_empty_cookies(self) -> None:
        inner = ScopeRecorder()
        await CookieMiddleware(inner)({"type": "http", "headers": []}, None, None)  # type: ignore[arg-type]
        assert inner.scope["cookies"] == {}

    async def test_cookies_split_over_several_headers_are_all_read(self) -> None:
        inner = ScopeRecorder()
        scope = {"type": "http", "headers": [(b"cookie", b"a=1"), (b"cookie", b"b=2")]}
        await CookieMiddleware(inner)(scope, None, None)  # type: ignore[arg-type]
        assert inner.scope["cookies"] == {"a": "1", "b": "2"}

    async def test_a_scope_without_headers_is_refused_by_name(self) -> None:
        with pytest.raises(ValueError, match=r"CookieMiddleware needs scope\['headers'\].*'mqtt'"):
            await CookieMiddleware(ScopeRecorder())({"type": "mqtt"}, None, None)  # type: ignore[arg-type]


class TestSetCookie:
    def test_the_cookie_name_and_value_are_set(self) -> None:
        message = response_start()
        CookieMiddleware.set_cookie(message, "theme", "dark")
        assert set_cookies(message["headers"])["theme"].value == "dark"

    def test_existing_headers_are_kept_and_set_cookie_is_appended(self) -> None:
        message = response_start(headers=((b"content-type", b"text/plain"),))
        CookieMiddleware.set_cookie(message, "theme", "dark")
        assert message["headers"][0] == (b"content-type", b"text/plain")
        assert message["headers"][1][0] == b"set-cookie"

    def test_max_age_sets_max_age_and_a_matching_expires(self) -> None:
        message = response_start()
        CookieMiddleware.set_cookie(message, "theme", "dark", max_age=3600)
        cookie = set_cookies(message["headers"])["theme"]
        assert cookie["max-age"] == "3600"
        expires = datetime.datetime.strptime(cookie["expires"], "%a, %d %b %Y %H:%M:%S GMT")
        assert abs(expires.replace(tzinfo=datetime.UTC).timestamp() - (time.time() + 3600)) < 5

    def test_max_age_may_be_a_timedelta(self) -> None:
        message = response_start()
        CookieMiddleware.set_cookie(message, "theme", max_age=datetime.timedelta(minutes=2))
        assert set_cookies(message["headers"])["theme"]["max-age"] == "120"

    def test_expires_as_a_datetime_is_turned_into_max_age(self) -> None:
        message = response_start()
        in_an_hour = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(hours=1)
        CookieMiddleware.set_cookie(message, "theme", expires=in_an_hour)
        assert int(set_cookies(message["headers"])["theme"]["max-age"]) in (3599, 3600, 3601)

    def test_expires_as_a_string_is_sent_as_is(self) -> None:
        message = response_start()
        CookieMiddleware.set_cookie(message, "theme", expires="Wed, 21 Oct 2037 07:28:00 GMT")
        cookie = set_cookies(message["headers"])["theme"]
        assert cookie["expires"] == "Wed, 21 Oct 2037 07:28:00 GMT"
        assert cookie["max-age"] == ""

    def test_expires_datetime_and_max_age_together_are_refused(self) -> None:
        with pytest.raises(ValueError, match="not both"):
            CookieMiddleware.set_cookie(
                response_start(), "theme", max_age=10, expires=datetime.datetime.now()
            )

    def test_path_domain_secure_httponly_and_samesite_are_set(self) -> None:
        message = response_start()
        CookieMiddleware.set_cookie(
            message,
            "theme",
            "dark",
            path="/app/",
            domain=".example.com",
            secure=True,
            httponly=True,
            samesite="Strict",
        )
        cookie = set_cookies(message["headers"])["theme"]
        assert (cookie["path"], cookie["domain"], cookie["samesite"]) == (
            "/app/",
            ".example.com",
            "Strict",
        )
        assert cookie["secure"] is True
        assert cookie["httponly"] is True

    def test_samesite_defaults_to_lax_and_none_leaves_it_out(self) -> None:
        lax, without = response_start(), response_start()
        CookieMiddleware.set_cookie(lax, "theme")
        CookieMiddleware.set_cookie(without, "theme", samesite=None)
        assert set_cookies(lax["headers"])["theme"]["samesite"] == "lax"
        assert b"samesite" not in without["headers"][0][1].lower()

    def test_an_unknown_samesite_is_refused_by_value(self) -> None:
        with pytest.raises(ValueError, match=r"samesite must be one of .* got 'loose'"):
            CookieMiddleware.set_cookie(response_start(), "theme", samesite="loose")

    def test_a_message_that_does_not_start_a_response_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"not to 'http\.response\.body'"):
            CookieMiddleware.set_cookie({"type": "http.response.body"}, "theme")


class TestDeleteCookie:
    def test_the_cookie_expires_now(self) -> None:
        message = response_start()
        CookieMiddleware.delete_cookie(message, "theme", path="/app/")
        cookie = set_cookies(message["headers"])["theme"]
        assert (cookie.value, cookie["max-age"], cookie["path"]) == ("", "0", "/app/")
        assert cookie["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"

    @pytest.mark.parametrize(
        ("key", "samesite"), [("__Host-id", None), ("__Secure-id", None), ("id", "None")]
    )
    def test_it_is_secure_where_browsers_would_ignore_it_otherwise(
        self, key: str, samesite: str | None
    ) -> None:
        message = response_start()
        CookieMiddleware.delete_cookie(message, key, samesite=samesite)
        assert set_cookies(message["headers"])[key]["secure"] is True

    def test_an_ordinary_cookie_is_deleted_without_secure(self) -> None:
        message = response_start()
        CookieMiddleware.delete_cookie(message, "theme")
        assert not set_cookies(message["headers"])["theme"]["secure"]


# Sessions over HTTP


@pytest.mark.django_db(transaction=True)
class TestHttpSession:
    async def test_a_request_without_cookie_gets_a_new_empty_session(self) -> None:
        inner = ScopeRecorder()
        scope = {"type": "websocket", "headers": []}
        await SessionMiddlewareStack(inner)(scope, None, None)  # type: ignore[arg-type]
        assert inner.scope["session"].session_key is None
        assert await database_sync_to_async(inner.scope["session"].is_empty)()

    async def test_a_written_session_is_saved_and_its_cookie_set(self) -> None:
        response = await get(session_app(write_colour))
        cookie = set_cookies(response["headers"])[settings.SESSION_COOKIE_NAME]
        assert await stored_session(cookie.value) == {"colour": "blue"}

    async def test_the_session_cookie_loads_the_saved_session(self) -> None:
        key = await new_session(colour="green")
        seen: list[Any] = []
        response = await get(
            session_app(lambda session: seen.append(session["colour"])),
            f"{settings.SESSION_COOKIE_NAME}={key}",
        )
        assert seen == ["green"]
        assert settings.SESSION_COOKIE_NAME not in set_cookies(response["headers"])

    async def test_an_untouched_session_sets_no_cookie_and_no_vary(self) -> None:
        response = await get(session_app())
        assert set_cookies(response["headers"]) == {}
        assert header_values(response["headers"], b"vary") == []

    async def test_a_session_that_was_read_adds_vary_cookie(self) -> None:
        response = await get(session_app(read_colour))
        assert header_values(response["headers"], b"vary") == [b"Cookie"]

    async def test_vary_cookie_joins_an_existing_vary_header(self) -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await database_sync_to_async(read_colour)(scope["session"])
            await send(response_start(headers=[(b"vary", b"Accept-Encoding")]))
            await send({"type": "http.response.body", "body": b""})

        response = await get(SessionMiddlewareStack(app))
        assert header_values(response["headers"], b"vary") == [b"Accept-Encoding, Cookie"]

    async def test_the_cookie_follows_the_session_cookie_settings(self, settings: Any) -> None:
        settings.SESSION_COOKIE_NAME = "hubsession"
        settings.SESSION_COOKIE_AGE = 600
        settings.SESSION_COOKIE_PATH = "/app/"
        settings.SESSION_COOKIE_DOMAIN = ".example.com"
        settings.SESSION_COOKIE_SECURE = True
        settings.SESSION_COOKIE_HTTPONLY = True
        settings.SESSION_COOKIE_SAMESITE = "Strict"
        response = await get(session_app(write_colour))
        cookie = set_cookies(response["headers"])["hubsession"]
        assert cookie["max-age"] == "600"
        assert (cookie["path"], cookie["domain"], cookie["samesite"]) == (
            "/app/",
            ".example.com",
            "Strict",
        )
        assert (cookie["secure"], cookie["httponly"]) == (True, True)

    async def test_httponly_and_secure_are_left_out_when_settings_are_off(
        self, settings: Any
    ) -> None:
        settings.SESSION_COOKIE_SECURE = False
        settings.SESSION_COOKIE_HTTPONLY = False
        response = await get(session_app(write_colour))
        cookie = set_cookies(response["headers"])[settings.SESSION_COOKIE_NAME]
        assert (cookie["secure"], cookie["httponly"]) == ("", "")

    async def test_expire_at_browser_close_sets_a_cookie_without_expiry(
        self, settings: Any
    ) -> None:
        settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
        response = await get(session_app(write_colour))
        cookie = set_cookies(response["headers"])[settings.SESSION_COOKIE_NAME]
        assert (cookie["max-age"], cookie["expires"]) == ("", "")

    async def test_save_every_request_saves_an_unmodified_session(self, settings: Any) -> None:
        settings.SESSION_SAVE_EVERY_REQUEST = True
        key = await new_session(colour="green")
        response = await get(session_app(), f"{settings.SESSION_COOKIE_NAME}={key}")
        assert set_cookies(response["headers"])[settings.SESSION_COOKIE_NAME].value == key

    async def test_without_save_every_request_an_unmodified_session_sets_no_cookie(
        self,
    ) -> None:
        key = await new_session(colour="green")
        response = await get(session_app(), f"{settings.SESSION_COOKIE_NAME}={key}")
        assert set_cookies(response["headers"]) == {}

    async def test_a_server_error_response_does_not_save_the_session(self) -> None:
        response = await get(session_app(write_colour, status=500))
        assert set_cookies(response["headers"]) == {}

    async def test_a_flushed_session_deletes_its_cookie(self) -> None:
        key = await new_session(colour="green")
        response = await get(session_app(flush), f"{settings.SESSION_COOKIE_NAME}={key}")
        cookie = set_cookies(response["headers"])[settings.SESSION_COOKIE_NAME]
        assert (cookie.value, cookie["max-age"]) == ("", "0")
        assert await stored_session(key) == {}

    async def test_the_applications_own_message_is_not_changed(self) -> None:
        sent: list[Message] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await database_sync_to_async(write_colour)(scope["session"])
            start = response_start(headers=[])
            sent.append(start)
            await send(start)
            await send({"type": "http.response.body", "body": b""})

        await get(SessionMiddlewareStack(app))
        assert sent[0]["headers"] == []

    async def test_a_nested_session_middleware_leaves_saving_to_the_outer_one(self) -> None:
        app = session_app(write_colour)
        response = await get(SessionMiddlewareStack(SessionMiddleware(app)))
        assert len(header_values(response["headers"], b"set-cookie")) == 1

    async def test_session_middleware_without_cookie_middleware_says_what_to_do(self) -> None:
        with pytest.raises(ValueError, match="wrap it in CookieMiddleware"):
            await SessionMiddleware(ScopeRecorder())({"type": "http", "headers": []}, None, None)  # type: ignore[arg-type]


# Sessions over WebSocket


class SessionConsumer(AsyncJsonWebsocketConsumer):
    """Stores what it is sent in the session (saving it when asked) and reports the session."""

    async def connect(self) -> None:
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        session = self.scope["session"]
        if "colour" in content:
            await database_sync_to_async(session.__setitem__)("colour", content["colour"])
        if content.get("save"):
            await database_sync_to_async(session.save)()
        colour = await database_sync_to_async(session.get)("colour")
        await self.send_json({"colour": colour, "session_key": session.session_key})


@pytest.mark.django_db(transaction=True)
class TestWebsocketSession:
    async def talk(self, message: dict[str, Any], cookie: str | None = None) -> Any:
        headers = [(b"cookie", cookie.encode())] if cookie else []
        app = SessionMiddlewareStack(SessionConsumer.as_asgi())
        communicator = WebsocketCommunicator(app, "/ws/", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to(message)
        reply = await communicator.receive_json_from()
        await communicator.disconnect()
        return reply

    async def test_a_session_saved_by_the_consumer_is_loaded_by_a_later_connection(
        self,
    ) -> None:
        first = await self.talk({"colour": "red", "save": True})
        later = await self.talk({}, f"{settings.SESSION_COOKIE_NAME}={first['session_key']}")
        assert later == {"colour": "red", "session_key": first["session_key"]}

    async def test_the_middleware_does_not_save_a_websocket_session(self) -> None:
        key = await new_session(colour="green")
        await self.talk({"colour": "red"}, f"{settings.SESSION_COOKIE_NAME}={key}")
        assert await stored_session(key) == {"colour": "green"}
