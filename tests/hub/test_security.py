"""Origin checks on WebSocket handshakes: ``hub.security.websocket``."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hub.generic.websocket import AsyncWebsocketConsumer
from hub.security.websocket import AllowedHostsOriginValidator, OriginValidator, WebsocketDenier
from hub.testing import HttpCommunicator, WebsocketCommunicator
from hub.types import ASGIApp, Receive, Scope, Send


class AcceptingConsumer(AsyncWebsocketConsumer):
    """Accepts every handshake and counts the connections it served."""

    connections = 0

    async def connect(self) -> None:
        type(self).connections += 1
        await self.accept()


@pytest.fixture(autouse=True)
def reset_connections() -> None:
    AcceptingConsumer.connections = 0


async def handshake(app: ASGIApp, *origins: str) -> tuple[bool, Any]:
    """Connect with ``origins`` as Origin headers; the (accepted, detail) pair."""
    headers = [(b"origin", origin.encode("latin-1")) for origin in origins]
    communicator = WebsocketCommunicator(app, "/ws/chat/", headers=headers)
    result = await communicator.connect()
    await communicator.disconnect()
    return result


def validator(*allowed: str) -> OriginValidator:
    return OriginValidator(AcceptingConsumer.as_asgi(), list(allowed))


class TestOriginValidator:
    async def test_an_allowed_origin_reaches_the_application(self) -> None:
        assert await handshake(validator("example.com"), "http://example.com") == (True, None)
        assert AcceptingConsumer.connections == 1

    async def test_another_origin_is_refused_before_the_application_runs(self) -> None:
        accepted, code = await handshake(validator("example.com"), "http://evil.example")
        assert (accepted, code) == (False, 1000)
        assert AcceptingConsumer.connections == 0

    async def test_a_missing_origin_is_refused(self) -> None:
        assert await handshake(validator("example.com")) == (False, 1000)

    @pytest.mark.parametrize(
        "origin", ["null", "file://", "http://[::1", "http://example.com:99999"]
    )
    async def test_an_origin_that_is_not_a_usable_url_is_refused(self, origin: str) -> None:
        assert (await handshake(validator("example.com"), origin))[0] is False

    async def test_several_origin_headers_are_refused(self) -> None:
        app = validator("example.com")
        assert (await handshake(app, "http://example.com", "http://example.com"))[0] is False

    @pytest.mark.parametrize("origin", ["http://example.com", "https://chat.example.com"])
    async def test_a_leading_dot_allows_the_domain_and_its_subdomains(self, origin: str) -> None:
        assert (await handshake(validator(".example.com"), origin))[0] is True

    async def test_a_leading_dot_does_not_allow_a_lookalike_domain(self) -> None:
        assert (await handshake(validator(".example.com"), "http://badexample.com"))[0] is False

    async def test_hosts_compare_case_insensitively(self) -> None:
        assert (await handshake(validator("Example.COM"), "http://EXAMPLE.com"))[0] is True

    @pytest.mark.parametrize("origin", [None, "http://anything.test", "null"])
    async def test_a_star_allows_every_origin_and_none(self, origin: str | None) -> None:
        origins = [origin] if origin else []
        assert (await handshake(validator("*"), *origins))[0] is True

    async def test_a_pattern_with_a_scheme_refuses_another_scheme(self) -> None:
        app = validator("https://example.com")
        assert (await handshake(app, "http://example.com"))[0] is False
        assert (await handshake(app, "https://example.com"))[0] is True

    async def test_a_port_other_than_the_patterns_is_refused(self) -> None:
        app = validator("http://example.com:8000")
        assert (await handshake(app, "http://example.com:9000"))[0] is False
        assert (await handshake(app, "http://example.com:8000"))[0] is True

    async def test_a_missing_port_means_the_schemes_default(self) -> None:
        assert (await handshake(validator("https://example.com"), "https://example.com:443"))[0]
        assert (await handshake(validator("http://example.com:80"), "http://example.com"))[0]

    async def test_a_pattern_without_scheme_allows_any_port(self) -> None:
        assert (await handshake(validator("example.com"), "https://example.com:8443"))[0]

    async def test_a_pattern_without_scheme_but_with_a_port_checks_the_port(self) -> None:
        app = validator("example.com:8000")
        assert (await handshake(app, "http://example.com:8000"))[0] is True
        assert (await handshake(app, "http://example.com:9000"))[0] is False

    async def test_an_ipv6_origin_matches_its_bracketed_pattern(self) -> None:
        assert (await handshake(validator("[::1]"), "http://[::1]:8000"))[0] is True

    async def test_a_refusal_is_logged_once_with_origin_and_path(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="hub.security"):
            await handshake(validator("example.com"), "http://evil.example")
        [record] = [r for r in caplog.records if r.name == "hub.security"]
        assert record.levelno == logging.WARNING
        assert "'http://evil.example'" in record.getMessage()
        assert "/ws/chat/" in record.getMessage()

    async def test_a_missing_origin_is_logged_as_missing(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="hub.security"):
            await handshake(validator("example.com"))
        assert "no Origin header" in caplog.text

    async def test_http_scopes_pass_through_without_an_origin(self) -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        communicator = HttpCommunicator(OriginValidator(app, ["example.com"]), "GET", "/")
        assert (await communicator.get_response())["status"] == 204

    def test_a_single_string_of_origins_is_refused_with_the_fix(self) -> None:
        with pytest.raises(TypeError, match=r"write \['example.com'\]"):
            OriginValidator(AcceptingConsumer.as_asgi(), "example.com")  # type: ignore[arg-type]


class TestAllowedHostsOriginValidator:
    async def test_hosts_of_allowed_hosts_are_allowed(self, settings: Any) -> None:
        settings.ALLOWED_HOSTS = ["example.com"]
        app = AllowedHostsOriginValidator(AcceptingConsumer.as_asgi())
        assert (await handshake(app, "https://example.com"))[0] is True
        assert (await handshake(app, "https://evil.example"))[0] is False

    async def test_debug_with_empty_allowed_hosts_allows_local_hosts(self, settings: Any) -> None:
        settings.DEBUG = True
        settings.ALLOWED_HOSTS = []
        app = AllowedHostsOriginValidator(AcceptingConsumer.as_asgi())
        for origin in ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"]:
            assert (await handshake(app, origin))[0] is True, origin
        assert (await handshake(app, "http://example.com"))[0] is False

    async def test_without_debug_empty_allowed_hosts_allows_nothing(self, settings: Any) -> None:
        settings.DEBUG = False
        settings.ALLOWED_HOSTS = []
        app = AllowedHostsOriginValidator(AcceptingConsumer.as_asgi())
        assert (await handshake(app, "http://localhost:8000"))[0] is False

    async def test_debug_does_not_widen_a_non_empty_allowed_hosts(self, settings: Any) -> None:
        settings.DEBUG = True
        settings.ALLOWED_HOSTS = ["example.com"]
        app = AllowedHostsOriginValidator(AcceptingConsumer.as_asgi())
        assert (await handshake(app, "http://localhost:8000"))[0] is False

    async def test_the_setting_is_read_at_each_handshake(self, settings: Any) -> None:
        settings.ALLOWED_HOSTS = ["example.com"]
        app = AllowedHostsOriginValidator(AcceptingConsumer.as_asgi())
        settings.ALLOWED_HOSTS = ["example.org"]
        assert (await handshake(app, "http://example.org"))[0] is True


class TestWebsocketDenier:
    async def test_every_handshake_is_answered_with_a_close(self) -> None:
        communicator = WebsocketCommunicator(WebsocketDenier.as_asgi(), "/ws/")
        await communicator.send_input({"type": "websocket.connect"})
        assert await communicator.receive_output() == {"type": "websocket.close"}
        await communicator.disconnect()
