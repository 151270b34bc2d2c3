"""Run benchmarks against hub and its peers and print one table.

Usage, from the repository root::

    python -m benchmarks.run layer-*                 # full size
    python -m benchmarks.run layer-send-receive --quick
    python -m benchmarks.run layer-* --json results.json
    python -m benchmarks.run --list

Each (benchmark, implementation) runs in its own worker process: this module
with ``--worker``, which is not meant to be called by hand.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Run hub's benchmarks against hub and its peers, side by side.",
    )
    parser.add_argument("names", nargs="*", help="benchmark names or globs (layer-*)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument(
        "--repetitions", type=int, metavar="N", help="override the benchmark's repetitions"
    )
    parser.add_argument(
        "--only", metavar="IMPL[,IMPL]", help="run only these implementations (hub,channels)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        benchmark_name, implementation_name = args.names
        harness.worker_main(
            benchmark_name, implementation_name, args.quick, args.repetitions, args.result
        )
        return 0

    if args.list:
        for benchmark in harness.registry().values():
            implementations = ", ".join(i.name for i in benchmark.implementations)
            print(f"{benchmark.name:28} {implementations:24} {benchmark.description}")
        return 0

    if not args.names:
        parser.error("name at least one benchmark (see --list)")
    try:
        benchmarks = harness.select(args.names)
    except harness.BenchmarkError as exc:
        parser.error(str(exc))
    only = args.only.split(",") if args.only else None
    results = harness.run(
        benchmarks,
        quick=args.quick,
        repetitions=args.repetitions,
        implementations=only,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(harness.format_table(results))
    if args.json:
        harness.write_json(args.json, results, ["python", "-m", "benchmarks.run", *sys.argv[1:]])
    return 1 if any(r.error and not r.error.startswith("skipped") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
