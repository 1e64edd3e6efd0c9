"""Running one handler: the function's concurrency slots, its timeout, and the handler threads
of sync handlers."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import types
from collections.abc import Coroutine, Generator
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

HANDLERS = 64  # handlers whose kind a Runner remembers


class Runner:
    """Runs handlers of one function version within its concurrency and timeout: an async
    handler in the event loop, a sync one in a handler thread (it may block)."""

    def __init__(self, function: Function, executor: Executor, log: logging.Logger) -> None:
        self.function, self.executor, self.log = function, executor, log
        self.in_flight = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(function.concurrency)
        self._async: dict[Any, bool] = {}  # handler → async? (inspect's answer, asked once)

    @property
    def free(self) -> bool:
        """A slot is free: a handler run now starts at once."""
        return not self._slots.locked()

    async def run(self, handler: Any, event: Event, ctx: Context) -> Any:
        f = self.function
        await self._acquire()
        loop = asyncio.get_running_loop()
        if self._is_async(handler):
            timer = None
            try:
                # Eager first step: most handlers (a dice roll, a lookup) finish without ever
                # waiting, and then need no timer. One that waits goes on under a timeout counted
                # from here, so time spent before its first wait still counts.
                deadline = loop.time() + f.timeout
                coro = handler(event, ctx)
                try:
                    pending = coro.send(None)
                except StopIteration as done:
                    return done.value
                timer = asyncio.timeout_at(deadline)
                async with timer:
                    return await _resume(coro, pending)
            except (Exception, SystemExit) as e:
                raise self._failure(e, timer) from e
            finally:
                self._release()
        timer = asyncio.timeout(f.timeout)
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

    def _is_async(self, handler: Any) -> bool:
        try:
            found = self._async.get(handler)
        except TypeError:  # an unhashable callable object
            return is_async(handler)
        if found is None:
            found = is_async(handler)
            if len(self._async) < HANDLERS:  # a version's handlers are few and stay the same
                self._async[handler] = found
        return found

    def _failure(self, e: BaseException, timer: asyncio.Timeout | None) -> RoseyError:
        """What a handler's exception becomes: a timeout when its time ran out, else a failure
        (a TimeoutError the handler raised itself is its own failure)."""
        f = self.function
        if isinstance(e, TimeoutError):
            if timer is not None and timer.expired():
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


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], pending: Any) -> Generator[Any, Any, Any]:
    """Go on running `coro`, whose first step already ran and yielded `pending`, as `await coro`
    would have: what the task sends or throws in goes to `coro` (cancellation included)."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as e:  # cancellation included: all of it is coro's to handle
            try:
                pending = coro.throw(e)
            except StopIteration as done:
                return done.value
        else:
            try:
                pending = coro.send(sent)
            except StopIteration as done:
                return done.value


def brief(e: BaseException) -> str:
    if isinstance(e, WorkerError):
        return str(e)  # already "RuntimeError: ..." from the worker, or how the worker died
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def code(e: BaseException) -> ErrorCode:
    return e.code if isinstance(e, RoseyError) else ErrorCode.PLUGIN_ERROR
