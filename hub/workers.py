"""``--workers N``: N processes serving the same ports, supervised.

Each TCP listener is bound by every worker with ``SO_REUSEPORT``, so the
kernel spreads new connections evenly over the workers' accept queues (one
shared socket would wake every worker for each connection and balance
poorly). The supervisor first binds each address itself, without listening,
to turn port 0 into a real port and to fail early when an address is taken,
then starts the workers with the resolved ports; a socket that does not listen
receives no connections. Unix sockets cannot be shared that way: the
supervisor binds them and the workers inherit the socket. The supervisor
reports the listeners ready once every worker has said it is serving.

A worker that dies is logged and restarted, after a pause that doubles while
workers keep dying quickly (so a broken deployment does not spin). SIGTERM or
SIGINT stops the workers, each of which shuts down gracefully.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from hub.listeners import ListenerSpec

logger = logging.getLogger("hub.workers")

#: A worker that lived less than this many seconds counts as a crash loop.
QUICK_DEATH = 5.0
#: Longest pause before restarting a crashing worker.
MAX_RESTART_DELAY = 30.0


#: Seconds the workers may take to start serving.
START_TIMEOUT = 60.0


def bind_reuseport(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` with ``SO_REUSEPORT``, listening if asked."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
    sock.setblocking(False)
    return sock


def bind_unix(path: str) -> socket.socket:
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def resolve_listeners(listeners: Sequence[ListenerSpec]) -> tuple[list[ListenerSpec], list[Any]]:
    """Bind every listener once: the specs with real ports, and the sockets to keep."""
    resolved, held = [], []
    for spec in listeners:
        if spec.entry.outbound:
            resolved.append(spec)
            continue
        if spec.uds:
            held.append(bind_unix(spec.uds))
            resolved.append(spec)
            continue
        port = spec.entry.default_port if spec.port is None else spec.port
        sock = bind_reuseport(spec.host, port, listen=False)
        held.append(sock)
        resolved.append(
            ListenerSpec(
                spec.protocol,
                host=spec.host,
                port=sock.getsockname()[1],
                name=spec.name,
                options=dict(spec.options),
            )
        )
    return resolved, held


class Supervisor:
    """Runs ``count`` worker processes of ``target(index, listeners, unix_sockets, ready, *args)``.

    ``target`` must be importable (workers are spawned, not forked, so no event
    loop or thread state is inherited) and must put its index on ``ready``
    once it serves.
    """

    def __init__(
        self,
        count: int,
        target: Callable[..., None],
        listeners: Sequence[ListenerSpec],
        args: tuple[Any, ...] = (),
        on_ready: Callable[[list[ListenerSpec]], None] | None = None,
        stop_timeout: float = 60.0,
    ) -> None:
        if count < 1:
            raise ValueError(f"workers must be at least 1, got {count}")
        self.count = count
        self.target = target
        self.listeners = list(listeners)
        self.args = args
        self.on_ready = on_ready
        self.stop_timeout = stop_timeout
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[int, Any] = {}
        self._started: dict[int, float] = {}
        self._delay: dict[int, float] = {}
        self._stopping = threading.Event()
        self._ready = self._context.SimpleQueue()

    def run(self) -> None:
        """Start the workers and supervise them until SIGTERM or SIGINT."""
        resolved, held = resolve_listeners(self.listeners)
        unix = {index: sock for index, sock in enumerate(held) if sock.family == socket.AF_UNIX}
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self._stopping.set())
        for index in range(self.count):
            self._spawn(index, resolved, unix)
        try:
            self._wait_ready()
            if self.on_ready is not None:
                self.on_ready(resolved)
            while not self._stopping.is_set():
                sentinels = [p.sentinel for p in self._processes.values()]
                multiprocessing.connection.wait(sentinels, timeout=0.5)
                for index, process in list(self._processes.items()):
                    if process.is_alive() or self._stopping.is_set():
                        continue
                    self._restart(index, process, resolved, unix)
        finally:
            self._stop_all()
            for sock in held:
                sock.close()

    def _wait_ready(self) -> None:
        waiting = set(self._processes)
        deadline = time.monotonic() + START_TIMEOUT
        while waiting and not self._stopping.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers {sorted(waiting)} did not start in {START_TIMEOUT} s")
            if self._ready.empty():
                dead = [i for i in waiting if not self._processes[i].is_alive()]
                if dead:
                    raise RuntimeError(f"worker {dead[0]} exited before serving; see its log")
                time.sleep(0.05)
                continue
            waiting.discard(self._ready.get())

    def _spawn(self, index: int, resolved: list[ListenerSpec], unix: dict[int, Any]) -> None:
        process = self._context.Process(
            target=self.target,
            args=(index, resolved, unix, self._ready, *self.args),
            name=f"hub-worker-{index}",
            daemon=False,
        )
        process.start()
        self._processes[index] = process
        self._started[index] = time.monotonic()
        logger.info("Worker %d started (pid %d)", index, process.pid)

    def _restart(self, index: int, process: Any, resolved: list[ListenerSpec], unix: Any) -> None:
        lived = time.monotonic() - self._started[index]
        delay = 0.0
        if lived < QUICK_DEATH:
            delay = min(MAX_RESTART_DELAY, max(0.5, self._delay.get(index, 0.25) * 2))
        self._delay[index] = delay
        logger.error(
            "Worker %d (pid %d) exited with code %s after %.1f s; restarting in %.1f s",
            index,
            process.pid,
            process.exitcode,
            lived,
            delay,
        )
        if self._stopping.wait(delay):
            return
        self._spawn(index, resolved, unix)

    def _stop_all(self) -> None:
        for process in self._processes.values():
            if process.is_alive():
                process.terminate()
        for index, process in self._processes.items():
            process.join(timeout=self.stop_timeout)
            if process.is_alive():
                logger.error("Worker %d (pid %d) did not stop; killing it", index, process.pid)
                process.kill()
                process.join()
