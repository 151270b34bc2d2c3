"""SPF, DKIM and DMARC verdicts for a received message, with a pluggable DNS resolver.

Headers claim anything; these checks say what the DNS of the claimed domains
vouches for. DKIM is dkimpy's ``dkim.verify``; SPF (RFC 7208) and DMARC
(RFC 7489) are evaluated here over the same resolver, so that tests and
offline deployments answer every lookup from a dict (:func:`dict_resolver`)
and production uses dnspython (:func:`dns_resolver`).

A resolver is a callable ``(name, rdtype) -> list[str]``: the records of that
type (``"TXT"``, ``"A"``, ``"AAAA"``, ``"MX"``; TXT strings joined, MX as
host names), ``[]`` when there are none.

The checks block on DNS: consumers run them in a thread (see
:class:`hub.generic.smtp.AsyncSmtpConsumer` ``check_authentication``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import getaddresses

import dkim  # type: ignore[import-untyped]

__all__ = [
    "Resolver",
    "Verdicts",
    "authenticate",
    "check_dkim",
    "check_dmarc",
    "check_spf",
    "dict_resolver",
    "dns_resolver",
]

Resolver = Callable[[str, str], Sequence[str]]

#: DNS-querying mechanisms one SPF evaluation may use (RFC 7208 section 4.6.4).
SPF_LOOKUP_LIMIT = 10


class _PermError(Exception):
    pass


@dataclass(frozen=True)
class Verdicts:
    """Results as in ``Authentication-Results`` (RFC 8601): ``pass``, ``fail``, ``none``...

    Attributes:
        spf: the SPF result for the ``MAIL FROM`` domain (the HELO name for bounces).
        spf_domain: the domain SPF was checked for.
        dkim: ``pass`` when a signature verified, ``fail`` when one did not, else ``none``.
        dkim_domain: the ``d=`` of the first signature.
        dmarc: ``pass`` when an aligned SPF or DKIM pass exists, ``fail`` when
            the From domain publishes DMARC and none does, ``none`` without a record.
        dmarc_policy: the published ``p=`` (``none``, ``quarantine``, ``reject``) or ``None``.
        from_domain: the domain of the ``From`` header.
    """

    spf: str
    spf_domain: str
    dkim: str
    dkim_domain: str | None
    dmarc: str
    dmarc_policy: str | None
    from_domain: str | None


def dict_resolver(records: Mapping[str, Sequence[str] | Mapping[str, Sequence[str]]]) -> Resolver:
    """A resolver over a dict: ``{"example.org": ["v=spf1 ..."]}`` (TXT) or per type.

    ``{"mail.example.org": {"A": ["192.0.2.1"], "TXT": [...]}}`` gives records of
    other types. Names are matched case-insensitively, without the final dot.
    """
    table = {name.lower().rstrip("."): value for name, value in records.items()}

    def resolve(name: str, rdtype: str) -> list[str]:
        entry = table.get(name.lower().rstrip("."))
        if entry is None:
            return []
        if isinstance(entry, Mapping):
            return list(entry.get(rdtype, []))
        return list(entry) if rdtype == "TXT" else []

    return resolve


def dns_resolver(timeout: float = 5.0) -> Resolver:
    """A resolver that asks the system's DNS servers (dnspython)."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout

    def resolve(name: str, rdtype: str) -> list[str]:
        try:
            answer = resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except dns.exception.Timeout:
            raise OSError(f"DNS timeout for {rdtype} {name}") from None
        if rdtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        if rdtype == "MX":
            return [str(r.exchange).rstrip(".") for r in answer]
        return [r.to_text() for r in answer]

    return resolve


def check_dkim(data: bytes, resolver: Resolver) -> tuple[str, str | None]:
    """``(result, d= domain)`` of the message's first DKIM signature."""
    signature = dkim.DKIM(data)
    domain = None
    try:
        header = next((v for n, v in signature.headers if n.lower() == b"dkim-signature"), None)
        if header is None:
            return "none", None
        tags = dkim.util.parse_tag_value(header)
        domain = tags.get(b"d", b"").decode("ascii", "replace").lower() or None
    except Exception:  # a malformed signature header
        return "permerror", domain

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        records = resolver(name.decode("ascii", "replace"), "TXT")
        return records[0].encode() if records else None

    try:
        return ("pass" if dkim.verify(data, dnsfunc=txt) else "fail"), domain
    except OSError:
        return "temperror", domain


