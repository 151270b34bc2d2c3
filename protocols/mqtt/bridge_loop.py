"""paho-mqtt's network loop on the asyncio event loop, without blocking it.

paho's own loops (``loop_forever``, ``loop_start``) block on ``select()``;
paho also offers the pieces of a loop for an external one: ``loop_read()``,
``loop_write()``, ``loop_misc()`` and callbacks telling when its socket opens,
closes, and has data to write (paho's ``examples/loop_asyncio.py``). Here
those callbacks become ``add_reader``/``add_writer`` on the running loop, and
a timer calls ``loop_misc()`` (keep-alive PINGREQ, ping timeout) every
second. Every paho call, and so every paho callback (``on_message``,
``on_connect``...), runs on the event loop thread: no lock, no hand-off per
message.

One step is blocking in paho and cannot be split: ``reconnect()`` resolves
the name, opens the TCP connection and does the TLS handshake with blocking
calls. It runs in a worker thread (:meth:`PahoLoop.connect`) while the event
loop waits for it and touches nothing of the client; socket callbacks paho
makes from that thread are recorded and applied on the loop once it returns.
That is the only hand-off.

A TLS socket may hold decrypted bytes the kernel no longer reports as
readable, so after each read the reader checks ``pending()`` too.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

#: Seconds between ``loop_misc()`` calls: paho's own loop runs it once a second.
MISC_INTERVAL = 1.0

#: Packets read per readable event before other callbacks get a turn.
READ_BATCH = 64


def _readable(sock: Any) -> bool:
    """Whether ``sock`` holds more bytes now (or its end: paho then sees the close)."""
    pending = getattr(sock, "pending", None)
    if pending is not None:  # TLS: only bytes already decrypted (no MSG_PEEK on SSLSocket)
        return bool(pending())
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


class PahoLoop:
    """Drive one paho ``Client``'s socket from the running asyncio loop."""

    def __init__(self, client: paho.Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.sock: Any = None
        self.reading = False
        self.read_paused = False
        self._thread = threading.get_ident()
        self._deferred: list[tuple[Callable[..., None], tuple[Any, ...]]] | None = None
        self._misc: asyncio.TimerHandle | None = None
        self._flush_scheduled = False
        self._watching = False
        #: Called when paho's output buffer has been written out.
        self.drained: Callable[[], None] | None = None
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    async def connect(self) -> None:
        """``client.reconnect()`` in a worker thread (DNS, TCP, TLS, CONNECT queued).

        Raises:
            OSError / ssl.SSLError / TimeoutError: the connection could not be opened.
        """
        self._deferred = []
        try:
            await self.loop.run_in_executor(None, self.client.reconnect)
        finally:
            deferred, self._deferred = self._deferred, None
            for function, arguments in deferred:
                function(*arguments)

    def pause_reading(self) -> None:
        """Stop reading the broker (the application is behind); TCP pushes back."""
        if not self.read_paused:
            self.read_paused = True
            if self.reading:
                self.loop.remove_reader(self.sock)

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            if self.reading:
                self.loop.add_reader(self.sock, self._read)
                self.loop.call_soon(self._read)  # a TLS socket may hold decrypted bytes

    def close(self) -> None:
        """Forget the socket (paho closes it); stop the timer."""
        if self.sock is not None:
            self._forget(self.sock)

    # paho's socket callbacks ----------------------------------------------------

    def _run(self, function: Callable[..., None], *arguments: Any) -> None:
        if threading.get_ident() == self._thread:
            function(*arguments)
        elif self._deferred is not None:
            self._deferred.append((function, arguments))
        else:  # not expected: paho only calls back from the thread that drives it
            self.loop.call_soon_threadsafe(function, *arguments)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._run(self._open, sock)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._run(self._forget, sock)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._run(self._add_writer, sock)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._run(self._remove_writer, sock)

    # On the loop ---------------------------------------------------------------

    def _open(self, sock: Any) -> None:
        self.sock = sock
        self.reading = True
        if not self.read_paused:
            self.loop.add_reader(sock, self._read)
        if self._misc is None:
            self._misc = self.loop.call_later(MISC_INTERVAL, self._tick)

    def _forget(self, sock: Any) -> None:
        if sock is self.sock:
            self.sock = None
        if self.reading:
            self.reading = False
            self.loop.remove_reader(sock)
        if self._watching:
            self._watching = False
            self.loop.remove_writer(sock)
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _add_writer(self, sock: Any) -> None:
        # Write once at the end of this loop turn (what the turn queued goes out
        # together) and watch for writability only if the socket is full: one
        # add_writer/remove_writer pair per acknowledgement would cost two
        # epoll_ctl calls per message.
        if sock is self.sock and not self._flush_scheduled and not self._watching:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush, sock)

    def _flush(self, sock: Any) -> None:
        self._flush_scheduled = False
        if sock is not self.sock:
            return
        self.client.loop_write()  # unregisters when all is written, else:
        if self.client.want_write() and sock is self.sock and not self._watching:
            self._watching = True
            self.loop.add_writer(sock, self._writable)

    def _writable(self) -> None:
        self.client.loop_write()

    def _remove_writer(self, sock: Any) -> None:
        if self._watching:
            self._watching = False
            self.loop.remove_writer(sock)
        if self.drained is not None:
            self.drained()

    def _read(self) -> None:
        """Read what the socket holds, up to ``READ_BATCH`` packets.

        paho's ``loop_read()`` handles one packet when no QoS 2 flow is open,
        so one call per readable event would cost an event loop turn (an
        ``epoll_wait``) per message; a ``MSG_PEEK`` says whether another
        packet is there for the price of one ``recv``.
        """
        client = self.client
        for _ in range(READ_BATCH):
            sock = self.sock
            if sock is None or self.read_paused:
                return
            client.loop_read()
            if self.sock is not sock or not _readable(sock):
                return

    def _tick(self) -> None:
        self._misc = None
        if self.sock is None:
            return
        self._misc = self.loop.call_later(MISC_INTERVAL, self._tick)
        self.client.loop_misc()
