"""permessage-deflate with zlib streams made on first use."""

from __future__ import annotations

from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame, Opcode

from protocols.http_ws.deflate import LazyPerMessageDeflate, LazyServerPerMessageDeflateFactory


def negotiate() -> tuple[LazyPerMessageDeflate, PerMessageDeflate]:
    """A server and a client extension, negotiated as a browser's offer would be."""
    client_factory = ClientPerMessageDeflateFactory(client_max_window_bits=True)
    server_factory = LazyServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
    )
    response, server = server_factory.process_request_params(
        client_factory.get_request_params(), []
    )
    client = client_factory.process_response_params(response, [])
    assert isinstance(server, LazyPerMessageDeflate)
    return server, client


class TestLazyStreams:
    def test_a_negotiated_extension_holds_no_zlib_stream(self):
        server, _ = negotiate()
        assert "encoder" not in vars(server)
        assert "decoder" not in vars(server)

    def test_streams_appear_when_messages_flow_and_round_trip(self):
        server, client = negotiate()
        text = ("temperature 21.5, humidity 40 " * 20).encode()
        sent = server.encode(Frame(Opcode.TEXT, text))
        assert "encoder" in vars(server)
        assert "decoder" not in vars(server)
        assert len(sent.data) < len(text)
        assert client.decode(sent).data == text
        reply = client.encode(Frame(Opcode.TEXT, b"ack " * 50))
        assert server.decode(reply).data == b"ack " * 50
        assert "decoder" in vars(server)

    def test_the_configured_window_is_negotiated(self):
        server, client = negotiate()
        assert server.local_max_window_bits == 12
        assert server.remote_max_window_bits == 12
        assert client.remote_max_window_bits == 12

    def test_context_takeover_keeps_one_compressor_across_messages(self):
        server, _ = negotiate()
        server.encode(Frame(Opcode.TEXT, b"first message " * 10))
        encoder = vars(server)["encoder"]
        second = server.encode(Frame(Opcode.TEXT, b"first message " * 10))
        assert vars(server)["encoder"] is encoder
        assert len(second.data) < 20, "the repeated text is a back reference"
