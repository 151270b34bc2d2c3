"""The broker's state in Redis: one MQTT broker made of many hub processes.

Select it on the broker class; nothing else changes::

    class Broker(BrokerConsumer):
        state = RedisBrokerState()  # the hosts of CHANNEL_LAYERS["default"]

Subscriptions, retained messages and sessions (with their offline queues)
then live in Redis, so a client subscribed through one process receives what
a client publishes to another, a retained message set through any process is
sent on subscribe through every process, and a persistent session resumes on
whichever process the client reconnects to. Messages still travel to online
clients through the channel layer, which must be a cross-process one (the
Redis layer) for the same reason.

Keys (``P`` is the ``prefix`` argument, ``mqtt`` by default)::

    P:c:{client}        hash   "sid" session id, "ch" channel ("" offline),
                               "exp" wall-clock ms the offline session ends
    P:u:{client}        hash   topic filter -> packed subscription options
    P:q:{client}        list   packed (time, message) kept while offline
    {P}:f:<filter>      hash   client id -> packed (session id, options)
    {P}:filters         set    filters with wildcards, and shared ones
    {P}:t:<filter>      string turn counter of a shared subscription
    {P}:r               hash   topic -> packed (time, retained message)

A client's keys share its hash tag, and each script below touches one
client's keys or only the ``{P}`` keys, so the state works on a Redis
Cluster (where the ``{P}`` keys live on one node). Each index entry carries
the session id that created it: a publish ignores, and a cleanup removes,
only entries of the session they belong to, so a session expiring while its
client reconnects cannot remove the new session's subscriptions.

Times are wall-clock in Redis (hosts run NTP) and turned into this process's
``time.monotonic()`` on the way out, as :class:`~hub.mqtt.state.BrokerState`
promises. A process that dies without its clients disconnecting leaves their
sessions marked online until each client connects again (a takeover).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]
from redis.exceptions import NoScriptError

from hub.layers.redis_connections import Client, HostSpec, Shards
from protocols.mqtt.topics import parse_shared_subscription, topic_matches

from .state import MAX_OFFLINE_MESSAGES, BrokerState, Delivery, SubscriptionOptions

__all__ = ["RedisBrokerState"]

#: Take (or resume) a session. KEYS: client, subs, queue. ARGV: sid, channel, clean, now_ms.
#: Returns {kept (0/1), old session id or false, filters of a dropped session...}.
_ATTACH = """
local old_sid = redis.call('HGET', KEYS[1], 'sid')
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp') or '0')
local expired = exp > 0 and exp <= tonumber(ARGV[4])
if old_sid and not expired and ARGV[3] == '0' then
  redis.call('HSET', KEYS[1], 'ch', ARGV[2])
  redis.call('HDEL', KEYS[1], 'exp')
  return {1, old_sid}
end
local result = {0, old_sid or false}
if old_sid then
  for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do table.insert(result, f) end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'sid', ARGV[1], 'ch', ARGV[2])
return result
"""

#: The connection ended. KEYS: client, subs, queue. ARGV: channel, expiry_s, now_ms.
#: Returns false (not this channel's), {sid} (kept) or {sid, filters...} (dropped).
_DETACH = """
if redis.call('HGET', KEYS[1], 'ch') ~= ARGV[1] then return false end
local sid = redis.call('HGET', KEYS[1], 'sid')
local expiry = tonumber(ARGV[2])
if expiry > 0 then
  redis.call('HSET', KEYS[1], 'ch', '')
  if expiry < 4294967295 then
    redis.call('HSET', KEYS[1], 'exp', tonumber(ARGV[3]) + expiry * 1000)
  end
  return {sid}
end
local result = {sid}
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do table.insert(result, f) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return result
"""

#: Subscribe or unsubscribe for the client's current connection.
#: KEYS: client, subs. ARGV: channel, filter, packed options ("" to remove).
#: Returns false (not this channel's) or {sid, existed (0/1)}.
_SUBSCRIPTION = """
if redis.call('HGET', KEYS[1], 'ch') ~= ARGV[1] then return false end
local existed = redis.call('HEXISTS', KEYS[2], ARGV[2])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
return {redis.call('HGET', KEYS[1], 'sid'), existed}
"""

#: Index a subscription. KEYS: filter index, filters set. ARGV: client, packed, filter,
#: registered ("1" for wildcard and shared filters).
_INDEX_ADD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] == '1' then redis.call('SADD', KEYS[2], ARGV[3]) end
"""

