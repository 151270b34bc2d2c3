"""hub's benchmarks: hub against its peers, side by side, reported as ratios.

Run ``python -m benchmarks.run --list`` for the benchmarks and
``benchmarks/README.md`` for how to read and extend them. The machinery
(registry, worker processes, repetitions, statistics, table) is in
``benchmarks.harness``; each other module holds benchmarks of one kind.
"""
