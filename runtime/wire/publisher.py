"""Publishing to JetStream in order, each message under an id, retried until the server has it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from nats.js import JetStreamContext

from runtime.constants import MSG_ID
from runtime.tasks import halt
from runtime.wire.backoff import Backoff

log = logging.getLogger("rosey.publisher")


@dataclass(frozen=True)
class Pending:
    subject: str
    data: bytes
    msg_id: str


class DurablePublisher:
    """One queue, one message in flight: the order of `put` is the order in the stream (per
    channel, since each connector has its own). A message is retried under the same id until
    JetStream acknowledges it, so a retry of one that did arrive is dropped as a duplicate by the
    server. `put` never waits: the caller is a socket.io event handler."""

    def __init__(self, js: JetStreamContext, limit: int = 10_000, timeout: float = 2.0) -> None:
        self.js, self.timeout = js, timeout
        self._queue: asyncio.Queue[Pending] = asyncio.Queue(maxsize=limit)
        self._task: asyncio.Task[None] | None = None
        self._unsent = 0  # queued or being sent
        self.published = self.duplicates = self.retries = self.dropped = 0

    def put(self, subject: str, data: bytes, msg_id: str) -> bool:
        """Queue one message; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(Pending(subject, data, msg_id))
            self._unsent += 1
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("durable publish queue full: %s %s dropped", subject, msg_id)
            return False
        return True

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged by JetStream."""
        return self._unsent

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="rosey-durable-publisher")

    async def stop(self, timeout: float = 5.0) -> int:
        """Publish what is queued (within `timeout`), then stop; returns how many were left."""
        if self._task is None:
            return 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._queue.join()
        task, self._task = self._task, None
        await halt(task)
        left = self._queue.qsize()
        if left:
            log.error("stopping with %d line(s) not yet in JetStream", left)
        return left

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._send(item)
            finally:
                self._unsent -= 1
                self._queue.task_done()

    async def _send(self, item: Pending) -> None:
        backoff = Backoff()
        while True:
            try:
                ack = await self.js.publish(
                    item.subject, item.data, timeout=self.timeout, headers={MSG_ID: item.msg_id}
                )
            except asyncio.CancelledError:
                raise
            except Exception as e:  # timeouts, no responders, a connection being re-made
                if self.retries == 0 or backoff.at_most:
                    log.warning("JetStream publish of %s failed, retrying: %r", item.msg_id, e)
                self.retries += 1
                await backoff.wait()
                continue
            self.published += 1
            self.duplicates += bool(ack.duplicate)
            return
