"""A custom framer for tests: STX (0x02) payload ETX (0x03), as serial-line devices frame."""

from __future__ import annotations

from protocols.tcp import FrameTooLarge, IncompleteFrame, InvalidFrame


class StxEtxFramer:
    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self.buffer = b""

    def receive_data(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames = []
        while self.buffer:
            if self.buffer[0] != 0x02:
                raise InvalidFrame(f"expected STX, got {self.buffer[:1]!r}")
            end = self.buffer.find(b"\x03")
            if end == -1:
                if len(self.buffer) > self.max_frame_size + 1:
                    raise FrameTooLarge(f"over max_frame_size={self.max_frame_size}")
                break
            frames.append(self.buffer[1:end])
            self.buffer = self.buffer[end + 1 :]
        return frames

    def receive_eof(self) -> None:
        if self.buffer:
            raise IncompleteFrame(f"{len(self.buffer)} bytes discarded")

    def encode(self, frame: bytes) -> bytes:
        return b"\x02" + frame + b"\x03"
