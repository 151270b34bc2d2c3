"""The benchmark machinery: registry, worker processes, repetitions, statistics, table.

A benchmark module (``benchmarks/layers.py`` is the model) declares a list
``BENCHMARKS`` of :class:`Benchmark`. Each has implementations, hub's first;
an implementation names a function ``target(params) -> Sample`` that performs
one repetition, and optionally a server command that the runner starts for
it. The harness does everything else:

- each (benchmark, implementation) runs in a fresh worker process
  (``python -m benchmarks.run --worker ...``), so state never leaks between
  implementations and peak RSS belongs to one implementation;
- the worker runs one warm-up repetition at the quick size, then the
  repetitions, and writes each repetition's summary to a JSON file;
- the parent takes the median over repetitions and divides hub's throughput
  by each peer's.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Modules whose ``BENCHMARKS`` lists make up the registry, in table order.
#: A new benchmark module is registered by adding its name here.
BENCHMARK_MODULES = (
    "benchmarks.layers",
    "benchmarks.redis_layer",
    "benchmarks.websocket",
    "benchmarks.http",
    "benchmarks.idle",
    "benchmarks.smtp",
    "benchmarks.mqtt",
    "benchmarks.mqtt_bridge",
    "benchmarks.tcp",
)

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Seconds a server gets to start accepting connections on its port.
SERVER_START_TIMEOUT = 10.0
#: Seconds a server gets to exit after SIGINT, then again after SIGTERM.
SERVER_STOP_TIMEOUT = 5.0


class BenchmarkError(Exception):
    """A benchmark could not run, or ran and lost or failed operations."""


class LatencyHistogram:
    """Latencies counted in logarithmic buckets, each ``RESOLUTION`` wide (1%).

    Memory does not grow with the number of operations, so the peak RSS of a
    run measures the implementation, not the benchmark's bookkeeping; a
    percentile is exact to within one bucket.
    """

    RESOLUTION = 0.01
    _SCALE = 1 / math.log1p(RESOLUTION)
    _FLOOR = 1e-9  # seconds; a latency of zero counts as this

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def record(self, seconds: float) -> None:
        try:
            bucket = int(math.log(seconds) * self._SCALE)
        except ValueError:  # zero: shorter than the clock's resolution
            bucket = int(math.log(self._FLOOR) * self._SCALE)
        counts = self.counts
        counts[bucket] = counts.get(bucket, 0) + 1

    def __len__(self) -> int:
        return sum(self.counts.values())

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile: the geometric middle of its bucket."""
        rank = max(1, round(fraction * len(self)))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return math.exp((bucket + 0.5) / self._SCALE)
        raise ValueError("percentile of an empty histogram")


@dataclass(frozen=True)
class Sample:
    """What one repetition measured.

    Attributes:
        ops: operations completed (messages delivered, requests answered).
        elapsed: seconds those operations took.
        latencies: seconds per operation, as a list or, to keep memory flat
            however many operations run, a :class:`LatencyHistogram`.
        expected: operations that should have completed; ``ops < expected``
            is reported as loss. ``None`` when the benchmark cannot lose any.
    """

    ops: int
    elapsed: float
    latencies: Sequence[float] | LatencyHistogram = ()
    expected: int | None = None


