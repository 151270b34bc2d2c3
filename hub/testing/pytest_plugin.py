"""hub's pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

``hub_live_server``
    A factory: ``hub_live_server(app=None, listeners=("http",))`` starts hub's
    real listeners on free 127.0.0.1 ports in a background thread and returns
    a :class:`hub.testing.live.LiveHub` (``.url("http")``, ``.address("mqtt")``);
    every server it started is stopped after the test. ``app`` defaults to the
    Django project's ASGI application. Use it with ``transactional_db`` (or
    ``django_db(transaction=True)``) so the server's threads see the test's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from hub.testing.live import LiveHub
from hub.types import ASGIApp


@pytest.fixture
def hub_live_server() -> Iterator[Callable[..., LiveHub]]:
    started: list[LiveHub] = []

    def start(app: ASGIApp | None = None, listeners: Sequence[Any] = ("http",)) -> LiveHub:
        if app is None:
            from hub.cli import load_application

            app = load_application(None)
        server = LiveHub(app, listeners).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
