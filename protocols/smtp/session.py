"""One SMTP or LMTP session: aiosmtpd's protocol, with the application asked where an MTA decides.

aiosmtpd runs the dialogue (greeting, EHLO keywords, STARTTLS, AUTH
challenges, SIZE, command line limits, pipelined commands read in order).
hub adds, through aiosmtpd's handler hooks:

- ``handle_EHLO``: PIPELINING is advertised, AUTH only when offered;
- ``handle_MAIL`` / ``handle_RCPT``: transactions are numbered, the recipient
  limit (452) and relay refusal (550 5.7.1) are checked, the app is asked;
- ``handle_DATA``: the app gets the message; 250 only after it accepted.

and, by overriding, what aiosmtpd has no hook for: the app's connect
decision and the session limits before the greeting, PROXY headers from
trusted peers only, 421 on timeout and during shutdown, AUTH checked by the
application asynchronously, a data timeout apart from the command timeout,
and 451 (never aiosmtpd's "500 Error: (Exception) text") on a server error.
``smtp_DATA`` is hub's too: the message is read in pieces, not a line at a
time (:mod:`protocols.smtp.data`); aiosmtpd's per-line loop was most of the
CPU time per message.

aiosmtpd 1.4 internals this relies on, to recheck on upgrade: ``_handle_client``,
``_smtp_methods``, ``_authenticate``, ``_reset_timeout``, ``_timeout_handle``,
``_timeout_cb``, ``_auth_require_tls``, ``_reader``, ``_writer``,
``_call_handler_hook``, ``_set_post_data_state``, ``command_size_limits``.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from aiosmtpd.lmtp import LMTP
from aiosmtpd.proxy_protocol import get_proxy
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from . import replies
from .app import ApplicationInstance, NoAnswer
from .data import DataState, read_data
from .messages import ASGI_VERSION, Message
from .replies import Reply

if TYPE_CHECKING:
    from .server import Listener

# Queue ids the server makes up when the app gives none: 12 hex digits, as Postfix's.
QUEUE_ID_BYTES = 6

# The replies of every message, formatted once.
_SENDER_OK = str(replies.SENDER_OK)
_RECIPIENT_OK = str(replies.RECIPIENT_OK)


class _Credentials(NamedTuple):
    """What aiosmtpd's PLAIN/LOGIN parsing produced, before the app has checked it."""

    mechanism: str
    login_password: LoginPassword