@dataclass(frozen=True)
class Implementation:
    """One contender in a benchmark.

    Attributes:
        name: as shown in the table: ``"hub"``, ``"channels"``, ``"uvicorn"``.
        target: ``"module:function"``; ``function(params) -> Sample`` runs one
            repetition in the worker process.
        params: merged over the benchmark's params for this implementation
            (typically which library the target should drive).
        server: argv of a server started for the whole run, ``{port}`` replaced
            by a free TCP port that also reaches the target as
            ``params["port"]``. Empty for in-process benchmarks. With a server,
            the peak RSS reported is the server's, not the load generator's.
        requires: importable modules or executables on ``PATH`` the
            implementation needs; when one is missing the row is skipped.
    """

    name: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)
    server: Sequence[str] = ()
    requires: Sequence[str] = ()


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark; ``implementations[0]`` is hub, the baseline of the ratios."""

    name: str
    description: str
    implementations: Sequence[Implementation]
    params: Mapping[str, Any]
    quick_params: Mapping[str, Any]
    unit: str = "msg/s"
    repetitions: int = 5
    quick_repetitions: int = 3
    #: Seconds one worker process may run, warm-up and repetitions included.
    timeout: float = 180.0

    def implementation(self, name: str) -> Implementation:
        for implementation in self.implementations:
            if implementation.name == name:
                return implementation
        names = ", ".join(i.name for i in self.implementations)
        raise BenchmarkError(f"{self.name} has no implementation {name!r} (it has {names})")


@dataclass
class Result:
    """One row of the table: a benchmark on one implementation, over its repetitions."""

    benchmark: str
    implementation: str
    unit: str
    quick: bool
    throughput: float | None = None  # median over repetitions, ``unit``
    p50: float | None = None  # seconds, median over repetitions of each one's p50
    p99: float | None = None
    spread: float | None = None  # (max - min) / median of the repetitions' throughputs
    peak_rss: int | None = None  # bytes
    rss_of: str = "worker"  # or "server"
    lost: int = 0  # operations lost, summed over repetitions
    ratio: float | None = None  # hub's throughput / this one's
    error: str | None = None
    repetitions: list[dict[str, Any]] = field(default_factory=list)


# Registry


def registry() -> dict[str, Benchmark]:
    """Every benchmark of ``BENCHMARK_MODULES`` by name, in declaration order.

    ``HUB_BENCHMARK_MODULES`` (comma-separated module names) adds modules, to
    try a benchmark out before registering it.
    """
    extra = os.environ.get("HUB_BENCHMARK_MODULES", "")
    benchmarks: dict[str, Benchmark] = {}
    for module_name in [*BENCHMARK_MODULES, *filter(None, extra.split(","))]:
        for benchmark in importlib.import_module(module_name).BENCHMARKS:
            if benchmark.name in benchmarks:
                raise BenchmarkError(f"Two benchmarks are named {benchmark.name!r}")
            benchmarks[benchmark.name] = benchmark
    return benchmarks


def select(patterns: Sequence[str]) -> list[Benchmark]:
    """The benchmarks named by ``patterns`` (exact names or globs such as ``layer-*``)."""
    benchmarks = registry()
    selected: dict[str, Benchmark] = {}
    for pattern in patterns:
        matches = [b for name, b in benchmarks.items() if fnmatch.fnmatchcase(name, pattern)]
        if not matches:
            raise BenchmarkError(
                f"No benchmark matches {pattern!r}; there are: {', '.join(benchmarks)}"
            )
        for benchmark in matches:
            selected.setdefault(benchmark.name, benchmark)
    return list(selected.values())


def load_target(target: str) -> Callable[[dict[str, Any]], Sample]:
    module_name, _, function_name = target.partition(":")
    function: Callable[[dict[str, Any]], Sample] = getattr(
        importlib.import_module(module_name), function_name
    )
    return function


def missing_requirements(implementation: Implementation) -> list[str]:
    return [
        requirement
        for requirement in implementation.requires
        if importlib.util.find_spec(requirement) is None and shutil.which(requirement) is None
    ]


# Statistics


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def summarize(sample: Sample) -> dict[str, Any]:
    """One repetition's numbers, small enough to pass between processes."""
    latencies = sample.latencies
    p50 = p99 = None
    if isinstance(latencies, LatencyHistogram):
        if len(latencies):
            p50, p99 = latencies.percentile(0.50), latencies.percentile(0.99)
    elif latencies:
        ordered = sorted(latencies)
        p50, p99 = percentile(ordered, 0.50), percentile(ordered, 0.99)
    return {
        "ops": sample.ops,
        "elapsed": sample.elapsed,
        "throughput": sample.ops / sample.elapsed if sample.elapsed > 0 else 0.0,
        "p50": p50,
        "p99": p99,
        "latency_samples": len(latencies),
        "expected": sample.expected,
        "lost": max(0, sample.expected - sample.ops) if sample.expected is not None else 0,
    }


