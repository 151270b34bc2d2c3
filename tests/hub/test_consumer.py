"""Consumers: dispatch, the channel layer, groups, crashes, concurrency, slow clients."""

from __future__ import annotations

import asyncio
import inspect
import logging

import pytest
from asgiref.compatibility import guarantee_single_callable
from asgiref.sync import iscoroutinefunction as asgiref_iscoroutinefunction

from hub.consumer import AsyncConsumer, SyncConsumer, get_handler_name
from hub.exceptions import StopConsumer
from hub.generic.websocket import AsyncWebsocketConsumer
from hub.layers import get_channel_layer
from hub.outbound import OutboundPolicy
from hub.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from hub.types import Message


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        if text_data == "crash":
            raise RuntimeError("asked to crash")
        await self.send(text_data=text_data, bytes_data=bytes_data)

    async def layer_ping(self, event):
        await self.send(text_data=f"ping from layer: {event['text']}")


class TestDispatch:
    def test_the_handler_name_replaces_dots_with_underscores(self):
        assert get_handler_name({"type": "websocket.receive"}) == "websocket_receive"
        assert get_handler_name({"type": "chat.new.message"}) == "chat_new_message"

    @pytest.mark.parametrize(
        ("message", "problem"),
        [({"text": "x"}, "has no 'type'"), ({"type": "_private"}, "leading underscore")],
    )
    def test_malformed_types_are_refused(self, message, problem):
        with pytest.raises(ValueError, match=problem):
            get_handler_name(message)

    async def test_each_event_type_reaches_its_handler(self):
        communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), "/ws/")
        assert await communicator.connect() == (True, None)
        await communicator.send_to(text_data="hello")
        assert await communicator.receive_from() == "hello"
        await communicator.send_to(bytes_data=b"\x00\x01")
        assert await communicator.receive_from() == b"\x00\x01"
        await communicator.disconnect()

    async def test_a_missing_handler_is_named_in_the_log_and_the_client_gets_1011(self, caplog):
        class Quiet(AsyncConsumer):
            async def websocket_connect(self, message):
                await self.send({"type": "websocket.accept"})

        communicator = ApplicationCommunicator(
            Quiet.as_asgi(), {"type": "websocket", "path": "/q/"}
        )
        await communicator.send_input({"type": "websocket.connect"})
        assert (await communicator.receive_output())["type"] == "websocket.accept"
        with caplog.at_level(logging.ERROR, logger="hub.consumer"):
            await communicator.send_input({"type": "websocket.receive", "text": "x"})
            assert await communicator.receive_output() == {"type": "websocket.close", "code": 1011}
            await communicator.wait()
        assert (
            "Quiet has no handler for 'websocket.receive' (expected method websocket_receive)"
            in (caplog.text)
        )

    async def test_stop_consumer_ends_the_application_instance(self):
        class StopsAtOnce(AsyncConsumer):
            async def websocket_connect(self, message):
                raise StopConsumer

        communicator = ApplicationCommunicator(StopsAtOnce.as_asgi(), {"type": "websocket"})
        await communicator.send_input({"type": "websocket.connect"})
        await communicator.wait()
        assert communicator.future.done()

    async def test_as_asgi_passes_its_arguments_to_each_instance(self):
        class Greeter(AsyncWebsocketConsumer):
            def __init__(self, greeting, **kwargs):
                super().__init__(**kwargs)
                self.greeting = greeting

            async def receive(self, text_data=None, bytes_data=None):
                await self.send(text_data=f"{self.greeting}, {text_data}")

        app = Greeter.as_asgi(greeting="hej")
        assert app.consumer_class is Greeter
        assert app.consumer_initkwargs == {"greeting": "hej"}
        assert app.__name__ == "Greeter"
        communicator = WebsocketCommunicator(app, "/")
        await communicator.connect()
        await communicator.send_to(text_data="Ada")
        assert await communicator.receive_from() == "hej, Ada"
        await communicator.disconnect()

    def test_as_asgi_is_an_asgi3_application_to_every_server(self):
        # Servers tell ASGI 2 from 3 by iscoroutinefunction: inspect's (Hypercorn),
        # asyncio's (uvicorn), asgiref's (Daphne). A plain function returning the
        # consumer's coroutine would save a frame but fail inspect's on Python 3.11.
        app = EchoConsumer.as_asgi()
        assert inspect.iscoroutinefunction(app)
        assert asyncio.iscoroutinefunction(app)
        assert asgiref_iscoroutinefunction(app)
        assert guarantee_single_callable(app) is app

    def test_max_concurrent_handlers_below_one_is_refused(self):
        with pytest.raises(ValueError, match="max_concurrent_handlers must be at least 1, got 0"):

            class Broken(AsyncConsumer):
                max_concurrent_handlers = 0


