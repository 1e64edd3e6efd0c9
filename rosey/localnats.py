"""An in-process stand-in for a nats-py client, so tests run Rosey's real code without a server.

It implements the part of the client Rosey uses: publish, subscribe (with `*`/`>` wildcards and
queue groups), request/reply, flush. Delivery is immediate: `publish` returns once every matching
subscription's callback has been called (Rosey's callbacks start a task and return).
Which subscriptions get a message is held to nats-server's answer by tests/test_localnats.py: a
queue group is its name, whatever subjects its members subscribed to, and gets one copy.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

log = logging.getLogger("rosey.testing.nats")

Callback = Callable[[Msg], Awaitable[None]]
INBOX = "_INBOX."


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


class LocalSubscription:
    def __init__(self, nc: LocalNats, subject: str, queue: str, cb: Callback) -> None:
        self._nc, self.subject, self.queue, self.cb = nc, subject, queue, cb
        self.pending_msgs = 0  # delivery is immediate: nothing ever waits in the client

    async def unsubscribe(self, limit: int = 0) -> None:
        self._nc.forget(self)

    async def drain(self) -> None:
        self._nc.forget(self)


class LocalNats:
    """Duck-typed as nats.aio.client.Client for Bus, Binding and EventBus."""

    max_payload = 1024 * 1024
    connected_url = None

    def __init__(self) -> None:
        self.subscriptions: list[LocalSubscription] = []
        self._inboxes: dict[str, asyncio.Future[Msg]] = {}
        self._ids = itertools.count(1)
        self._turn = itertools.count()
        self.is_closed = False
        self.is_draining = False

    @property
    def is_connected(self) -> bool:
        return not self.is_closed

    def new_inbox(self) -> str:
        return f"{INBOX}{next(self._ids)}"

    def takers(self, subject: str) -> list[LocalSubscription]:
        """The subscriptions a message on `subject` goes to: all plain ones, one per queue group."""
        found = [s for s in self.subscriptions if matches(s.subject, subject)]
        chosen = [s for s in found if not s.queue]
        groups: dict[str, list[LocalSubscription]] = {}
        for s in found:
            if s.queue:
                groups.setdefault(s.queue, []).append(s)
        turn = next(self._turn)
        chosen += [members[turn % len(members)] for members in groups.values()]
        return chosen

    async def subscribe(
        self, subject: str, queue: str = "", cb: Callback | None = None, **_: Any
    ) -> LocalSubscription:
        if cb is None:
            raise ValueError("LocalNats subscriptions need a callback")
        subscription = LocalSubscription(self, subject, queue, cb)
        self.subscriptions.append(subscription)
        return subscription

    def forget(self, subscription: LocalSubscription) -> None:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        reply: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        waiter = self._inboxes.pop(subject, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(Msg(self, subject, reply, payload, headers))  # type: ignore[arg-type]
            return
        for subscription in self.takers(subject):
            msg = Msg(self, subject, reply, payload, headers)  # type: ignore[arg-type]
            try:
                await subscription.cb(msg)
            except Exception:
                log.exception("subscriber of %s failed", subject)

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float = 0.5,
        headers: dict[str, str] | None = None,
        **_: Any,
    ) -> Msg:
        if not self.takers(subject):
            raise NoRespondersError
        inbox = self.new_inbox()
        waiter: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self._inboxes[inbox] = waiter
        try:
            await self.publish(subject, payload, reply=inbox, headers=headers)
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError as e:
            raise NatsTimeout from e
        finally:
            self._inboxes.pop(inbox, None)

    async def flush(self, timeout: int = 10) -> None:
        return None

    async def drain(self) -> None:
        await self.close()

    async def close(self) -> None:
        self.is_closed = True
        self.subscriptions.clear()
