"""Framers: cut a TCP byte stream into the frames an application receives (sans-I/O).

A TCP connection delivers bytes in whatever pieces the network chose; a
device protocol is made of frames. A framer turns the first into the second
so that every ``tcp.receive`` carries exactly one frame, and frames what the
application sends. Framers know no sockets and no clock: bytes in, frames
out, testable with byte strings.

Every framer has three verbs (the :class:`Framer` protocol, which a custom
framer implements too):

- ``receive_data(data) -> list[bytes]``: the frames completed by ``data``.
- ``receive_eof()``: the peer stopped sending; raises :class:`IncompleteFrame`
  when it stopped inside a frame.
- ``encode(frame) -> bytes``: one outgoing frame as it goes on the wire.

Limits are checked as early as possible: a line as soon as the bytes without
a delimiter pass ``max_frame_size``, a length-prefixed frame as soon as its
length field is read, before its payload arrives.

Errors carry the ``tcp.disconnect`` reason the server reports, and once one
was raised the framer stays failed (every later call raises it again)::

    Exception
    └── FramingError                 reason: the tcp.disconnect reason
        ├── FrameTooLarge            "frame_too_large"
        ├── InvalidFrame             "invalid_frame"
        └── IncompleteFrame          "peer_closed" (EOF inside a frame)
"""

from __future__ import annotations

import enum
from typing import ClassVar, Literal, Protocol, runtime_checkable

KIB = 1024

#: Default largest frame: 64 KiB holds any line or packet a device sends
#: (NMEA sentences are at most 82 bytes, Modbus/TCP ADUs 260) while bounding
#: what one connection can make the server buffer.
DEFAULT_MAX_FRAME_SIZE = 64 * KIB

#: Width of a length field, in bytes, and the largest value each can hold.
LENGTH_FIELD_SIZES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF}


class Framing(enum.Enum):
    """How a listener cuts its byte stream into frames (``framing=`` option)."""

    RAW = "raw"
    LINE = "line"
    LENGTH = "length"
    CUSTOM = "custom"


class ByteOrder(enum.Enum):
    """Byte order of a length field (``byte_order=`` option)."""

    BIG = "big"
    LITTLE = "little"


class FramingError(Exception):
    """The peer's bytes break the framing; the connection must close."""

    #: The ``tcp.disconnect`` reason for this error.
    reason: ClassVar[str] = "invalid_frame"


class FrameTooLarge(FramingError):
    """A frame is longer than ``max_frame_size``."""

    reason = "frame_too_large"


class InvalidFrame(FramingError):
    """Bytes that cannot be a frame (a length field below the adjustment, a custom rule)."""

    reason = "invalid_frame"


class IncompleteFrame(FramingError):
    """The peer stopped sending inside a frame; the partial frame is discarded."""

    reason = "peer_closed"


@runtime_checkable
class Framer(Protocol):
    """What the server needs of a framer; custom framers implement this.

    A custom framer class is constructed as ``Framer(max_frame_size=N)`` for
    each connection, and must raise :class:`FramingError` subclasses only.
    """

    def receive_data(self, data: bytes) -> list[bytes]:
        """The frames completed by ``data``, in order.

        Raises:
            FrameTooLarge, InvalidFrame: the bytes break the framing.
        """
        ...

    def receive_eof(self) -> None:
        """The peer sent its last byte.

        Raises:
            IncompleteFrame: bytes of an unfinished frame were pending.
        """
        ...

    def encode(self, frame: bytes) -> bytes:
        """``frame`` as it goes on the wire.

        Raises:
            ValueError: the frame cannot be sent with this framing.
        """
        ...


class _Failing:
    """Keeps the first error so that a failed framer fails again on every call."""

    __slots__ = ("_error",)

    def __init__(self) -> None:
        self._error: FramingError | None = None

    def _fail(self, error: FramingError) -> FramingError:
        self._error = error
        return error


class RawFramer(_Failing):
    """Each read is a frame, cut into pieces of at most ``max_frame_size`` bytes."""

    __slots__ = ("max_frame_size",)

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        super().__init__()
        _check_max(max_frame_size)
        self.max_frame_size = max_frame_size

    def receive_data(self, data: bytes) -> list[bytes]:
        size = self.max_frame_size
        if len(data) <= size:
            return [data] if data else []
        return [data[start : start + size] for start in range(0, len(data), size)]

    def receive_eof(self) -> None:
        return None

    def encode(self, frame: bytes) -> bytes:
        return frame


