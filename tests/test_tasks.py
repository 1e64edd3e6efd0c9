"""halt(): a background task ends even when something inside it swallows a cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runtime.tasks import halt, halt_all


def _stubborn(swallowed: list[int], step: asyncio.Event) -> asyncio.Task[None]:
    """A loop that, like redis-py at an unlucky moment, eats the first cancellation."""

    async def loop() -> None:
        while True:
            try:
                step.set()
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if not swallowed:
                    swallowed.append(1)
                    continue  # lost: the loop goes on to its next await
                raise

    return asyncio.create_task(loop(), name="stubborn")


async def test_a_swallowed_cancellation_is_repeated_until_the_task_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    swallowed: list[int] = []
    step = asyncio.Event()
    task = _stubborn(swallowed, step)
    await step.wait()
    await halt(task, grace=0.05)
    assert task.cancelled()
    assert swallowed == [1]
    assert "task stubborn did not end when cancelled; cancelling again" in caplog.text


async def test_a_task_that_failed_raises_its_error_and_none_is_nothing() -> None:
    async def fail() -> None:
        raise ValueError("broken")

    task = asyncio.create_task(fail())
    await asyncio.wait({task})
    with pytest.raises(ValueError, match="broken"):
        await halt(task)
    await halt(None)


async def test_halt_all_ends_every_task_and_logs_failures(caplog: pytest.LogCaptureFixture) -> None:
    async def fail() -> None:
        raise ValueError("broken")

    failed = asyncio.create_task(fail(), name="failing")
    await asyncio.wait({failed})
    steps = [asyncio.Event(), asyncio.Event()]
    stubborn = [_stubborn([], step) for step in steps]
    for step in steps:
        await step.wait()
    with caplog.at_level(logging.ERROR, logger="rosey.tasks"):
        await halt_all([failed, *stubborn], grace=0.05)
    assert all(t.cancelled() for t in stubborn)
    assert "task failing failed: broken" in caplog.text
