"""The benchmarks still run: each implementation once, at the quick size, no ratios checked."""

import shutil

import pytest

from benchmarks.harness import REPO_ROOT, run, select, smoke
from benchmarks.instructions import count


def test_rounds_run_the_implementations_in_turn_each_way():
    lines: list[str] = []
    results = run(select(["layer-send-receive"]), quick=True, repetitions=3, progress=lines.append)
    assert [line.split()[1] for line in lines] == [
        *("hub", "channels"),
        *("channels", "hub"),
        *("hub", "channels"),
    ]
    assert [r.implementation for r in results] == ["hub", "channels"]
    assert [r.error for r in results if r.error] == []


def test_the_layer_benchmarks_complete_without_losing_messages():
    results = smoke(["layer-*"])
    assert {r.implementation for r in results} == {"hub", "channels"}
    assert [r.error for r in results if r.error] == []


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind (./dev.sh test)")
def test_the_instruction_counter_counts_a_server_under_valgrind():
    # benchmarks.instructions: the deterministic A/B of server changes.
    per_line = count("tcp-line-echo-100", "protocol", REPO_ROOT, seconds=0.5)
    # A plain asyncio echo costs a few thousand instructions per line.
    assert 1_000 < per_line < 100_000