#: Unindex the subscriptions of one session. KEYS: filters set, then one index per filter.
#: ARGV: client, sid, then the filters.
_INDEX_REMOVE = """
for i = 2, #KEYS do
  local packed = redis.call('HGET', KEYS[i], ARGV[1])
  if packed and cmsgpack.unpack(packed)[1] == ARGV[2] then
    redis.call('HDEL', KEYS[i], ARGV[1])
    if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('SREM', KEYS[1], ARGV[i + 1]) end
  end
end
"""

#: Keep a message for an offline client. KEYS: client, queue. ARGV: packed, max.
_ENQUEUE = """
if redis.call('HGET', KEYS[1], 'ch') ~= '' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
return 1
"""

#: Take the offline queue. KEYS: queue.
_DRAIN = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return items
"""

#: Drop a session whose expiry passed. KEYS: client, subs, queue. ARGV: now_ms.
#: Returns false or {sid, filters...}.
_REAP = """
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp') or '0')
if exp == 0 or exp > tonumber(ARGV[1]) then return false end
local result = {redis.call('HGET', KEYS[1], 'sid')}
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do table.insert(result, f) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return result
"""

_SCRIPTS = {
    name: (source, hashlib.sha1(source.encode()).hexdigest())
    for name, source in {
        "ATTACH": _ATTACH,
        "DETACH": _DETACH,
        "SUBSCRIPTION": _SUBSCRIPTION,
        "INDEX_ADD": _INDEX_ADD,
        "INDEX_REMOVE": _INDEX_REMOVE,
        "ENQUEUE": _ENQUEUE,
        "DRAIN": _DRAIN,
        "REAP": _REAP,
    }.items()
}


def _pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def _unpack(value: bytes) -> Any:
    return msgpack.unpackb(value, raw=False)


def _options(packed: list[Any]) -> SubscriptionOptions:
    qos, no_local, retain_as_published, identifier = packed
    return SubscriptionOptions(qos, bool(no_local), bool(retain_as_published), identifier)


def _filter(name: str) -> str:
    """The topic filter of a subscription (without ``$share/group/``)."""
    shared = parse_shared_subscription(name)
    return name if shared is None else shared.topic_filter


def _monotonic(wall: float) -> float:
    """A wall-clock time as this process's ``time.monotonic()``."""
    return time.monotonic() - (time.time() - wall)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBrokerState(BrokerState):
    """:class:`~hub.mqtt.state.BrokerState` in Redis, shared by every process (see the module).

    Args:
        hosts: one Redis deployment, as one entry of the Redis layer's
            ``hosts`` (URL, ``(host, port)``, Sentinel or Cluster dict); by
            default the first host of ``CHANNEL_LAYERS["default"]``, read on
            first use. The state is not sharded: extra entries are refused.
        prefix: prefix of every key (no braces), so several brokers can
            share a server.
        max_offline_messages: messages kept per offline session; the oldest
            go first.
    """

    def __init__(
        self,
        hosts: Sequence[HostSpec] | None = None,
        prefix: str = "mqtt",
        max_offline_messages: int = MAX_OFFLINE_MESSAGES,
    ) -> None:
        if not prefix or any(c in prefix for c in "{} "):
            raise ValueError(f"prefix must be non-empty, without braces or spaces, got {prefix!r}")
        if hosts is not None and len(hosts) != 1:
            raise ValueError(f"RedisBrokerState takes one Redis deployment, got {len(hosts)}")
        self.hosts = hosts
        self.prefix = prefix
        self.max_offline_messages = max_offline_messages
        self._shards: Shards | None = None

    # Keys ----------------------------------------------------------------------

    def _client_keys(self, client_id: str) -> list[str]:
        tag = client_id
        if "{" in client_id or "}" in client_id or not client_id:
            tag = hashlib.sha1(client_id.encode()).hexdigest()
        return [f"{self.prefix}:{kind}:{{{tag}}}" for kind in "cuq"]

    def _index(self, topic_filter: str) -> str:
        return f"{{{self.prefix}}}:f:{topic_filter}"

    @property
    def _filters(self) -> str:
        return f"{{{self.prefix}}}:filters"

    @property
    def _retained(self) -> str:
        return f"{{{self.prefix}}}:r"

    # Redis ---------------------------------------------------------------------

    def client(self) -> Client:
        """This event loop's Redis client."""
        if self._shards is None:
            hosts = self.hosts
            if hosts is None:
                from hub.layers import channel_layers

                config = channel_layers.configs.get("default", {}).get("CONFIG", {})
                hosts = list(config.get("hosts") or [])[:1] or None
            self._shards = Shards(hosts)
        return self._shards.client(0)

    async def close(self) -> None:
        """Close this loop's connections (the state can be used again)."""
        if self._shards is not None:
            await self._shards.close()

    async def flush(self) -> None:
        """Delete every key of this prefix (tests, or a broker reset)."""
        client = self.client()
        for pattern in (f"{self.prefix}:*", f"{{{self.prefix}}}:*"):
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(keys), 1000):
                await client.delete(*keys[start : start + 1000])

    async def _eval(self, name: str, keys: list[str], args: list[Any]) -> Any:
        client = self.client()
        source, sha = _SCRIPTS[name]
        try:
            return await client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(source)
            return await client.evalsha(sha, len(keys), *keys, *args)

    async def _unindex(self, client_id: str, sid: bytes | str, filters: list[bytes]) -> None:
        if filters:
            names = [_text(f) for f in filters]
            await self._eval(
                "INDEX_REMOVE",
                [self._filters, *(self._index(f) for f in names)],
                [client_id, _text(sid), *names],
            )

    # Sessions ------------------------------------------------------------------

    async def attach(self, client_id: str, channel: str, clean: bool) -> bool:
        sid = os.urandom(8).hex()
        kept, old_sid, *filters = await self._eval(
            "ATTACH", self._client_keys(client_id), [sid, channel, int(clean), _now_ms()]
        )
        if old_sid and filters:
            await self._unindex(client_id, old_sid, filters)
        return bool(kept)

    async def detach(self, client_id: str, channel: str, expiry: int) -> None:
        result = await self._eval(
            "DETACH", self._client_keys(client_id), [channel, expiry, _now_ms()]
        )
        if result and len(result) > 1:
            await self._unindex(client_id, result[0], result[1:])

    # Subscriptions -------------------------------------------------------------

    async def subscribe(
        self, client_id: str, channel: str, topic_filter: str, options: SubscriptionOptions
    ) -> bool:
        packed = [
            options.qos,
            options.no_local,
            options.retain_as_published,
            options.subscription_identifier,
        ]
        client_key, subs_key, _ = self._client_keys(client_id)
        result = await self._eval(
            "SUBSCRIPTION", [client_key, subs_key], [channel, topic_filter, _pack(packed)]
        )
        if not result:
            return False
        sid, existed = result
        registered = (
            "+" in topic_filter or "#" in topic_filter or topic_filter.startswith("$share/")
        )
        await self._eval(
            "INDEX_ADD",
            [self._index(topic_filter), self._filters],
            [client_id, _pack([_text(sid), *packed]), topic_filter, int(registered)],
        )
        return not existed

    async def unsubscribe(self, client_id: str, channel: str, topic_filter: str) -> bool:
        client_key, subs_key, _ = self._client_keys(client_id)
        result = await self._eval(
            "SUBSCRIPTION", [client_key, subs_key], [channel, topic_filter, ""]
        )
        if not result or not result[1]:
            return False
        await self._unindex(client_id, result[0], [topic_filter.encode()])
        return True

    async def match(self, topic: str, publisher: str) -> list[Delivery]:
        client = self.client()
        async with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._index(topic))
            pipe.smembers(self._filters)
            exact, registered = await pipe.execute()
        filters = [topic] if exact else []
        matching = [name for name in map(_text, registered) if topic_matches(_filter(name), topic)]
        indexes: dict[str, dict[bytes, bytes]] = {topic: exact} if exact else {}
        turns: dict[str, int] = {}
        if matching:
            async with client.pipeline(transaction=False) as pipe:
                for name in matching:
                    pipe.hgetall(self._index(name))
                    if name.startswith("$share/"):
                        pipe.incr(f"{{{self.prefix}}}:t:{name}")
                replies = iter(await pipe.execute())
            for name in matching:
                indexes[name] = next(replies)
                if name.startswith("$share/"):
                    turns[name] = next(replies)
            filters += matching
        # (client id, filter, session id, options) for every index entry.
        entries: list[tuple[str, str, str, SubscriptionOptions]] = []
        for name in filters:
            for raw_id, value in indexes[name].items():
                sid, *options = _unpack(value)
                entries.append((_text(raw_id), name, sid, _options(options)))
        sessions = await self._sessions({cid for cid, *_ in entries})
        found: dict[str, Delivery] = {}
        shared: dict[str, list[tuple[str, SubscriptionOptions]]] = {}
        for cid, name, sid, options in entries:
            session = sessions.get(cid)
            if session is None or session[0] != sid:
                continue  # a session that ended or expired; REAP cleans its entries
            if name in turns:
                shared.setdefault(name, []).append((cid, options))
            elif not (options.no_local and cid == publisher):
                self._add(found, cid, session[1], options)
        for name, members in shared.items():
            members.sort(key=lambda member: member[0])
            online = [m for m in members if sessions[m[0]][1] is not None] or members
            cid, options = online[turns[name] % len(online)]
            self._add(found, cid, sessions[cid][1], options)
        return list(found.values())

    async def _sessions(self, client_ids: set[str]) -> dict[str, tuple[str, str | None]]:
        """``{client id: (session id, channel or None)}`` of the live sessions among ``client_ids``.

        Sessions past their expiry are dropped here, with their index entries.
        """
        if not client_ids:
            return {}
        ordered = sorted(client_ids)
        async with self.client().pipeline(transaction=False) as pipe:
            for cid in ordered:
                pipe.hmget(self._client_keys(cid)[0], "sid", "ch", "exp")
            replies = await pipe.execute()
        now = _now_ms()
        sessions: dict[str, tuple[str, str | None]] = {}
        for cid, (sid, channel, exp) in zip(ordered, replies, strict=True):
            if sid is None:
                continue
            if exp is not None and int(exp) <= now:
                reaped = await self._eval("REAP", self._client_keys(cid), [now])
                if reaped:
                    await self._unindex(cid, reaped[0], reaped[1:])
                continue
            sessions[cid] = (_text(sid), _text(channel) or None)
        return sessions

    @staticmethod
    def _add(
        found: dict[str, Delivery],
        client_id: str,
        channel: str | None,
        options: SubscriptionOptions,
    ) -> None:
        delivery = found.get(client_id)
        if delivery is None:
            delivery = found[client_id] = Delivery(client_id, channel, options.qos)
        else:  # overlapping subscriptions: one copy at the highest QoS (MQTT-3.3.5-1)
            delivery.qos = max(delivery.qos, options.qos)
        delivery.retain_as_published |= options.retain_as_published
        if options.subscription_identifier is not None:
            delivery.subscription_identifiers.append(options.subscription_identifier)

    # Offline queues ------------------------------------------------------------

    async def enqueue(self, client_id: str, message: dict[str, Any]) -> None:
        client_key, _, queue_key = self._client_keys(client_id)
        await self._eval(
            "ENQUEUE",
            [client_key, queue_key],
            [_pack([time.time(), message]), self.max_offline_messages],
        )

    async def drain(self, client_id: str) -> list[tuple[float, dict[str, Any]]]:
        items = await self._eval("DRAIN", [self._client_keys(client_id)[2]], [])
        return [(_monotonic(wall), message) for wall, message in map(_unpack, items)]

    # Retained messages ---------------------------------------------------------

    async def retain(self, topic: str, message: dict[str, Any] | None) -> None:
        client = self.client()
        if message is None:
            await client.hdel(self._retained, topic)
        else:
            await client.hset(self._retained, topic, _pack([time.time(), message]))

    async def retained(self, topic_filter: str) -> list[tuple[float, dict[str, Any]]]:
        client = self.client()
        if "+" not in topic_filter and "#" not in topic_filter:
            value = await client.hget(self._retained, topic_filter)
            items: dict[str, Any] = {topic_filter: value} if value is not None else {}
        else:
            items = {
                _text(topic): value
                async for topic, value in client.hscan_iter(self._retained, count=1000)
                if topic_matches(topic_filter, _text(topic))
            }
        result = []
        for value in items.values():
            wall, message = _unpack(value)
            result.append((_monotonic(wall), message))
        return result