class TestChannelLayer:
    async def test_a_consumer_gets_a_channel_and_layer_messages_reach_its_handlers(self):
        class Reports(EchoConsumer):
            async def connect(self):
                await self.accept()
                await self.send(text_data=self.channel_name)

        communicator = WebsocketCommunicator(Reports.as_asgi(), "/")
        await communicator.connect()
        channel_name = await communicator.receive_from()
        await get_channel_layer().send(channel_name, {"type": "layer.ping", "text": "hi"})
        assert await communicator.receive_from() == "ping from layer: hi"
        await communicator.disconnect()

    async def test_groups_are_joined_on_connect_and_left_on_disconnect(self):
        class Member(EchoConsumer):
            groups = ["members"]

        layer = get_channel_layer()
        communicator = WebsocketCommunicator(Member.as_asgi(), "/")
        await communicator.connect()
        assert await layer.group_count("members") == 1
        await layer.group_send("members", {"type": "layer.ping", "text": "all"})
        assert await communicator.receive_from() == "ping from layer: all"
        await communicator.disconnect()
        assert await layer.group_count("members") == 0

    async def test_a_crashed_consumer_leaves_its_groups(self, caplog):
        class Member(EchoConsumer):
            groups = ["crashers"]

        layer = get_channel_layer()
        communicator = WebsocketCommunicator(Member.as_asgi(), "/")
        await communicator.connect()
        with caplog.at_level(logging.CRITICAL, logger="hub.consumer"):
            await communicator.send_to(text_data="crash")
            assert await communicator.receive_close() == 1011
            await communicator.wait()
        assert await layer.group_count("crashers") == 0

    async def test_a_consumer_without_a_layer_still_works(self, settings):
        settings.CHANNEL_LAYERS = {}

        class Plain(EchoConsumer):
            channel_layer_alias = "missing"

        communicator = WebsocketCommunicator(Plain.as_asgi(), "/")
        await communicator.connect()
        await communicator.send_to(text_data="x")
        assert await communicator.receive_from() == "x"
        await communicator.disconnect()


class TestCrash:
    async def test_a_crash_is_logged_with_the_connection_and_closes_it_with_1011(self, caplog):
        communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), "/ws/echo/")
        await communicator.connect()
        with caplog.at_level(logging.ERROR, logger="hub.consumer"):
            await communicator.send_to(text_data="crash")
            assert await communicator.receive_close() == 1011
            await communicator.wait()
        [record] = [r for r in caplog.records if r.name == "hub.consumer"]
        assert record.getMessage() == (
            "EchoConsumer websocket /ws/echo/ from 127.0.0.1:51000 crashed handling "
            "'websocket.receive': RuntimeError: asked to crash"
        )
        assert record.exc_info is not None

    async def test_other_connections_are_unharmed_by_a_crash(self, caplog):
        crashing = WebsocketCommunicator(EchoConsumer.as_asgi(), "/")
        healthy = WebsocketCommunicator(EchoConsumer.as_asgi(), "/")
        await crashing.connect()
        await healthy.connect()
        with caplog.at_level(logging.CRITICAL, logger="hub.consumer"):
            await crashing.send_to(text_data="crash")
            assert await crashing.receive_close() == 1011
        await healthy.send_to(text_data="still here")
        assert await healthy.receive_from() == "still here"
        await healthy.disconnect()

    async def test_an_http_consumer_crash_answers_500(self, caplog):
        class Broken(AsyncConsumer):
            async def http_request(self, message):
                raise KeyError("oops")

        with caplog.at_level(logging.CRITICAL, logger="hub.consumer"):
            response = await HttpCommunicator(Broken.as_asgi(), "GET", "/x").get_response()
        assert response["status"] == 500
        assert response["body"] == b"Internal Server Error"


