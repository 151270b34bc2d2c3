"""permessage-deflate (RFC 7692) whose zlib streams are created on first use.

The websockets library builds the compressor and the decompressor as soon as
the extension is negotiated. At the library defaults they hold about 89 KB
per connection, which an idle connection never touches: 10,000 idle
WebSockets cost 95 KB each with deflate on, 8.4 KB with it off
(``benchmarks/idle.py``). Creating each stream when the first message needs it
keeps idle connections at the no-deflate cost, and the window and memory
settings (:class:`~protocols.http_ws.config.HttpWsConfig` ``ws_deflate_*``)
bound what an active one holds.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.typing import ExtensionParameter


class LazyPerMessageDeflate(PerMessageDeflate):
    """``PerMessageDeflate`` that makes its zlib streams when a message first needs them."""

    def __init__(
        self,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        compress_settings: dict[Any, Any] | None = None,
    ) -> None:
        # The parent builds both streams unless told "no context takeover":
        # say so to build none, then restore the negotiated flags.
        super().__init__(
            True, True, remote_max_window_bits, local_max_window_bits, compress_settings
        )
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover

    def __getattr__(self, name: str) -> Any:
        # Called only while the attribute is unset: on first use, or after the
        # parent dropped a per-message stream.
        if name == "decoder":
            self.decoder = zlib.decompressobj(wbits=-self.remote_max_window_bits)
            return self.decoder
        if name == "encoder":
            self.encoder = zlib.compressobj(
                wbits=-self.local_max_window_bits, **self.compress_settings
            )
            return self.encoder
        raise AttributeError(name)


class LazyServerPerMessageDeflateFactory(ServerPerMessageDeflateFactory):
    """Negotiates as websockets does; returns a :class:`LazyPerMessageDeflate`."""

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        response, extension = super().process_request_params(params, accepted_extensions)
        return response, LazyPerMessageDeflate(
            extension.remote_no_context_takeover,
            extension.local_no_context_takeover,
            extension.remote_max_window_bits,
            extension.local_max_window_bits,
            extension.compress_settings,
        )
