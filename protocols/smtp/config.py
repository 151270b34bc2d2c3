"""Settings of one SMTP/LMTP listener: every limit, timeout and mode in one place.

Each field has a default safe for a server facing the internet and a comment
saying where the number comes from. The runner builds one ``SmtpConfig`` per
listener (``--smtp "0.0.0.0:25?max_message_size=10485760"``) and hands it to
:class:`protocols.smtp.SmtpServer`; nothing else in the package reads settings.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Sequence

from protocols.http_ws.tls import server_ssl_context

KIB = 1024
MIB = 1024 * KIB


@dataclasses.dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Addresses, limits, timeouts and modes of one SMTP or LMTP listener."""

    # Where to listen. ``port=0`` asks the OS for a free port (read it back from
    # ``SmtpServer.bound_addresses``); ``uds`` listens on a unix socket (LMTP from Postfix).
    host: str = "127.0.0.1"
    port: int = 2525
    uds: str | None = None
    # Kernel accept queue; mail servers see far fewer connections than web servers.
    backlog: int = 512
    # Name used in log lines and ``scope["listener"]``; defaults to "smtp <host>:<port>".
    name: str | None = None

    # Our name in the greeting and the EHLO reply; ``None``: the machine's FQDN, looked
    # up once at start (aiosmtpd would look it up for every connection).
    hostname: str | None = None
    # Software name after the hostname in the 220 greeting.
    ident: str = "ESMTP hub"
    # Serve LMTP (RFC 2033: LHLO, one reply per recipient after DATA) instead of SMTP.
    lmtp: bool = False

    # TLS: certificate chain and private key (PEM paths) enable STARTTLS, or TLS from the
    # first byte with ``implicit_tls`` (port 465, RFC 8314).
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    implicit_tls: bool = False
    # Refuse every command but EHLO/NOOP/QUIT/STARTTLS before STARTTLS (530).
    require_starttls: bool = False

    # AUTH mechanisms offered (decided by the app's ``smtp.auth`` answer); empty: no AUTH.
    auth_mechanisms: Sequence[str] = ("PLAIN", "LOGIN")
    # Offer AUTH on unencrypted connections too. Off: passwords never cross in clear
    # text (RFC 4954 section 4); turn on only on trusted networks or for demos.
    auth_allow_plaintext: bool = False
    # Submission mode (RFC 6409): MAIL is refused with 530 until the client authenticated.
    auth_required: bool = False
    # MX mode: recipients outside these domains are refused with 550 5.7.1 unless the
    # client authenticated, so the listener is no open relay. Empty: the app decides all.
    local_domains: Sequence[str] = ()

    # Largest message, advertised with SIZE (RFC 1870) and refused with 552 above it.
    # 25 MiB, like the large mailbox providers; Postfix's default is 10 MB.
    max_message_size: int = 25 * MIB
    # Recipients per transaction, 452 above it. RFC 5321 section 4.5.3.1.8 asks for
    # at least 100; Postfix allows 1000.
    max_recipients: int = 100
    # Longest text line of a message: 998 octets + CRLF (RFC 5322 section 2.1.1) + the
    # transparent dot (RFC 5321 section 4.5.3.1.6). Longer lines are refused with 500.
    max_line_length: int = 1001
    # Longest command line: 512 octets (RFC 5321 section 4.5.3.1.4), 500 above it.
    max_command_length: int = 512

    # Idle time allowed between commands: RFC 5321 section 4.5.3.2.7 asks for 5 minutes.
    # Past it the client gets 421 and the connection closes.
    command_timeout: float = 300.0
    # Time to send the whole message after 354: RFC 5321 section 4.5.3.2.6 (10 minutes).
    data_timeout: float = 600.0
    # Time the application has to answer one event; past it the client sees 451 and
    # retries later. Less than the client's own 5-10 minute reply timeouts.
    app_timeout: float = 60.0

    # Sessions served at once; more get 421 (Postfix's default process limit is 100).
    max_sessions: int = 1000
    # Sessions from one client address at once; more get 421. 50, as Postfix's
    # smtpd_client_connection_count_limit.
    max_sessions_per_ip: int = 50

    # Peers that speak the PROXY protocol (v1 or v2) first: IPs, CIDR networks, "*",
    # "unix". Their header gives the client address; others speak SMTP directly.
    proxy_protocol_from: Sequence[str] = ()
    # Time a trusted proxy has to send its PROXY header (aiosmtpd warns under 3 s).
    proxy_protocol_timeout: float = 10.0

    # Offer SMTPUTF8 (RFC 6531): UTF-8 addresses and header text.
    smtputf8: bool = True

    # Grace period of ``SmtpServer.wait_closed()`` when the caller gives none: messages
    # being received or handled get this long to finish; new commands get 421.
    shutdown_grace: float = 30.0

    @property
    def is_tls(self) -> bool:
        """Whether the listener serves TLS from the first byte (smtps)."""
        return self.implicit_tls and self.ssl_certfile is not None

    def listener_name(self) -> str:
        """The name log lines use for this listener."""
        if self.name is not None:
            return self.name
        protocol = "lmtp" if self.lmtp else "smtp"
        if self.uds is not None:
            return f"{protocol} unix:{self.uds}"
        return f"{protocol} {self.host}:{self.port}"

    def server_hostname(self) -> str:
        """The name in the greeting, looked up once."""
        return self.hostname or socket.getfqdn()

    def create_ssl_context(self) -> ssl.SSLContext | None:
        """The server TLS context, or ``None`` when TLS is off.

        Raises:
            ValueError: ``implicit_tls`` or ``require_starttls`` without a certificate.
            OSError / ssl.SSLError: a certificate or key file cannot be loaded.
        """
        if self.ssl_certfile is None:
            if self.implicit_tls or self.require_starttls:
                raise ValueError(
                    f"{self.listener_name()}: implicit_tls and require_starttls need "
                    "ssl_certfile (and ssl_keyfile)"
                )
            return None
        return server_ssl_context(self.ssl_certfile, self.ssl_keyfile, self.ssl_keyfile_password)