class TestConcurrency:
    async def test_handlers_run_one_at_a_time_by_default(self):
        order = []

        class Serial(AsyncConsumer):
            async def work_item(self, message):
                order.append(("start", message["n"]))
                await asyncio.sleep(0.01)
                order.append(("end", message["n"]))

        communicator = ApplicationCommunicator(Serial.as_asgi(), {"type": "test"})
        await communicator.send_input({"type": "work.item", "n": 1})
        await communicator.send_input({"type": "work.item", "n": 2})
        while len(order) < 4:
            await asyncio.sleep(0.005)
        assert order == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]
        communicator.stop()

    async def test_max_concurrent_handlers_lets_handlers_overlap(self):
        both_started = asyncio.Event()
        started = []

        class Parallel(AsyncConsumer):
            max_concurrent_handlers = 2

            async def work_item(self, message):
                started.append(message["n"])
                if len(started) == 2:
                    both_started.set()
                await both_started.wait()
                await self.send({"type": "done", "n": message["n"]})

        communicator = ApplicationCommunicator(Parallel.as_asgi(), {"type": "test"})
        await communicator.send_input({"type": "work.item", "n": 1})
        await communicator.send_input({"type": "work.item", "n": 2})
        done = {(await communicator.receive_output())["n"] for _ in range(2)}
        assert done == {1, 2}
        communicator.stop()

    async def test_no_more_than_max_concurrent_handlers_run_at_once(self):
        running = 0
        peak = 0
        release = asyncio.Event()

        class Bounded(AsyncConsumer):
            max_concurrent_handlers = 2

            async def work_item(self, message):
                nonlocal running, peak
                running += 1
                peak = max(peak, running)
                await release.wait()
                running -= 1
                await self.send({"type": "done"})

        communicator = ApplicationCommunicator(Bounded.as_asgi(), {"type": "test"})
        for n in range(5):
            await communicator.send_input({"type": "work.item", "n": n})
        await asyncio.sleep(0.02)
        assert running == 2
        release.set()
        for _ in range(5):
            assert (await communicator.receive_output())["type"] == "done"
        assert peak == 2
        communicator.stop()


