"""A real mosquitto broker for tests: started on a free port from a generated config.

Debian's ``mosquitto`` package (``/usr/sbin/mosquitto``). The broker binds
127.0.0.1, is awaited by its own "running" log line, and is stopped by PID. It
can be stopped and started again on the same port (a broker restart), keeping
its sessions on disk when ``persistence`` is on.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port, wait_for_line

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

#: Seconds a test waits for something a client should receive.
WAIT = 10.0

#: Seconds mosquitto may take to stop (it saves its database on SIGTERM).
STOP_TIMEOUT = 10.0


def mosquitto_available() -> bool:
    return Path(MOSQUITTO).exists()


requires_mosquitto = pytest.mark.skipif(
    not mosquitto_available(), reason="mosquitto is not installed (apt-get install mosquitto)"
)


class Mosquitto:
    """One mosquitto process on ``127.0.0.1:port``; ``restart()`` keeps the port."""

    def __init__(self, *, persistence: bool = False, **options: Any) -> None:
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="hub-mosquitto-")
        self.persistence = persistence
        self.options = options
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def write_config(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.directory}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            # Run as root mosquitto switches to the "mosquitto" user, which cannot
            # read the test's private temp files; stay root instead.
            lines.append("user root")
        lines += [f"{key} {value}" for key, value in self.options.items()]
        path = Path(self.directory) / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", self.write_config()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_line(self.process, " running", "mosquitto")
        # Keep reading its output so a full pipe never blocks the broker.
        process = self.process
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=lambda: stream.read(), daemon=True).start()
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class Subscriber:
    """A blocking paho client subscribed to ``topic_filter``, collecting what arrives."""

    def __init__(self, port: int, topic_filter: str, qos: int = 1) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: queue.Queue[Any] = queue.Queue()
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda client, *_: client.subscribe(topic_filter, qos)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(WAIT):
            raise RuntimeError(f"could not subscribe to {topic_filter!r} on port {port}")

    def get(self) -> Any:
        return self.messages.get(timeout=WAIT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_messages(port: int, messages: list[tuple[str, bytes, int]], **kwargs: Any) -> None:
    """Publish ``(topic, payload, qos)`` messages with a fresh blocking paho client."""
    import paho.mqtt.publish

    paho.mqtt.publish.multiple(
        [{"topic": t, "payload": p, "qos": q, **kwargs} for t, p, q in messages],
        hostname="127.0.0.1",
        port=port,
    )