class SmtpSession(SMTP):
    """aiosmtpd's ``SMTP`` protocol for one connection, wired to one application instance."""

    def __init__(self, listener: Listener) -> None:
        config = listener.config
        self.listener = listener
        # aiosmtpd reads these from the instance; its defaults are the RFC's.
        self.line_length_limit = config.max_line_length
        self.command_size_limit = config.max_command_length
        self.command_size_limits = collections.defaultdict(lambda: config.max_command_length)
        implicit = config.implicit_tls
        super().__init__(
            HOOKS,
            data_size_limit=config.max_message_size,
            enable_SMTPUTF8=config.smtputf8,
            hostname=listener.hostname,
            ident=config.ident,
            tls_context=None if implicit else listener.ssl_context,
            require_starttls=config.require_starttls and not implicit,
            timeout=config.command_timeout,
            auth_required=config.auth_required,
            auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m not in listener.mechanisms],
            loop=listener.loop,
        )
        # Set after __init__, which warns about auth_required without TLS even when the
        # whole connection is TLS (implicit_tls).
        self._auth_require_tls = not (config.auth_allow_plaintext or implicit)
        self._smtp_methods = {
            name: self._guard(method) for name, method in self._smtp_methods.items()
        }
        self.app: ApplicationInstance | None = None
        self.client: tuple[str, int] | None = None
        self.proxy: tuple[str, int] | None = None
        self.server_address: tuple[str, int] | None = None
        self.peer = "unix"
        self.counted_host: str | None = None
        self.transaction = 0
        self.ask_mail = False
        self.ask_rcpt = True
        self.busy = False
        self._close_after_reply = False
        self._tls_cache: tuple[object, dict[str, Any] | None] = (None, None)
        # The idle clock (see _reset_timeout): when the session times out (inf while the
        # application decides), and when its one timer fires (None: not armed).
        self._deadline = math.inf
        self._timer_at: float | None = None
        self._timer_step = min(config.command_timeout, config.data_timeout)

    # Session life

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not the second call, after STARTTLS
            self.client, self.server_address = _addresses(transport)
            self.peer = _format_peer(self.client)
            self.listener.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.listener.discard(self)
        if self.app is not None:
            self.app.disconnect()
            self.listener.reap(self.app.task)

    async def _handle_client(self) -> None:
        """Limits, PROXY header and the app's connect decision, then aiosmtpd's command loop."""
        listener = self.listener
        proxied = self._is_proxied()
        refusal = listener.admit(self, proxied=proxied)
        if refusal is None and proxied:
            if not await self._read_proxy_header():
                assert self.transport is not None
                self.transport.close()
                return
            refusal = listener.admit_client(self)
        if refusal is not None:
            await self._refuse(refusal)
            return
        self.app = ApplicationInstance(
            listener.app, self._scope(), listener.spawn, listener.config.app_timeout, self.describe
        )
        try:
            answer = await self._ask({"type": "smtp.connect"}, self._check_connect)
        except NoAnswer as exc:
            self._log_no_answer("smtp.connect", exc)
            await self._refuse(replies.APP_GONE)
            return
        if isinstance(answer, Reply):
            listener.log_info(self.peer, f"session refused by the application ({answer.code})")
            await self._refuse(answer)
            return
        self.ask_mail, self.ask_rcpt = answer
        await super()._handle_client()

    def _check_connect(self, answer: Message) -> Reply | tuple[bool, bool]:
        if answer["type"] == "smtp.accept":
            return bool(answer.get("mail", False)), bool(answer.get("rcpt", True))
        return replies.app_reply(
            answer, replies.SESSION_REFUSED, utf8=False, codes=replies.SESSION_REFUSAL_CODES
        )

    def _is_proxied(self) -> bool:
        proxies = self.listener.trusted_proxies
        return bool(proxies) and proxies.is_trusted(self.client[0] if self.client else None)

    async def _read_proxy_header(self) -> bool:
        """Read a trusted peer's PROXY header; the client is who it names."""
        self._reset_timeout(self.listener.config.proxy_protocol_timeout)
        proxy = await get_proxy(self._reader)
        if not proxy.valid or proxy.src_addr is None:
            self.listener.log_info(self.peer, f"bad PROXY header: {proxy.error or 'no address'}")
            return False
        assert self.session is not None
        self.session.proxy_data = proxy
        self.proxy = self.client
        self.client = (str(proxy.src_addr), int(proxy.src_port or 0))
        if proxy.dst_addr is not None:
            self.server_address = (str(proxy.dst_addr), int(proxy.dst_port or 0))
        self.peer = f"{_format_peer(self.client)} via {self.peer}"
        self._reset_timeout()
        return True

    async def _refuse(self, reply: Reply) -> None:
        if self.transport is not None and not self.transport.is_closing():
            await self.push(str(reply))
            self.transport.close()

    def _scope(self) -> dict[str, Any]:
        listener = self.listener
        return {
            "type": "smtp",
            "asgi": ASGI_VERSION,
            "mode": "lmtp" if listener.config.lmtp else "smtp",
            "listener": listener.name,
            "hostname": listener.hostname,
            "client": self.client,
            "server": self.server_address,
            "proxy": self.proxy,
            "tls": self._tls(),
            **({"state": listener.lifespan_state.copy()} if listener.lifespan_state else {}),
        }

    # Timeouts, shutdown, errors

    def _guard(self, method: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """Wrap a command: 421 during shutdown, and mark the session busy while it runs."""

        async def guarded(arg: Any) -> None:
            if self.listener.closing:
                self._close_after_reply = True
                await self.push(str(replies.SHUTTING_DOWN))
                return
            self.busy = True
            try:
                await method(arg)
            finally:
                self.busy = False

        # HELP reads each command's syntax from the method aiosmtpd finds (@syntax).
        return functools.update_wrapper(guarded, method)

    def shutdown(self) -> None:
        """Server shutdown: close now when idle; a busy session closes at its next command."""
        if not self.busy and self.transport is not None and not self.transport.is_closing():
            cast(asyncio.WriteTransport, self.transport).write(
                f"{replies.SHUTTING_DOWN}\r\n".encode()
            )
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Restart the idle clock: ``duration`` (default ``command_timeout``) from now.

        aiosmtpd cancels and schedules a timer per command; hub moves a deadline
        and keeps one timer, which fires no later than the deadline and, when
        the deadline has moved on meanwhile, sleeps again until it. The timer
        is never set further than ``min(command_timeout, data_timeout)`` ahead,
        so the next command (whose deadline is sooner than DATA's) finds it
        early enough and does not move it.
        """
        deadline = self.loop.time() + (duration or self._timeout_duration)
        self._deadline = deadline
        timer_at = self._timer_at
        if timer_at is None or timer_at > deadline:
            self._arm_timer(deadline)

    def _arm_timer(self, deadline: float) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        when = min(deadline, self.loop.time() + self._timer_step)
        self._timer_at = when
        self._timeout_handle = self.loop.call_at(when, self._timeout_cb)

    def _timeout_cb(self) -> None:
        self._timer_at = None
        if self.transport is None:
            return
        if self.loop.time() < self._deadline:
            if self._deadline != math.inf:  # inf: the app is deciding, _ask re-arms after
                self._arm_timer(self._deadline)
            return
        if not self.transport.is_closing():
            self.listener.log_info(self.peer, "timed out")
            cast(asyncio.WriteTransport, self.transport).write(f"{replies.TIMEOUT}\r\n".encode())
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, reading the message in pieces rather than line by line (``data.py``)."""
        self._reset_timeout(self.listener.config.data_timeout)
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert envelope is not None
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content, state = await read_data(
                self._reader,
                size_limit=self.data_size_limit or 0,
                line_limit=self.line_length_limit,
            )
        except asyncio.CancelledError:
            # The connection was lost during DATA (aiosmtpd closes its writer too).
            self._writer.close()
            raise
        if state is not DataState.NOMINAL:
            too_long = state is DataState.TOO_LONG
            await self.push(str(replies.LINE_TOO_LONG if too_long else replies.TOO_MUCH_DATA))
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        # hub never decodes (decode_data is off): content is the bytes, as aiosmtpd's.
        envelope.content = envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)

    async def push(self, status: Any) -> None:
        await super().push(status)
        if self._close_after_reply and self.transport is not None:
            self.transport.close()

    async def handle_exception(self, error: Exception) -> str:
        self.listener.log_error(self.peer, f"server error: {error!r}; {self.summary()}", error)
        return str(replies.LOCAL_ERROR)

    # Asking the application

    async def _ask(self, event: Message, check: Callable[[Message], Any]) -> Any:
        """Ask the app; the idle clock stops meanwhile (``app_timeout`` bounds the wait)."""
        assert self.app is not None
        self._deadline = math.inf
        try:
            return await self.app.ask(event, check=check)
        finally:
            if self.transport is not None:
                self._reset_timeout()

    async def _decide(self, event: Message, accept: Reply, refuse: Reply) -> Reply:
        """Ask a yes/no question; the reply for the client, 451 when there is no answer."""
        assert self.app is not None
        if self.app.gone is not None:
            self._close_after_reply = True
            return replies.APP_GONE
        utf8 = self._utf8()

        def check(answer: Message) -> Reply:
            if answer["type"].endswith(".accept"):
                return accept
            return replies.app_reply(answer, refuse, utf8=utf8)

        try:
            reply: Reply = await self._ask(event, check)
        except NoAnswer as exc:
            self._log_no_answer(event["type"], exc)
            return replies.LOCAL_ERROR
        return reply

    def _event(self, kind: str) -> dict[str, Any]:
        """An event with the session state every event after ``smtp.connect`` carries."""
        session = self.session
        assert session is not None
        return {
            "type": kind,
            "helo": session.host_name,
            "esmtp": session.extended_smtp,
            "user": session.auth_data if session.authenticated else None,
            "tls": self._tls(),
        }

    def _transaction_event(self, kind: str) -> dict[str, Any]:
        """An event of the transaction in progress (``smtp.rcpt``, ``smtp.message``)."""
        envelope = self.envelope
        assert envelope is not None
        event = self._event(kind)
        event["transaction"] = self.transaction
        event["mail_from"] = _reverse_path(envelope.mail_from)
        event["mail_options"] = list(envelope.mail_options)
        return event

    async def on_ehlo(self, hostname: str, responses: list[str]) -> list[str]:
        assert self.session is not None
        self.session.host_name = hostname
        if not self.listener.mechanisms:
            responses = [line for line in responses if not line.startswith("250-AUTH")]
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def on_mail(self, address: str, options: list[str]) -> str:
        envelope = self.envelope
        assert envelope is not None
        self.transaction += 1
        if self.ask_mail:
            event = self._event("smtp.mail")
            event["transaction"] = self.transaction
            event["mail_from"] = _reverse_path(address)
            event["mail_options"] = list(options)
            reply = await self._decide(event, replies.SENDER_OK, replies.SENDER_REFUSED)
            if reply.code != 250:
                return str(reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return _SENDER_OK

    async def on_rcpt(self, address: str, options: list[str]) -> str:
        envelope = self.envelope
        session = self.session
        assert envelope is not None
        assert session is not None
        config = self.listener.config
        if len(envelope.rcpt_tos) >= config.max_recipients:
            return str(replies.TOO_MANY_RECIPIENTS)
        if self.listener.local_domains and not session.authenticated:
            _, at, domain = address.rpartition("@")
            if at and domain.lower() not in self.listener.local_domains:
                self.listener.log_info(self.peer, f"relaying to {address!r} denied")
                return str(replies.RELAY_DENIED)
        if not self.ask_rcpt:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            return _RECIPIENT_OK
        event = self._transaction_event("smtp.rcpt")
        event["address"] = address
        event["rcpt_options"] = list(options)
        event["rcpt_tos"] = list(envelope.rcpt_tos)
        reply = await self._decide(event, replies.RECIPIENT_OK, replies.RECIPIENT_REFUSED)
        if reply.code == 250:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
        return str(reply)

    async def on_data(self) -> str:
        """The app's verdict on a complete message: one reply, or one per recipient (LMTP)."""
        envelope = self.envelope
        assert envelope is not None
        assert self.app is not None
        recipients = list(envelope.rcpt_tos)
        count = len(recipients) if self.listener.config.lmtp else 1
        if self.app.gone is not None:
            self._close_after_reply = True
            return "\r\n".join([str(replies.APP_GONE)] * count)
        event = self._transaction_event("smtp.message")
        event["rcpt_tos"] = recipients
        event["rcpt_options"] = list(envelope.rcpt_options)
        event["data"] = envelope.original_content or b""
        utf8 = self._utf8()
        lmtp = self.listener.config.lmtp

        def check(answer: Message) -> list[Reply]:
            if answer["type"] == "smtp.message.reject":
                return [replies.app_reply(answer, replies.MESSAGE_REFUSED, utf8=utf8)] * count
            queue_id = answer.get("queue_id") or secrets.token_hex(QUEUE_ID_BYTES).upper()
            if not isinstance(queue_id, str) or not queue_id.isprintable():
                raise ValueError(
                    f"smtp.message.accept queue_id must be printable, got {queue_id!r}"
                )
            rejected = answer.get("rejected") or {}
            if rejected and not lmtp:
                raise ValueError(
                    "smtp.message.accept 'rejected' is for LMTP only: in SMTP reject the "
                    "message, or refuse the recipient at RCPT"
                )
            accepted = replies.message_queued(queue_id)
            if not lmtp:
                return [accepted]
            unknown = set(rejected) - set(recipients)
            if unknown:
                raise ValueError(f"'rejected' names addresses not in rcpt_tos: {sorted(unknown)}")
            return [
                _rejected_reply(rejected[address], utf8) if address in rejected else accepted
                for address in recipients
            ]

        try:
            verdicts: list[Reply] = await self._ask(event, check)
        except NoAnswer as exc:
            self._log_no_answer("smtp.message", exc)
            verdicts = [replies.LOCAL_ERROR] * count
        if count == 1:
            return str(verdicts[0])
        return "\r\n".join(str(verdict) for verdict in verdicts)

    # AUTH: aiosmtpd parses PLAIN and LOGIN; the app decides (asynchronously).

    def _authenticate(self, mechanism: str, auth_data: Any) -> Any:
        return _Credentials(mechanism, auth_data)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._check_credentials(await super().auth_PLAIN(server, args))

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._check_credentials(await super().auth_LOGIN(server, args))

    async def _check_credentials(self, result: AuthResult | _Credentials) -> AuthResult:
        if not isinstance(result, _Credentials):
            return result  # aiosmtpd already answered (bad base64, "*" abort...)
        assert self.app is not None
        invalid = AuthResult(success=False, handled=False, message=str(replies.AUTH_INVALID))
        try:
            login = result.login_password.login.decode("utf-8")
            password = result.login_password.password.decode("utf-8")
        except UnicodeDecodeError:
            return invalid
        if self.app.gone is not None:
            self._close_after_reply = True
            return AuthResult(success=False, handled=False, message=str(replies.APP_GONE))
        event = self._event("smtp.auth")
        event["mechanism"] = result.mechanism
        event["login"] = login
        event["password"] = password

        def check(answer: Message) -> AuthResult:
            if answer["type"] == "smtp.auth.accept":
                user = answer.get("user", login)
                if not isinstance(user, str):
                    raise ValueError(f"smtp.auth.accept user must be a str, got {user!r}")
                return AuthResult(success=True, auth_data=user)
            reply = replies.app_reply(answer, replies.AUTH_INVALID, utf8=False)
            return AuthResult(success=False, handled=False, message=str(reply))

        try:
            verdict: AuthResult = await self._ask(event, check)
        except NoAnswer as exc:
            self._log_no_answer("smtp.auth", exc)
            reply = replies.AUTH_TEMPORARY_FAILURE
            return AuthResult(success=False, handled=False, message=str(reply))
        if not verdict.success:
            self.listener.log_info(self.peer, f"AUTH {result.mechanism} refused for {login!r}")
        return verdict

    # Logs

    def describe(self) -> str:
        return f"{self.listener.name} {self.peer}"

    def summary(self) -> str:
        """The session in one line, for the log line of a failure."""
        session = self.session
        envelope = self.envelope or Envelope()
        size = len(envelope.original_content or b"")
        user = session.auth_data if session and session.authenticated else None
        return (
            f"helo={session.host_name if session else None!r} user={user!r} "
            f"transaction={self.transaction} from=<{_reverse_path(envelope.mail_from)}> "
            f"to={','.join(f'<{r}>' for r in envelope.rcpt_tos) or '-'} size={size}"
        )

    def _log_no_answer(self, event: str, exc: NoAnswer) -> None:
        self.listener.log_error(self.peer, f"no answer to {event}: {exc}; {self.summary()}")

    def _utf8(self) -> bool:
        return bool(self.envelope is not None and self.envelope.smtp_utf8)

    def _tls(self) -> dict[str, Any] | None:
        """The tls details of the connection as it is now (after STARTTLS, the new transport)."""
        transport = self.transport
        if self._tls_cache[0] is transport:
            return self._tls_cache[1]
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        info = self.listener.tls_details(ssl_object) if ssl_object is not None else None
        self._tls_cache = (transport, info)
        return info

    def _create_session(self) -> Session:
        session = super()._create_session()
        if self.session is not None:  # STARTTLS resets the session (RFC 3207 4.2); keep PROXY
            session.proxy_data = self.session.proxy_data
        return session


class LmtpSession(SmtpSession, LMTP):
    """An LMTP session (RFC 2033): LHLO instead of HELO/EHLO, a reply per recipient after DATA."""


class _Hooks:
    """aiosmtpd's handler: each hook hands over to the session that called it."""

    async def handle_EHLO(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        return await server.on_ehlo(hostname, responses)

    async def handle_MAIL(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        return await server.on_mail(address, options)

    async def handle_RCPT(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        return await server.on_rcpt(address, options)

    async def handle_DATA(self, server: SmtpSession, session: Session, envelope: Envelope) -> str:
        return await server.on_data()


HOOKS = _Hooks()


def _rejected_reply(value: Any, utf8: bool) -> Reply:
    try:
        code, text = value
    except (TypeError, ValueError):
        raise ValueError(f"'rejected' values must be [code, message], got {value!r}") from None
    return replies.app_reply({"code": code, "message": text}, replies.MESSAGE_REFUSED, utf8=utf8)


def _reverse_path(address: str | None) -> str:
    """The null reverse path ``<>`` (bounces) is ``""`` in events."""
    return "" if address in (None, "<>") else str(address)


def _addresses(
    transport: asyncio.BaseTransport,
) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
    peername = transport.get_extra_info("peername")
    sockname = transport.get_extra_info("sockname")
    client = (str(peername[0]), int(peername[1])) if isinstance(peername, tuple) else None
    server = (str(sockname[0]), int(sockname[1])) if isinstance(sockname, tuple) else None
    return client, server


def _format_peer(client: tuple[str, int] | None) -> str:
    if client is None:
        return "unix"
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
