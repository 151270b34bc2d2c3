"""The message after 354: read in pieces, with aiosmtpd's bytes, limits and reply codes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from protocols.smtp import data as data_module
from protocols.smtp.data import DataState, read_data

from .helpers import RawClient, ScriptedApp, serve

LINE_LIMIT = 1001  # aiosmtpd's, and SmtpConfig.max_line_length's default
SIZE_LIMIT = 4000


async def read(
    chunks: list[bytes], *, size_limit: int = SIZE_LIMIT, line_limit: int = LINE_LIMIT
) -> tuple[bytes, DataState, bytes]:
    """``read_data`` over a stream fed ``chunks``: the bytes, the state and what is left."""
    reader = asyncio.StreamReader(limit=line_limit)

    async def feed() -> None:
        for chunk in chunks:
            reader.feed_data(chunk)
            await asyncio.sleep(0)  # let the reader see each chunk alone
        reader.feed_eof()

    feeding = asyncio.create_task(feed())
    content, state = await read_data(reader, size_limit=size_limit, line_limit=line_limit)
    await feeding
    return content, state, await reader.read()


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


class TestReading:
    @pytest.mark.parametrize("split", [False, True], ids=["one piece", "byte by byte"])
    async def test_message_ends_at_the_dot_line_and_what_follows_stays_in_the_stream(
        self, split: bool
    ) -> None:
        sent = b"Subject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n"
        content, state, rest = await read(bytewise(sent) if split else [sent])
        assert (content, state, rest) == (
            b"Subject: s\r\n\r\nbody\r\n",
            DataState.NOMINAL,
            b"QUIT\r\n",
        )

    @pytest.mark.parametrize("split", [False, True], ids=["one piece", "byte by byte"])
    async def test_dot_stuffing_is_removed_and_a_dot_ending_a_line_ends_nothing(
        self, split: bool
    ) -> None:
        sent = b"..first\r\nend.\r\n..\r\n...\r\n.x\r\nlast.\r\n.\r\n"
        content, state, rest = await read(bytewise(sent) if split else [sent])
        assert content == b".first\r\nend.\r\n.\r\n..\r\nx\r\nlast.\r\n"
        assert (state, rest) == (DataState.NOMINAL, b"")

    async def test_empty_message_is_just_the_dot_line(self) -> None:
        assert await read([b".\r\nQUIT\r\n"]) == (b"", DataState.NOMINAL, b"QUIT\r\n")

    async def test_message_longer_than_a_read_piece_arrives_whole(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(data_module, "DATA_CHUNK", 64)
        body = b"".join(b"line %d\r\n" % i for i in range(200))
        content, state, _ = await read([body[:700], body[700:] + b".\r\n"], size_limit=0)
        assert (content, state) == (body, DataState.NOMINAL)

    async def test_the_streams_line_limit_is_restored_after_the_message(self) -> None:
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        reader.feed_data(b"x\r\n.\r\n")
        await read_data(reader, size_limit=SIZE_LIMIT, line_limit=LINE_LIMIT)
        assert reader._limit == LINE_LIMIT  # type: ignore[attr-defined]


class TestLimits:
    async def test_line_at_the_limit_passes_and_one_longer_is_too_long(self) -> None:
        at_limit = b"x" * (LINE_LIMIT - 2) + b"\r\n"
        assert (await read([at_limit + b".\r\n"]))[:2] == (at_limit, DataState.NOMINAL)
        assert (await read([b"x" + at_limit + b".\r\n"]))[:2] == (b"", DataState.TOO_LONG)

    async def test_message_over_the_size_limit_is_read_to_its_end_and_dropped(self) -> None:
        sent = b"x" * 78 + b"\r\n"
        chunks = [sent] * 60 + [b".\r\nQUIT\r\n"]  # 4800 octets
        assert await read(chunks) == (b"", DataState.TOO_MUCH, b"QUIT\r\n")

    async def test_when_both_limits_are_broken_the_first_met_wins(self) -> None:
        long_line = b"y" * 2000 + b"\r\n"
        filler = b"x" * 78 + b"\r\n"
        long_first = [long_line, filler * 40, b".\r\n"]
        size_first = [filler * 60, long_line, b".\r\n"]
        assert (await read(long_first))[1] is DataState.TOO_LONG
        assert (await read(size_first))[1] is DataState.TOO_MUCH


# Side by side with aiosmtpd's own DATA: the same bytes to the app, the same codes.

CASES = {
    "plain": b"Subject: s\r\n\r\nhello\r\n",
    "dots": b"..a\r\nb.\r\n..\r\n. \r\nx\r\n",
    "empty": b"",
    "line at limit": b"x" * (LINE_LIMIT - 2) + b"\r\n",
    "line over limit": b"x" * (LINE_LIMIT - 1) + b"\r\n",
    "line far over limit": b"x" * 5000 + b"\r\n",
    "size at limit": b"x" * 98 + b"\r\n" + (b"y" * 98 + b"\r\n") * 39,
    "size over limit": b"x" * 98 + b"\r\n" + (b"y" * 98 + b"\r\n") * 40,
    "bare newlines": b"a\nb\rc\r\n",
    "long line, then over size": b"y" * 2000 + b"\r\n" + (b"x" * 78 + b"\r\n") * 40,
    "over size, then long line": (b"x" * 78 + b"\r\n") * 60 + b"y" * 2000 + b"\r\n",
}


@contextlib.asynccontextmanager
async def aiosmtpd_server(received: list[bytes]) -> AsyncIterator[int]:
    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.original_content)
            return "250 OK"

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), hostname="peer.test", data_size_limit=SIZE_LIMIT, loop=loop),
        "127.0.0.1",
        0,
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def deliver(port: int, body: bytes) -> tuple[int, int]:
    """Send ``body`` as a message then QUIT: the codes of the message and of QUIT."""
    client = await RawClient.open(port)
    await client.command(b"EHLO client.test")
    await client.command(b"MAIL FROM:<a@example.org>")
    await client.command(b"RCPT TO:<b@example.com>")
    assert (await client.command(b"DATA"))[0] == 354
    await client.send(body + b".\r\nQUIT\r\n")  # QUIT pipelined after the dot
    codes = (await client.reply())[0], (await client.reply())[0]
    await client.close()
    return codes


class TestSameAsAiosmtpd:
    @pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
    async def test_app_gets_the_bytes_aiosmtpds_handler_gets_with_the_same_codes(
        self, body: bytes
    ) -> None:
        peer_received: list[bytes] = []
        app = ScriptedApp()
        async with aiosmtpd_server(peer_received) as peer_port:
            peer_codes = await deliver(peer_port, body)
        async with serve(app, max_message_size=SIZE_LIMIT) as (_, port):
            codes = await deliver(port, body)
        assert codes == peer_codes
        assert [message["data"] for message in app.messages] == peer_received