def check_spf(ip: str, sender_domain: str, resolver: Resolver) -> str:
    """The SPF result for a client ``ip`` sending for ``sender_domain``."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "permerror"
    try:
        return _spf(address, sender_domain, resolver, [0])
    except _PermError:
        return "permerror"
    except OSError:
        return "temperror"


_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


def _spf(
    address: ipaddress._BaseAddress, domain: str, resolver: Resolver, lookups: list[int]
) -> str:
    records = [r for r in resolver(domain, "TXT") if r.lower().startswith("v=spf1")]
    if not records:
        return "none"
    if len(records) > 1:
        raise _PermError
    redirect = None
    for term in records[0].split()[1:]:
        if term.lower().startswith("redirect="):
            redirect = term.split("=", 1)[1]
            continue
        if "=" in term:  # other modifiers (exp=) do not decide
            continue
        qualifier = _QUALIFIERS.get(term[0])
        mechanism = term[1:] if qualifier else term
        if _matches(address, mechanism, domain, resolver, lookups):
            return qualifier or "pass"
    if redirect:
        _count(lookups)
        result = _spf(address, redirect, resolver, lookups)
        if result == "none":
            raise _PermError
        return result
    return "neutral"


def _count(lookups: list[int]) -> None:
    lookups[0] += 1
    if lookups[0] > SPF_LOOKUP_LIMIT:
        raise _PermError


def _matches(
    address: ipaddress._BaseAddress,
    mechanism: str,
    domain: str,
    resolver: Resolver,
    lookups: list[int],
) -> bool:
    name, _, argument = mechanism.partition(":")
    name = name.lower()
    target, _, prefix = (argument or domain).partition("/")
    if "/" in name:  # "a/24" without a domain
        name, _, prefix = name.partition("/")
        target = domain
    if name == "all":
        return True
    if name in ("ip4", "ip6"):
        try:
            return address in ipaddress.ip_network(argument, strict=False)
        except ValueError:
            raise _PermError from None
    if name == "include":
        _count(lookups)
        result = _spf(address, argument, resolver, lookups)
        if result in ("none", "permerror"):
            raise _PermError
        return result == "pass"
    if name in ("a", "mx"):
        _count(lookups)
        hosts = resolver(target, "MX") if name == "mx" else [target]
        rdtype = "A" if address.version == 4 else "AAAA"
        bits = prefix or ("32" if address.version == 4 else "128")
        for host in hosts:
            for ip in resolver(host, rdtype):
                if address in ipaddress.ip_network(f"{ip}/{bits}", strict=False):
                    return True
        return False
    if name in ("exists", "ptr"):
        _count(lookups)
        return False  # rarely published; not evaluated (treated as no match)
    raise _PermError


def check_dmarc(
    from_domain: str,
    spf: str,
    spf_domain: str,
    dkim_result: str,
    dkim_domain: str | None,
    resolver: Resolver,
) -> tuple[str, str | None]:
    """``(result, policy)`` for the From domain, with the record's alignment modes."""
    tags = _dmarc_record(from_domain, resolver)
    if tags is None:
        return "none", None
    policy = tags.get("p")
    spf_aligned = spf == "pass" and _aligned(spf_domain, from_domain, tags.get("aspf", "r"))
    dkim_aligned = (
        dkim_result == "pass"
        and dkim_domain is not None
        and _aligned(dkim_domain, from_domain, tags.get("adkim", "r"))
    )
    return ("pass" if spf_aligned or dkim_aligned else "fail"), policy


def _dmarc_record(domain: str, resolver: Resolver) -> dict[str, str] | None:
    for name in dict.fromkeys((domain, _organizational(domain))):
        for record in resolver(f"_dmarc.{name}", "TXT"):
            if record.replace(" ", "").lower().startswith("v=dmarc1"):
                pairs = (t.split("=", 1) for t in record.split(";") if "=" in t)
                return {k.strip().lower(): v.strip().lower() for k, v in pairs}
    return None


def _organizational(domain: str) -> str:
    try:
        from publicsuffix2 import get_sld  # type: ignore[import-untyped]
    except ImportError:  # without the list: the last two labels
        return ".".join(domain.split(".")[-2:])
    return str(get_sld(domain) or domain)


def _aligned(domain: str, from_domain: str, mode: str) -> bool:
    domain, from_domain = domain.lower(), from_domain.lower()
    if mode == "s":
        return domain == from_domain
    return _organizational(domain) == _organizational(from_domain)


def authenticate(
    data: bytes,
    from_header: str,
    ip: str | None,
    mail_from: str,
    helo: str | None,
    resolver: Resolver,
) -> Verdicts:
    """SPF for ``mail_from`` (or ``helo`` for bounces), DKIM of ``data``, DMARC of ``From``."""
    spf_domain = mail_from.rpartition("@")[2] if mail_from else (helo or "")
    spf = check_spf(ip, spf_domain, resolver) if ip and spf_domain else "none"
    dkim_result, dkim_domain = check_dkim(data, resolver)
    addresses = [address for _, address in getaddresses([from_header]) if "@" in address]
    from_domain = addresses[0].rpartition("@")[2].lower() if len(addresses) == 1 else None
    dmarc, policy = (
        check_dmarc(from_domain, spf, spf_domain, dkim_result, dkim_domain, resolver)
        if from_domain
        else ("none", None)
    )
    return Verdicts(spf, spf_domain, dkim_result, dkim_domain, dmarc, policy, from_domain)
