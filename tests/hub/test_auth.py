"""Users on connections: ``hub.auth``.

Every test touching users or sessions is ``django_db(transaction=True)``:
consumers reach the database through ``database_sync_to_async``, in another
thread with its own connection, so rows the test wrapper's transaction holds
back would be invisible to them and theirs to the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in, user_logged_out
from django.contrib.auth.models import AnonymousUser, User

from hub.auth import AuthMiddleware, AuthMiddlewareStack, UserLazyObject, get_user, login, logout
from hub.db import database_sync_to_async
from hub.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from hub.sessions import SessionMiddlewareStack
from hub.testing import HttpCommunicator, WebsocketCommunicator
from hub.testing.login import session_cookie_for
from hub.types import Receive, Scope, Send

pytestmark = pytest.mark.django_db(transaction=True)


class WhoAmIConsumer(AsyncWebsocketConsumer):
    """Sends the username of ``scope["user"]`` ("" when anonymous) on connect."""

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=self.scope["user"].username)


class LoginConsumer(AsyncJsonWebsocketConsumer):
    """Logs in or out on request, saves the session, reports user and session key."""

    async def connect(self) -> None:
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content["action"] == "login":
            user = await database_sync_to_async(authenticate)(
                username=content["username"], password=content["password"]
            )
            await login(self.scope, user)
        else:
            await logout(self.scope)
        await database_sync_to_async(self.scope["session"].save)()
        await self.send_json(
            {
                "user": self.scope["user"].username,
                "session_key": self.scope["session"].session_key,
            }
        )


class SignupConsumer(AsyncWebsocketConsumer):
    """Creates the user it is sent the name of, through database_sync_to_async."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await database_sync_to_async(User.objects.create_user)(text_data, password="pw")
        await self.send(text_data="created")


async def create_user(username: str = "alice", password: str = "secret") -> User:
    user: User = await database_sync_to_async(User.objects.create_user)(username, password=password)
    return user


def cookie_header(session_key: str) -> list[tuple[bytes, bytes]]:
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode())]


async def whoami(headers: list[tuple[bytes, bytes]] | None = None, user: Any = None) -> str | bytes:
    app = AuthMiddlewareStack(WhoAmIConsumer.as_asgi())
    communicator = WebsocketCommunicator(app, "/ws/", headers=headers, user=user)
    connected, _ = await communicator.connect()
    assert connected
    name = await communicator.receive_from()
    await communicator.disconnect()
    return name


@pytest.fixture
def signals() -> Iterator[list[tuple[str, Any]]]:
    """Records ``user_logged_in`` / ``user_logged_out`` as (signal, username)."""
    received: list[tuple[str, Any]] = []

    def logged_in(sender: Any, user: Any, request: Any, **kwargs: Any) -> None:
        received.append(("in", user.username))

    def logged_out(sender: Any, user: Any, request: Any, **kwargs: Any) -> None:
        received.append(("out", user.username))

    user_logged_in.connect(logged_in)
    user_logged_out.connect(logged_out)
    yield received
    user_logged_in.disconnect(logged_in)
    user_logged_out.disconnect(logged_out)


