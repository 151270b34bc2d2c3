"""Real Redis deployments for tests: a restartable server, a Cluster, a Sentinel group.

Like ``tests.servers``: every process binds 127.0.0.1 on a free port, keeps
no data on disk, is awaited by its own readiness (a log line, ``cluster_state:ok``,
a Sentinel that knows its master), and is stopped by its handle.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from tests.servers import STARTUP_TIMEOUT, free_port, wait_for_line

#: Seconds between two readiness checks of a Cluster or a Sentinel group.
POLL_INTERVAL = 0.05


class RedisServer:
    """One redis-server process on a fixed free port, which can be stopped and started again."""

    def __init__(self, directory: Path, *extra: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory
        self.extra = extra
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, marker: str = "Ready to accept connections") -> RedisServer:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--loglevel", "notice",
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        wait_for_line(self.process, marker, f"redis-server {self.extra}")
        # Keep reading its log so a chatty server never blocks on a full pipe.
        threading.Thread(target=_drain, args=(self.process,), daemon=True).start()
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def cli(self, *args: str) -> str:
        """The output of ``redis-cli`` run against this server."""
        return subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=STARTUP_TIMEOUT,
        ).stdout


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for _ in process.stdout:
        pass


def wait_until(check: object, what: str) -> None:
    """Call ``check()`` until it returns true, failing after ``STARTUP_TIMEOUT``."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"{what} was not ready after {STARTUP_TIMEOUT} s")


def start_cluster(directory: Path, masters: int = 3) -> list[RedisServer]:
    """A Redis Cluster of ``masters`` masters and no replicas, with every slot served."""
    nodes = []
    for _ in range(masters):
        port = free_port()
        node_dir = directory / str(port)
        node_dir.mkdir()
        nodes.append(
            RedisServer(
                node_dir,
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                # The bus port defaults to port + 10000, past 65535 for high free ports.
                "--cluster-port", str(free_port()),
                port=port,
            ).start()
        )  # fmt: skip
    try:
        subprocess.run(
            [
                "redis-cli", "--cluster", "create",
                *(node.address for node in nodes),
                "--cluster-replicas", "0", "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=STARTUP_TIMEOUT,
        )  # fmt: skip
        for node in nodes:
            wait_until(lambda node=node: "cluster_state:ok" in node.cli("cluster", "info"),
                       f"cluster node {node.address}")  # fmt: skip
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


def start_sentinel_group(directory: Path, master_name: str = "hubmaster") -> list[RedisServer]:
    """A master, its replica and one Sentinel watching them: ``[master, replica, sentinel]``."""
    master_dir = directory / "master"
    master_dir.mkdir()
    master = RedisServer(master_dir).start()
    replica_dir = directory / "replica"
    replica_dir.mkdir()
    replica = RedisServer(replica_dir, "--replicaof", "127.0.0.1", str(master.port)).start()
    wait_until(lambda: "master_link_status:up" in replica.cli("info", "replication"), "the replica")
    sentinel_dir = directory / "sentinel"
    sentinel_dir.mkdir()
    port = free_port()
    config = sentinel_dir / "sentinel.conf"
    config.write_text(
        f"port {port}\n"
        "bind 127.0.0.1\n"
        f"sentinel monitor {master_name} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {master_name} 1000\n"
        f"sentinel failover-timeout {master_name} 5000\n"
    )
    sentinel = _SentinelServer(sentinel_dir, config, port).start("Sentinel ID is")
    wait_until(
        lambda: (
            "num-slaves" in sentinel.cli("sentinel", "master", master_name)
            and _replicas_known(sentinel, master_name)
        ),
        "the sentinel",
    )
    return [master, replica, sentinel]


def _replicas_known(sentinel: RedisServer, master_name: str) -> bool:
    lines = sentinel.cli("sentinel", "master", master_name).split()
    return lines[lines.index("num-slaves") + 1] != "0"


class _SentinelServer(RedisServer):
    def __init__(self, directory: Path, config: Path, port: int) -> None:
        super().__init__(directory, port=port)
        self.config = config

    def start(self, marker: str = "Sentinel ID is") -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", str(self.config), "--sentinel"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.directory,
        )
        wait_for_line(self.process, marker, "redis-server --sentinel")
        threading.Thread(target=_drain, args=(self.process,), daemon=True).start()
        return self
