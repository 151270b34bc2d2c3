"""Time the candidate parsers for hub's HTTP/1.1 + WebSocket server.

Standalone: ``python benchmarks/http_parsers.py [--seconds 0.5]``.

Why this exists: ``protocols/http_ws`` parses with well-kept libraries, never
by hand, and the choice between them was made by measuring the work the server
does per request and per message:

* HTTP: parse a typical keep-alive browser GET request (about 500 bytes of
  headers) with httptools (llhttp) and h11. h11 cannot parse the next request
  on a connection until a response has been sent, so its figure includes the
  minimal response cycle (``Response`` + ``EndOfMessage`` +
  ``start_next_cycle``), which is work the server would do with h11 anyway.
* WebSocket: decode one masked client text message (32 bytes) and encode one
  unmasked server text message, with and without permessage-deflate (context
  takeover, 15-bit windows), with websockets' sans-I/O ``ServerProtocol`` and
  wsproto's ``Connection``. Both decoders are fed the same wire bytes.

Figures are operations per second (higher is better) and microseconds per
operation; run several times and compare orders of magnitude, not digits.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import h11
import httptools
import websockets
import wsproto
import wsproto.events
import wsproto.extensions
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

GET_REQUEST = (
    b"GET /chat/room/42?user=alice&lang=en HTTP/1.1\r\n"
    b"Host: example.com:8000\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-GB,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: csrftoken=Yq3J4Hn0ZKp8y2L7s1X9; sessionid=8b9a0c4f2e7d6a1b3c5e\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-Site: none\r\n"
    b"\r\n"
)

MESSAGE = '{"type": "chat", "text": "hello"}'[:32]
# Enough distinct frames that every candidate runs for the whole time budget.
FRAME_COUNT = 200_000


def bench(run: Callable[[int], None], seconds: float) -> float:
    """Return operations per second of ``run(n)``, which performs n operations."""
    n = 1_000
    while True:
        start = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds or n >= FRAME_COUNT:
            return n / elapsed
        n = min(FRAME_COUNT, n * 2 if elapsed < seconds / 10 else int(n * seconds / elapsed) + 1)


# HTTP -------------------------------------------------------------------------


class _Callbacks:
    """The callbacks hub's server registers with httptools."""

    __slots__ = ("complete", "headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        pass

    def on_message_complete(self) -> None:
        self.complete = True


def httptools_get(n: int) -> None:
    callbacks = _Callbacks()
    parser = httptools.HttpRequestParser(callbacks)
    for _ in range(n):
        parser.feed_data(GET_REQUEST)
        httptools.parse_url(callbacks.url)
        parser.get_method()
        parser.get_http_version()
        parser.should_keep_alive()
    assert callbacks.complete


def h11_get(n: int) -> None:
    conn = h11.Connection(h11.SERVER)
    response = h11.Response(status_code=200, headers=[(b"content-length", b"0")])
    for _ in range(n):
        conn.receive_data(GET_REQUEST)
        request = conn.next_event()
        assert isinstance(request, h11.Request)
        assert isinstance(conn.next_event(), h11.EndOfMessage)
        conn.send(response)
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()


# WebSocket --------------------------------------------------------------------


def _deflate(side: str) -> PerMessageDeflate:
    del side
    return PerMessageDeflate(False, False, 15, 15)


def client_frames(deflate: bool) -> list[bytes]:
    """Masked client text frames, as a browser would send them."""
    client = ClientProtocol(websockets.uri.parse_uri("ws://x/"), state=State.OPEN)
    if deflate:
        client.extensions = [_deflate("client")]
    frames = []
    for _ in range(FRAME_COUNT):
        client.send_text(MESSAGE.encode())
        frames.append(b"".join(client.data_to_send()))
    return frames


def websockets_decode(frames: list[bytes], deflate: bool) -> Callable[[int], None]:
    def run(n: int) -> None:
        server = ServerProtocol(state=State.OPEN, max_size=2**20)
        if deflate:
            server.extensions = [_deflate("server")]
        for data in frames[:n]:
            server.receive_data(data)
            for event in server.events_received():
                assert isinstance(event, Frame)
                if event.opcode is Opcode.TEXT:
                    bytes(event.data).decode()

    return run


def websockets_encode(deflate: bool) -> Callable[[int], None]:
    payload = MESSAGE.encode()

    def run(n: int) -> None:
        server = ServerProtocol(state=State.OPEN)
        if deflate:
            server.extensions = [_deflate("server")]
        for _ in range(n):
            server.send_text(payload)
            b"".join(server.data_to_send())

    return run


def _wsproto_server(deflate: bool) -> wsproto.Connection:
    extensions: list[wsproto.extensions.Extension] = []
    if deflate:
        extension = wsproto.extensions.PerMessageDeflate()
        extension.accept("permessage-deflate; client_max_window_bits")
        extensions.append(extension)
    return wsproto.Connection(wsproto.ConnectionType.SERVER, extensions=extensions)


def wsproto_decode(frames: list[bytes], deflate: bool) -> Callable[[int], None]:
    def run(n: int) -> None:
        server = _wsproto_server(deflate)
        for data in frames[:n]:
            server.receive_data(data)
            for event in server.events():
                assert isinstance(event, wsproto.events.TextMessage)

    return run


def wsproto_encode(deflate: bool) -> Callable[[int], None]:
    message = wsproto.events.TextMessage(data=MESSAGE)

    def run(n: int) -> None:
        server = _wsproto_server(deflate)
        for _ in range(n):
            server.send(message)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time budget per figure")
    seconds = parser.parse_args().seconds

    plain, compressed = client_frames(deflate=False), client_frames(deflate=True)
    rows = [
        ("HTTP keep-alive GET parse", "httptools", bench(httptools_get, seconds)),
        ("HTTP keep-alive GET parse", "h11", bench(h11_get, seconds)),
    ]
    for label, deflate, frames in (("", False, plain), (" +deflate", True, compressed)):
        rows += [
            (
                f"WS decode text{label}",
                "websockets",
                bench(websockets_decode(frames, deflate), seconds),
            ),
            (f"WS decode text{label}", "wsproto", bench(wsproto_decode(frames, deflate), seconds)),
            (f"WS encode text{label}", "websockets", bench(websockets_encode(deflate), seconds)),
            (f"WS encode text{label}", "wsproto", bench(wsproto_encode(deflate), seconds)),
        ]

    print(
        f"httptools {httptools.__version__}, h11 {h11.__version__}, "
        f"websockets {websockets.__version__}, wsproto {wsproto.__version__}"
    )
    print(f"{'operation':<28} {'library':<11} {'ops/s':>12} {'us/op':>8}")
    for operation, library, rate in rows:
        print(f"{operation:<28} {library:<11} {rate:>12,.0f} {1e6 / rate:>8.2f}")


if __name__ == "__main__":
    main()
