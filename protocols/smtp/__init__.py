"""hub's SMTP and LMTP server: mail sessions as ASGI, with aiosmtpd as the engine.

Public API: :class:`SmtpServer` (the start/close shape of every hub server),
:class:`SmtpConfig` (every limit, timeout and mode) and the reply table in
:mod:`protocols.smtp.replies`. The ASGI events are specified in
``docs/specs/smtp.md``. Logger: ``protocols.smtp.error`` (refused sessions,
timeouts, applications that did not answer, with a session summary).

This package never imports Django or ``hub``.
"""

from .config import SmtpConfig
from .server import SmtpServer

__all__ = ["SmtpConfig", "SmtpServer"]
