"""Starting real servers (redis-server, mosquitto...) for tests, on free ports.

Each is started by path, bound to 127.0.0.1, and stopped by its PID. Startup
is awaited by reading the server's own "ready" line, never by sleeping.
"""

from __future__ import annotations

import socket
import subprocess
import time

#: Seconds a server may take to say it is ready.
STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_line(process: subprocess.Popen[str], marker: str, what: str) -> None:
    """Read ``process``'s output until a line contains ``marker``."""
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return
    process.kill()
    raise RuntimeError(f"{what} did not start; it printed:\n{''.join(seen[-20:])}")


def start_redis_server() -> tuple[subprocess.Popen[str], str]:
    """Start redis-server on a free port; return the process and its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--loglevel", "notice",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    wait_for_line(process, "Ready to accept connections", "redis-server")
    return process, f"redis://127.0.0.1:{port}/0"
