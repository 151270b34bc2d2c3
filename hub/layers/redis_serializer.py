"""Message bodies on the wire of the Redis layer: msgpack, optionally encrypted.

msgpack is smaller and faster than JSON and keeps ``bytes`` apart from
``str``, which ASGI messages rely on (``bytes_data`` vs ``text_data``). Tuples
come back as lists, as they do through channels_redis.

Encryption (``symmetric_encryption_keys``) uses ``cryptography``'s Fernet:
AES-128-CBC with an HMAC-SHA256 over the token, so a body changed in Redis or
written with another key is refused rather than misread. Each configured key
(any string) is stretched to a Fernet key with SHA-256, as channels_redis
does, so the same settings decrypt each other's bodies. The first key
encrypts; every key is tried to decrypt, which is how keys are rotated: add
the new key first, deploy, then drop the old one.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]

from hub.types import Message


class UnreadableMessage(ValueError):
    """A body is not a message this layer can read: another key, no key, or not msgpack."""


class MessageSerializer:
    """Turns messages into bytes for Redis and back.

    Args:
        symmetric_encryption_keys: keys to encrypt bodies with; ``None`` or an
            empty list stores plain msgpack.
    """

    def __init__(self, symmetric_encryption_keys: Sequence[str | bytes] | None = None) -> None:
        self._crypter: Any = None
        if symmetric_encryption_keys:
            if isinstance(symmetric_encryption_keys, str | bytes):
                raise TypeError(
                    "symmetric_encryption_keys must be a list of keys, got a single "
                    f"{type(symmetric_encryption_keys).__name__}"
                )
            try:
                from cryptography.fernet import Fernet, MultiFernet
            except ImportError as exc:  # pragma: no cover - cryptography is a test dependency
                raise ImportError(
                    "symmetric_encryption_keys needs the 'cryptography' package: "
                    "pip install cryptography"
                ) from exc
            self._crypter = MultiFernet([Fernet(_fernet_key(k)) for k in symmetric_encryption_keys])

    @property
    def encrypted(self) -> bool:
        return self._crypter is not None

    def dumps(self, message: Message) -> bytes:
        """``message`` as bytes; raises ``TypeError`` for a value msgpack cannot store."""
        try:
            body: bytes = msgpack.packb(message, use_bin_type=True)
        except TypeError as exc:
            raise TypeError(
                f"Message of type {message.get('type')!r} cannot be sent through Redis: {exc} "
                "(use str, bytes, int, float, bool, None, list and dict values)"
            ) from exc
        if self._crypter is not None:
            body = self._crypter.encrypt(body)
        return body

    def loads(self, body: bytes) -> Message:
        """The message ``body`` holds.

        Raises:
            UnreadableMessage: no configured key opens ``body`` (or it is not msgpack).
        """
        if self._crypter is not None:
            from cryptography.fernet import InvalidToken

            try:
                body = self._crypter.decrypt(body)
            except InvalidToken:
                raise UnreadableMessage(
                    "A message could not be decrypted with any of symmetric_encryption_keys "
                    "(its sender uses another key, or it was not encrypted)"
                ) from None
        try:
            message = msgpack.unpackb(body, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise UnreadableMessage(
                f"A message body is not msgpack ({exc}); is its sender encrypting with "
                "symmetric_encryption_keys while this layer is not?"
            ) from None
        if not isinstance(message, dict):
            raise UnreadableMessage(f"A message body holds a {type(message).__name__}, not a dict")
        return message


def _fernet_key(key: str | bytes) -> bytes:
    """A Fernet key (32 url-safe base64 bytes) derived from any string, as channels_redis does."""
    if isinstance(key, str):
        key = key.encode("utf8")
    return base64.urlsafe_b64encode(hashlib.sha256(key).digest())
