"""Memory per idle WebSocket connection: 10,000 on one server process, hub against uvicorn.

- ``ws-idle-10k``: the bare ASGI echo app (``benchmarks/apps/bare.py``) on hub's
  server and on uvicorn (``--ws websockets``, its default), both with their
  default permessage-deflate setting (on). The client offers
  ``permessage-deflate; client_max_window_bits`` as browsers do, so each
  server negotiates it and holds its compression state.
- ``ws-idle-10k-no-deflate``: the same with deflate off on the servers
  (hub ``ws_per_message_deflate=false``, uvicorn ``--ws-per-message-deflate
  false``); the client still offers it and each server declines.
- ``ws-idle-2k-consumer``: hub's server with hub's ``AsyncWebsocketConsumer``
  against uvicorn with Channels' (the ``ws-echo-consumer`` apps), deflate off
  on both: what a framework connection costs, layer channel and tasks
  included. 2,000 connections, not 10,000: Channels' in-memory layer scans
  every channel on each ``receive()`` call (``_clean_expired``), so opening
  10,000 consumers takes uvicorn + Channels over a minute (handshake p50 1.1 s).

Measurement: the server's RSS (``VmRSS`` in ``/proc/PID/status``) before the
first connection and 1 s after the last handshake completed; the number
reported is (after - before) / connections, in bytes per connection, in the
throughput column: there, **lower is better** and ``hub/peer`` below 1 means
hub uses less memory. The marginal cost (RSS growth over the second half of
the connections, per connection) goes to ``$HUB_BENCH_CPU_LOG`` with the raw
RSS numbers and the negotiated extension. p50/p99 are opening handshake times
with at most 200 handshakes in flight.

The connections stay idle: no message is sent, pings are answered. One client
process on uvloop holds all of them; client and server raise their open-files
limit to its hard maximum (``benchmarks/apps/launch.py``). The harness's
warm-up repetition opens 1,000 connections and closes them before the
measured one; memory it leaves in the server's allocator is reused by the
first connections measured, so (after - before) may understate the cost by up
to 10% there; the logged marginal cost does not have that bias. The run has
one repetition (``--repetitions`` above 1 would measure a warmed server again).
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.harness import Benchmark, BenchmarkError, Implementation, LatencyHistogram, Sample
from benchmarks.websocket import (
    BARE_APP,
    DJANGO_PROJECT,
    close_connections,
    hub_server,
    log_run,
    open_connections,
    rss_bytes,
    run_client,
    server_pid,
    uvicorn_server,
)

#: Seconds between the last handshake and reading the server's RSS.
SETTLE_SECONDS = 1.0


def idle(params: dict[str, Any]) -> Sample:
    """Open ``connections`` idle WebSockets; the sample's ops are bytes of RSS each."""
    return run_client(lambda: _idle(params))


async def _idle(params: dict[str, Any]) -> Sample:
    port, count, path = params["port"], params["connections"], params["path"]
    pid = server_pid(port)
    latencies = LatencyHistogram()
    before = rss_bytes(pid)
    half = count // 2
    connections = await open_connections(port, path, half, deflate=True, latencies=latencies)
    await asyncio.sleep(SETTLE_SECONDS)
    middle = rss_bytes(pid)
    connections += await open_connections(
        port, path, count - half, deflate=True, latencies=latencies
    )
    await asyncio.sleep(SETTLE_SECONDS)
    after = rss_bytes(pid)
    extensions = {c.extensions for c in connections}
    lost = sum(c.closed.done() for c in connections)
    await close_connections(connections)
    if lost:
        raise BenchmarkError(f"the server closed {lost} of {count} idle connections")
    per_connection = (after - before) / count
    log_run(
        params,
        connections=count,
        rss_before=before,
        rss_after=after,
        bytes_per_connection=round(per_connection),
        marginal_bytes_per_connection=round((after - middle) / (count - half)),
        extensions=sorted(extensions),
    )
    return Sample(ops=round(per_connection), elapsed=1.0, latencies=latencies)


def _implementation(name: str, server: list[str], path: str, requires: tuple[str, ...]) -> Any:
    return Implementation(
        name,
        "benchmarks.idle:idle",
        {"impl": name, "path": path},
        server=server,
        requires=("uvloop", *requires),
    )


def _benchmark(name: str, description: str, implementations: list[Any]) -> Benchmark:
    return Benchmark(
        name=name,
        description=description,
        implementations=implementations,
        params={"name": name, "connections": 10_000},
        quick_params={"name": name, "connections": 1_000},
        unit="B/conn",
        repetitions=1,
        quick_repetitions=1,
    )


NO_DEFLATE = ("--ws-per-message-deflate", "false")

BENCHMARKS = [
    _benchmark(
        "ws-idle-10k",
        "10,000 idle WebSockets, bare app, deflate on: server RSS per connection (lower wins)",
        [
            _implementation("hub", hub_server(BARE_APP), "/", ()),
            _implementation("uvicorn", uvicorn_server(BARE_APP), "/", ("uvicorn",)),
        ],
    ),
    _benchmark(
        "ws-idle-10k-no-deflate",
        "10,000 idle WebSockets, bare app, deflate off: server RSS per connection (lower wins)",
        [
            _implementation(
                "hub", hub_server(BARE_APP, options="ws_per_message_deflate=false"), "/", ()
            ),
            _implementation(
                "uvicorn", uvicorn_server(BARE_APP, extra=NO_DEFLATE), "/", ("uvicorn",)
            ),
        ],
    ),
    Benchmark(
        name="ws-idle-2k-consumer",
        description="2,000 idle WebSockets on an AsyncWebsocketConsumer, deflate off: "
        "RSS per connection",
        implementations=[
            _implementation(
                "hub",
                hub_server(
                    f"{DJANGO_PROJECT}.asgi_hub:application",
                    settings=f"{DJANGO_PROJECT}.settings",
                    options="ws_per_message_deflate=false",
                ),
                "/echo/",
                (),
            ),
            _implementation(
                "uvicorn+channels",
                uvicorn_server(f"{DJANGO_PROJECT}.asgi_channels:application", extra=NO_DEFLATE),
                "/echo/",
                ("uvicorn", "channels"),
            ),
        ],
        params={"name": "ws-idle-2k-consumer", "connections": 2_000},
        quick_params={"name": "ws-idle-2k-consumer", "connections": 200},
        unit="B/conn",
        repetitions=1,
        quick_repetitions=1,
    ),
]
