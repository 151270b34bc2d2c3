"""Django "hello" requests/s on hub's server, uvicorn and Daphne, with ``wrk``.

``http-django-hello``: every server serves the same application, Django's own
ASGI handler for ``benchmarks/apps/django_project`` (``asgi:application``):
``GET /hello/`` runs a synchronous view returning the 13-byte text
``Hello, world!``, with no middleware and no database, so the numbers are
the server plus Django's ASGI handler. Django dominates: its handler opens a
``ThreadSensitiveContext`` per request, and on its own asgiref starts a new
executor thread for every request to run the view and the sync receivers of
``request_started``/``request_finished``, then joins it from yet another new
thread (~0.8 ms of server CPU per request on the benchmark machine, against
~20 us for a bare ASGI "hello" on these servers). An ``async def`` view does
not avoid it (the signal receivers still hop).

hub's server hands each request a thread-sensitive context backed by a pooled
thread (``sync_threads``, ``protocols/http_ws/threads.py``): the request still
has a thread to itself, but the thread serves later requests instead of being
started and joined per request (~0.4 ms per request). ``hub-thread-per-request``
is hub with ``sync_threads=0``, asgiref's own thread per request as on uvicorn
and Daphne: the comparison of the servers alone.

Servers: hub's and uvicorn's in one process on uvloop (uvicorn with
httptools), Daphne on Twisted's asyncio reactor; access logs off on all three
(hub ``access_log=false``, uvicorn ``--no-access-log``, Daphne ``-v 0``: at its
default verbosity 1 Daphne writes an access log to stdout); log level warning;
the same settings module (``DEBUG = False``, no middleware, no database).
uvicorn keeps its default ``--proxy-headers`` (a middleware that trusts
127.0.0.1), about 1 us per request.

The load is ``wrk -t1 -c50 -d<seconds>s --latency``: 50 keep-alive
connections on one wrk thread (the machine the numbers come from has 2 cores:
one for the server, one for wrk). Throughput is 2xx/3xx responses per second;
non-2xx responses and socket errors are reported as lost. p50 and p99 are
wrk's latency percentiles. Server and wrk CPU time go to
``$HUB_BENCH_CPU_LOG`` as in ``benchmarks/websocket.py``.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

from benchmarks.harness import Benchmark, BenchmarkError, Implementation, Sample
from benchmarks.websocket import (
    DJANGO_PROJECT,
    CpuMeter,
    daphne_server,
    hub_server,
    log_run,
    per_server_cpu,
    server_pid,
    uvicorn_server,
)

APP = f"{DJANGO_PROJECT}.asgi:application"
SETTINGS = f"{DJANGO_PROJECT}.settings"

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests, seconds, failures and latency percentiles from ``wrk --latency`` output."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if done is None:
        raise BenchmarkError(f"Cannot read wrk's output: {output.strip()[-300:]}")
    failures = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        failures += int(non_2xx.group(1))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        failures += sum(int(n) for n in errors.groups())
    percentiles = {
        int(p): _seconds(value)
        for p, value in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", output, re.M)
    }
    return {
        "requests": int(done.group(1)),
        "seconds": _seconds(done.group(2) + done.group(3)),
        "failures": failures,
        "percentiles": percentiles,
    }


def wrk(params: dict[str, Any]) -> Sample:
    """One ``wrk`` run of ``seconds`` against ``path`` on the benchmark's server."""
    port = params["port"]
    url = f"http://127.0.0.1:{port}{params['path']}"
    command = [
        "wrk", f"-t{params['threads']}", f"-c{params['connections']}",
        f"-d{params['seconds']}s", "--latency", url,
    ]  # fmt: skip
    meter = CpuMeter(server_pid(port), children=True)
    meter.start()
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=params["seconds"] + 30, check=False
    )
    cpu = meter.stop()
    if completed.returncode != 0:
        raise BenchmarkError(f"wrk failed: {completed.stderr.strip()[-300:]}")
    result = parse_wrk(completed.stdout)
    requests, failures = result["requests"], result["failures"]
    log_run(
        params,
        ops_per_s=round(requests / result["seconds"]),
        failures=failures,
        **per_server_cpu(requests - failures, cpu),
    )
    # wrk reports percentiles, not samples: 100 stand-ins whose p50 and p99 are wrk's.
    p = result["percentiles"]
    latencies = [p[50]] * 50 + [p[75]] * 25 + [p[90]] * 15 + [p[99]] * 10 if p else []
    return Sample(requests - failures, result["seconds"], latencies, expected=requests)


def _implementation(name: str, server: list[str], requires: tuple[str, ...]) -> Implementation:
    return Implementation(
        name,
        "benchmarks.http:wrk",
        {"impl": name},
        server=server,
        requires=("wrk", *requires),
    )


def _benchmark(name: str, path: str, description: str) -> Benchmark:
    size = {"name": name, "path": path, "threads": 1, "connections": 50}
    return Benchmark(
        name=name,
        description=description,
        implementations=[
            _implementation("hub", hub_server(APP, settings=SETTINGS), ("uvloop",)),
            _implementation(
                "hub-thread-per-request",
                hub_server(APP, settings=SETTINGS, options="sync_threads=0"),
                ("uvloop",),
            ),
            _implementation("uvicorn", uvicorn_server(APP), ("uvicorn", "uvloop")),
            _implementation("daphne", daphne_server(APP), ("daphne",)),
        ],
        params={**size, "seconds": 5},
        quick_params={**size, "seconds": 1},
        unit="req/s",
        repetitions=3,
        quick_repetitions=2,
    )


BENCHMARKS = [
    _benchmark(
        "http-django-hello",
        "/hello/",
        "Django sync 'hello' view, wrk keep-alive, 50 connections, requests/s",
    ),
]
