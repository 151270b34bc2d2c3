"""Client address and scheme from a trusted reverse proxy's headers.

Behind nginx or a load balancer, the TCP peer is the proxy; the real client
and whether it used TLS arrive in ``X-Forwarded-For`` / ``X-Forwarded-Proto``
or in RFC 7239 ``Forwarded``. Anybody can send those headers, so they are
honoured only when the TCP peer is in ``forwarded_allow_ips``.

With several proxies in a chain each appends the address it received from, so
the list is read right to left and the first address that is not itself a
trusted proxy is the client (anything left of it may be forged). ``Forwarded``
wins over the ``X-Forwarded-*`` pair when both are present.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = {"http", "https", "ws", "wss"}


class TrustedProxies:
    """The set of peers allowed to speak for the client, and how to read them."""

    __slots__ = ("_any", "_hosts", "_networks", "_unix")

    def __init__(self, allow: Sequence[str]) -> None:
        """Args:
        allow: IP addresses, CIDR networks, ``"*"`` (any peer) or ``"unix"``
            (peers on a unix socket, which have no address).

        Raises:
            ValueError: for an entry that is none of these.
        """
        self._any = "*" in allow
        self._unix = "unix" in allow
        self._hosts: set[str] = set()
        self._networks: list[_Network] = []
        for entry in allow:
            if entry in ("*", "unix"):
                continue
            if "/" in entry:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            else:
                self._hosts.add(str(ipaddress.ip_address(entry)))

    def __bool__(self) -> bool:
        return self._any or self._unix or bool(self._hosts) or bool(self._networks)

    def is_trusted(self, host: str | None) -> bool:
        """Whether a peer (``None`` for a unix-socket peer) may set forwarding headers."""
        if host is None:
            return self._unix or self._any
        if self._any or host in self._hosts:
            return True
        if not self._networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def resolve(
        self,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        scheme: str,
    ) -> tuple[tuple[str, int] | None, str]:
        """Return the ``(client, scheme)`` the request came with, from a trusted peer's headers.

        ``scheme`` is ``http`` or ``https``; the caller maps it to ``ws``/``wss``.
        """
        forwarded: list[bytes] = []
        for_list: list[bytes] = []
        proto: bytes | None = None
        for name, value in headers:
            if name == b"forwarded":
                forwarded.append(value)
            elif name == b"x-forwarded-for":
                for_list.append(value)
            elif name == b"x-forwarded-proto":
                proto = value
        if forwarded:
            elements = [_parse_forwarded_element(e) for v in forwarded for e in v.split(b",")]
            index = self._client_index([_strip_port(e.get("for", "")) for e in elements])
            if index is not None:
                element = elements[index]
                client = _host_port(element.get("for", ""), client)
                scheme = _scheme(element.get("proto"), scheme)
            return client, scheme
        if for_list:
            hops = [hop.strip() for value in for_list for hop in value.decode("latin-1").split(",")]
            index = self._client_index(hops)
            if index is not None and hops[index]:
                client = (hops[index], 0)
        if proto is not None:
            # The proxy next to us sets the scheme it received; take its (last) value.
            scheme = _scheme(proto.decode("latin-1").split(",")[-1], scheme)
        return client, scheme

    def _client_index(self, hosts: list[str]) -> int | None:
        """Index of the rightmost host that is not a trusted proxy (else the leftmost)."""
        if not hosts:
            return None
        for index in range(len(hosts) - 1, -1, -1):
            if not self.is_trusted(hosts[index]):
                return index
        return 0


def _parse_forwarded_element(element: bytes) -> dict[str, str]:
    """RFC 7239 section 4: ``for=192.0.2.60;proto=https`` -> ``{"for": ..., "proto": ...}``."""
    pairs: dict[str, str] = {}
    for pair in element.decode("latin-1").split(";"):
        name, sep, value = pair.partition("=")
        if sep:
            pairs[name.strip().lower()] = value.strip().strip('"')
    return pairs


def _strip_port(node: str) -> str:
    """The address part of an RFC 7239 node: ``[2001:db8::1]:80`` -> ``2001:db8::1``."""
    if node.startswith("["):
        return node[1 : node.find("]")]
    host, sep, port = node.rpartition(":")
    return host if sep and port.isdigit() and host.count(":") == 0 else node


def _host_port(node: str, default: tuple[str, int] | None) -> tuple[str, int] | None:
    """``(host, port)`` of an RFC 7239 node; obfuscated or ``unknown`` nodes keep the peer."""
    host = _strip_port(node)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return default
    _, _, tail = node.rpartition(":") if node != host else ("", "", "")
    return host, int(tail) if tail.isdigit() else 0


def _scheme(value: str | None, default: str) -> str:
    if value is None:
        return default
    value = value.strip().lower()
    return value if value in _SCHEMES else default