def aggregate(result: Result) -> None:
    """Fill ``result``'s medians from its repetitions."""
    repetitions = result.repetitions
    if not repetitions:
        return
    throughputs = [r["throughput"] for r in repetitions]
    result.throughput = statistics.median(throughputs)
    if result.throughput:
        result.spread = (max(throughputs) - min(throughputs)) / result.throughput
    p50s = [r["p50"] for r in repetitions if r["p50"] is not None]
    p99s = [r["p99"] for r in repetitions if r["p99"] is not None]
    result.p50 = statistics.median(p50s) if p50s else None
    result.p99 = statistics.median(p99s) if p99s else None
    result.lost = sum(r["lost"] for r in repetitions)


def add_ratios(results: Sequence[Result], benchmarks: Sequence[Benchmark]) -> None:
    """Set each peer row's ``ratio``: hub's throughput over the peer's."""
    by_key = {(r.benchmark, r.implementation): r for r in results}
    for benchmark in benchmarks:
        hub = by_key.get((benchmark.name, benchmark.implementations[0].name))
        if hub is None or not hub.throughput:
            continue
        for implementation in benchmark.implementations[1:]:
            peer = by_key.get((benchmark.name, implementation.name))
            if peer is not None and peer.throughput:
                peer.ratio = hub.throughput / peer.throughput


# Running


def repetitions_of(benchmark: Benchmark, quick: bool, override: int | None = None) -> int:
    if override is not None:
        return override
    return benchmark.quick_repetitions if quick else benchmark.repetitions


def params_of(
    benchmark: Benchmark, implementation: Implementation, quick: bool, port: int | None = None
) -> dict[str, Any]:
    params = {**(benchmark.quick_params if quick else benchmark.params), **implementation.params}
    if port is not None:
        params["port"] = port
    return params


def run_repetitions(
    benchmark: Benchmark,
    implementation: Implementation,
    quick: bool,
    repetitions: int,
    warm_up: bool = True,
    port: int | None = None,
) -> list[dict[str, Any]]:
    """Warm up, then run ``repetitions`` in this process; one summary each."""
    target = load_target(implementation.target)
    if warm_up:
        target(params_of(benchmark, implementation, quick=True, port=port))
    params = params_of(benchmark, implementation, quick, port=port)
    summaries = []
    for _ in range(repetitions):
        gc.collect()
        summaries.append(summarize(target(dict(params))))
    return summaries


def worker_main(
    benchmark_name: str, implementation_name: str, quick: bool, repetitions: int, result_path: str
) -> None:
    """Entry point of a worker process: run, then write summaries and peak RSS."""
    benchmark = registry()[benchmark_name]
    implementation = benchmark.implementation(implementation_name)
    port = int(os.environ["HUB_BENCH_PORT"]) if "HUB_BENCH_PORT" in os.environ else None
    summaries = run_repetitions(benchmark, implementation, quick, repetitions, port=port)
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    Path(result_path).write_text(json.dumps({"repetitions": summaries, "peak_rss": peak_rss}))


