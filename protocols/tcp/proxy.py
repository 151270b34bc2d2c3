"""PROXY protocol v1 and v2 headers (HAProxy's spec), parsed sans-I/O.

A TCP load balancer in front of hub hides the client: hub's peer is the
balancer. With the PROXY protocol the balancer starts each connection with a
header naming the original client and destination; v1 is one text line, v2
a binary block with optional type-length-value fields. Anybody can send such
a header, so the server expects one only from peers in ``proxy_protocol``,
and from them it is mandatory (the spec, section 2: a receiver "MUST not try
to guess whether the protocol header is present or not").

The parser reads no byte past the header, so that what follows (a TLS
ClientHello, the device's first frame) stays in the socket for the next
reader. :attr:`ProxyHeaderParser.bytes_needed` says how many bytes it can
take at most; the server reads exactly that many.

Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress

#: Section 2.2: the v2 signature, chosen to be an invalid start of any text protocol.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
#: Section 2.1: "a receiver may reject an incomplete line which does not contain
#: the CRLF sequence in the first 107 characters".
V1_MAX_LENGTH = 107
#: Bytes after the v2 16-byte fixed part. The addresses take at most 216 (unix);
#: TLVs (ALPN, authority, SSL details) rarely pass a few hundred; 4 KiB bounds
#: what a misbehaving balancer can make us buffer.
V2_MAX_LENGTH = 4096
_V2_FIXED = 16
#: Enough to tell v1 from v2 without reading past the shortest v1 header
#: ("PROXY UNKNOWN\r\n", 15 bytes).
_PROBE = len(V2_SIGNATURE)


class ProxyCommand(enum.IntEnum):
    """Section 2.2, low nibble of byte 13."""

    LOCAL = 0x0  # the balancer's own connection (health check): keep the real addresses
    PROXY = 0x1  # relayed for a client: the addresses are the client's


class AddressFamily(enum.IntEnum):
    """Section 2.2, high nibble of byte 14."""

    UNSPEC = 0x0
    INET = 0x1
    INET6 = 0x2
    UNIX = 0x3


class TransportProtocol(enum.IntEnum):
    """Section 2.2, low nibble of byte 14."""

    UNSPEC = 0x0
    STREAM = 0x1
    DGRAM = 0x2


class TlvType(enum.IntEnum):
    """Section 2.2.1-2.2.7: the registered TLV types (others are kept as numbers)."""

    ALPN = 0x01
    AUTHORITY = 0x02
    CRC32C = 0x03
    NOOP = 0x04
    UNIQUE_ID = 0x05
    SSL = 0x20
    NETNS = 0x30


# Address block sizes per family (section 2.2): two addresses, then two ports.
_ADDRESS_SIZES = {AddressFamily.INET: 4, AddressFamily.INET6: 16}
_UNIX_BLOCK = 216


class ProxyProtocolError(Exception):
    """The peer's PROXY header is malformed; the connection must be closed."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What a PROXY header says about the connection.

    ``source`` and ``destination`` are ``None`` when the header carries no
    usable address (v1 ``UNKNOWN``, v2 ``LOCAL``, ``UNSPEC`` or unix
    families): the connection's own addresses apply, as the spec asks.
    """

    version: int
    command: ProxyCommand
    family: AddressFamily
    protocol: TransportProtocol
    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    tlvs: dict[int, bytes] = dataclasses.field(default_factory=dict)


class ProxyHeaderParser:
    """Reads one PROXY header, v1 or v2, fed in pieces of at most :attr:`bytes_needed`."""

    __slots__ = ("_buffer", "_error", "header", "unused_data")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._error: ProxyProtocolError | None = None
        #: The parsed header, once complete.
        self.header: ProxyHeader | None = None
        #: Bytes fed past the end of the header (none when fed ``bytes_needed`` at a time).
        self.unused_data = b""

    @property
    def bytes_needed(self) -> int:
        """Most bytes the parser can take without reading past the header; 0 once done."""
        if self.header is not None or self._error is not None:
            return 0
        buffer = self._buffer
        if len(buffer) < _PROBE:
            return _PROBE - len(buffer)
        if buffer.startswith(V1_PREFIX):
            # The line ends with CRLF; its length is unknown until then.
            return 1
        if len(buffer) < _V2_FIXED:
            return _V2_FIXED - len(buffer)
        return _V2_FIXED + int.from_bytes(buffer[14:16], "big") - len(buffer)

    def feed(self, data: bytes) -> ProxyHeader | None:
        """Add bytes; return the header once it is complete.

        Raises:
            ProxyProtocolError: the bytes are not a valid PROXY header.
        """
        if self._error is not None:
            raise self._error
        if self.header is not None:
            self.unused_data += data
            return self.header
        self._buffer += data
        try:
            header = self._parse()
        except ProxyProtocolError as exc:
            self._error = exc
            raise
        if header is not None:
            self.header = header
        return header

    def _parse(self) -> ProxyHeader | None:
        buffer = self._buffer
        probe = bytes(buffer[:_PROBE])
        if not (V1_PREFIX.startswith(probe[:6]) or V2_SIGNATURE.startswith(probe)):
            raise ProxyProtocolError(f"expected a PROXY protocol header, got {probe!r}")
        if probe.startswith(V1_PREFIX):
            end = buffer.find(b"\r\n")
            if end == -1:
                if len(buffer) >= V1_MAX_LENGTH:
                    raise ProxyProtocolError(
                        f"PROXY v1 line without CRLF in the first {V1_MAX_LENGTH} bytes"
                    )
                return None
            self.unused_data = bytes(buffer[end + 2 :])
            return parse_v1(bytes(buffer[: end + 2]))
        if len(buffer) < _V2_FIXED:
            return None
        length = int.from_bytes(buffer[14:16], "big")
        if length > V2_MAX_LENGTH:
            raise ProxyProtocolError(
                f"PROXY v2 header of {length} bytes, over the limit of {V2_MAX_LENGTH}"
            )
        if len(buffer) < _V2_FIXED + length:
            return None
        self.unused_data = bytes(buffer[_V2_FIXED + length :])
        return parse_v2(bytes(buffer[: _V2_FIXED + length]))


def parse_v1(line: bytes) -> ProxyHeader:
    """Section 2.1: ``PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\\r\\n``.

    Raises:
        ProxyProtocolError: the line is malformed.
    """
    if len(line) > V1_MAX_LENGTH or not line.endswith(b"\r\n"):
        raise ProxyProtocolError(f"PROXY v1 line is not CRLF-terminated in {V1_MAX_LENGTH} bytes")
    try:
        text = line[:-2].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError(f"PROXY v1 line is not ASCII: {line!r}") from None
    parts = text.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        # "the receiver must ignore anything presented before the CRLF is found"
        return ProxyHeader(
            1, ProxyCommand.PROXY, AddressFamily.UNSPEC, TransportProtocol.UNSPEC, None, None
        )
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"malformed PROXY v1 line {text!r}")
    family = AddressFamily.INET if parts[1] == "TCP4" else AddressFamily.INET6
    source = _v1_address(parts[2], parts[4], family, text)
    destination = _v1_address(parts[3], parts[5], family, text)
    return ProxyHeader(1, ProxyCommand.PROXY, family, TransportProtocol.STREAM, source, destination)


def _v1_address(host: str, port: str, family: AddressFamily, text: str) -> tuple[str, int]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ProxyProtocolError(f"bad address {host!r} in PROXY v1 line {text!r}") from None
    if address.version != (4 if family is AddressFamily.INET else 6):
        raise ProxyProtocolError(f"address {host!r} does not match the family in {text!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535 or (port != "0" and port[0] == "0"):
        raise ProxyProtocolError(f"bad port {port!r} in PROXY v1 line {text!r}")
    return str(address), int(port)


def parse_v2(block: bytes) -> ProxyHeader:
    """Section 2.2: signature, version/command, family/protocol, length, addresses, TLVs.

    Raises:
        ProxyProtocolError: the block is malformed.
    """
    if not block.startswith(V2_SIGNATURE) or len(block) < _V2_FIXED:
        raise ProxyProtocolError("PROXY v2 header without its signature")
    version, command_number = block[12] >> 4, block[12] & 0x0F
    if version != 2:
        raise ProxyProtocolError(f"PROXY v2 header with version {version}, expected 2")
    try:
        command = ProxyCommand(command_number)
        family = AddressFamily(block[13] >> 4)
        protocol = TransportProtocol(block[13] & 0x0F)
    except ValueError as exc:
        raise ProxyProtocolError(f"PROXY v2 header: {exc}") from None
    length = int.from_bytes(block[14:16], "big")
    body = block[_V2_FIXED:]
    if len(body) != length:
        raise ProxyProtocolError(f"PROXY v2 header says {length} bytes, got {len(body)}")
    source = destination = None
    if family in _ADDRESS_SIZES:
        size = _ADDRESS_SIZES[family]
        used = 2 * size + 4
        if length < used:
            raise ProxyProtocolError(
                f"PROXY v2 {family.name} header of {length} bytes, needs at least {used}"
            )
        make = ipaddress.IPv4Address if family is AddressFamily.INET else ipaddress.IPv6Address
        source_port = int.from_bytes(body[2 * size : 2 * size + 2], "big")
        destination_port = int.from_bytes(body[2 * size + 2 : used], "big")
        source = (str(make(body[:size])), source_port)
        destination = (str(make(body[size : 2 * size])), destination_port)
    elif family is AddressFamily.UNIX:
        used = _UNIX_BLOCK
        if length < used:
            raise ProxyProtocolError(
                f"PROXY v2 UNIX header of {length} bytes, needs at least {used}"
            )
    else:
        used = 0
    tlvs = _parse_tlvs(body[used:]) if command is ProxyCommand.PROXY else {}
    if command is ProxyCommand.LOCAL:
        # "the receiver must ... use the real connection endpoints and not the
        # ones from the protocol"; any address block is skipped.
        source = destination = None
    return ProxyHeader(2, command, family, protocol, source, destination, tlvs)


def _parse_tlvs(data: bytes) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    position = 0
    while position < len(data):
        if len(data) - position < 3:
            raise ProxyProtocolError(f"truncated PROXY v2 TLV at byte {position}")
        kind = data[position]
        size = int.from_bytes(data[position + 1 : position + 3], "big")
        end = position + 3 + size
        if end > len(data):
            raise ProxyProtocolError(
                f"PROXY v2 TLV 0x{kind:02x} of {size} bytes overruns the header"
            )
        if kind != TlvType.NOOP:
            tlvs[kind] = data[position + 3 : end]
        position = end
    return tlvs


def encode_v1(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A v1 header, as a balancer sends it (for tests and clients)."""
    family = "TCP6" if ":" in source[0] else "TCP4"
    return f"PROXY {family} {source[0]} {destination[0]} {source[1]} {destination[1]}\r\n".encode()


def encode_v2(
    source: tuple[str, int] | None,
    destination: tuple[str, int] | None,
    tlvs: dict[int, bytes] | None = None,
    command: ProxyCommand = ProxyCommand.PROXY,
) -> bytes:
    """A v2 header, as a balancer sends it (for tests and clients)."""
    body = b""
    family = AddressFamily.UNSPEC
    if source is not None and destination is not None:
        source_ip = ipaddress.ip_address(source[0])
        family = AddressFamily.INET if source_ip.version == 4 else AddressFamily.INET6
        body = (
            source_ip.packed
            + ipaddress.ip_address(destination[0]).packed
            + source[1].to_bytes(2, "big")
            + destination[1].to_bytes(2, "big")
        )
    for kind, value in (tlvs or {}).items():
        body += bytes([kind]) + len(value).to_bytes(2, "big") + value
    transport = TransportProtocol.STREAM if family else TransportProtocol.UNSPEC
    return (
        V2_SIGNATURE
        + bytes([0x20 | command, family << 4 | transport])
        + len(body).to_bytes(2, "big")
        + body
    )
