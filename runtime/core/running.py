"""Running one handler: the function's concurrency slots, its timeout, and the handler threads
of sync handlers."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from concurrent.futures import Executor
from typing import Any

from runtime.config.manifest import Function
from runtime.constants import QUEUE_PER_SLOT, ErrorCode
from runtime.core.context import Context, Event, SyncContext
from runtime.core.loader import is_async
from runtime.errors import (
    FunctionBusy,
    InvocationError,
    InvocationTimeout,
    RoseyError,
    WorkerError,
)


class Runner:
    """Runs handlers of one function version within its concurrency and timeout: an async
    handler in the event loop, a sync one in a handler thread (it may block)."""

    def __init__(self, function: Function, executor: Executor, log: logging.Logger) -> None:
        self.function, self.executor, self.log = function, executor, log
        self.in_flight = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(function.concurrency)

    @property
    def free(self) -> bool:
        """A slot is free: a handler run now starts at once."""
        return not self._slots.locked()

    async def run(self, handler: Any, event: Event, ctx: Context) -> Any:
        f = self.function
        await self._acquire()
        timer = asyncio.timeout(f.timeout)
        if is_async(handler):
            try:
                async with timer:
                    return await handler(event, ctx)
            except (Exception, SystemExit) as e:
                raise self._failure(e, timer) from e
            finally:
                self._release()
        loop = asyncio.get_running_loop()
        run = contextvars.copy_context().run
        future = loop.run_in_executor(self.executor, run, handler, event, SyncContext(ctx, loop))
        # A thread cannot be cancelled: the slot is held until the handler really returns, so a
        # handler that hangs uses up its own function's concurrency, not everyone's threads.
        future.add_done_callback(lambda _: self._release_thread(future))
        try:
            async with timer:
                return await asyncio.shield(future)
        except (Exception, SystemExit) as e:
            # sys.exit() in a handler in this process must not end the runtime.
            raise self._failure(e, timer) from e

    def _failure(self, e: BaseException, timer: asyncio.Timeout) -> RoseyError:
        """What a handler's exception becomes: a timeout when its time ran out, else a failure
        (a TimeoutError the handler raised itself is its own failure)."""
        f = self.function
        if isinstance(e, TimeoutError):
            if timer.expired():
                return InvocationTimeout(f.name, f.version, f.timeout)
            return InvocationError(f.name, f.version, brief(e))
        return InvocationError(f.name, f.version, brief(e), code(e))

    async def _acquire(self) -> None:
        """A slot of the function's concurrency; a short bounded wait, then FunctionBusy."""
        f = self.function
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once, no timer needed
            self.in_flight += 1
            return
        if self.waiting >= f.concurrency * QUEUE_PER_SLOT:
            raise FunctionBusy(f.name)
        self.waiting += 1
        try:
            async with asyncio.timeout(f.timeout):
                await self._slots.acquire()
        except TimeoutError as e:
            raise FunctionBusy(f.name) from e
        finally:
            self.waiting -= 1
        self.in_flight += 1

    def _release(self) -> None:
        self.in_flight -= 1
        self._slots.release()

    def _release_thread(self, future: asyncio.Future[Any]) -> None:
        self._release()
        if future.done() and not future.cancelled() and future.exception() is not None:
            self.log.debug("late sync handler ended with %r", future.exception())


def brief(e: BaseException) -> str:
    if isinstance(e, WorkerError):
        return str(e)  # already "RuntimeError: ..." from the worker, or how the worker died
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def code(e: BaseException) -> ErrorCode:
    return e.code if isinstance(e, RoseyError) else ErrorCode.PLUGIN_ERROR
