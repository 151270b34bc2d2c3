"""``python -m hub ...`` in a real process, its output drained and searchable."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

#: Seconds a started process may take to print its banner.
BANNER_TIMEOUT = 30


class HubProcess:
    """``python -m hub ARGS`` (or ``python ARGS`` with ``module=False``), output drained.

    The process leads its own process group, so ``stop()`` also reaches the
    children it spawned (workers, the autoreloader's server).
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None, module: bool = True) -> None:
        command = [sys.executable, "-m", "hub", *args] if module else [sys.executable, *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
        self.output: list[str] = []
        self._new_line = threading.Condition()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.read_until("Quit with CONTROL-C")
        banner = (re.match(r"\s+([\w+]+://\S+)", line) for line in self.output)
        self.urls = [match.group(1) for match in banner if match]

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._new_line:
                self.output.append(line)
                self._new_line.notify_all()
        with self._new_line:
            self.output.append("")
            self._new_line.notify_all()

    def read_until(self, marker: str, after: int = 0, timeout: float = BANNER_TIMEOUT) -> int:
        """Wait for a line containing ``marker``; return the index after it."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for index in range(after, len(self.output)):
                    if marker in self.output[index]:
                        return index + 1
                if self.output[-1:] == [""] or time.monotonic() > deadline:
                    raise AssertionError(f"{marker!r} never appeared:\n" + "".join(self.output))
                self._new_line.wait(1)

    @staticmethod
    def run_command(args: list[str], env: dict[str, str] | None = None) -> str:
        """Run ``python ARGS`` to completion; return its output or raise with it."""
        result = subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=120,
        )
        if result.returncode:
            raise AssertionError(f"{args} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def stop(self) -> int:
        """SIGTERM the process group, wait for the leader; SIGKILL the group after 30 s."""
        group = self.process.pid
        if self.process.poll() is None:
            os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        self._reader.join(10)
        if self.process.stdout is not None and not self._reader.is_alive():
            self.process.stdout.close()
        return self.process.returncode
