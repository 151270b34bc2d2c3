"""A bare ASGI application: WebSocket echo and an HTTP "hello", nothing else.

Serves the server benchmarks that measure the server alone (``ws-echo-bare``,
``ws-idle-10k``): every WebSocket is accepted without a subprotocol and each
text or binary message is sent straight back; an HTTP request gets a 13-byte
``text/plain`` body. Lifespan is answered, so no server logs a lifespan failure.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]

HELLO = b"Hello, world!"
HELLO_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(HELLO)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "websocket":
        await _echo(receive, send)
    elif kind == "http":
        await _hello(receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)


async def _echo(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes")})
        elif kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:  # websocket.disconnect
            return


async def _hello(receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HELLO_HEADERS})
    await send({"type": "http.response.body", "body": HELLO})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return
