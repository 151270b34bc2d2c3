"""Redis deployments for the layer tests, started once per module or per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_servers import RedisServer, start_cluster, start_sentinel_group


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop and start again."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run the README's test command")
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def two_redis_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """Two independent redis-servers, for sharding."""
    servers = [RedisServer(tmp_path_factory.mktemp("shard")).start() for _ in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """A Redis Cluster of three masters."""
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """``[master, replica, sentinel]``: a master that one Sentinel can fail over."""
    servers = start_sentinel_group(tmp_path)
    try:
        yield servers
    finally:
        for server in reversed(servers):
            server.stop()