class SlowClient:
    """A server ``send`` whose client reads nothing until ``read()`` is called."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.reading = asyncio.Event()

    async def send(self, message):
        if message["type"] == "websocket.send":
            await self.reading.wait()
        self.sent.append(message)


async def run_with_slow_client(consumer_class, messages):
    client = SlowClient()
    inbox: asyncio.Queue = asyncio.Queue()
    for message in messages:
        inbox.put_nowait(message)
    task = asyncio.create_task(
        consumer_class.as_asgi()({"type": "websocket"}, inbox.get, client.send)
    )
    return client, inbox, task


class Ticker(AsyncWebsocketConsumer):
    """Sends ten messages at once; ``burst_done`` is set when all ten were handed over."""

    outbound_queue_size = 3
    burst_done: asyncio.Event

    async def receive(self, text_data=None, bytes_data=None):
        for i in range(10):
            await self.send(text_data=str(i))
        type(self).burst_done.set()


class TestSlowClients:
    async def test_drop_oldest_keeps_the_newest_messages_and_never_blocks(self, caplog):
        class Dropper(Ticker):
            outbound_policy = OutboundPolicy.DROP_OLDEST
            burst_done = asyncio.Event()

        connect = {"type": "websocket.connect"}
        burst = {"type": "websocket.receive", "text": "go"}
        with caplog.at_level(logging.WARNING, logger="hub.consumer"):
            client, inbox, task = await run_with_slow_client(Dropper, [connect, burst])
            await asyncio.wait_for(Dropper.burst_done.wait(), 5)
            client.reading.set()
            while len(client.sent) < 4:
                await asyncio.sleep(0.001)
        assert client.sent[0]["type"] == "websocket.accept", "control messages are never dropped"
        texts = [m["text"] for m in client.sent if m["type"] == "websocket.send"]
        assert texts == ["7", "8", "9"], "the newest three were kept"
        assert "client reads too slowly, 1 outbound message(s) dropped" in caplog.text
        inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await task

    async def test_disconnect_cuts_off_a_client_that_falls_too_far_behind(self, caplog):
        class Strict(Ticker):
            outbound_policy = OutboundPolicy.DISCONNECT
            burst_done = asyncio.Event()

        connect = {"type": "websocket.connect"}
        burst = {"type": "websocket.receive", "text": "go"}
        with caplog.at_level(logging.WARNING, logger="hub.consumer"):
            client, _, task = await run_with_slow_client(Strict, [connect, burst])
            await asyncio.wait_for(task, 5)
        assert client.sent[-1] == {
            "type": "websocket.close",
            "code": 1008,
            "reason": "client reads too slowly",
        }
        assert "client reads too slowly, 3 messages waiting (outbound_queue_size=3)" in caplog.text


class TestSyncConsumer:
    @pytest.mark.django_db(transaction=True)
    async def test_handlers_run_in_a_thread_and_send_synchronously(self):
        import threading

        main_thread = threading.get_ident()

        class Sync(SyncConsumer):
            def work_item(self, message):
                self.send({"type": "done", "same_thread": threading.get_ident() == main_thread})

        communicator = ApplicationCommunicator(Sync.as_asgi(), {"type": "test"})
        await communicator.send_input({"type": "work.item"})
        assert await communicator.receive_output() == {"type": "done", "same_thread": False}
        communicator.stop()


class TestCleanup:
    async def test_a_finished_consumer_leaves_no_task_behind(self):
        before = asyncio.all_tasks()
        communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), "/")
        await communicator.connect()
        await communicator.send_to(text_data="x")
        await communicator.receive_from()
        await communicator.disconnect()
        await asyncio.sleep(0)
        assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()

    async def test_a_cancelled_consumer_leaves_no_task_and_no_group_behind(self):
        class Member(EchoConsumer):
            groups = ["cancelled"]

        before = asyncio.all_tasks()
        communicator = WebsocketCommunicator(Member.as_asgi(), "/")
        await communicator.connect()
        communicator.future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await communicator.future
        assert asyncio.all_tasks() - before == set()
        assert await get_channel_layer().group_count("cancelled") == 0


class Stoppable(EchoConsumer):
    """Tells the client its channel name; a ``layer.stop`` stops it (cancelling ``also``)."""

    also: asyncio.Future[None] | None = None

    async def connect(self):
        await self.accept()
        await self.send(text_data=self.channel_name)

    async def layer_stop(self, event):
        if self.also is not None:
            self.also.cancel()
        raise StopConsumer


class TestTasks:
    async def test_an_idle_connection_costs_no_task_beyond_its_own(self):
        before = asyncio.all_tasks()
        communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), "/")
        await communicator.connect()
        assert asyncio.all_tasks() - before - {asyncio.current_task()} == {communicator.future}
        await communicator.disconnect()

    async def test_the_first_layer_message_starts_a_reader_for_the_channel(self):
        communicator = WebsocketCommunicator(Stoppable.as_asgi(), "/")
        await communicator.connect()
        channel_name = await communicator.receive_from()
        for text in ("one", "two"):
            await get_channel_layer().send(channel_name, {"type": "layer.ping", "text": text})
            assert await communicator.receive_from() == f"ping from layer: {text}"
        await communicator.disconnect()

    async def test_a_stop_from_a_layer_handler_ends_a_consumer_whose_client_is_silent(self):
        communicator = WebsocketCommunicator(Stoppable.as_asgi(), "/")
        await communicator.connect()
        channel_name = await communicator.receive_from()
        await get_channel_layer().send(channel_name, {"type": "layer.stop"})
        await asyncio.wait_for(communicator.future, 5)
        assert communicator.future.exception() is None

    async def test_the_servers_cancellation_wins_over_a_stop_at_the_same_moment(self):
        communicator = WebsocketCommunicator(Stoppable.as_asgi(), "/")
        Stoppable.also = communicator.future
        try:
            await communicator.connect()
            channel_name = await communicator.receive_from()
            await get_channel_layer().send(channel_name, {"type": "layer.stop"})
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(communicator.future, 5)
        finally:
            Stoppable.also = None


class Recorder(EchoConsumer):
    """Tells the client its channel name; records layer pings; a failing cleanup on work."""

    groups = ["recorders"]
    pings: list[Message] = []
    working: asyncio.Event | None = None

    async def connect(self):
        await self.accept()
        await self.send(text_data=self.channel_name)

    async def layer_ping(self, event):
        Recorder.pings.append(event)

    async def layer_work(self, event):
        assert Recorder.working is not None
        Recorder.working.set()
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("cleanup failed (a Redis call while Redis is down)")


def channel_readers() -> set[asyncio.Task]:
    return {t for t in asyncio.all_tasks() if "_pump" in repr(t.get_coro())}


class TestEndings:
    async def test_a_layer_message_in_the_turn_the_server_cancels_starts_no_reader(self):
        Recorder.pings = []
        communicator = WebsocketCommunicator(Recorder.as_asgi(), "/")
        await communicator.connect()
        channel_name = await communicator.receive_from()
        before = channel_readers()
        communicator.future.cancel()
        await get_channel_layer().send(channel_name, {"type": "layer.ping"})
        with pytest.raises(asyncio.CancelledError):
            await communicator.future
        for _ in range(5):
            await asyncio.sleep(0)
        assert channel_readers() - before == set()
        assert Recorder.pings == []

    async def test_a_handler_failing_as_it_is_cancelled_does_not_cut_the_shutdown_short(self):
        Recorder.working = asyncio.Event()
        layer = get_channel_layer()
        communicator = WebsocketCommunicator(Recorder.as_asgi(), "/")
        await communicator.connect()
        channel_name = await communicator.receive_from()
        assert await layer.group_count("recorders") == 1
        await layer.send(channel_name, {"type": "layer.work"})
        await Recorder.working.wait()
        communicator.future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await communicator.future
        assert await layer.group_count("recorders") == 0


class TestServedAlone:
    async def test_a_consumer_served_as_the_whole_app_completes_lifespan(self):
        communicator = ApplicationCommunicator(EchoConsumer.as_asgi(), {"type": "lifespan"})
        await communicator.send_input({"type": "lifespan.startup"})
        assert await communicator.receive_output() == {"type": "lifespan.startup.complete"}
        await communicator.send_input({"type": "lifespan.shutdown"})
        assert await communicator.receive_output() == {"type": "lifespan.shutdown.complete"}
        await communicator.wait()
