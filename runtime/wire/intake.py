"""Taking messages from a durable JetStream consumer: acknowledged only once handled.

Each process pulls only as many messages as it has free slots, so the consumer spreads them over
the processes that have room. A message is acknowledged after its handler returns (the command
answered); a handler that declines it (the function is busy here) or fails has it given back at
once, and a process that dies has its unacknowledged messages redelivered after `ack_wait`.
While a handler runs, the message is kept ours with progress acknowledgements. Messages older
than `max_age` when they arrive are acknowledged without being handled: counted and logged.

What a handler says on cytube.send.* while it handles a message goes to JetStream under an id
made from the message's stream sequence (`Scope`), so a redelivered command that already spoke
says nothing twice: the server drops the repeat within its duplicate window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from runtime.tasks import halt
from runtime.wire.backoff import Backoff
from runtime.wire.scope import CURRENT, Scope
from runtime.wire.streams import Stream

log = logging.getLogger("rosey.intake")

# (message, its durable id) → True when handled, False to give it back for another process.
Handler = Callable[[Msg, str], Awaitable[bool]]


class Intake:
    """Pulls from `stream`'s durable consumer and runs `handle` on each message, `slots` at once."""

    def __init__(
        self,
        js: JetStreamContext,
        stream: Stream,
        handle: Handler,
        *,
        slots: int = 64,
        max_age: float = 60.0,
        ack_wait: float = 5.0,
    ) -> None:
        self.js, self.stream, self.handle = js, stream, handle
        self.slots, self.max_age, self.ack_wait = slots, max_age, ack_wait
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._held: dict[str, tuple[Msg, float]] = {}  # in hand: the message, since when
        self._sub: JetStreamContext.PullSubscription | None = None
        self.handled = self.stale = self.declined = self.failed = 0

    @property
    def busy(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        """Start pulling (again, after a stop: the connector does so each time it holds the
        channel)."""
        self._stopping.clear()
        self._sub = await self.js.pull_subscribe_bind(
            durable=self.stream.consumer, stream=self.stream.name
        )
        self._loop = asyncio.create_task(self._pull(), name=f"rosey-intake-{self.stream.name}")
        self._keeper = asyncio.create_task(self._keep(), name=f"rosey-keep-{self.stream.name}")

    async def stop(self, timeout: float = 10.0) -> int:
        """Stop pulling, wait for what is in hand (within `timeout`); returns how many were left
        unfinished (they are redelivered to another process)."""
        self._stopping.set()
        self._room.set()
        await halt(self._loop)
        left = 0
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            left = len(pending)
            for task in pending:
                task.cancel()
        await halt(self._keeper)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        self._loop = self._keeper = None
        return left

    async def _pull(self) -> None:
        sub = self._sub
        assert sub is not None
        backoff = Backoff()
        while not self._stopping.is_set():
            free = self.slots - len(self._tasks)
            if free <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                messages = await sub.fetch(free, timeout=1.0)
            except TimeoutError:
                continue  # nothing waiting
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the connection is being re-made, or the server is away
                log.debug("fetch from %s failed: %r", self.stream.consumer, e)
                await backoff.wait()
                continue
            backoff.reset()
            for msg in messages:
                task = asyncio.create_task(self._one(msg))
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._room.set()

    async def _one(self, msg: Msg) -> None:
        meta = msg.metadata
        msg_id = f"{self.stream.name}-{meta.sequence.stream}"  # no dot: it goes in subjects
        age = time.time() - meta.timestamp.timestamp()
        if age > self.max_age:
            self.stale += 1
            log.warning(
                "%s arrived %.1fs after it was said (delivery.max_age %gs): not run",
                msg_id,
                age,
                self.max_age,
            )
            await _settle(msg.ack)
            return
        scope = Scope(msg_id, self.js, self.ack_wait)
        token = CURRENT.set(scope)
        self._held[msg_id] = (msg, time.monotonic())
        try:
            taken = await self.handle(msg, msg_id)
        except Exception:
            log.exception("handling %s failed; it will be redelivered", msg_id)
            taken = None
        finally:
            self._held.pop(msg_id, None)
            CURRENT.reset(token)
        if taken and scope.lost:
            taken = None  # a line it said is not in JetStream: run it again (ids dedupe)
        if taken:
            self.handled += 1
            await _settle(msg.ack)
        elif taken is None:
            self.failed += 1
            await _settle(lambda: msg.nak(delay=self.ack_wait))
        else:
            self.declined += 1
            await _settle(lambda: msg.nak(delay=0.05))

    async def _keep(self) -> None:
        """Tell the server which messages are still being worked on, so none is redelivered
        while a long handler runs. One task for all: most commands end long before a beat."""
        period = self.ack_wait / 3
        while True:
            await asyncio.sleep(period)  # a heartbeat period, not synchronisation
            due = time.monotonic() - period
            for msg, since in list(self._held.values()):
                if since <= due:
                    await _settle(msg.in_progress)


async def _settle(action: Callable[[], Awaitable[None]]) -> None:
    try:
        await action()
    except Exception as e:  # the server is away: it redelivers after ack_wait, ids dedupe
        log.debug("could not acknowledge: %r", e)
