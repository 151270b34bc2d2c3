"""Instructions per operation of a benchmark's server, counted by valgrind: a deterministic A/B.

Throughput on a shared or virtual machine moves by 10-20 % from run to run,
so a change worth 3 % cannot be seen in ``benchmarks.run``. The number of
instructions the server executes per operation barely moves (about 1-2 %
between runs): this tool starts an implementation's server under valgrind's
callgrind, drives it with the benchmark's own load generator twice (a third
of ``--seconds``, then all of it), counts each load on its own, and divides
the difference in instructions by the difference in operations, so that
connecting and closing, the same in both, cancel out.

    .venv/bin/python -m benchmarks.instructions tcp-line-echo-100 hub streams
    .venv/bin/python -m benchmarks.instructions tcp-line-echo-100 hub --tree /tmp/base

``--tree DIR`` runs the server from another checkout (``git worktree add
/tmp/base HEAD`` before a change): the A/B of a change is then two lines of
output. Only implementations with a server process are measured (the count
is the server's); valgrind runs it ~50x slower, so operations are fewer
than in a timed run, and the count includes the kernel-facing user code
(event loop, syscall wrappers) but not the kernel. Needs ``valgrind``
(Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import REPO_ROOT, BenchmarkError, load_target, params_of, select

#: Seconds a server under valgrind gets to start listening (imports run ~50x slower).
START_TIMEOUT = 120.0


def count(benchmark_name: str, implementation_name: str, tree: Path, seconds: float) -> float:
    """Instructions the server of one implementation executes per operation."""
    [benchmark] = select([benchmark_name])
    implementation = benchmark.implementation(implementation_name)
    if not implementation.server:
        raise BenchmarkError(f"{implementation_name} has no server process to count")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="hub-callgrind-") as tmp:
        out = Path(tmp, "callgrind.out.%p")
        argv = [arg.replace("{port}", str(port)) for arg in implementation.server]
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
             f"--callgrind-out-file={out}", *argv],
            cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            _wait_listening(server, port)
            target = load_target(implementation.target)
            target(params_of(benchmark, implementation, quick=True, port=port))
            # A server may run its work in a child process (hub run --workers 1).
            pids = [server.pid, *_descendants(server.pid)]
            _control("--instr=on", pids)
            params = params_of(benchmark, implementation, quick=False, port=port)
            # A short load and a long one, each counted on its own: what does not
            # grow with the operations (connecting, closing) cancels out.
            runs = []
            for dump, share in enumerate((1 / 3, 1.0), start=1):
                duration = {
                    key: seconds * share for key in ("max_seconds", "seconds") if key in params
                }
                ops = target({**params, **duration}).ops
                _control("--dump", pids)
                runs.append((ops, _dumped(Path(tmp), dump)))
        finally:
            _stop(server)
    (short_ops, short_count), (long_ops, long_count) = runs
    if long_ops <= short_ops or long_count <= short_count:
        raise BenchmarkError(f"{implementation_name}: the longer load did no more work")
    return (long_count - short_count) / (long_ops - short_ops)


def _dumped(directory: Path, dump: int) -> int:
    """Instructions in callgrind dump number ``dump`` of the busiest process."""
    totals = [
        int(line.split()[1])
        for path in directory.glob(f"callgrind.out.*.{dump}")
        for line in path.read_text().splitlines()
        if line.startswith("totals:")
    ]
    if not totals:
        raise BenchmarkError("callgrind wrote no dump: nothing counted")
    return max(totals)


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the server and whatever it started (valgrind follows its children)."""
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _wait_listening(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchmarkError(f"server exited with {server.returncode} under valgrind")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise BenchmarkError(f"server did not listen within {START_TIMEOUT} s under valgrind")


def _descendants(pid: int) -> list[int]:
    """The processes started (directly or not) by ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _control(option: str, pids: list[int]) -> None:
    for pid in pids:
        subprocess.run(
            ["callgrind_control", option, str(pid)],
            check=False,  # a helper process valgrind does not run answers with an error
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description="Server instructions per operation under valgrind (deterministic A/B).",
    )
    parser.add_argument("benchmark", help="one benchmark name (tcp-line-echo-100)")
    parser.add_argument("implementations", nargs="+", help="implementations with a server")
    parser.add_argument(
        "--tree", action="append", type=Path, help="also run from this checkout (repeatable)"
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="load duration (6)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt install valgrind)", file=sys.stderr)
        return 1
    trees = [REPO_ROOT, *(args.tree or [])]
    for implementation in args.implementations:
        for tree in trees:
            per_op = count(args.benchmark, implementation, tree.resolve(), args.seconds)
            print(f"{args.benchmark} {implementation} [{tree}]: {per_op:,.0f} instructions/op")
    return 0


if __name__ == "__main__":
    sys.exit(main())
