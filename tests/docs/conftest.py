"""The user guide's examples: importable as the project the guide builds, and runnable."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"

# The examples import each other as a project's modules do (``from chat.consumers
# import ChatConsumer``), so their directory is a top-level import path.
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

#: Seconds a served example may take to print its banner or to stop.
PROCESS_TIMEOUT = 30


def inherited_environment() -> dict[str, str]:
    """This process's environment without the test suite's settings module.

    pytest-django sets ``DJANGO_SETTINGS_MODULE`` for the suite; the example
    project must choose its own, as it would on a user's machine.
    """
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


class ServedExample:
    """A command from the guide run in a real process; ``.urls`` come from its banner."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=EXAMPLES,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**inherited_environment(), "PYTHONPATH": f"{EXAMPLES}:{ROOT}", **env},
        )
        self.output: list[str] = []
        self._done = threading.Event()
        self._banner = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._banner.wait(PROCESS_TIMEOUT) or self._done.is_set():
            self.stop()
            raise AssertionError(f"{argv} printed no banner:\n{''.join(self.output)}")
        self.urls = [m[1] for line in self.output if (m := re.match(r"\s+(\w+://\S+)", line))]

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if "Quit with CONTROL-C" in line:
                self._banner.set()
        self._done.set()
        self._banner.set()

    def stop(self) -> int:
        """SIGTERM, as systemd or Ctrl-C would; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._done.wait(PROCESS_TIMEOUT)
        return self.process.returncode


@pytest.fixture
def serve_example() -> Iterator[Callable[..., ServedExample]]:
    """Start a command of the guide in docs/examples; every one is stopped after the test."""
    started: list[ServedExample] = []

    def start(*argv: str, env: dict[str, str] | None = None) -> ServedExample:
        served = ServedExample([sys.executable, *argv], env or {})
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
