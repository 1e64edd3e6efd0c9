"""Runner: an async handler's first step runs at once; one that waits goes on under its timeout."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from runtime.config.manifest import parse
from runtime.core.context import Context, Event
from runtime.core.running import Runner
from runtime.errors import InvocationError, InvocationTimeout


def _runner(timeout: float = 0.2) -> tuple[Runner, Context, Event]:
    function = parse(
        {
            "name": "t",
            "version": "1.0.0",
            "description": "t",
            "handler": "t:h",
            "timeout": timeout,
            "concurrency": 2,
        }
    )
    event = Event(kind="event", subject="t.x")

    async def nowhere(*_: Any) -> None:
        return None

    ctx = Context(function, event, nowhere, nowhere)  # type: ignore[arg-type]
    return Runner(function, ThreadPoolExecutor(1), logging.getLogger("t")), ctx, event


async def test_a_handler_that_never_waits_answers_and_frees_its_slot() -> None:
    runner, ctx, event = _runner()

    async def handler(event: Event, ctx: Context) -> str:
        return "done"

    assert await runner.run(handler, event, ctx) == "done"
    assert runner.in_flight == 0
    assert runner.free


async def test_a_handler_that_waits_gets_what_it_waited_for() -> None:
    runner, ctx, event = _runner()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(event: Event, ctx: Context) -> str:
        await asyncio.sleep(0)  # a bare yield to the loop
        return await ready + "!"

    running = asyncio.create_task(runner.run(handler, event, ctx))
    while runner.in_flight == 0:
        await asyncio.sleep(0)
    ready.set_result("value")
    assert await running == "value!"
    assert runner.in_flight == 0


async def test_a_waiting_handler_times_out_and_its_cleanup_runs() -> None:
    runner, ctx, event = _runner(timeout=0.05)
    cleaned: list[str] = []

    async def handler(event: Event, ctx: Context) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("finally")

    with pytest.raises(InvocationTimeout):
        await runner.run(handler, event, ctx)
    assert cleaned == ["finally"]
    assert runner.in_flight == 0


async def test_time_spent_before_the_first_wait_counts_towards_the_timeout() -> None:
    runner, ctx, event = _runner(timeout=0.05)

    async def handler(event: Event, ctx: Context) -> str:
        time.sleep(0.1)  # busy past its whole timeout before it first waits
        await asyncio.sleep(0)
        return "late"

    with pytest.raises(InvocationTimeout):
        await runner.run(handler, event, ctx)


async def test_errors_before_and_after_the_first_wait_are_failures() -> None:
    runner, ctx, event = _runner()

    async def at_once(event: Event, ctx: Context) -> None:
        raise ValueError("at once")

    async def later(event: Event, ctx: Context) -> None:
        await asyncio.sleep(0)
        raise ValueError("later")

    with pytest.raises(InvocationError, match="ValueError: at once"):
        await runner.run(at_once, event, ctx)
    with pytest.raises(InvocationError, match="ValueError: later"):
        await runner.run(later, event, ctx)
    assert runner.in_flight == 0


async def test_cancelling_the_caller_cancels_a_waiting_handler() -> None:
    runner, ctx, event = _runner(timeout=5)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(event: Event, ctx: Context) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    running = asyncio.create_task(runner.run(handler, event, ctx))
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert cancelled.is_set()
    assert runner.in_flight == 0
