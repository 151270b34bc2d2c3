"""Raw TCP line echo: hub's TCP server and line consumer against plain asyncio servers.

``tcp-line-echo-100``: 100 connections, each sending a 64-byte line and
waiting for its echo before sending the next (ping-pong, so throughput is
round trips, and a server that batches cannot look better than it is). The
load generator is an ``asyncio.Protocol`` client on uvloop in the worker
process; each server runs in its own process, on uvloop too:

- ``hub``: hub's :class:`protocols.tcp.TcpServer` (``framing=line``) running an
  :class:`hub.generic.tcp.AsyncLineConsumer` that echoes each line, with the
  in-memory channel layer configured, as a hub deployment has it.
- ``hub-asgi``: the same server with a bare ASGI echo app: the server's cost
  without the consumer machinery.
- ``protocol``: an ``asyncio.Protocol`` that writes back what it reads; no
  framing, no application layer: the ceiling.
- ``streams``: ``asyncio`` streams, ``readline()`` / ``write()`` / ``drain()``
  per line, as a hand-written asyncio device server usually is.

``tcp-idle-10k`` (run it on its own, it opens 10,000 sockets): the growth of
the server's RSS (``VmRSS``) from before the first connection to 10,000 idle,
accepted and served connections, divided by the connections: memory per idle
device, as ``benchmarks/idle.py`` measures it for WebSockets.

Run a server by hand: ``python -m benchmarks.tcp hub 7000``.
"""

from __future__ import annotations

import asyncio
import sys
from time import perf_counter
from typing import Any

from benchmarks.harness import Benchmark, Implementation, LatencyHistogram, Sample

LINE = b"x" * 63 + b"\n"


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the bench extra
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


# Load generator


def line_echo(params: dict[str, Any]) -> Sample:
    """``params["connections"]`` ping-pong clients for ``params["max_seconds"]``."""

    from benchmarks.websocket import CpuMeter, log_run, per_server_cpu, server_pid

    async def main() -> Sample:
        loop = asyncio.get_running_loop()
        histogram = LatencyHistogram()
        counts: list[int] = []
        stop = False
        line = params.get("line", LINE)

        class Client(asyncio.Protocol):
            def __init__(self) -> None:
                self.buffer = b""
                self.count = 0
                self.sent = 0.0
                self.done: asyncio.Future[None] = loop.create_future()

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport: Any = transport

            def send(self) -> None:
                self.sent = perf_counter()
                self.transport.write(line)

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                while b"\n" in self.buffer:
                    _, _, self.buffer = self.buffer.partition(b"\n")
                    self.count += 1
                    histogram.record(perf_counter() - self.sent)
                    if stop:
                        if not self.done.done():
                            self.done.set_result(None)
                        return
                    self.send()

            def connection_lost(self, exc: Exception | None) -> None:
                if not self.done.done():
                    self.done.set_result(None)

        clients = []
        for _ in range(params["connections"]):
            _, client = await loop.create_connection(Client, "127.0.0.1", params["port"])
            clients.append(client)
        meter = CpuMeter(server_pid(params["port"]))
        meter.start()
        start = perf_counter()
        for client in clients:
            client.send()
        await asyncio.sleep(params["max_seconds"])
        stop = True
        elapsed = perf_counter() - start
        cpu = meter.stop()
        counts = [client.count for client in clients]
        async with asyncio.timeout(10):
            await asyncio.gather(*(client.done for client in clients))
        for client in clients:
            client.transport.close()
        log_run(params, **per_server_cpu(sum(counts), cpu))
        return Sample(ops=sum(counts), elapsed=elapsed, latencies=histogram)

    loop = _new_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def idle_connections(params: dict[str, Any]) -> Sample:
    """Open ``params["connections"]``; the sample's ops are bytes of server RSS each."""
    from benchmarks.websocket import run_client

    return run_client(lambda: _idle(params))


