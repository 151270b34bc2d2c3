"""SMTP: hub's server into an accepting consumer, against bare aiosmtpd with an accepting handler.

Both servers run in a process of their own (``python -m benchmarks.smtp
serve hub|aiosmtpd PORT``), on asyncio's default event loop, with aiosmtpd's
``SMTP`` protocol served by ``loop.create_server``:

- ``hub``: ``protocols.smtp.SmtpServer`` -> ``AsyncSmtpConsumer`` whose
  ``message()`` accepts without reading the email. The consumer gets each
  message as ``smtp.message``, builds its ``Envelope`` and hands it to
  ``message()`` with an ``InboundEmail`` that is parsed on first use, so
  here it is never parsed (a consumer that reads the headers or body pays
  about 25 us more for a 2 KiB message); recipients are accepted by the
  server, as the consumer does not override ``recipient()``;
- ``aiosmtpd``: aiosmtpd's ``SMTP`` with a handler whose ``handle_DATA``
  returns ``250 OK`` and no other hook: it does not parse the message either.

Load: ``SENDERS`` connections, each an SMTP client that sends messages one
after another on its session (as an MTA delivering a queue does): ``MAIL``,
``RCPT`` and ``DATA`` written together (pipelined), then, after ``354``, the
message and the final dot. A message counts when its ``250`` arrives; latency
is from the first byte of ``MAIL`` to that ``250``. The client is raw asyncio
streams, cheap next to either server, so the server is what is measured.

With ``HUB_BENCH_CPU_LOG=FILE`` each run appends the server's CPU share and
its CPU time per accepted message (``server_us_per_message``), the figure to
compare when other processes share the machine.
"""

from __future__ import annotations

import asyncio
import sys
from time import perf_counter
from typing import Any

from benchmarks.harness import Benchmark, Implementation, LatencyHistogram, Sample

#: Concurrent sending sessions.
SENDERS = 10
KIB = 1024


def make_message(size: int) -> bytes:
    """A message of exactly ``size`` bytes: headers and 76-character body lines."""
    head = b"From: bench@example.org\r\nTo: sink@example.com\r\nSubject: benchmark\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return (head + body)[: size - 2] + b"\r\n"


async def _reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the session")
        if line[3:4] != b"-":
            return int(line[:3])


async def _sender(
    port: int, message: bytes, deadline: float, histogram: LatencyHistogram, counts: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO bench.example\r\n")
    await _reply(reader)
    envelope = b"MAIL FROM:<bench@example.org>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n"
    payload = message + b".\r\n"
    try:
        while perf_counter() < deadline:
            started = perf_counter()
            counts[1] += 1
            writer.write(envelope)
            codes = [await _reply(reader) for _ in range(3)]
            if codes != [250, 250, 354]:
                raise RuntimeError(f"envelope refused: {codes}")
            writer.write(payload)
            if await _reply(reader) == 250:
                counts[0] += 1
                histogram.record(perf_counter() - started)
        writer.write(b"QUIT\r\n")
        await _reply(reader)
    finally:
        writer.close()


def deliver(params: dict[str, Any]) -> Sample:
    """One repetition: ``SENDERS`` sessions sending for ``max_seconds``."""

    from benchmarks.websocket import CpuMeter, log_run, per_server_cpu, server_pid

    async def main() -> Sample:
        message = make_message(params["size"])
        histogram = LatencyHistogram()
        counts = [0, 0]  # delivered, attempted
        meter = CpuMeter(server_pid(params["port"]))
        meter.start()
        start = perf_counter()
        deadline = start + params["max_seconds"]
        await asyncio.gather(
            *(
                _sender(params["port"], message, deadline, histogram, counts)
                for _ in range(params["senders"])
            )
        )
        elapsed = perf_counter() - start
        cpu = meter.stop()
        delivered = counts[0]
        server_us = cpu["server_cpu"] * cpu["wall"] * 1e6 / delivered if delivered else 0.0
        log_run(
            params,
            ops_per_s=round(delivered / elapsed),
            server_us_per_message=round(server_us, 1),
            **per_server_cpu(delivered, cpu),
        )
        return Sample(ops=delivered, elapsed=elapsed, latencies=histogram, expected=counts[1])

    return asyncio.run(main())


# The servers


async def serve_hub(port: int) -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(CHANNEL_LAYERS={})
    from hub.generic.smtp import AsyncSmtpConsumer
    from protocols.smtp import SmtpConfig, SmtpServer

    class Accept(AsyncSmtpConsumer):
        async def message(self, envelope: Any, email: Any, **kwargs: Any) -> None:
            return None

    config = SmtpConfig(host="127.0.0.1", port=port, hostname="bench", max_sessions_per_ip=100)
    server = SmtpServer(Accept.as_asgi(), config)
    await server.start()
    await asyncio.Event().wait()


async def serve_aiosmtpd(port: int) -> None:
    from aiosmtpd.smtp import SMTP

    class Accept:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    handler = Accept()
    loop = asyncio.get_running_loop()
    await loop.create_server(
        lambda: SMTP(handler, hostname="bench", loop=loop), "127.0.0.1", port, backlog=512
    )
    await asyncio.Event().wait()


SERVERS = {"hub": serve_hub, "aiosmtpd": serve_aiosmtpd}


def _benchmark(size: int) -> Benchmark:
    label = f"{size // KIB}k"

    def implementation(name: str) -> Implementation:
        server = (sys.executable, "-m", "benchmarks.smtp", "serve", name, "{port}")
        return Implementation(name, "benchmarks.smtp:deliver", server=server, params={"impl": name})

    name = f"smtp-deliver-{label}"
    return Benchmark(
        name=name,
        description=f"{SENDERS} sessions sending {label} messages, accepted messages/s",
        implementations=(implementation("hub"), implementation("aiosmtpd")),
        params={"name": name, "size": size, "senders": SENDERS, "max_seconds": 3.0},
        quick_params={"name": name, "size": size, "senders": SENDERS, "max_seconds": 0.4},
    )


BENCHMARKS = [_benchmark(2 * KIB), _benchmark(100 * KIB)]


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "serve" or sys.argv[2] not in SERVERS:
        sys.exit("usage: python -m benchmarks.smtp serve hub|aiosmtpd PORT")
    import logging

    # aiosmtpd logs every command at INFO on "mail.log"; neither server logs per command here.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(SERVERS[sys.argv[2]](int(sys.argv[3])))