class _Server:
    """A server process started for one implementation; knows its peak RSS once stopped."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.port = _free_port()
        self.argv = [arg.replace("{port}", str(self.port)) for arg in argv]
        # A file, not a pipe: a server that logs a lot would fill a pipe nobody
        # reads during the run and block on its next write.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            self.argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=self.stderr
        )
        self.peak_rss: int | None = None

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stderr.seek(0)
                stderr = self.stderr.read().decode(errors="replace")
                raise BenchmarkError(
                    f"Server {' '.join(self.argv)} exited with {self.process.returncode}: "
                    f"{stderr.strip()[-500:]}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise BenchmarkError(
            f"Server {' '.join(self.argv)} did not listen on port {self.port} "
            f"within {SERVER_START_TIMEOUT} s"
        )

    def stop(self) -> None:
        """Stop the server (SIGINT, then SIGTERM, then SIGKILL) and read its peak RSS."""
        pid = self.process.pid
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + SERVER_STOP_TIMEOUT
            while time.monotonic() < deadline:
                reaped, status, usage = os.wait4(pid, os.WNOHANG)
                if reaped:
                    # wait4 gives the child's own rusage; Popen must not reap it again.
                    self.process.returncode = os.waitstatus_to_exitcode(status)
                    scale = 1 if sys.platform == "darwin" else 1024
                    self.peak_rss = usage.ru_maxrss * scale
                    self.stderr.close()
                    return
                time.sleep(0.02)


@contextlib.contextmanager
def _server(implementation: Implementation) -> Iterator[_Server | None]:
    if not implementation.server:
        yield None
        return
    server = _Server(implementation.server)
    try:
        server.wait_until_listening()
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_implementation(
    benchmark: Benchmark,
    implementation: Implementation,
    quick: bool = False,
    repetitions: int | None = None,
) -> Result:
    """Run one implementation of ``benchmark`` in a fresh worker process."""
    result = Result(benchmark.name, implementation.name, benchmark.unit, quick)
    missing = missing_requirements(implementation)
    if missing:
        result.error = f"skipped: needs {', '.join(missing)}"
        return result
    count = repetitions_of(benchmark, quick, repetitions)
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        result_path = Path(tmp, "result.json")
        command = [
            sys.executable, "-m", "benchmarks.run", "--worker",
            benchmark.name, implementation.name,
            "--repetitions", str(count), "--result", str(result_path),
        ]  # fmt: skip
        if quick:
            command.append("--quick")
        env = dict(os.environ)
        try:
            with _server(implementation) as server:
                if server is not None:
                    env["HUB_BENCH_PORT"] = str(server.port)
                completed = subprocess.run(
                    command,
                    cwd=REPO_ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=benchmark.timeout,
                    check=False,
                )
        except subprocess.TimeoutExpired:
            result.error = f"timed out after {benchmark.timeout:g} s"
            return result
        except BenchmarkError as exc:
            result.error = str(exc)
            return result
        if completed.returncode != 0 or not result_path.exists():
            lines = completed.stderr.strip().splitlines() or [f"exit status {completed.returncode}"]
            result.error = f"worker failed: {lines[-1]}"
            return result
        data = json.loads(result_path.read_text())
    result.repetitions = data["repetitions"]
    if server is not None:
        result.peak_rss, result.rss_of = server.peak_rss, "server"
    else:
        result.peak_rss = data["peak_rss"]
    aggregate(result)
    return result


def run(
    benchmarks: Sequence[Benchmark],
    quick: bool = False,
    repetitions: int | None = None,
    implementations: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Result]:
    """Run every implementation of every benchmark in rounds, each in its own worker process.

    Round ``i`` runs repetition ``i`` of every implementation, one after the
    other, each in a fresh worker (and server): on a shared or virtual machine
    whose speed drifts over minutes, every implementation then meets the same
    drift, and the ratios stay fair where running one implementation's five
    repetitions, then the next one's, would compare different minutes. Every
    other round runs them in reverse, so that no implementation is always the
    first (or the last) of a round.
    """
    results = []
    for benchmark in benchmarks:
        chosen = [
            implementation
            for implementation in benchmark.implementations
            if not implementations or implementation.name in implementations
        ]
        count = repetitions_of(benchmark, quick, repetitions)
        merged: dict[str, Result] = {}
        for round_number in range(1, count + 1):
            for implementation in chosen if round_number % 2 else chosen[::-1]:
                so_far = merged.get(implementation.name)
                if so_far is not None and so_far.error:
                    continue
                started = time.perf_counter()
                result = run_implementation(benchmark, implementation, quick, repetitions=1)
                merged[implementation.name] = _merge(so_far, result)
                if progress is not None:
                    outcome = result.error or f"{result.throughput:,.0f} {result.unit}"
                    progress(
                        f"{benchmark.name} {implementation.name} "
                        f"[{round_number}/{count}]: {outcome} "
                        f"({time.perf_counter() - started:.1f} s)"
                    )
        results.extend(merged[implementation.name] for implementation in chosen)
    add_ratios(results, benchmarks)
    return results


def _merge(so_far: Result | None, result: Result) -> Result:
    """One implementation's rounds as one row: repetitions joined, the highest peak RSS.

    A round that failed ends the row's rounds; the rounds before it stay.
    """
    if so_far is None:
        return result
    if result.error:
        so_far.error = result.error
        return so_far
    so_far.repetitions.extend(result.repetitions)
    if result.peak_rss is not None:
        so_far.peak_rss = max(so_far.peak_rss or 0, result.peak_rss)
    aggregate(so_far)
    return so_far


def smoke(patterns: Sequence[str] = ("*",)) -> list[Result]:
    """Run each selected benchmark once per implementation, quick size, in this process.

    For tests: no worker processes, no warm-up, one repetition. Raises
    ``BenchmarkError`` if an implementation fails, completes nothing or loses
    operations. Implementations whose requirements are missing are skipped.
    """
    benchmarks = select(patterns)
    results = []
    for benchmark in benchmarks:
        for implementation in benchmark.implementations:
            result = Result(benchmark.name, implementation.name, benchmark.unit, quick=True)
            missing = missing_requirements(implementation)
            if missing:
                result.error = f"skipped: needs {', '.join(missing)}"
                results.append(result)
                continue
            with _server(implementation) as server:
                port = server.port if server is not None else None
                result.repetitions = run_repetitions(
                    benchmark, implementation, quick=True, repetitions=1, warm_up=False, port=port
                )
            if server is not None:
                result.peak_rss, result.rss_of = server.peak_rss, "server"
            aggregate(result)
            if not result.throughput or result.lost:
                raise BenchmarkError(
                    f"{benchmark.name} on {implementation.name}: throughput "
                    f"{result.throughput}, lost {result.lost} operations"
                )
            results.append(result)
    add_ratios(results, benchmarks)
    return results


# Reporting


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def format_table(results: Sequence[Result]) -> str:
    """The results as a Markdown table, readable in a terminal as it is."""
    header = (
        "benchmark", "impl", "throughput", "spread", "p50", "p99", "peak RSS", "hub/peer", "notes",
    )  # fmt: skip
    rows = [header]
    for r in results:
        notes = []
        if r.error:
            notes.append(r.error)
        if r.lost:
            notes.append(f"LOST {r.lost:,} msgs")
        if r.rss_of == "server":
            notes.append("RSS of server")
        rows.append(
            (
                r.benchmark,
                r.implementation,
                f"{r.throughput:,.0f} {r.unit}" if r.throughput is not None else "-",
                f"±{r.spread / 2:.0%}" if r.spread is not None else "-",
                format_seconds(r.p50),
                format_seconds(r.p99),
                f"{r.peak_rss / 2**20:.1f} MiB" if r.peak_rss is not None else "-",
                f"{r.ratio:.2f}x" if r.ratio is not None else "-",
                "; ".join(notes),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {2, 3, 4, 5, 6, 7}

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


def environment() -> dict[str, Any]:
    """Where the numbers come from, for the JSON report."""
    versions = {}
    for package in ("django", "asgiref", "channels", "channels_redis", "uvloop"):
        with contextlib.suppress(Exception):
            versions[package] = importlib.import_module(package).__version__
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "packages": versions,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_json(path: str, results: Sequence[Result], argv: Sequence[str]) -> None:
    report = {
        "command": " ".join(argv),
        "environment": environment(),
        "results": [asdict(r) for r in results],
    }
    Path(path).write_text(json.dumps(report, indent=2) + "\n")
