"""One SMTP or LMTP session: aiosmtpd's protocol, with the application asked where an MTA decides.

aiosmtpd runs the dialogue (greeting, EHLO keywords, STARTTLS, AUTH
challenges, SIZE, command line limits, pipelined commands read in order).
hub adds, as layers of one class, each in its module:

- :mod:`protocols.smtp.deadlines`: one idle timer per session, and 421 on timeout;
- :mod:`protocols.smtp.questions`: aiosmtpd's handler hooks, where the app is
  asked about MAIL, RCPT and the message;
- :mod:`protocols.smtp.auth`: AUTH checked by the application asynchronously;

and here, by overriding what aiosmtpd has no hook for: the app's connect
decision and the session limits before the greeting, PROXY headers from
trusted peers only, 421 during shutdown, a data timeout apart from the
command timeout, and 451 (never aiosmtpd's "500 Error: (Exception) text") on
a server error. ``smtp_DATA`` is hub's too: the message is read in pieces,
not a line at a time (:mod:`protocols.smtp.data`); aiosmtpd's per-line loop
was most of the CPU time per message.

aiosmtpd 1.4 internals these modules rely on, to recheck on upgrade: ``_handle_client``,
``_smtp_methods``, ``_authenticate``, ``_reset_timeout``, ``_timeout_handle``,
``_timeout_cb``, ``_auth_require_tls``, ``_reader``, ``_writer``,
``_call_handler_hook``, ``_set_post_data_state``, ``command_size_limits``.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from aiosmtpd.lmtp import LMTP
from aiosmtpd.proxy_protocol import get_proxy
from aiosmtpd.smtp import Session, syntax

from . import replies
from .app import ApplicationInstance, NoAnswer
from .auth import AppAuthentication
from .data import DataState, read_data
from .messages import ASGI_VERSION, Message
from .questions import HOOKS
from .replies import Reply

if TYPE_CHECKING:
    from .server import Listener


class SmtpSession(AppAuthentication):
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
        self._start_clock(min(config.command_timeout, config.data_timeout))

    # Session life

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not the second call, after STARTTLS
            self.client, self.server_address = _addresses(transport)
            self.peer = _format_peer(self.client)
            self.listener.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.listener.forget(self)
        if self.app is not None:
            self.app.disconnect()
            self.listener.reap(self.app.task)

    def _create_session(self) -> Session:
        session = super()._create_session()
        if self.session is not None:  # STARTTLS resets the session (RFC 3207 4.2); keep PROXY
            session.proxy_data = self.session.proxy_data
        return session

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

    # Logs

    def describe(self) -> str:
        return f"{self.listener.name} {self.peer}"


class LmtpSession(SmtpSession, LMTP):
    """An LMTP session (RFC 2033): LHLO instead of HELO/EHLO, a reply per recipient after DATA."""


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
