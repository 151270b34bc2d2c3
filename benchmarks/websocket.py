"""WebSocket echo through hub's server against Daphne and uvicorn, with and without consumers.

- ``ws-echo-consumer``: an ``AsyncWebsocketConsumer`` whose ``receive`` sends the
  message back (``benchmarks/apps/django_project``), served three ways: hub's
  server with hub's consumer, Daphne with Channels' consumer, uvicorn with
  Channels' consumer. Each flavour has ``CHANNEL_LAYERS`` set to its own
  framework's in-memory layer, so every consumer runs its layer receive loop.
- ``ws-echo-bare``: the bare ASGI echo app (``benchmarks/apps/bare.py``) on
  hub's server and on uvicorn (``--ws websockets``, its default, and
  ``--ws websockets-sansio``).

Every server runs one process on uvloop (Daphne runs Twisted's asyncio
reactor on the standard loop; it has no uvloop option), with access logs off
and log level ``warning``. The load is the same for every server: ``clients``
connections (100), each sending the 16-byte text message ``MESSAGE`` and
sending it again as soon as the echo arrives (one message in flight per
connection), for ``seconds``. A round trip counts when its echo arrives with
the right payload; throughput is round trips per second, latency is from the
send to its echo. Messages still unanswered 5 s after the run stopped sending
are reported as lost. No client offers permessage-deflate, so no echo is
compressed.

The client is a raw ``asyncio.Protocol`` on uvloop, not a WebSocket library:
its frames are built once (a fixed mask, which servers may not check) and the
expected echo is compared as bytes, so the client costs a few microseconds per
round trip and the server is the side that saturates its core. Each run
measures the CPU time of the server process (``/proc/PID/stat``) and of the
client, and appends them to the file ``HUB_BENCH_CPU_LOG`` names, if set, to
show which side was CPU-bound.

The helpers here (the client, the server commands, server process lookup and
CPU accounting) also serve ``benchmarks/http.py`` and ``benchmarks/idle.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar, cast

from benchmarks.harness import Benchmark, BenchmarkError, Implementation, LatencyHistogram, Sample

T = TypeVar("T")

#: The echoed text message: small, ASCII, 16 bytes.
MESSAGE = b"hello, websocket"
#: Seconds to wait for unanswered messages once a run stops sending.
DRAIN_TIMEOUT = 5.0
#: Seconds a connection gets to complete its opening handshake.
HANDSHAKE_TIMEOUT = 30.0
#: Seconds a connection gets to complete its closing handshake.
CLOSE_TIMEOUT = 5.0
#: Opening handshakes in progress at once; below every server's listen backlog.
CONNECT_CONCURRENCY = 200

PYTHON = sys.executable
BIN = Path(sys.executable).parent
LAUNCH = (PYTHON, "-m", "benchmarks.apps.launch")
DJANGO_PROJECT = "benchmarks.apps.django_project"
BARE_APP = "benchmarks.apps.bare:app"

# Server commands: one process, uvloop, no access log, warnings only.


def hub_server(app: str, *, settings: str | None = None, options: str = "") -> list[str]:
    """``python -m hub run APP --http 127.0.0.1:{port}?access_log=false[&OPTIONS]``."""
    listener = "127.0.0.1:{port}?access_log=false" + (f"&{options}" if options else "")
    command = [*LAUNCH, PYTHON, "-m", "hub", "run", app, "--http", listener]
    if settings:
        command += ["--settings", settings]
    return [*command, "--loop", "uvloop", "--log-level", "warning", "--workers", "1"]


def uvicorn_server(app: str, *, ws: str = "websockets", extra: Sequence[str] = ()) -> list[str]:
    """uvicorn on uvloop with httptools, ``--ws WS`` (``websockets`` is its default)."""
    return [
        *LAUNCH, PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}",
        "--loop", "uvloop", "--http", "httptools", "--ws", ws,
        "--no-access-log", "--log-level", "warning", *extra,
    ]  # fmt: skip


def daphne_server(app: str) -> list[str]:
    """Daphne with verbosity 0, which also turns its access log off."""
    return [*LAUNCH, str(BIN / "daphne"), "-b", "127.0.0.1", "-p", "{port}", "-v", "0", app]


# The server process: found by its listening port, measured through /proc.


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    return inodes


def server_pid(port: int) -> int:
    """The process listening on ``port`` of this host (the benchmark's server)."""
    inodes = _listening_inodes(port)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in inodes:
                        return int(entry.name)
    raise BenchmarkError(f"No process listens on port {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchmarkError(f"No VmRSS for process {pid}")


class CpuMeter:
    """CPU time of the server and of the load generator over one timed window."""

    def __init__(self, server: int, children: bool = False) -> None:
        self.server = server
        self.children = children  # the load generator is a child process (wrk)

    def _client_seconds(self) -> float:
        if self.children:
            import resource

            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            return usage.ru_utime + usage.ru_stime
        return time.process_time()

    def start(self) -> None:
        self.server_start = cpu_seconds(self.server)
        self.client_start = self._client_seconds()
        self.wall_start = perf_counter()

    def stop(self) -> dict[str, float]:
        wall = perf_counter() - self.wall_start
        server = cpu_seconds(self.server) - self.server_start
        client = self._client_seconds() - self.client_start
        return {
            "wall": round(wall, 3),
            "server_cpu": round(server / wall, 3),
            "client_cpu": round(client / wall, 3),
        }


def per_server_cpu(ops: int, cpu: dict[str, float]) -> dict[str, float]:
    """``cpu`` plus operations per CPU-second of the server: robust to other load on the host."""
    server_seconds = cpu["server_cpu"] * cpu["wall"]
    return {**cpu, "ops_per_server_cpu_s": round(ops / server_seconds) if server_seconds else 0}


def log_run(params: dict[str, Any], **numbers: Any) -> None:
    """Append one run's side numbers (CPU shares, RSS) to ``$HUB_BENCH_CPU_LOG``."""
    path = os.environ.get("HUB_BENCH_CPU_LOG")
    if not path:
        return
    record = {"benchmark": params.get("name"), "impl": params.get("impl"), **numbers}
    with open(path, "a") as log:
        log.write(json.dumps(record) + "\n")


def run_client(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the load generator on uvloop (the standard loop if it is missing)."""
    from benchmarks.apps.launch import raise_open_files_limit

    raise_open_files_limit()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


# The client: a raw WebSocket connection, frames built once.

_MASK = b"\x37\xfa\x21\x3d"


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (FIN set) with the fixed mask; payloads under 126 bytes."""
    assert len(payload) < 126
    masked = bytes(b ^ _MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + _MASK + masked


CLOSE_FRAME = _masked(0x8, (1000).to_bytes(2, "big"))


class Run:
    """What the connections of one run share: the clock, the counts, the latencies."""

    def __init__(self) -> None:
        self.running = False
        self.sent = 0
        self.received = 0
        self.in_flight = 0
        self.last_completed_at = 0.0
        self.latencies = LatencyHistogram()
        self.drained: asyncio.Future[None] | None = None
        self.error: str | None = None


class Connection(asyncio.Protocol):
    """One WebSocket client connection; in a :class:`Run`, an echo loop."""

    def __init__(self, request: bytes, run: Run | None = None, message: bytes = MESSAGE) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self.run = run
        self.frame = _masked(0x1, message)
        self.message = message
        self.echo = bytes([0x81, len(message)]) + message  # the server's frame, unmasked
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.head = b""
        self.buffer = bytearray()
        self.handshaking = True
        self.closing = False
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.extensions = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)
        run = self.run
        if run is not None and self.sent_at and not self.closing:
            run.error = run.error or f"server closed a connection mid-run: {exc}"

    def data_received(self, data: bytes) -> None:
        if data == self.echo and not self.buffer and not self.handshaking:
            self.echoed()  # the common case: exactly one echo, whole
            return
        if self.handshaking:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            response, data = self.head[:end], self.head[end + 4 :]
            self.handshaking = False
            if not response.startswith(b"HTTP/1.1 101"):
                line = response.split(b"\r\n", 1)[0].decode(errors="replace")
                self.opened.set_exception(ConnectionError(f"handshake refused: {line}"))
                return
            for field in response.split(b"\r\n"):
                if field.lower().startswith(b"sec-websocket-extensions:"):
                    self.extensions = field.split(b":", 1)[1].strip().decode()
            self.opened.set_result(None)
        self.buffer += data
        self.frames()

    def frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            length, offset = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, offset = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < offset + length:
                return
            opcode, payload = buffer[0] & 0x0F, bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode in (0x1, 0x2):
                if payload != self.message and self.run is not None:
                    self.run.error = f"wrong echo: {payload[:40]!r}"
                self.echoed()
            elif opcode == 0x9 and self.transport is not None:  # ping: pong
                self.transport.write(_masked(0xA, payload))
            elif opcode == 0x8 and not self.closing and self.transport is not None:
                self.closing = True  # close: answer it, the server closes TCP
                self.transport.write(CLOSE_FRAME)

    def echoed(self) -> None:
        run = self.run
        if run is None:
            return
        now = perf_counter()
        run.received += 1
        run.latencies.record(now - self.sent_at)
        if run.running:
            self.sent_at = now
            self.transport.write(self.frame)  # type: ignore[union-attr]
            run.sent += 1
            return
        run.last_completed_at = now
        run.in_flight -= 1
        if run.in_flight == 0 and run.drained is not None and not run.drained.done():
            run.drained.set_result(None)

    def send_first(self) -> None:
        self.sent_at = perf_counter()
        self.transport.write(self.frame)  # type: ignore[union-attr]

    async def close(self) -> None:
        if self.transport is None or self.closed.done():
            return
        if not self.closing:
            self.closing = True
            self.transport.write(CLOSE_FRAME)
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), CLOSE_TIMEOUT)
        except TimeoutError:
            self.transport.abort()


def handshake_request(port: int, path: str, deflate: bool = False) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if deflate:  # what browsers offer
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def open_connections(
    port: int,
    path: str,
    count: int,
    *,
    run: Run | None = None,
    deflate: bool = False,
    latencies: LatencyHistogram | None = None,
) -> list[Connection]:
    """Open ``count`` WebSocket connections, ``CONNECT_CONCURRENCY`` handshakes at a time."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Connection:
        async with gate:
            started = perf_counter()
            request = handshake_request(port, path, deflate)
            _, connection = await loop.create_connection(
                lambda: Connection(request, run), "127.0.0.1", port
            )
            await asyncio.wait_for(connection.opened, HANDSHAKE_TIMEOUT)
            if latencies is not None:
                latencies.record(perf_counter() - started)
            return connection

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    connections = [r for r in results if isinstance(r, Connection)]
    failures = [r for r in results if not isinstance(r, Connection)]
    if failures:
        await close_connections(connections)
        raise BenchmarkError(f"{len(failures)} of {count} connections failed: {failures[0]!r}")
    return connections


async def close_connections(connections: Sequence[Connection]) -> None:
    for start in range(0, len(connections), CONNECT_CONCURRENCY * 5):
        batch = connections[start : start + CONNECT_CONCURRENCY * 5]
        await asyncio.gather(*(c.close() for c in batch))


# The echo benchmark


def echo(params: dict[str, Any]) -> Sample:
    """``clients`` connections echo ``MESSAGE`` one at a time each for ``seconds``."""
    return run_client(lambda: _echo(params))


async def _echo(params: dict[str, Any]) -> Sample:
    port = params["port"]
    run = Run()
    connections = await open_connections(port, params["path"], params["clients"], run=run)
    meter = CpuMeter(server_pid(port))
    loop = asyncio.get_running_loop()
    run.drained = loop.create_future()
    run.running = True
    meter.start()
    start = perf_counter()
    for connection in connections:
        connection.send_first()
    run.sent = run.in_flight = len(connections)
    await asyncio.sleep(params["seconds"])
    run.running = False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(run.drained), DRAIN_TIMEOUT)
    cpu = meter.stop()
    await close_connections(connections)
    if run.error:
        raise BenchmarkError(run.error)
    elapsed = (run.last_completed_at or perf_counter()) - start
    log_run(params, ops_per_s=round(run.received / elapsed), **per_server_cpu(run.received, cpu))
    return Sample(run.received, elapsed, run.latencies, expected=run.sent)


def _implementation(name: str, server: list[str], path: str, requires: Sequence[str]) -> Any:
    return Implementation(
        name,
        "benchmarks.websocket:echo",
        {"path": path, "impl": name},
        server=server,
        requires=("uvloop", *requires),
    )


def _echo_benchmark(name: str, description: str, implementations: list[Any]) -> Benchmark:
    return Benchmark(
        name=name,
        description=description,
        implementations=implementations,
        params={"name": name, "clients": 100, "seconds": 5.0},
        quick_params={"name": name, "clients": 100, "seconds": 1.0},
        unit="rt/s",
        repetitions=3,
        quick_repetitions=2,
    )


BENCHMARKS = [
    _echo_benchmark(
        "ws-echo-consumer",
        "AsyncWebsocketConsumer echo, 100 clients, 16 B text, round trips/s",
        [
            _implementation(
                "hub",
                hub_server(
                    f"{DJANGO_PROJECT}.asgi_hub:application", settings=f"{DJANGO_PROJECT}.settings"
                ),
                "/echo/",
                (),
            ),
            _implementation(
                "daphne+channels",
                daphne_server(f"{DJANGO_PROJECT}.asgi_channels:application"),
                "/echo/",
                ("daphne", "channels"),
            ),
            _implementation(
                "uvicorn+channels",
                uvicorn_server(f"{DJANGO_PROJECT}.asgi_channels:application"),
                "/echo/",
                ("uvicorn", "channels"),
            ),
        ],
    ),
    _echo_benchmark(
        "ws-echo-bare",
        "bare ASGI echo app, 100 clients, 16 B text, round trips/s",
        [
            _implementation("hub", hub_server(BARE_APP), "/", ()),
            _implementation("uvicorn", uvicorn_server(BARE_APP), "/", ("uvicorn",)),
            _implementation(
                "uvicorn-sansio",
                uvicorn_server(BARE_APP, ws="websockets-sansio"),
                "/",
                ("uvicorn",),
            ),
        ],
    ),
]
