"""The benchmarks still run: each implementation once, at the quick size, no ratios checked."""

from benchmarks.harness import smoke


def test_the_layer_benchmarks_complete_without_losing_messages():
    results = smoke(["layer-*"])
    assert {r.implementation for r in results} == {"hub", "channels"}
    assert [r.error for r in results if r.error] == []
