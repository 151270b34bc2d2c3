"""Framers: bytes in, frames out, split at every offset; random bytes raise only FramingError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.tcp import (
    ByteOrder,
    FrameTooLarge,
    FramingError,
    IncompleteFrame,
    InvalidFrame,
    LengthPrefixFramer,
    LineFramer,
    RawFramer,
    TcpConfig,
)
from protocols.tcp.framing import Framing


def feed_split(framer, wire: bytes, cut: int) -> list[bytes]:
    return framer.receive_data(wire[:cut]) + framer.receive_data(wire[cut:])


LINE_WIRE = b"$POS,1,52.1,4.3\r\n\r\nsecond\r\n"
LINE_FRAMES = [b"$POS,1,52.1,4.3", b"", b"second"]


class TestLineFraming:
    def test_each_line_is_one_frame_without_its_delimiter(self) -> None:
        assert LineFramer(b"\r\n").receive_data(LINE_WIRE) == LINE_FRAMES

    @pytest.mark.parametrize("cut", range(len(LINE_WIRE) + 1))
    def test_a_line_split_at_any_offset_is_reassembled(self, cut: int) -> None:
        assert feed_split(LineFramer(b"\r\n"), LINE_WIRE, cut) == LINE_FRAMES

    def test_a_line_fed_one_byte_at_a_time_is_reassembled(self) -> None:
        framer = LineFramer(b"\r\n")
        frames = [f for byte in LINE_WIRE for f in framer.receive_data(bytes([byte]))]
        assert frames == LINE_FRAMES

    def test_a_line_of_exactly_max_frame_size_is_delivered(self) -> None:
        assert LineFramer(b"\n", 4).receive_data(b"abcd\n") == [b"abcd"]

    def test_a_line_one_byte_over_max_frame_size_is_refused(self) -> None:
        with pytest.raises(FrameTooLarge, match="line of 5 bytes, over max_frame_size=4"):
            LineFramer(b"\n", 4).receive_data(b"abcde\n")

    def test_an_unterminated_line_is_refused_as_soon_as_it_passes_the_limit(self) -> None:
        framer = LineFramer(b"\r\n", 4)
        assert framer.receive_data(b"abcd\r") == []
        with pytest.raises(FrameTooLarge, match="6 bytes without a delimiter"):
            framer.receive_data(b"x")

    def test_a_failed_framer_keeps_failing(self) -> None:
        framer = LineFramer(b"\n", 2)
        with pytest.raises(FrameTooLarge):
            framer.receive_data(b"abc")
        with pytest.raises(FrameTooLarge):
            framer.receive_data(b"\n")

    def test_eof_inside_a_line_is_an_incomplete_frame(self) -> None:
        framer = LineFramer()
        framer.receive_data(b"half")
        with pytest.raises(IncompleteFrame, match="4 bytes without a delimiter discarded"):
            framer.receive_eof()

    def test_eof_between_lines_is_clean(self) -> None:
        framer = LineFramer()
        framer.receive_data(b"whole\n")
        framer.receive_eof()

    def test_encode_appends_the_delimiter(self) -> None:
        assert LineFramer(b"\r\n").encode(b"OK") == b"OK\r\n"

    def test_encode_refuses_a_frame_containing_the_delimiter(self) -> None:
        with pytest.raises(ValueError, match="must not contain the delimiter"):
            LineFramer().encode(b"a\nb")

    def test_encode_refuses_a_frame_over_the_limit(self) -> None:
        with pytest.raises(ValueError, match="over max_frame_size=2"):
            LineFramer(b"\n", 2).encode(b"abc")


def length_wire() -> tuple[LengthPrefixFramer, bytes, list[bytes]]:
    framer = LengthPrefixFramer(2, ByteOrder.BIG, length_offset=1)
    frames = [b"Ahello", b"B", b"C" + bytes(300)]
    return framer, b"".join(framer.encode(f) for f in frames), frames


class TestLengthPrefixFraming:
    @pytest.mark.parametrize(
        ("length_bytes", "order", "wire"),
        [
            (1, "big", b"\x03abc"),
            (2, "big", b"\x00\x03abc"),
            (2, "little", b"\x03\x00abc"),
            (4, "big", b"\x00\x00\x00\x03abc"),
            (4, "little", b"\x03\x00\x00\x00abc"),
        ],
    )
    def test_the_length_field_is_read_in_its_width_and_byte_order(
        self, length_bytes: int, order: str, wire: bytes
    ) -> None:
        framer = LengthPrefixFramer(length_bytes, order)  # type: ignore[arg-type]
        assert framer.receive_data(wire) == [b"abc"]
        assert framer.encode(b"abc") == wire

    def test_the_header_before_the_length_field_stays_in_the_frame(self) -> None:
        framer = LengthPrefixFramer(1, length_offset=2)
        assert framer.receive_data(b"\x78\x78\x02hi") == [b"\x78\x78hi"]
        assert framer.encode(b"\x78\x78hi") == b"\x78\x78\x02hi"

    def test_a_length_that_counts_itself_is_adjusted(self) -> None:
        framer = LengthPrefixFramer(2, length_adjustment=2)
        assert framer.receive_data(b"\x00\x05abc") == [b"abc"]
        assert framer.encode(b"abc") == b"\x00\x05abc"

    def test_a_length_below_the_adjustment_is_invalid(self) -> None:
        with pytest.raises(InvalidFrame, match="below length_adjustment=2"):
            LengthPrefixFramer(2, length_adjustment=2).receive_data(b"\x00\x01")

    def test_many_frames_in_one_read_are_each_delivered(self) -> None:
        framer, wire, frames = length_wire()
        assert framer.receive_data(wire) == frames

    def test_frames_split_at_every_offset_are_reassembled(self) -> None:
        _, wire, frames = length_wire()
        for cut in range(len(wire) + 1):
            framer, _, _ = length_wire()
            assert feed_split(framer, wire, cut) == frames, cut

    def test_an_empty_payload_is_a_frame(self) -> None:
        assert LengthPrefixFramer(2).receive_data(b"\x00\x00") == [b""]

    def test_a_frame_of_exactly_max_frame_size_is_delivered(self) -> None:
        assert LengthPrefixFramer(1, max_frame_size=3).receive_data(b"\x03abc") == [b"abc"]

    def test_a_frame_over_the_limit_is_refused_before_its_payload_arrives(self) -> None:
        framer = LengthPrefixFramer(2, max_frame_size=3)
        with pytest.raises(FrameTooLarge, match="frame of 4 bytes, over max_frame_size=3"):
            framer.receive_data(b"\x00\x04")

    def test_eof_inside_a_frame_is_an_incomplete_frame(self) -> None:
        framer = LengthPrefixFramer(2)
        framer.receive_data(b"\x00\x05ab")
        with pytest.raises(IncompleteFrame, match="4 bytes discarded"):
            framer.receive_eof()

    def test_encode_refuses_a_frame_shorter_than_its_header(self) -> None:
        with pytest.raises(ValueError, match="shorter than its 2-byte header"):
            LengthPrefixFramer(1, length_offset=2).encode(b"x")

    def test_encode_refuses_a_length_the_field_cannot_hold(self) -> None:
        with pytest.raises(ValueError, match="does not fit a 1-byte length field"):
            LengthPrefixFramer(1, max_frame_size=1000).encode(bytes(256))

    @pytest.mark.parametrize("width", [0, 3, 8])
    def test_only_1_2_and_4_byte_length_fields_exist(self, width: int) -> None:
        with pytest.raises(ValueError, match="1, 2 or 4"):
            LengthPrefixFramer(width)


class TestRawFraming:
    def test_each_read_is_a_frame(self) -> None:
        assert RawFramer().receive_data(b"anything") == [b"anything"]

    def test_a_read_over_max_frame_size_is_cut_into_frames(self) -> None:
        assert RawFramer(3).receive_data(b"abcdefg") == [b"abc", b"def", b"g"]

    def test_sending_writes_the_bytes_unchanged(self) -> None:
        assert RawFramer().encode(b"\x00\x01") == b"\x00\x01"


class TestFramingOptions:
    def test_options_given_as_strings_build_the_framer(self) -> None:
        config = TcpConfig(framing="line", delimiter="\\r\\n", max_frame_size=10)  # type: ignore[arg-type]
        framer = config.make_framer()
        assert isinstance(framer, LineFramer)
        assert framer.delimiter == b"\r\n"
        assert config.framing_scope() == {
            "mode": "line",
            "max_frame_size": 10,
            "delimiter": b"\r\n",
        }

    def test_a_length_listener_describes_its_field_in_the_scope(self) -> None:
        config = TcpConfig(framing=Framing.LENGTH, length_bytes=4, byte_order="little")  # type: ignore[arg-type]
        assert config.framing_scope()["byte_order"] == "little"
        assert isinstance(config.make_framer(), LengthPrefixFramer)

    def test_a_custom_framer_is_imported_from_module_colon_class(self) -> None:
        config = TcpConfig(
            framing=Framing.CUSTOM, framer="tests.protocols.tcp.framers:StxEtxFramer"
        )
        assert config.make_framer().receive_data(b"\x02hi\x03") == [b"hi"]

    def test_custom_framing_without_a_framer_is_an_error_at_startup(self) -> None:
        with pytest.raises(ValueError, match="framing=custom needs framer=module:Class"):
            TcpConfig(framing=Framing.CUSTOM)

    def test_a_framer_that_cannot_be_imported_is_an_error_at_startup(self) -> None:
        with pytest.raises(ValueError, match="Cannot import framer 'nowhere:Nothing'"):
            TcpConfig(framing=Framing.CUSTOM, framer="nowhere:Nothing")

    def test_bad_length_options_are_an_error_at_startup(self) -> None:
        with pytest.raises(ValueError, match="length_bytes must be 1, 2 or 4, got 3"):
            TcpConfig(framing=Framing.LENGTH, length_bytes=3)


@st.composite
def chunked(draw: st.DrawFn, frames: list[bytes], encode) -> tuple[list[bytes], list[bytes]]:  # type: ignore[no-untyped-def]
    wire = b"".join(encode(frame) for frame in frames)
    cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    pieces, start = [], 0
    for cut in [*cuts, len(wire)]:
        pieces.append(wire[start:cut])
        start = cut
    return pieces, frames


line_frames = st.lists(st.binary(max_size=40).filter(lambda b: b"\r\n" not in b), max_size=10)
length_frames = st.lists(st.binary(min_size=1, max_size=300), max_size=10)


class TestFramerProperties:
    @given(st.data(), line_frames)
    def test_lines_survive_any_chunking(self, data: st.DataObject, frames: list[bytes]) -> None:
        # A frame ending in "\r" merges with the delimiter's "\r\n"; that is CRLF's own ambiguity.
        frames = [f for f in frames if not f.endswith(b"\r")]
        framer = LineFramer(b"\r\n", 64)
        pieces, expected = data.draw(chunked(frames, framer.encode))
        assert [f for piece in pieces for f in framer.receive_data(piece)] == expected
        framer.receive_eof()

    @given(st.data(), length_frames, st.sampled_from([1, 2, 4]), st.sampled_from(["big", "little"]))
    def test_length_prefixed_frames_survive_any_chunking(
        self, data: st.DataObject, frames: list[bytes], width: int, order: str
    ) -> None:
        framer = LengthPrefixFramer(width, order, length_offset=1, max_frame_size=254)  # type: ignore[arg-type]
        pieces, expected = data.draw(chunked(frames, framer.encode))
        assert [f for piece in pieces for f in framer.receive_data(piece)] == expected
        framer.receive_eof()

    @settings(max_examples=300)
    @given(st.lists(st.binary(max_size=64), max_size=8), st.sampled_from(["line", "length"]))
    def test_random_bytes_only_raise_the_framers_own_error(
        self, pieces: list[bytes], mode: str
    ) -> None:
        framer = (
            LineFramer(b"\r\n", 16)
            if mode == "line"
            else LengthPrefixFramer(2, length_offset=1, length_adjustment=3, max_frame_size=16)
        )
        try:
            for piece in pieces:
                for frame in framer.receive_data(piece):
                    assert len(frame) <= 17
            framer.receive_eof()
        except FramingError:
            pass
