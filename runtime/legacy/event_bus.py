"""`core.event_bus` for plugins written for the original plugin guide: EventBus, Event, Priority.

Legacy plugins import this module as `core.event_bus` (see runtime/legacy/coreimport.py). `EventBus(nc)`
wraps any connected nats-py client, in the runtime or in a standalone process. Payloads are JSON,
outbound ones are checked against Rosey's NATS contract like everything else Rosey publishes.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from runtime.constants import ErrorCode
from runtime.errors import BusError
from runtime.wire import contract
from runtime.wire.bus import Binding, Bus

log = logging.getLogger("rosey.legacy.bus")

PRIORITY_HEADER = "Rosey-Priority"
DEFAULT_TIMEOUT = 5.0

# True while a subscriber's handler runs; the test kit's mock bus reads it.
handling: contextvars.ContextVar[bool] = contextvars.ContextVar("rosey_handling", default=False)


class Priority(IntEnum):
    """Message priority, as the guide's Event carries it (informational in Rosey)."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    CRITICAL = 4


@dataclass
class Event:
    """One message as a subscriber receives it."""

    subject: str
    data: Any = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    priority: Priority = Priority.NORMAL
    reply: str = ""  # the requester's inbox when the message is a request


Handler = Callable[[Event], Any]


class Subscription:
    """What `EventBus.subscribe` returns; `await sub.unsubscribe()` ends it."""

    def __init__(self, bus: EventBus, binding: Binding) -> None:
        self._bus, self.binding = bus, binding

    @property
    def subject(self) -> str:
        return self.binding.subject

    @property
    def queue(self) -> str:
        return self.binding.queue

    async def unsubscribe(self) -> None:
        await self._bus.unsubscribe(self)


def command_queue(subject: str) -> str | None:
    """`plugin.<name>.command` and `.request` are served in the queue group `rosey.<name>`,
    as every Rosey function is, so several instances answer each command once."""
    parts = subject.split(".")
    if len(parts) == 3 and parts[0] == "plugin" and parts[2] in ("command", "request"):
        return None if parts[1] in ("*", ">") else f"rosey.{parts[1]}"
    return None


class EventBus:
    """publish / subscribe / request over a connected nats-py client, with JSON payloads.

    `group` (set by the runtime) puts every subscription in a queue group of its own, so that
    several runtimes serving the same plugin handle each message once; a standalone
    `EventBus(nc)` only groups the plugin's own command and request subjects.
    """

    def __init__(
        self, nc: Client, *, group: str | None = None, drain_timeout: float = 10.0
    ) -> None:
        self.nc = nc
        self.group = group
        self.drain_timeout = drain_timeout
        self._bus = Bus(nc)
        self._subscriptions: list[Subscription] = []
        self._seen: dict[str, int] = {}

    @property
    def is_connected(self) -> bool:
        return bool(self.nc.is_connected)

    @property
    def busy(self) -> int:
        """Messages received by this bus's subscriptions and not yet handled."""
        return sum(s.binding.busy for s in self._subscriptions)

    async def publish(
        self, subject: str, data: Any = None, priority: Priority = Priority.NORMAL
    ) -> None:
        """Publish `data` as JSON; raises ContractError when it breaks Rosey's contract."""
        payload = {} if data is None else data
        contract.check(subject, payload)
        headers = (
            None if priority == Priority.NORMAL else {PRIORITY_HEADER: Priority(priority).name}
        )
        try:
            await self.nc.publish(subject, contract.encode(payload), headers=headers)
        except NatsError as e:
            raise BusError(f"publish to {subject}", str(e) or type(e).__name__) from e

    async def subscribe(
        self, subject: str, handler: Handler, queue: str | None = None
    ) -> Subscription:
        """Call `handler(Event)` for each message on `subject` (`*` and `>` wildcards work).

        A handler may be sync or async. When the message is a request and the handler returns
        something other than None, that is sent back as the reply.
        """
        queue = queue if queue is not None else self._queue(subject)

        async def on_message(msg: Msg) -> None:
            await self._deliver(handler, msg)

        binding = Binding(self._bus, subject, on_message, queue or "")
        await binding.start()
        subscription = Subscription(self, binding)
        self._subscriptions.append(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> int:
        """Stop one subscription after the messages it received are handled."""
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        return await subscription.binding.stop(self.drain_timeout)

    async def request(
        self, subject: str, data: Any = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Any:
        """Send a request and return the decoded reply.

        Raises asyncio.TimeoutError when nobody answers within `timeout` seconds, or nobody
        listens on `subject` at all.
        """
        payload = {} if data is None else data
        contract.check(subject, payload)
        try:
            msg = await self.nc.request(subject, contract.encode(payload), timeout=timeout)
        except NoRespondersError as e:
            raise TimeoutError(f"no one answers requests on {subject}") from e
        except NatsTimeout as e:
            raise TimeoutError(f"no reply on {subject} within {timeout:g}s") from e
        except NatsError as e:
            raise BusError(f"request to {subject}", str(e) or type(e).__name__) from e
        return json.loads(msg.data) if msg.data else None

    async def close(self) -> int:
        """End every subscription once its received messages are handled; the connection
        stays open (it belongs to whoever made it). Returns how many messages were drained."""
        subscriptions, self._subscriptions = self._subscriptions, []
        results = await asyncio.gather(*(s.binding.stop(self.drain_timeout) for s in subscriptions))
        return sum(results)

    @property
    def abandoned(self) -> int:
        return sum(s.binding.abandoned for s in self._subscriptions)

    def _queue(self, subject: str) -> str | None:
        # The n-th subscription to one subject gets its own group, so two handlers of one
        # plugin on the same subject both see every message, as they would without groups.
        n = self._seen.get(subject, 0)
        self._seen[subject] = n + 1
        base = command_queue(subject)
        if base is None and self.group:
            base = f"{self.group}.{hashlib.sha1(subject.encode()).hexdigest()[:10]}"
        if base is None:
            return None
        return base if n == 0 else f"{base}.{n}"

    async def _deliver(self, handler: Handler, msg: Msg) -> None:
        try:
            data = json.loads(msg.data) if msg.data else {}
        except ValueError:
            log.warning("ignored a message on %s that is not JSON", msg.subject)
            return
        event = Event(msg.subject, data, time.time(), _priority(msg), msg.reply or "")
        token = handling.set(True)
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            if msg.reply:
                failure = contract.failure(
                    ErrorCode.PLUGIN_ERROR, f"handler of {msg.subject} failed"
                )
                await self._answer(msg, failure)
            raise  # the Binding logs it with the subject; the plugin keeps running
        finally:
            handling.reset(token)
        if msg.reply and result is not None:
            await self._answer(msg, result)

    async def _answer(self, msg: Msg, payload: Any) -> None:
        try:
            await self.nc.publish(msg.reply, contract.encode(payload))
        except (NatsError, TypeError, ValueError) as e:
            log.warning("could not reply on %s: %s", msg.subject, e)


def _priority(msg: Msg) -> Priority:
    name = (msg.headers or {}).get(PRIORITY_HEADER, "")
    return Priority.__members__.get(name, Priority.NORMAL)
