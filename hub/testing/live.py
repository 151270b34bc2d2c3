"""hub's real listeners on free ports, for end-to-end tests with real clients.

:class:`LiveHub` runs a :class:`hub.server.Hub` in a background thread with its
own event loop, so a test may drive it with blocking clients (a browser,
``smtplib``, ``paho-mqtt``) as well as async ones. The pytest plugin wraps it
as the ``hub_live_server`` fixture; Django's ``transactional_db`` lets the
server's threads see what the test wrote.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from django.test import TransactionTestCase

from hub.listeners import ListenerSpec, listener_from_setting, parse_listener
from hub.server import Hub
from hub.types import ASGIApp

#: Seconds the server may take to start or stop.
START_TIMEOUT = 30.0


class LiveHub:
    """Serve ``app`` on ``listeners`` (each ``"proto"`` or ``"proto://address?opts"``).

    A bare protocol name listens on 127.0.0.1 on a free port.
    """

    def __init__(
        self,
        app: ASGIApp,
        listeners: Sequence[str | ListenerSpec] = ("http",),
        *,
        shutdown_grace: float = 5.0,
    ) -> None:
        self.app = app
        self.listeners = [_spec(item) for item in listeners]
        self.shutdown_grace = shutdown_grace
        self.hub: Hub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> LiveHub:
        """Start serving; returns once every listener accepts connections.

        Raises:
            RuntimeError: the server failed to start (with the cause chained).
        """
        self._thread = threading.Thread(target=self._run, name="hub-live-server", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT):
            raise RuntimeError(f"hub did not start within {START_TIMEOUT} s")
        if self._error is not None:
            raise RuntimeError(f"hub failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Shut down gracefully and wait for the server thread to end."""
        if self._loop is not None and self.hub is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self.hub.stop)
            self._thread.join(START_TIMEOUT)

    def __enter__(self) -> LiveHub:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def urls(self) -> dict[str, list[str]]:
        """Bound URLs by protocol: ``{"http": ["http://127.0.0.1:40123"]}``."""
        assert self.hub is not None, "start() the server first"
        urls: dict[str, list[str]] = {}
        for protocol, url in self.hub.urls():
            urls.setdefault(protocol, []).append(url)
        return urls

    def url(self, protocol: str = "http") -> str:
        """The first bound URL of ``protocol``."""
        return self.urls[protocol][0]

    def address(self, protocol: str = "http") -> tuple[str, int]:
        """``(host, port)`` of the first listener of ``protocol``."""
        assert self.hub is not None, "start() the server first"
        for spec, server in self.hub.servers:
            if spec.protocol == protocol:
                host, port = server.bound_addresses[0][:2]
                return host, port
        raise KeyError(f"no {protocol} listener; have {sorted(self.urls)}")

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        finally:
            self._started.set()
            loop.close()

    async def _serve(self) -> None:
        self.hub = Hub(self.app, self.listeners, shutdown_grace=self.shutdown_grace)
        try:
            await self.hub.serve(install_signals=False, on_started=lambda _: self._started.set())
        except BaseException as exc:
            self._error = exc
            raise


def _spec(item: str | ListenerSpec) -> ListenerSpec:
    if isinstance(item, ListenerSpec):
        return item
    if "://" in item:
        return listener_from_setting(item)
    if item == "tcp":
        return parse_listener(item, "test=127.0.0.1:0")
    return parse_listener(item, "127.0.0.1:0")


class HubLiveServerTestCase(TransactionTestCase):
    """A Django test case with hub's real listeners serving the project.

    Channels' ``ChannelsLiveServerTestCase`` under hub's name (the Channels
    name is an alias): ``live_server_url`` and ``live_server_ws_url`` reach the
    project's ASGI application, with static files when staticfiles is
    installed, for Selenium or WebSocket clients. The server runs in a thread
    of the test process, so it shares the test database.
    """

    host = "127.0.0.1"
    serve_static = True
    #: Listeners to start, as for :class:`LiveHub`.
    listeners: Sequence[str | ListenerSpec] = ("http",)
    _live_hub: LiveHub

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        from django.apps import apps

        from hub.cli import load_application

        static = cls.serve_static and apps.is_installed("django.contrib.staticfiles")
        cls._live_hub = LiveHub(load_application(None, static=static), cls.listeners).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls._live_hub.stop()
        super().tearDownClass()

    @property
    def live_server_url(self) -> str:
        return self._live_hub.url("http")

    @property
    def live_server_ws_url(self) -> str:
        return "ws" + self.live_server_url.removeprefix("http")


#: Channels' name for :class:`HubLiveServerTestCase`.
ChannelsLiveServerTestCase = HubLiveServerTestCase
