"""The Redis layer's keys and Lua scripts: everything that runs inside Redis.

Keys (``P`` is the ``prefix`` setting, ``asgi`` by default)::

    P:c:{name}      list     a normal channel's queue          ("chat.worker")
    P:i:{inbox}     list     a process inbox: every specific channel
                             "<anything>.<inbox>!<local>" that one layer
                             instance handed out with new_channel()
    P:n:{inbox}     hash     specific channel -> messages queued for it in
                             the inbox or in its process's local buffer
    P:g:{group}     zset     channel -> time it (re)joined the group
    P:l:{group}     string   the group's last value: the body of its last
                             group_send, for groups in ``group_last_value``
    P:s:{name}      stream   an at-least-once channel's messages, until
                             acknowledged (see ``redis_streams``)

The ``{...}`` part is a Redis Cluster hash tag: a channel's, an inbox's or a
group's keys share one slot, so each script below touches a single slot (the
one exception, ``GROUP_SEND``, runs only on a standalone server, where slots
do not exist).

A queued entry is ``b"<deadline ms> <channel> <body>"``: the deadline lets
any reader (or a sender trimming a full queue) drop expired messages without
a second key, the channel name lets a process demultiplex its inbox, and the
body is stored once by the client and concatenated here, so ``group_send``
sends it to Redis once whatever the group size. Deadlines are the sender's
wall clock in milliseconds (as channels_redis's scores are); hosts are
expected to run NTP.

Capacity is exact for both kinds of channel: a normal channel counts its list
length; a specific channel counts its field in ``P:n:{inbox}``, which the
receiving process decrements when its consumer takes (or expiry drops) the
message, so a slow consumer's sender gets ``ChannelFull`` as it would in
memory.
"""

from __future__ import annotations

import time

#: Lua helpers shared by the sending scripts. ``push`` returns 1 (queued),
#: 0 (full) or -1 (the queue's oldest message expired unread: nobody reads it).
_PUSH_LUA = """
local function queued(list, counter, channel)
  if list == counter then return redis.call('LLEN', list) end
  return tonumber(redis.call('HGET', counter, channel) or '0')
end

local function trim(list, counter, now)
  local dropped = 0
  while true do
    local entry = redis.call('LINDEX', list, 0)
    if not entry then break end
    local deadline, channel = string.match(entry, '^(%d+) (%S+) ')
    if tonumber(deadline) > now then break end
    redis.call('LPOP', list)
    dropped = dropped + 1
    if list ~= counter and redis.call('HINCRBY', counter, channel, -1) <= 0 then
      redis.call('HDEL', counter, channel)
    end
  end
  return dropped
end

local dead_lists, live_lists, ttl_set = {}, {}, {}

local function push(list, counter, channel, capacity, now, entry, ttl, check_dead)
  if check_dead and not live_lists[list] then
    if dead_lists[list] then return -1 end
    local head = redis.call('LINDEX', list, 0)
    if head and tonumber(string.match(head, '^(%d+)')) <= now then
      trim(list, counter, now)
      dead_lists[list] = true
      return -1
    end
    live_lists[list] = true
  end
  if queued(list, counter, channel) >= capacity then
    if trim(list, counter, now) == 0 or queued(list, counter, channel) >= capacity then
      return 0
    end
  end
  redis.call('RPUSH', list, entry)
  if list ~= counter then redis.call('HINCRBY', counter, channel, 1) end
  if not ttl_set[list] then
    ttl_set[list] = true
    redis.call('EXPIRE', list, ttl)
    if list ~= counter then redis.call('EXPIRE', counter, ttl) end
  end
  return 1
end
"""

#: Queue one body on several channels of one slot.
#: KEYS: per channel, its list key then its counter key (the list key again
#: for a normal channel). ARGV: now_ms, deadline_ms, ttl_s, body,
#: check_dead ("1" for group_send), then per channel: name, capacity.
#: Returns one status per channel (see ``push``).
PUSH = (
    _PUSH_LUA
    + """
local now, deadline, ttl, body = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local check_dead = ARGV[5] == '1'
local statuses = {}
for i = 1, #KEYS / 2 do
  local channel = ARGV[4 + 2 * i]
  local entry = deadline .. ' ' .. channel .. ' ' .. body
  statuses[i] = push(KEYS[2 * i - 1], KEYS[2 * i], channel, tonumber(ARGV[5 + 2 * i]),
                     now, entry, ttl, check_dead)
end
return statuses
"""
)

