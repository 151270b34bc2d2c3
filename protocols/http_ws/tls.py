"""The ASGI ``tls`` extension: what the application may learn of a TLS connection.

asgiref's ``specs/tls.rst`` puts it in ``scope["extensions"]["tls"]``:
``server_cert`` (PEM), ``client_cert_chain`` (PEM list, leaf first),
``client_cert_name`` (RFC 4514 distinguished name), ``client_cert_error``,
``tls_version`` (the 16-bit wire number) and ``cipher_suite`` (the IANA
16-bit number). Computed once per connection, only on TLS listeners.
"""

from __future__ import annotations

import ssl
from typing import Any

# ssl.SSLObject.version() names -> TLS wire version numbers (RFC 8446 appendix B).
TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

# RFC 4514 short names for the attributes Python's getpeercert() spells out.
_RDN_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def server_ssl_context(
    certfile: str,
    keyfile: str | None = None,
    password: str | None = None,
    cert_reqs: ssl.VerifyMode = ssl.CERT_NONE,
    ca_certs: str | None = None,
) -> ssl.SSLContext:
    """A listener's server context; ``cert_reqs`` and ``ca_certs`` for client certificates.

    Raises:
        OSError / ssl.SSLError: if a certificate, key or CA file cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile, password)
    context.verify_mode = cert_reqs
    if ca_certs is not None:
        context.load_verify_locations(ca_certs)
    return context


def cipher_suite_ids(context: ssl.SSLContext) -> dict[str, int]:
    """OpenSSL cipher name -> IANA number; OpenSSL ids carry it in the low 16 bits."""
    return {cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()}


def _rfc4514(subject: Any) -> str:
    """``((("commonName", "alice"),), ...)`` -> ``CN=alice,...`` in RFC 4514 (reversed) order."""
    rdns = []
    for rdn in reversed(subject):
        rdns.append("+".join(f"{_RDN_NAMES.get(key, key)}={value}" for key, value in rdn))
    return ",".join(rdns)


def tls_extension(
    ssl_object: ssl.SSLObject, server_cert: str | None, cipher_ids: dict[str, int]
) -> dict[str, Any]:
    """``scope["extensions"]["tls"]`` for one connection."""
    chain: list[str] = []
    name = None
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
        peer = ssl_object.getpeercert()
        if peer:
            name = _rfc4514(peer.get("subject", ()))
    cipher = ssl_object.cipher()
    version = ssl_object.version()
    return {
        "server_cert": server_cert,
        "client_cert_chain": chain,
        "client_cert_name": name,
        # A client certificate that fails verification aborts the TLS handshake.
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(version) if version else None,
        "cipher_suite": cipher_ids.get(cipher[0]) if cipher else None,
    }


def certificates_only(pem: str) -> str:
    """The CERTIFICATE blocks of a PEM file, which may also hold the private key."""
    return "".join(
        block[block.index("-----BEGIN CERTIFICATE-----") :] + "-----END CERTIFICATE-----\n"
        for block in pem.split("-----END CERTIFICATE-----")
        if "-----BEGIN CERTIFICATE-----" in block
    )


def server_tls_details(
    ssl_context: ssl.SSLContext | None, certfile: str | None
) -> tuple[str | None, dict[str, int]]:
    """What a TLS listener reports in every scope: its certificate and the cipher ids.

    Only the certificate blocks of ``certfile`` are kept: the file may also hold
    the private key, which must never reach an application.
    """
    if ssl_context is None or certfile is None:
        return None, {}
    with open(certfile, encoding="ascii") as file:
        pem = file.read()
    return certificates_only(pem), cipher_suite_ids(ssl_context)
