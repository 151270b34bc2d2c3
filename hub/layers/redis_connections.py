"""Where the Redis layer's keys live: hosts, shards, and one client per event loop.

``hosts`` takes what channels_redis takes, plus Cluster:

- ``"redis://host:6379/0"`` (or ``rediss://``, ``unix://``): one server;
- ``("host", 6379)``: one server;
- ``{"address": "redis://...", **client_kwargs}``: one server, with options
  such as ``password`` or ``socket_connect_timeout``;
- ``{"sentinels": [("h1", 26379), ...], "master_name": "mymaster",
  "sentinel_kwargs": {...}, **client_kwargs}``: the master a Sentinel
  group watches; after a failover, connections go to the new master;
- ``{"cluster": True, "address": "redis://one-node:7000", **client_kwargs}``:
  a Redis Cluster, discovered from any node.

Each entry is a *shard*. A name (channel, inbox or group) lives on one shard,
chosen by jump consistent hashing (Lamping and Veach, 2014) of its CRC-32:
adding an Nth host moves only 1/N of the names, where channels_redis's
``crc32 % N`` ring moves most of them. Inside a Cluster, Redis itself places
each key by its hash tag (see ``redis_scripts``).

redis-py's asyncio connections belong to the event loop that opened them, and
sync code reaches the layer through ``async_to_sync``, which runs each call in
a loop of its own. So each loop gets its own clients (and pools), closed when
that loop closes, as channels_redis does.
"""

from __future__ import annotations

import asyncio
import contextlib
import types
import weakref
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ReadOnlyError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Seconds to wait for a TCP connection to Redis: a sender must learn quickly
#: that Redis is away rather than hang (refused connections fail at once).
CONNECT_TIMEOUT = 5.0

#: Connections a loop's command pool opens at most, per server: a burst of
#: concurrent commands (thousands of consumers joining groups at once) waits
#: for a free one rather than opening more, so churn never multiplies
#: connections (redis-py's default pool opens up to 100, then fails). A
#: ``max_connections`` in a host entry overrides it.
POOL_SIZE = 16
#: Seconds a command waits for a free pooled connection before failing as
#: unavailable; enough for thousands of queued commands on a healthy server.
POOL_TIMEOUT = 20.0

HostSpec = str | tuple[str, int] | list[Any] | dict[str, Any]

#: Errors that mean "Redis is not there right now", as opposed to a bug.
UNAVAILABLE_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    ClusterDownError,
    TryAgainError,
    OSError,
)


def decode_hosts(hosts: Sequence[HostSpec] | None) -> list[dict[str, Any]]:
    """Each ``hosts`` entry as a dict of client arguments (see the module docstring)."""
    if not hosts:
        return [{"address": "redis://localhost:6379"}]
    if isinstance(hosts, str | bytes):
        raise TypeError(
            f"hosts must be a list of Redis hosts, even if there is only one: [{hosts!r}]"
        )
    decoded = []
    for entry in hosts:
        if isinstance(entry, dict):
            decoded.append(dict(entry))
        elif isinstance(entry, tuple | list):
            decoded.append({"host": entry[0], "port": int(entry[1])})
        elif isinstance(entry, str):
            decoded.append({"address": entry})
        else:
            raise TypeError(f"A hosts entry must be a URL, (host, port) or dict, got {entry!r}")
    return decoded


def describe(spec: dict[str, Any]) -> str:
    """A short name for a host entry, for log lines and errors (never the password)."""
    if "sentinels" in spec:
        sentinels = ",".join(f"{h}:{p}" for h, p in spec["sentinels"])
        return f"sentinel {spec.get('master_name')!r} via {sentinels}"
    if "address" in spec:
        address = str(spec["address"])
        scheme, _, rest = address.partition("://")
        rest = rest.rpartition("@")[2]
        return f"{'cluster ' if spec.get('cluster') else ''}{scheme}://{rest}"
    return f"redis://{spec.get('host', 'localhost')}:{spec.get('port', 6379)}"


def jump_hash(name: str, buckets: int) -> int:
    """The bucket of ``name`` among ``buckets`` by jump consistent hashing."""
    if buckets == 1:
        return 0
    key = zlib.crc32(name.encode("utf8"))
    bucket, candidate = -1, 0
    while candidate < buckets:
        bucket = candidate
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        candidate = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


Client = Redis | RedisCluster


