"""HTTP/1.1 response bytes: status lines, default headers, error responses.

httptools parses requests but writes nothing, so the few bytes of a response
head are assembled here (RFC 9112 section 4: ``HTTP/1.1 SP status SP reason
CRLF``, then ``name: value CRLF`` lines and an empty line). The application's
header names and values are checked for characters that would let them split
the response (CR, LF, NUL in values; separators in names), the one thing
that makes writing a head by hand dangerous.
"""

from __future__ import annotations

import email.utils
import http
import re
import time
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

# RFC 9110 section 5.1: a field name is a token; section 5.5: a value has no CR, LF or NUL.
_INVALID_NAME = re.compile(rb"[\x00-\x20\x7f()<>@,;:\[\]={} \t\\\"/?]")
_INVALID_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

STATUS_LINES: dict[int, bytes] = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())
    for status in http.HTTPStatus
}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n``; an unknown code gets an empty reason phrase (allowed)."""
    line = STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise RuntimeError(f"Invalid HTTP status code {status!r} in response")
        line = b"HTTP/1.1 %d \r\n" % status
    return line


class DateHeader:
    """The ``Date`` header line, formatted at most once per second (RFC 9110 6.6.1)."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"date: %s\r\n" % email.utils.formatdate(now, usegmt=True).encode()
        return self._line


def header_line(name: bytes, value: bytes) -> bytes:
    """One validated ``name: value\\r\\n`` line of an application's header.

    Raises:
        RuntimeError: if the name or value would corrupt the response.
    """
    if _INVALID_NAME.search(name) or not name:
        raise RuntimeError(f"Invalid HTTP header name {name!r} in response")
    if _INVALID_VALUE.search(value):
        raise RuntimeError(f"Invalid HTTP header value {value!r} for {name!r} in response")
    return b"%s: %s\r\n" % (name, value)


def header_lines(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    """Validated ``name: value\\r\\n`` lines of an application's headers.

    Raises:
        RuntimeError: if a name or value would corrupt the response.
    """
    return [header_line(name, value) for name, value in headers]


def error_response(status: int, server_line: bytes, date_line: bytes) -> bytes:
    """A complete ``connection: close`` response with the reason phrase as its body."""
    body = http.HTTPStatus(status).phrase.encode()
    return b"".join(
        (
            status_line(status),
            server_line,
            date_line,
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )


def decode_path(raw_path: bytes) -> str:
    """``scope["path"]``: percent escapes and UTF-8 decoded, as the ASGI spec asks."""
    if b"%" in raw_path:
        raw_path = unquote_to_bytes(raw_path)
    return raw_path.decode("utf-8", errors="replace")