class LineFramer(_Failing):
    """Frames end with ``delimiter`` (removed); at most ``max_frame_size`` bytes without it."""

    __slots__ = ("_scan_from", "byte", "delimiter", "max_frame_size", "pending")

    def __init__(
        self, delimiter: bytes = b"\n", max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    ) -> None:
        if not delimiter:
            raise ValueError("delimiter must be at least one byte")
        _check_max(max_frame_size)
        self.delimiter = delimiter
        #: A one-byte delimiter (the usual b"\n") as an int, else -1: "int in bytes"
        #: is a memchr (40 ns); a bytes needle is first tried as an int, which raises
        #: and formats a TypeError (200 ns), and partition() makes a tuple (90 ns).
        self.byte = delimiter[0] if len(delimiter) == 1 else -1
        self.max_frame_size = max_frame_size
        #: The start of a line whose delimiter has not arrived (read-only outside).
        self.pending = bytearray()
        # Where the next delimiter search starts: the bytes before it were searched.
        self._scan_from = 0
        super().__init__()

    def receive_data(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        delimiter, limit = self.delimiter, self.max_frame_size
        width = len(delimiter)
        buffer: bytes | bytearray
        if self.pending:
            self.pending += data
            buffer = self.pending
            position = buffer.find(delimiter, self._scan_from)
        else:
            buffer = data
            position = data.find(delimiter)
        frames: list[bytes] = []
        start = 0
        while position != -1:
            if position - start > limit:
                raise self._fail(_line_too_large(position - start, limit))
            frames.append(bytes(buffer[start:position]))
            start = position + width
            position = buffer.find(delimiter, start)
        left = len(buffer) - start
        # Up to width - 1 bytes left may be the start of the delimiter.
        if left > limit + width - 1:
            raise self._fail(_line_too_large(left, limit, unterminated=True))
        if buffer is self.pending:
            del self.pending[:start]
        elif left:
            self.pending = bytearray(buffer[start:])
        self._scan_from = max(0, left - width + 1)
        return frames

    def receive_eof(self) -> None:
        if self._error is not None:
            raise self._error
        if self.pending:
            raise self._fail(
                IncompleteFrame(
                    f"connection closed inside a line: {len(self.pending)} bytes "
                    "without a delimiter discarded"
                )
            )

    def encode(self, frame: bytes) -> bytes:
        # The TCP connection does the same for a line it sends (TcpConnection.send).
        byte = self.byte
        if (byte in frame) if byte >= 0 else frame.partition(self.delimiter)[1]:
            raise ValueError(f"a line frame must not contain the delimiter {self.delimiter!r}")
        if len(frame) > self.max_frame_size:
            raise ValueError(
                f"frame of {len(frame)} bytes, over max_frame_size={self.max_frame_size}"
            )
        return frame + self.delimiter


class LengthPrefixFramer(_Failing):
    """``[header: length_offset bytes][length: length_bytes][payload]``.

    The length field is unsigned, in ``byte_order``, and holds
    ``len(payload) + length_adjustment``. A frame is delivered as header +
    payload, without the length field; :meth:`encode` inserts it.
    """

    __slots__ = (
        "_buffer",
        "_header_size",
        "byte_order",
        "length_adjustment",
        "length_bytes",
        "length_offset",
        "max_frame_size",
    )

    def __init__(
        self,
        length_bytes: int = 2,
        byte_order: ByteOrder | Literal["big", "little"] = ByteOrder.BIG,
        length_offset: int = 0,
        length_adjustment: int = 0,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        if length_bytes not in LENGTH_FIELD_SIZES:
            raise ValueError(f"length_bytes must be 1, 2 or 4, got {length_bytes}")
        if length_offset < 0:
            raise ValueError(f"length_offset must not be negative, got {length_offset}")
        _check_max(max_frame_size)
        self.length_bytes = length_bytes
        self.byte_order: Literal["big", "little"] = ByteOrder(byte_order).value
        self.length_offset = length_offset
        self.length_adjustment = length_adjustment
        self.max_frame_size = max_frame_size
        self._header_size = length_offset + length_bytes
        self._buffer = bytearray()
        super().__init__()

    def receive_data(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        buffer: bytes | bytearray
        if self._buffer:
            self._buffer += data
            buffer = self._buffer
        else:
            buffer = data
        offset, header_size = self.length_offset, self._header_size
        frames: list[bytes] = []
        start = 0
        size = len(buffer)
        while size - start >= header_size:
            field = buffer[start + offset : start + header_size]
            length = int.from_bytes(field, self.byte_order) - self.length_adjustment
            if length < 0:
                raise self._fail(
                    InvalidFrame(
                        f"length field {length + self.length_adjustment} is below "
                        f"length_adjustment={self.length_adjustment}"
                    )
                )
            if length > self.max_frame_size:
                raise self._fail(
                    FrameTooLarge(
                        f"frame of {length} bytes, over max_frame_size={self.max_frame_size}"
                    )
                )
            end = start + header_size + length
            if end > size:
                break
            if offset:
                frames.append(
                    bytes(buffer[start : start + offset] + buffer[start + header_size : end])
                )
            else:
                frames.append(bytes(buffer[start + header_size : end]))
            start = end
        if buffer is self._buffer:
            del self._buffer[:start]
        elif start < size:
            self._buffer = bytearray(buffer[start:])
        return frames

    def receive_eof(self) -> None:
        if self._error is not None:
            raise self._error
        if self._buffer:
            raise self._fail(
                IncompleteFrame(
                    f"connection closed inside a frame: {len(self._buffer)} bytes discarded"
                )
            )

    def encode(self, frame: bytes) -> bytes:
        offset = self.length_offset
        if len(frame) < offset:
            raise ValueError(
                f"frame of {len(frame)} bytes is shorter than its {offset}-byte header"
            )
        length = len(frame) - offset
        if length > self.max_frame_size:
            raise ValueError(f"frame of {length} bytes, over max_frame_size={self.max_frame_size}")
        value = length + self.length_adjustment
        if not 0 <= value <= LENGTH_FIELD_SIZES[self.length_bytes]:
            raise ValueError(f"length {value} does not fit a {self.length_bytes}-byte length field")
        field = value.to_bytes(self.length_bytes, self.byte_order)
        return frame[:offset] + field + frame[offset:] if offset else field + frame


def _check_max(max_frame_size: int) -> None:
    if max_frame_size < 1:
        raise ValueError(f"max_frame_size must be at least 1, got {max_frame_size}")


def _line_too_large(size: int, limit: int, unterminated: bool = False) -> FrameTooLarge:
    what = f"{size} bytes without a delimiter" if unterminated else f"line of {size} bytes"
    return FrameTooLarge(f"{what}, over max_frame_size={limit}")
