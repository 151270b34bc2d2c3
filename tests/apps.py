"""Small ASGI applications the runner tests serve (importable as ``tests.apps:NAME``)."""

from __future__ import annotations

import asyncio
import os

from hub.types import Receive, Scope, Send


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every HTTP request with its pid and path; echoes WebSocket text."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started_by"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        if scope["path"] == "/slow":
            print("slow request started", flush=True)
            await asyncio.sleep(1.0)
        body = f"pid={os.getpid()} path={scope['path']} state={scope.get('state')}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})


async def refuses_to_start(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers lifespan startup with a failure."""
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "database unreachable"})


def bridge_echo(sign_with_pid: bool = False):  # type: ignore[no-untyped-def]
    """An MQTT consumer that answers each message on ``in/<x>`` with one on ``out/<x>``.

    The answer is the payload and " via hub", or this process's id with
    ``sign_with_pid``. Built on first use: it needs Django settings
    (``--settings tests.settings``).
    """
    from hub.generic.mqtt import AsyncMqttConsumer

    class BridgeEcho(AsyncMqttConsumer):
        async def receive(self, message):  # type: ignore[no-untyped-def]
            suffix = message.topic.removeprefix("in/")
            answer = str(os.getpid()).encode() if sign_with_pid else message.payload + b" via hub"
            await self.publish(f"out/{suffix}", answer, qos=1)

    return BridgeEcho.as_asgi()


class _LazyBridgeEcho:
    """An ASGI app that builds :func:`bridge_echo` when first called."""

    def __init__(self, sign_with_pid: bool = False) -> None:
        self.sign_with_pid = sign_with_pid
        self.app = None

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if self.app is None:
            self.app = bridge_echo(self.sign_with_pid)
        await self.app(scope, receive, send)


bridge_echo_app = _LazyBridgeEcho()
bridge_pid_app = _LazyBridgeEcho(sign_with_pid=True)