#: group_send in one round trip on a standalone server: read the members,
#: drop expired ones, queue the body for each, drop the members found dead.
#: Member keys are computed here (not declared), which Cluster forbids, so a
#: Cluster uses ``GROUP_MEMBERS`` then ``PUSH`` per slot instead.
#: KEYS: group, and the group's last-value key if it keeps one.
#: ARGV: now_ms, deadline_ms, ttl_s, body, prefix, joined_after_ms, capacity, group_ttl_s.
#: Returns {queued, full, dead}.
GROUP_SEND = (
    _PUSH_LUA
    + """
local now, deadline, ttl, body = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local prefix, joined_after, capacity = ARGV[5], ARGV[6], tonumber(ARGV[7])
local group = KEYS[1]
if KEYS[2] then redis.call('SET', KEYS[2], body, 'EX', ARGV[8]) end
redis.call('ZREMRANGEBYSCORE', group, '-inf', '(' .. joined_after)
local counts = {0, 0, 0}
for _, channel in ipairs(redis.call('ZRANGE', group, 0, -1)) do
  local list, counter
  local inbox = string.match(channel, '([^.!]*)!')
  if inbox then
    list = prefix .. ':i:{' .. inbox .. '}'
    counter = prefix .. ':n:{' .. inbox .. '}'
  else
    list = prefix .. ':c:{' .. channel .. '}'
    counter = list
  end
  local status = push(list, counter, channel, capacity, now,
                      deadline .. ' ' .. channel .. ' ' .. body, ttl, true)
  if status == 1 then
    counts[1] = counts[1] + 1
  elseif status == 0 then
    counts[2] = counts[2] + 1
  else
    counts[3] = counts[3] + 1
    redis.call('ZREM', group, channel)
  end
end
return counts
"""
)

#: The live members of a group, after dropping expired ones.
#: KEYS: group. ARGV: joined_after_ms.
GROUP_MEMBERS = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

#: Join (or renew) a group. KEYS: group, and its last-value key if it keeps one.
#: ARGV: now_ms, channel, group_expiry_s. Returns the last value (a body) for a new member.
GROUP_ADD = """
local new = redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if KEYS[2] and new == 1 then return redis.call('GET', KEYS[2]) end
return false
"""

_RELEASE_LUA = """
local function release(counter, channel, n)
  if redis.call('HINCRBY', counter, channel, -n) <= 0 then
    redis.call('HDEL', counter, channel)
  end
end
"""

#: Messages of specific channels left the process's buffer (taken or expired).
#: KEYS: counter. ARGV: channel, n, channel, n, ... (a negative n holds places).
RELEASE = (
    _RELEASE_LUA
    + """
for i = 1, #ARGV, 2 do release(KEYS[1], ARGV[i], tonumber(ARGV[i + 1])) end
"""
)

#: Take up to ``batch`` entries from an inbox without blocking, releasing
#: their places in the counter (the reader holds them again for the ones it
#: must buffer), after applying pending releases. Returns the entries as one
#: msgpack array: a single bulk reply that the client unpacks in C, where a
#: RESP array of 512 replies costs as many parser calls.
#: KEYS: inbox, counter. ARGV: batch, then channel, n pairs to release.
TAKE = (
    _RELEASE_LUA
    + """
local inbox, counter = KEYS[1], KEYS[2]
for i = 2, #ARGV, 2 do release(counter, ARGV[i], tonumber(ARGV[i + 1])) end
local entries = redis.call('LPOP', inbox, tonumber(ARGV[1]))
if not entries then return false end
for _, entry in ipairs(entries) do
  release(counter, string.match(entry, '^%d+ (%S+) '), 1)
end
return cmsgpack.pack(entries)
"""
)


def now_ms() -> int:
    """The wall clock in milliseconds: the time base of deadlines and group joins."""
    return int(time.time() * 1000)


def inbox_of(channel: str) -> str | None:
    """The inbox of a specific channel (the dotted part just before ``!``), or ``None``.

    Matches the Lua pattern ``([^.!]*)!`` in ``GROUP_SEND``.
    """
    bang = channel.find("!")
    if bang < 0:
        return None
    return channel[:bang].rpartition(".")[2]


class Keys:
    """Key names for one ``prefix``."""

    def __init__(self, prefix: str) -> None:
        if not prefix or any(c in prefix for c in "{} "):
            raise ValueError(
                f"prefix must be non-empty, without braces or spaces, got {prefix!r} "
                "(braces would change the Redis Cluster hash tag of every key)"
            )
        self.prefix = prefix

    def channel(self, channel: str) -> tuple[str, str, str]:
        """``(routing name, list key, counter key)`` of a channel."""
        inbox = inbox_of(channel)
        if inbox is None:
            key = f"{self.prefix}:c:{{{channel}}}"
            return channel, key, key
        return inbox, self.inbox(inbox), self.counter(inbox)

    def inbox(self, inbox: str) -> str:
        return f"{self.prefix}:i:{{{inbox}}}"

    def counter(self, inbox: str) -> str:
        return f"{self.prefix}:n:{{{inbox}}}"

    def group(self, group: str) -> str:
        return f"{self.prefix}:g:{{{group}}}"

    def last_value(self, group: str) -> str:
        return f"{self.prefix}:l:{{{group}}}"

    def stream(self, channel: str) -> str:
        return f"{self.prefix}:s:{{{channel}}}"

    @property
    def pattern(self) -> str:
        """Every key of this prefix, for ``flush``."""
        return f"{self.prefix}:*"
