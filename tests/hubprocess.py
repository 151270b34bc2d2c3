"""``python -m hub ...`` in a real process, its output drained and searchable."""

from __future__ import annotations

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
    """``python -m hub ARGS`` with its output drained by a thread; ``.urls`` from its banner."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.output: list[str] = []
        self._new_line = threading.Condition()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.read_until("Quit with CONTROL-C")
        self.urls = [m.group(1) for line in self.output if (m := re.match(r"\s+(\w+://\S+)", line))]

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._new_line:
                self.output.append(line)
                self._new_line.notify_all()
        with self._new_line:
            self.output.append("")
            self._new_line.notify_all()

    def read_until(self, marker: str, after: int = 0) -> int:
        """Wait for a line containing ``marker``; return the index after it."""
        deadline = time.monotonic() + BANNER_TIMEOUT
        with self._new_line:
            while True:
                for index in range(after, len(self.output)):
                    if marker in self.output[index]:
                        return index + 1
                if self.output[-1:] == [""] or time.monotonic() > deadline:
                    raise AssertionError(f"{marker!r} never appeared:\n" + "".join(self.output))
                self._new_line.wait(1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(10)
        return self.process.returncode
