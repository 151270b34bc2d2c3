"""Fixtures shared by the whole suite: real servers on free loopback ports."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
from django.db import connections

from hub.db import database_sync_to_async
from tests.servers import start_redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free 127.0.0.1 port, for the whole session."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run the README's test command")
    process, url = start_redis_server()
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(autouse=True)
async def forget_orm_thread_connection() -> AsyncIterator[None]:
    """Drop the ORM thread's connection after each test.

    That thread outlives the test; left open, its connection makes the next
    test's ``close_old_connections`` query the database even when that test
    has no ``django_db`` mark (and in-memory SQLite ignores ``close()``).
    """
    yield

    def forget() -> None:
        for connection in connections.all(initialized_only=True):
            del connections[connection.alias]

    await database_sync_to_async(forget)()
