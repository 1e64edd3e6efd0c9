"""Stopping background tasks, even when a library loses the cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger("rosey.tasks")

GRACE = 1.0  # seconds between cancellations of a task that did not end


async def halt(task: asyncio.Task[Any] | None, *, grace: float = GRACE) -> None:
    """Cancel `task` and wait until it has ended; re-raise what it failed with, if not cancelled.

    A client library can swallow a cancellation that arrives at the wrong moment (redis-py:
    redis/redis-py#2028 and #2551); the task then carries on to its next `await` and an
    `await task` after `task.cancel()` waits forever: a shutdown that hangs. So the task is
    cancelled again every `grace` seconds until it ends.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=grace)
        if not task.done():
            log.warning("task %s did not end when cancelled; cancelling again", task.get_name())
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


async def halt_all(tasks: list[asyncio.Task[Any]], *, grace: float = GRACE) -> None:
    """`halt` every task in `tasks` together; failures are logged, not raised."""
    results = await asyncio.gather(*(halt(t, grace=grace) for t in tasks), return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, Exception):
            log.error("task %s failed: %s", task.get_name(), result, exc_info=result)
