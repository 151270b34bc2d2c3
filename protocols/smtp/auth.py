"""SMTP AUTH (RFC 4954): aiosmtpd parses PLAIN and LOGIN; the application decides.

aiosmtpd's own check (``authenticator``) is synchronous, so it could not ask
the application without blocking the event loop. hub takes over the step
after parsing: ``_authenticate`` only wraps what the client sent, and the
``auth_*`` mechanisms then put it to the application as ``smtp.auth``,
asynchronously like every other question. No answer is 454 (temporary), so
the client may try again later rather than think the password wrong.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from . import replies
from .app import NoAnswer
from .messages import Message
from .questions import AppQuestions


class _Credentials(NamedTuple):
    """What aiosmtpd's PLAIN/LOGIN parsing produced, before the app has checked it."""

    mechanism: str
    login_password: LoginPassword


class AppAuthentication(AppQuestions):
    """AUTH PLAIN and LOGIN, each checked by the application (``smtp.auth``)."""

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
