"""Reading a message after ``354``: in pieces up to the end-of-data dot, not line by line.

aiosmtpd reads the message one line at a time (a ``readuntil`` call, a log
call and a join per line): for a 100 KiB message that is 1300 round trips
through the stream and most of the server's CPU time per message. hub reads up
to each ``.\\r\\n`` instead, usually the whole message in one call, and then
checks the lines and removes dot-stuffing with ``bytes`` methods.

What the client sees is aiosmtpd's: the same limits (RFC 5321 section
4.5.3.1.6 line length, RFC 1870 size), reported with the same replies after
the whole message was read (RFC 5321 section 4.2.5), and the same bytes.
When a message breaks both limits, the reply is 500 if the long line starts
within the size limit, else 552 (aiosmtpd, counting line by line, answers 552
in some of the former cases, depending on where the long line ends).

Relies on one asyncio internal, ``StreamReader._limit``: it is raised from
the command line limit to :data:`DATA_CHUNK` while the message is read, and
restored after.
"""

from __future__ import annotations

import asyncio
import enum

KIB = 1024

#: The most a single read may hold before its bytes are taken out of the stream's
#: buffer; the buffer (and so the memory of one session receiving) stays under twice it.
DATA_CHUNK = 1024 * KIB

#: What ends a piece: the end-of-data line is ``.`` alone (RFC 5321 section 4.1.1.4).
_DOT_LINE = b".\r\n"
_CRLF = b"\r\n"


class DataState(enum.Enum):
    """How reading the message ended (aiosmtpd's ``_DataState``)."""

    NOMINAL = "nominal"
    #: A line was longer than the line limit: 500.
    TOO_LONG = "too long"
    #: The message was larger than the size limit: 552.
    TOO_MUCH = "too much"


async def read_data(
    reader: asyncio.StreamReader, *, size_limit: int, line_limit: int
) -> tuple[bytes, DataState]:
    """Read a message up to its end-of-data line; its bytes (unstuffed) and how it ended.

    Args:
        size_limit: the largest message, in octets as sent (dot-stuffing
            included, the final ``.\\r\\n`` not); 0 for none.
        line_limit: the longest line, CRLF included.

    The bytes are empty unless the state is NOMINAL: a message over a limit
    is read to its end and dropped, as aiosmtpd does.
    """
    saved_limit = reader._limit  # type: ignore[attr-defined]
    reader._limit = DATA_CHUNK  # type: ignore[attr-defined]
    try:
        return await _read(reader, size_limit, line_limit)
    finally:
        reader._limit = saved_limit  # type: ignore[attr-defined]


async def _read(
    reader: asyncio.StreamReader, size_limit: int, line_limit: int
) -> tuple[bytes, DataState]:
    parts: list[bytes] = []
    size = 0  # octets read so far, as sent
    state = DataState.NOMINAL
    tail = _CRLF  # the last two octets read: the message starts at the start of a line
    while True:
        try:
            piece = await reader.readuntil(_DOT_LINE)
            # The end of the message if that dot starts a line.
            done = (tail + piece[:-3])[-2:] == _CRLF
        except asyncio.LimitOverrunError as error:
            # DATA_CHUNK octets without ".\r\n": take them (all but what may start one).
            piece = await reader.read(error.consumed)
            done = False
        tail = (tail + piece)[-2:]
        if done:
            piece = piece[:-3]
        size += len(piece)
        if state is DataState.NOMINAL:
            parts.append(piece)
            if size_limit and size > size_limit:
                # Over the size limit: unless a line was too long before, 552. Either
                # way the rest is read and dropped.
                state = _first_problem(b"".join(parts), size_limit, line_limit)
                parts.clear()
        if done:
            break
    if state is not DataState.NOMINAL:
        return b"", state
    data = b"".join(parts)
    if len(data) > line_limit - len(_CRLF) and _too_long_at(data, line_limit) >= 0:
        return b"", DataState.TOO_LONG
    return unstuff(data), DataState.NOMINAL


def _too_long_at(data: bytes, line_limit: int) -> int:
    """Where the first line longer than ``line_limit`` (CRLF included) starts; -1 if none."""
    longest = line_limit - len(_CRLF)
    lines = data.split(_CRLF)
    if max(map(len, lines)) <= longest:
        return -1
    offset = 0
    for line in lines:
        if len(line) > longest:
            return offset
        offset += len(line) + len(_CRLF)
    return -1  # pragma: no cover (max() found one)


def _first_problem(data: bytes, size_limit: int, line_limit: int) -> DataState:
    """For a message over the size limit: TOO_LONG if a long line began within the limit."""
    start = _too_long_at(data, line_limit)
    return DataState.TOO_LONG if 0 <= start <= size_limit else DataState.TOO_MUCH


def unstuff(data: bytes) -> bytes:
    """Remove the dot the sender added to each line starting with one (RFC 5321 4.5.2)."""
    if data.startswith(b"."):
        data = data[1:]
    if b"\r\n." in data:
        data = data.replace(b"\r\n.", b"\r\n")
    return data