class Shard:
    """One Redis deployment (server, Sentinel master or Cluster) and its clients per loop."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.cluster = bool(spec.get("cluster"))
        self.name = describe(spec)
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Client] = (
            weakref.WeakKeyDictionary()
        )
        self._blocking: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Client] = (
            weakref.WeakKeyDictionary()
        )

    def client(self, loop: asyncio.AbstractEventLoop) -> Client:
        """This loop's client for commands, created on first use."""
        client = self._clients.get(loop)
        if client is None:
            # One immediate retry replaces a pooled connection that a Redis
            # restart closed; redis-py's default (3 retries, backoff up to 10 s)
            # would keep a sender waiting for seconds to learn Redis is away.
            client = self._clients[loop] = self._make_client(retries=1)
            if isinstance(client, Redis) and type(client.connection_pool).__name__ == (
                "ConnectionPool"
            ):
                client.connection_pool = _bounded(client.connection_pool, self.spec)
        return client

    def blocking_client(self, loop: asyncio.AbstractEventLoop) -> Client:
        """This loop's client for readers' blocking reads.

        Apart from the command pool so a thousand normal channels' BLPOPs never
        starve senders, and without retries so a reader sees every lost
        connection (Redis may have restarted empty) and can tell its channels.
        """
        client = self._blocking.get(loop)
        if client is None:
            client = self._blocking[loop] = self._make_client(retries=0)
        return client

    def _make_client(self, retries: int) -> Client:
        kwargs = dict(self.spec)
        kwargs.pop("cluster", None)
        kwargs.setdefault("retry", Retry(NoBackoff(), retries))
        kwargs.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
        if self.cluster:
            address = kwargs.pop("address", None)
            if address is not None:
                return RedisCluster.from_url(address, **kwargs)
            return RedisCluster(**kwargs)
        if "sentinels" in kwargs:
            sentinels = kwargs.pop("sentinels")
            master_name = kwargs.pop("master_name")
            sentinel_kwargs = kwargs.pop("sentinel_kwargs", None) or {}
            sentinel_kwargs.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
            sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
            master: Redis = sentinel.master_for(master_name, **kwargs)
            return master
        address = kwargs.pop("address", None)
        if address is not None:
            return Redis.from_url(address, **kwargs)
        return Redis(**kwargs)

    async def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close ``loop``'s client and its connections (call on ``loop``)."""
        for clients in (self._clients, self._blocking):
            client = clients.pop(loop, None)
            if client is not None:
                await client.aclose()

    def forget_other_loops(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drop the clients of loops other than ``loop`` (they cannot be awaited from here)."""
        for clients in (self._clients, self._blocking):
            for other in list(clients):
                if other is not loop:
                    del clients[other]


def _bounded(pool: Any, spec: dict[str, Any]) -> BlockingConnectionPool:
    """A pool that waits for a free connection instead of opening a new one past its size."""
    return BlockingConnectionPool(
        connection_class=pool.connection_class,
        max_connections=int(spec.get("max_connections") or POOL_SIZE),
        timeout=POOL_TIMEOUT,
        **pool.connection_kwargs,
    )


class Shards:
    """The layer's shards, with a client per event loop and cleanup when a loop closes."""

    def __init__(self, hosts: Sequence[HostSpec] | None) -> None:
        self.shards = [Shard(spec) for spec in decode_hosts(hosts)]
        self._loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()

    def __len__(self) -> int:
        return len(self.shards)

    def index(self, name: str) -> int:
        """The shard holding ``name`` (a channel, inbox or group routing name)."""
        return jump_hash(name, len(self.shards))

    def client(self, index: int) -> Client:
        """The running loop's client for shard ``index``."""
        loop = asyncio.get_running_loop()
        if loop not in self._loops:
            self._loops.add(loop)
            self._close_with(loop)
        return self.shards[index].client(loop)

    def blocking_client(self, index: int) -> Client:
        """The running loop's client for blocking reads on shard ``index``."""
        self.client(index)  # registers the loop for cleanup
        return self.shards[index].blocking_client(asyncio.get_running_loop())

    def shard(self, index: int) -> Shard:
        return self.shards[index]

    def all(self) -> Iterable[tuple[int, Shard]]:
        return enumerate(self.shards)

    async def close(self) -> None:
        """Close the running loop's clients and forget the others' (their loops are gone)."""
        loop = asyncio.get_running_loop()
        for shard in self.shards:
            await shard.close(loop)
            shard.forget_other_loops(loop)
        self._loops.discard(loop)

    def _close_with(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close this loop's clients just before ``loop.close()``, as channels_redis does.

        ``async_to_sync`` from a thread without a loop runs each call in a new
        loop and closes it; without this, every such call would leave its
        connections open until garbage collection.
        """
        original_close = loop.close
        shards = weakref.ref(self)

        def close(self_loop: asyncio.AbstractEventLoop) -> None:
            owner = shards()
            if owner is not None and not self_loop.is_running() and not self_loop.is_closed():
                for shard in owner.shards:
                    with contextlib.suppress(Exception):  # a broken socket at loop close
                        self_loop.run_until_complete(shard.close(self_loop))
            self_loop.close = original_close  # type: ignore[method-assign]
            original_close()

        loop.close = types.MethodType(close, loop)  # type: ignore[method-assign]