async def _idle(params: dict[str, Any]) -> Sample:
    from benchmarks.harness import BenchmarkError
    from benchmarks.websocket import log_run, rss_bytes, server_pid

    port, count = params["port"], params["connections"]
    pid = server_pid(port)
    before = rss_bytes(pid)
    connections = []
    try:
        for _ in range(count):
            connections.append(await asyncio.open_connection("127.0.0.1", port))
        # Every connection served: its echo comes back (the app accepted it).
        for _, writer in connections:
            writer.write(LINE)
        for reader, _ in connections:
            if await reader.readline() != LINE:
                raise BenchmarkError("a connection was not echoed")
        await asyncio.sleep(params["hold_seconds"])
        after = rss_bytes(pid)
    finally:
        for _, writer in connections:
            writer.close()
    per_connection = (after - before) / count
    log_run(params, connections=count, rss_before=before, rss_after=after)
    return Sample(ops=round(per_connection), elapsed=1.0)


# Servers


def _configure_django() -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            CHANNEL_LAYERS={"default": {"BACKEND": "hub.layers.InMemoryChannelLayer"}},
            INSTALLED_APPS=[],
        )
    import django

    django.setup()


async def _serve_hub(port: int, consumer: bool) -> None:
    from protocols.tcp import TcpConfig, TcpServer

    app: Any
    if consumer:
        _configure_django()
        from hub.generic.tcp import AsyncLineConsumer

        class Echo(AsyncLineConsumer):
            async def receive_line(self, line: str) -> None:
                await self.send_line(line)

        app = Echo.as_asgi()
    else:

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "tcp.accept"})
            while (message := await receive())["type"] == "tcp.receive":
                await send({"type": "tcp.send", "bytes": message["bytes"]})

    config = TcpConfig(
        name="bench",
        port=port,
        framing="line",  # type: ignore[arg-type]
        max_connections=20_000,
        max_connections_per_client=20_000,
    )
    server = TcpServer(app, config)
    await server.start()
    await asyncio.Event().wait()


async def _serve_protocol(port: int) -> None:
    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port, backlog=2048)
    await asyncio.Event().wait()


async def _serve_streams(port: int) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    await asyncio.start_server(echo, "127.0.0.1", port, backlog=2048)
    await asyncio.Event().wait()


SERVERS = {
    "hub": lambda port: _serve_hub(port, consumer=True),
    "hub-asgi": lambda port: _serve_hub(port, consumer=False),
    "protocol": _serve_protocol,
    "streams": _serve_streams,
}


def _server(name: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "benchmarks.tcp", name, "{port}")


BENCHMARKS = [
    Benchmark(
        name="tcp-line-echo-100",
        description="100 connections ping-ponging 64-byte lines, echoed lines/s",
        implementations=tuple(
            Implementation(
                name, "benchmarks.tcp:line_echo", params={"impl": name}, server=_server(name)
            )
            for name in SERVERS
        ),
        params={"name": "tcp-line-echo-100", "connections": 100, "max_seconds": 3.0},
        quick_params={"name": "tcp-line-echo-100", "connections": 100, "max_seconds": 0.4},
    ),
    Benchmark(
        name="tcp-idle-10k",
        description="10,000 idle line connections, each served once: server RSS per "
        "connection (lower wins)",
        implementations=tuple(
            Implementation(name, "benchmarks.tcp:idle_connections", server=_server(name))
            for name in ("hub", "protocol", "streams")
        ),
        params={"name": "tcp-idle-10k", "connections": 10_000, "hold_seconds": 0.5},
        quick_params={"name": "tcp-idle-10k", "connections": 500, "hold_seconds": 0.1},
        unit="B/conn",
        repetitions=1,
        quick_repetitions=1,
        timeout=240.0,
    ),
]


if __name__ == "__main__":
    name, port_text = sys.argv[1], sys.argv[2]
    loop = _new_loop()
    try:
        loop.run_until_complete(SERVERS[name](int(port_text)))
    except KeyboardInterrupt:
        pass
    finally:
        loop.close()
