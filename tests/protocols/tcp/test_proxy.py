"""PROXY protocol v1/v2 headers: spec examples, every split, exact reads, malformed input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.tcp.proxy import (
    V2_SIGNATURE,
    AddressFamily,
    ProxyCommand,
    ProxyHeaderParser,
    ProxyProtocolError,
    TlvType,
    encode_v1,
    encode_v2,
)

V1 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
V1_IPV6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"
V2 = encode_v2(("192.0.2.1", 56324), ("198.51.100.2", 443), {TlvType.UNIQUE_ID: b"abc"})


def parse_exactly(wire: bytes) -> ProxyHeaderParser:
    """Feed as the server reads: never more than bytes_needed at a time."""
    parser = ProxyHeaderParser()
    position = 0
    while parser.header is None:
        needed = parser.bytes_needed
        assert needed > 0
        parser.feed(wire[position : position + needed])
        position += needed
    assert parser.bytes_needed == 0
    assert position == len(wire)
    return parser


class TestVersion1:
    def test_a_tcp4_line_names_the_client_and_the_destination(self) -> None:
        header = parse_exactly(V1).header
        assert header is not None
        assert (header.version, header.family) == (1, AddressFamily.INET)
        assert header.source == ("192.0.2.1", 56324)
        assert header.destination == ("198.51.100.2", 443)

    def test_a_tcp6_line_is_read(self) -> None:
        header = parse_exactly(V1_IPV6).header
        assert header is not None
        assert header.source == ("2001:db8::1", 56324)

    def test_unknown_keeps_the_connections_own_addresses(self) -> None:
        header = parse_exactly(b"PROXY UNKNOWN\r\n").header
        assert header is not None
        assert header.source is None

    @pytest.mark.parametrize(
        "line",
        [
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 0443 443\r\n",
            b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        ],
    )
    def test_a_malformed_line_is_refused(self, line: bytes) -> None:
        with pytest.raises(ProxyProtocolError):
            ProxyHeaderParser().feed(line)

    def test_a_line_without_crlf_in_107_bytes_is_refused(self) -> None:
        parser = ProxyHeaderParser()
        with pytest.raises(ProxyProtocolError, match="first 107 bytes"):
            parser.feed(b"PROXY " + b"x" * 120)


class TestVersion2:
    def test_an_ipv4_block_names_the_client_and_keeps_tlvs(self) -> None:
        header = parse_exactly(V2).header
        assert header is not None
        assert (header.version, header.command) == (2, ProxyCommand.PROXY)
        assert header.source == ("192.0.2.1", 56324)
        assert header.destination == ("198.51.100.2", 443)
        assert header.tlvs == {TlvType.UNIQUE_ID: b"abc"}

    def test_an_ipv6_block_is_read(self) -> None:
        header = parse_exactly(encode_v2(("2001:db8::1", 1), ("2001:db8::2", 2))).header
        assert header is not None
        assert header.family is AddressFamily.INET6
        assert header.source == ("2001:db8::1", 1)

    def test_local_keeps_the_connections_own_addresses(self) -> None:
        wire = encode_v2(("192.0.2.1", 1), ("192.0.2.2", 2), command=ProxyCommand.LOCAL)
        header = parse_exactly(wire).header
        assert header is not None
        assert header.source is None

    @pytest.mark.parametrize("cut", range(len(V2) + 1))
    def test_a_block_split_at_any_offset_is_read(self, cut: int) -> None:
        parser = ProxyHeaderParser()
        parser.feed(V2[:cut])
        assert parser.feed(V2[cut:] + b"rest") is not None
        assert parser.unused_data == b"rest"

    def test_a_bad_version_is_refused(self) -> None:
        wire = bytearray(V2)
        wire[12] = 0x31
        with pytest.raises(ProxyProtocolError, match="version 3"):
            ProxyHeaderParser().feed(bytes(wire))

    def test_an_address_block_shorter_than_its_family_is_refused(self) -> None:
        wire = V2_SIGNATURE + bytes([0x21, 0x11]) + (4).to_bytes(2, "big") + bytes(4)
        with pytest.raises(ProxyProtocolError, match="needs at least 12"):
            ProxyHeaderParser().feed(wire)

    def test_a_tlv_overrunning_the_header_is_refused(self) -> None:
        body = bytes(12) + b"\x05\x00\x09ab"
        wire = V2_SIGNATURE + bytes([0x21, 0x11]) + len(body).to_bytes(2, "big") + body
        with pytest.raises(ProxyProtocolError, match="overruns"):
            ProxyHeaderParser().feed(wire)

    def test_a_header_over_the_length_limit_is_refused_before_it_arrives(self) -> None:
        wire = V2_SIGNATURE + bytes([0x21, 0x11]) + (5000).to_bytes(2, "big")
        with pytest.raises(ProxyProtocolError, match="5000 bytes, over the limit of 4096"):
            ProxyHeaderParser().feed(wire)


class TestNotAHeader:
    def test_device_bytes_are_refused(self) -> None:
        with pytest.raises(ProxyProtocolError, match="expected a PROXY protocol header"):
            ProxyHeaderParser().feed(b"$POS,1,2,3\n")

    def test_a_failed_parser_keeps_failing(self) -> None:
        parser = ProxyHeaderParser()
        with pytest.raises(ProxyProtocolError):
            parser.feed(b"GET / HTTP/1.1\r\n")
        with pytest.raises(ProxyProtocolError):
            parser.feed(b"")

    @given(st.binary(max_size=200))
    def test_random_bytes_only_raise_the_parsers_own_error(self, data: bytes) -> None:
        with contextlib.suppress(ProxyProtocolError):
            ProxyHeaderParser().feed(data)

    @given(st.binary(max_size=300))
    def test_random_bytes_after_a_signature_only_raise_the_parsers_own_error(
        self, data: bytes
    ) -> None:
        try:
            ProxyHeaderParser().feed(V2_SIGNATURE + data)
            ProxyHeaderParser().feed(b"PROXY " + data)
        except ProxyProtocolError:
            pass


def test_encode_v1_writes_what_a_balancer_sends() -> None:
    assert encode_v1(("192.0.2.1", 56324), ("198.51.100.2", 443)) == V1