class TestAuthMiddleware:
    async def test_without_a_cookie_the_user_is_anonymous(self) -> None:
        assert await whoami() == ""

    async def test_the_communicators_user_argument_logs_in(self) -> None:
        assert await whoami(user=await create_user("bob")) == "bob"

    async def test_a_session_cookie_of_a_logged_in_user_gives_that_user(self) -> None:
        user = await create_user("carol")
        cookie = await database_sync_to_async(session_cookie_for)(user)
        assert await whoami(headers=[(b"cookie", cookie)]) == "carol"

    async def test_a_password_change_logs_out_existing_sessions(self) -> None:
        user = await create_user("dave")
        cookie = await database_sync_to_async(session_cookie_for)(user)
        user.set_password("new password")
        await database_sync_to_async(user.save)()
        assert await whoami(headers=[(b"cookie", cookie)]) == ""

    async def test_an_unknown_session_key_gives_an_anonymous_user(self) -> None:
        assert await whoami(headers=cookie_header("nosuchsessionkey123")) == ""

    async def test_the_user_is_resolved_before_the_application_runs(self) -> None:
        seen: list[bool] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            # No await before this read: a lazy lookup would need the database here.
            seen.append(scope["user"].is_authenticated)

        user = await create_user()
        cookie = await database_sync_to_async(session_cookie_for)(user)
        scope = {"type": "websocket", "headers": [(b"cookie", cookie)]}
        await AuthMiddlewareStack(app)(scope, None, None)  # type: ignore[arg-type]
        assert seen == [True]

    async def test_a_user_set_by_an_outer_middleware_is_kept(self) -> None:
        seen: list[Any] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["user"])

        token_user = User(username="from-a-token")
        scope = {"type": "websocket", "headers": [], "user": token_user}
        await SessionMiddlewareStack(AuthMiddleware(app))(scope, None, None)  # type: ignore[arg-type]
        assert seen == [token_user]

    async def test_without_session_middleware_the_error_says_what_to_do(self) -> None:
        message = (
            r"AuthMiddleware needs scope\['session'\]: wrap it in SessionMiddleware "
            r"or use AuthMiddlewareStack"
        )
        with pytest.raises(ValueError, match=message):
            await AuthMiddleware(WhoAmIConsumer.as_asgi())({"type": "websocket"}, None, None)  # type: ignore[arg-type]

    def test_an_unresolved_user_explains_itself_when_read(self) -> None:
        with pytest.raises(ValueError, match="before AuthMiddleware looked the user up"):
            _ = UserLazyObject().username

    async def test_http_requests_get_the_user_too(self) -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            body = scope["user"].username.encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

        user = await create_user("erin")
        communicator = HttpCommunicator(AuthMiddlewareStack(app), "GET", "/", user=user)
        assert (await communicator.get_response())["body"] == b"erin"


