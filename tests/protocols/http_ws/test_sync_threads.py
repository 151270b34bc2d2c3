"""Thread-sensitive sync code of HTTP requests runs on reused threads (``sync_threads``).

The apps here do what Django's ASGI handler does: enter asgiref's
``ThreadSensitiveContext`` for the request, then run sync code with
``sync_to_async``, and report which thread ran it.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async

from .helpers import open_raw, read_response, serve

#: Seconds before a test that would hang on a wrongly shared thread gives up.
WAIT = 5.0


async def respond(send: Any, body: bytes = b"ok") -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def django_like(threads: list[threading.Thread], calls: int = 2, barrier: Any = None) -> Any:
    """An app that, like Django's handler, runs ``calls`` sync steps in its own context."""

    def step() -> threading.Thread:
        # The first ``barrier.parties`` calls meet at the barrier; later ones pass.
        if barrier is not None and len(threads) < barrier.parties:
            barrier.wait()
        return threading.current_thread()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async with ThreadSensitiveContext():
            for _ in range(calls):
                threads.append(await sync_to_async(step)())
        await respond(send)

    return app


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Send one GET on the connection; its response's status."""
    writer.write(GET)
    async with asyncio.timeout(WAIT):
        return (await read_response(reader)).status_code


class TestThreadPerRequest:
    async def test_sync_code_of_one_request_runs_on_one_thread_off_the_loop(self) -> None:
        threads: list[threading.Thread] = []
        async with serve(django_like(threads)) as server:
            reader, writer = await open_raw(server)
            assert await get(reader, writer) == 200
            writer.close()
        assert threads[0] is threads[1]
        assert threads[0] is not threading.current_thread()

    async def test_concurrent_requests_run_their_sync_code_on_different_threads(self) -> None:
        # Each request's sync step waits for the other's: on a shared thread both would hang.
        threads: list[threading.Thread] = []
        barrier = threading.Barrier(2, timeout=WAIT)
        async with serve(django_like(threads, calls=1, barrier=barrier)) as server:
            (r1, w1), (r2, w2) = await open_raw(server), await open_raw(server)
            assert await asyncio.gather(get(r1, w1), get(r2, w2)) == [200, 200]
            w1.close()
            w2.close()
        assert threads[0] is not threads[1]


class TestThreadReuse:
    async def test_a_finished_requests_thread_serves_the_next_request(self) -> None:
        threads: list[threading.Thread] = []
        async with serve(django_like(threads, calls=1)) as server:
            reader, writer = await open_raw(server)
            assert await get(reader, writer) == 200
            assert await get(reader, writer) == 200
            writer.close()
        assert threads[0] is threads[1]

    async def test_with_sync_threads_0_asgiref_starts_a_thread_per_request(self) -> None:
        threads: list[threading.Thread] = []
        async with serve(django_like(threads, calls=1), sync_threads=0) as server:
            reader, writer = await open_raw(server)
            assert await get(reader, writer) == 200
            assert await get(reader, writer) == 200
            writer.close()
        assert threads[0] is not threads[1]

    async def test_a_thread_still_running_sync_code_after_the_response_is_not_reused(
        self,
    ) -> None:
        release = threading.Event()
        started = asyncio.Event()
        threads: list[threading.Thread] = []
        background: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()

        def block() -> None:
            loop.call_soon_threadsafe(started.set)
            release.wait(WAIT)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            async with ThreadSensitiveContext():
                threads.append(await sync_to_async(threading.current_thread)())
                if not background:
                    # Sync work left running on the request's thread after it answers.
                    background.append(asyncio.create_task(sync_to_async(block)()))
                    await started.wait()
            await respond(send)

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            try:
                assert await get(reader, writer) == 200
                # Served at once, on another thread: not queued behind block().
                assert await get(reader, writer) == 200
            finally:
                release.set()
            async with asyncio.timeout(WAIT):
                await background[0]
            writer.close()
        assert threads[0] is not threads[1]

    async def test_an_error_of_sync_code_left_running_is_not_the_requests(self) -> None:
        release = threading.Event()
        background: list[asyncio.Task[None]] = []

        def fails_late() -> None:
            release.wait(WAIT)
            raise ValueError("late sync error")

        async def app(scope: Any, receive: Any, send: Any) -> None:
            async with ThreadSensitiveContext():
                background.append(asyncio.create_task(sync_to_async(fails_late)()))
                await asyncio.sleep(0)
            await respond(send)

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            assert await get(reader, writer) == 200
            request_tasks = set(server._listener.tasks)
            release.set()
            done, _ = await asyncio.wait(request_tasks, timeout=WAIT)
            with pytest.raises(ValueError, match="late sync error"):
                await background[0]
            writer.close()
        assert [task.exception() for task in done] == [None]

    async def test_a_task_outliving_its_request_still_gets_a_thread_for_sync_code(self) -> None:
        go = asyncio.Event()
        ran_on: list[threading.Thread] = []
        background: list[asyncio.Task[None]] = []

        async def later() -> None:
            await go.wait()
            ran_on.append(await sync_to_async(threading.current_thread)())

        async def app(scope: Any, receive: Any, send: Any) -> None:
            async with ThreadSensitiveContext():
                await sync_to_async(threading.current_thread)()
                background.append(asyncio.create_task(later()))
            await respond(send)

        async with serve(app) as server:
            reader, writer = await open_raw(server)
            assert await get(reader, writer) == 200
            go.set()
            async with asyncio.timeout(WAIT):
                await background[0]
            writer.close()
        assert ran_on[0] is not threading.current_thread()

    async def test_no_more_than_sync_threads_idle_threads_are_kept(self) -> None:
        threads: list[threading.Thread] = []
        barrier = threading.Barrier(2, timeout=WAIT)
        async with serve(django_like(threads, calls=1, barrier=barrier), sync_threads=1) as server:
            (r1, w1), (r2, w2) = await open_raw(server), await open_raw(server)
            assert await asyncio.gather(get(r1, w1), get(r2, w2)) == [200, 200]
            # The kept thread serves the next request; the other one has exited.
            assert await get(r1, w1) == 200
            w1.close()
            w2.close()
        first, second, third = threads
        assert third in (first, second)
        other = second if third is first else first
        other.join(WAIT)
        assert not other.is_alive()

    async def test_idle_threads_exit_when_the_server_closes(self) -> None:
        threads: list[threading.Thread] = []
        async with serve(django_like(threads, calls=1)) as server:
            reader, writer = await open_raw(server)
            assert await get(reader, writer) == 200
            writer.close()
        threads[0].join(WAIT)
        assert not threads[0].is_alive()
