"""What a consumer does when its client reads slower than the consumer sends.

A consumer's ``send`` goes to the protocol server, whose ``send`` waits while
the peer's socket buffer is full. That is the ``WAIT`` policy, the default and
Channels' behaviour: the consumer slows to the client's pace, and so do the
handlers that send to it (a ``group_send`` loop, for instance, does not,
because layer messages queue in the consumer's channel instead).

``DROP_OLDEST`` and ``DISCONNECT`` put a bounded queue of
``outbound_queue_size`` messages between the consumer and the server, drained
by one task, so the consumer never waits for the client:

- ``DROP_OLDEST``: when the queue is full, the oldest queued message is
  dropped (live dashboards, tickers: the newest value is what matters).
- ``DISCONNECT``: when the queue is full, the client is cut off with the
  protocol's "too slow" close (chat, feeds: a gap would mislead).

Only data messages (``DROPPABLE_TYPES``) count towards the limit and are ever
dropped: a handshake answer or a close always goes out, in order.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Callable

from hub.types import Message, Send

logger = logging.getLogger("hub.consumer")

#: Message types that carry data to the client, and so may be dropped.
DROPPABLE_TYPES = frozenset({"websocket.send"})


class OutboundPolicy(enum.Enum):
    WAIT = "wait"
    DROP_OLDEST = "drop_oldest"
    DISCONNECT = "disconnect"


class SlowClient(Exception):
    """The outbound queue was full under the ``DISCONNECT`` policy."""


class OutboundQueue:
    """A bounded queue of messages for the server, drained by one task.

    Args:
        send: the server's ``send``.
        size: how many messages may wait; at least 1.
        policy: ``DROP_OLDEST`` or ``DISCONNECT``.
        describe: returns a one-line description of the connection for logs.
    """

    def __init__(
        self,
        send: Send,
        size: int,
        policy: OutboundPolicy,
        describe: Callable[[], str],
    ) -> None:
        if size < 1:
            raise ValueError(f"outbound_queue_size must be at least 1, got {size}")
        self._send = send
        self._size = size
        self._policy = policy
        self._describe = describe
        self._messages: deque[Message] = deque()
        self._droppable = 0
        self._wakeup = asyncio.Event()
        self.dropped = 0
        self._task = asyncio.get_running_loop().create_task(self._drain())

    def put(self, message: Message) -> None:
        """Queue ``message``, applying the policy if the queue is full.

        Raises:
            SlowClient: the queue is full under ``DISCONNECT``; the queue has
                stopped draining and the caller must close the connection.
        """
        droppable = message.get("type") in DROPPABLE_TYPES
        if droppable and self._droppable >= self._size:
            if self._policy is OutboundPolicy.DROP_OLDEST:
                self._drop_oldest()
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    logger.warning(
                        "%s: client reads too slowly, %d outbound message(s) dropped "
                        "(outbound_queue_size=%d)",
                        self._describe(),
                        self.dropped,
                        self._size,
                    )
            else:
                self._task.cancel()
                self._messages.clear()
                raise SlowClient(
                    f"{self._describe()}: client reads too slowly, {self._size} messages "
                    f"waiting (outbound_queue_size={self._size}); disconnecting it"
                )
        self._messages.append(message)
        self._droppable += droppable
        self._wakeup.set()

    def _drop_oldest(self) -> None:
        for index, queued in enumerate(self._messages):
            if queued.get("type") in DROPPABLE_TYPES:
                del self._messages[index]
                self._droppable -= 1
                self.dropped += 1
                return

    async def _drain(self) -> None:
        messages = self._messages
        while True:
            await self._wakeup.wait()
            while messages:
                message = messages.popleft()
                self._droppable -= message.get("type") in DROPPABLE_TYPES
                await self._send(message)
            self._wakeup.clear()

    async def close(self) -> None:
        """Stop draining; messages still queued are dropped."""
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.debug("%s: outbound send failed at close", self._describe(), exc_info=True)