class TestLoginLogout:
    async def converse(self, *messages: dict[str, Any], session_key: str | None = None) -> Any:
        app = AuthMiddlewareStack(LoginConsumer.as_asgi())
        headers = cookie_header(session_key) if session_key else []
        communicator = WebsocketCommunicator(app, "/ws/", headers=headers)
        assert (await communicator.connect())[0]
        replies = []
        for message in messages:
            await communicator.send_json_to(message)
            replies.append(await communicator.receive_json_from())
        await communicator.disconnect()
        return replies

    async def test_a_login_is_seen_by_a_later_connection_with_the_session_cookie(self) -> None:
        await create_user("alice", "secret")
        [reply] = await self.converse(
            {"action": "login", "username": "alice", "password": "secret"}
        )
        assert reply["user"] == "alice"
        assert await whoami(headers=cookie_header(reply["session_key"])) == "alice"

    async def test_login_cycles_the_session_key(self) -> None:
        await create_user("alice", "secret")
        [anonymous] = await self.converse({"action": "logout"})
        [logged_in] = await self.converse(
            {"action": "login", "username": "alice", "password": "secret"},
            session_key=anonymous["session_key"],
        )
        assert logged_in["session_key"] != anonymous["session_key"]
        assert await whoami(headers=cookie_header(anonymous["session_key"])) == ""

    async def test_logout_makes_the_user_anonymous_now_and_later(self) -> None:
        await create_user("alice", "secret")
        login_reply, logout_reply = await self.converse(
            {"action": "login", "username": "alice", "password": "secret"},
            {"action": "logout"},
        )
        assert logout_reply["user"] == ""
        assert await whoami(headers=cookie_header(login_reply["session_key"])) == ""
        assert await whoami(headers=cookie_header(logout_reply["session_key"])) == ""

    async def test_login_and_logout_send_djangos_signals(
        self, signals: list[tuple[str, Any]]
    ) -> None:
        await create_user("alice", "secret")
        await self.converse(
            {"action": "login", "username": "alice", "password": "secret"},
            {"action": "logout"},
        )
        assert signals == [("in", "alice"), ("out", "alice")]

    async def test_logout_of_an_anonymous_user_sends_no_signal(
        self, signals: list[tuple[str, Any]]
    ) -> None:
        await self.converse({"action": "logout"})
        assert signals == []

    async def test_logging_in_another_user_drops_the_previous_users_session_data(self) -> None:
        alice = await create_user("alice")
        bob = await create_user("bob")
        scope: dict[str, Any] = {"type": "websocket", "headers": []}
        captured: list[Scope] = []

        async def app(inner_scope: Scope, receive: Receive, send: Send) -> None:
            captured.append(inner_scope)

        await SessionMiddlewareStack(app)(scope, None, None)  # type: ignore[arg-type]
        scope = captured[0]
        await login(scope, alice)
        await database_sync_to_async(scope["session"].__setitem__)("cart", ["book"])
        await login(scope, bob)
        assert await database_sync_to_async(scope["session"].get)("cart") is None
        assert await get_user(scope) == bob

    async def test_login_of_an_anonymous_user_is_refused(self) -> None:
        scope = {"session": object(), "user": AnonymousUser()}
        with pytest.raises(ValueError, match="login\\(\\) needs a user"):
            await login(scope, None)

    async def test_login_with_several_backends_and_none_named_is_refused(
        self, settings: Any
    ) -> None:
        settings.AUTHENTICATION_BACKENDS = [
            "django.contrib.auth.backends.ModelBackend",
            "django.contrib.auth.backends.AllowAllUsersModelBackend",
        ]
        user = await create_user()
        scope: dict[str, Any] = {"type": "websocket", "headers": []}
        captured: list[Scope] = []

        async def app(inner_scope: Scope, receive: Receive, send: Send) -> None:
            captured.append(inner_scope)

        await SessionMiddlewareStack(app)(scope, None, None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="cannot choose among 2 AUTHENTICATION_BACKENDS"):
            await login(captured[0], user)

    @pytest.mark.parametrize("function", [get_user, logout])
    async def test_functions_without_a_session_say_what_to_do(self, function: Any) -> None:
        with pytest.raises(ValueError, match=r"needs scope\['session'\]: wrap the application"):
            await function({"type": "websocket"})


class LookupConsumer(AsyncWebsocketConsumer):
    """Answers "True" or "False": does a user with the name it is sent exist?"""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        exists = await database_sync_to_async(User.objects.filter(username=text_data).exists)()
        await self.send(text_data=str(exists))


@pytest.fixture
def user_made_in_the_test_thread() -> User:
    """A user written by the test's own thread (a sync fixture, before the loop runs)."""
    user: User = User.objects.create_user("made-by-fixture")
    return user


class TestDatabaseFromConsumers:
    async def test_a_user_made_by_the_test_thread_is_visible_to_a_consumer(
        self, user_made_in_the_test_thread: User
    ) -> None:
        # Under plain django_db this row would sit in the test thread's open
        # transaction, and the consumer's thread would fail with "database
        # table is locked": this is the test that needs transaction=True.
        communicator = WebsocketCommunicator(LookupConsumer.as_asgi(), "/ws/")
        assert (await communicator.connect())[0]
        await communicator.send_to(text_data=user_made_in_the_test_thread.username)
        assert await communicator.receive_from() == "True"
        await communicator.disconnect()

    async def test_a_user_created_by_a_consumer_is_visible_to_the_test(self) -> None:
        communicator = WebsocketCommunicator(SignupConsumer.as_asgi(), "/ws/")
        assert (await communicator.connect())[0]
        await communicator.send_to(text_data="zoe")
        assert await communicator.receive_from() == "created"
        await communicator.disconnect()
        assert await User.objects.filter(username="zoe").aexists()
