"""Manifest `schedules`: `every: 30s` or `cron: "0 20 * * fri"`, fired once across all runtimes.

Every runtime computes the same due times (intervals are aligned to the epoch, cron times to the
wall clock of the schedule's time zone), and the firing of one due time is claimed with a Redis
`SET NX` on (function, schedule, due time), the key `<prefix>schedule:<function>:<schedule>:<due
ms>`: whichever runtime claims it runs the handler, the others skip it. Without Redis the runtime is alone and fires every due time itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from runtime.config.manifest import Function, ScheduleSpec

from runtime.config.cron import next_due
from runtime.config.keys import DEFAULT_NAMESPACE, Namespace
from runtime.tasks import halt_all

log = logging.getLogger("rosey.schedule")


Fire = Callable[["ScheduleSpec", float], Awaitable[None]]


class Scheduler:
    """The schedules of one function version, each a task that sleeps until its next due time."""

    def __init__(
        self,
        function: Function,
        fire: Fire,
        redis: Redis | None = None,
        keys: Namespace = DEFAULT_NAMESPACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.function, self.fire, self.redis, self.keys = function, fire, redis, keys
        self.clock = clock
        self.tasks: list[asyncio.Task[None]] = []
        self.fired = 0

    def start(self) -> None:
        for spec in self.function.schedules:
            self.tasks.append(
                asyncio.create_task(self._loop(spec), name=f"schedule {self.function.name}")
            )

    async def stop(self) -> None:
        tasks, self.tasks = self.tasks, []
        await halt_all(tasks)

    async def _loop(self, spec: ScheduleSpec) -> None:
        while True:
            due = next_due(spec, self.clock())
            await asyncio.sleep(max(0.0, due - self.clock()))
            try:
                if await self.claim(spec, due):
                    self.fired += 1
                    await self.fire(spec, due)
            except Exception:
                # One bad firing (Redis away, a handler bug) must not end the schedule.
                log.exception("schedule %s of %s failed", spec.name, self.function.name)

    async def claim(self, spec: ScheduleSpec, due: float) -> bool:
        """True when this runtime is the one to fire `spec` at `due`."""
        if self.redis is None:
            return True
        key = self.keys.join("schedule", self.function.name, spec.name, str(int(due * 1000)))
        # Kept well past the due time, so a runtime whose clock lags cannot fire it again.
        ttl = int(max(60.0, (spec.every or 60.0) * 2))
        return bool(await self.redis.set(key, "1", nx=True, ex=ttl))


class Schedules:
    """The Schedulers of one runtime, one per function; they follow hot swaps."""

    def __init__(
        self,
        invokers: Callable[[], dict[str, Any]],
        redis: Redis | None = None,
        channel: str | None = None,
        clock: Callable[[], float] = time.time,
        *,
        keys: Namespace = DEFAULT_NAMESPACE,
    ) -> None:
        self.invokers, self.redis, self.channel, self.clock = invokers, redis, channel, clock
        self.keys = keys
        self.running: dict[str, Scheduler] = {}

    def start(self, name: str) -> None:
        invoker = self.invokers().get(name)
        if invoker is None or not invoker.function.schedules or name in self.running:
            return
        scheduler = Scheduler(
            invoker.function,
            lambda spec, due: self._fire(name, spec, due),
            self.redis,
            self.keys,
            self.clock,
        )
        self.running[name] = scheduler
        scheduler.start()

    async def stop(self, name: str) -> None:
        scheduler = self.running.pop(name, None)
        if scheduler is not None:
            await scheduler.stop()

    async def restart(self, name: str) -> None:
        """After a swap: the old version's schedules stop, the new version's start."""
        await self.stop(name)
        self.start(name)

    async def stop_all(self) -> None:
        for name in list(self.running):
            await self.stop(name)

    async def _fire(self, name: str, spec: ScheduleSpec, due: float) -> None:
        from runtime.core.context import Event

        invoker = self.invokers().get(name)
        if invoker is None:
            return
        event = Event(
            kind="schedule",
            subject=f"rosey.schedule.{name}.{spec.name}",
            payload={"schedule": spec.name, "due": due},
            command=spec.name,
            channel=self.channel,
        )
        # The invoker's one invocation path: quarantine, slots, timeout, activation record, stats
        # and failures counted as for commands; a returned str or list goes to the channel.
        await invoker.invoke(event, spec.handler or invoker.function.handler)
