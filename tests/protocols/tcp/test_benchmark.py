"""The TCP benchmarks still run: every server once, quick size, each connection served."""

from benchmarks.harness import smoke


def test_the_line_echo_benchmark_completes_on_every_server() -> None:
    results = smoke(["tcp-line-echo-100"])
    assert {r.implementation for r in results} == {"hub", "hub-asgi", "protocol", "streams"}
    assert [r.error for r in results if r.error] == []


def test_the_idle_benchmark_measures_memory_per_served_connection() -> None:
    results = smoke(["tcp-idle-10k"])
    assert {r.implementation for r in results} == {"hub", "protocol", "streams"}
    assert all(r.throughput and r.throughput > 0 for r in results)
