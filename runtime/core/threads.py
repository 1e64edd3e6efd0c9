"""Where handlers run besides the event loop: the threads of sync handlers, and in-process code whose
forked children end with their call."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from runtime.core import loader
from runtime.core.context import SyncContext
from runtime.core.loader import Loaded
from runtime.process import reaped


class HandlerThreads(Executor):
    """The threads of sync handlers: up to `size`, started as needed, each job labelled while it
    runs. Daemon threads, unlike ThreadPoolExecutor's (joined at interpreter exit): a handler
    that never returns cannot be stopped, and must not keep the process from exiting, so
    Runtime.stop names the calls it abandons and the process ends without them."""

    def __init__(self, size: int, name: str = "rosey-sync") -> None:
        self.size, self.name = size, name
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]]
        self._jobs = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False
        self.running: dict[int, tuple[str, float]] = {}  # thread id → (label, started)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot run a handler after shutdown")
            self._jobs.put((future, lambda: fn(*args, **kwargs), args))
            if self._idle > 0:
                self._idle -= 1
            elif len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        me = threading.get_ident()
        while True:
            future, call, args = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            self.running[me] = (_label(args), time.monotonic())
            try:
                future.set_result(call())
            except BaseException as e:
                future.set_exception(e)
            finally:
                self.running.pop(me, None)
                del future, call, args
            with self._lock:
                if self._closed:
                    return
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new jobs; queued ones are cancelled. Running ones cannot be stopped: see `running`."""
        with self._lock:
            self._closed = True
        while True:
            try:
                future, _, _ = self._jobs.get_nowait()
            except queue.Empty:
                break
            future.cancel()


def _label(args: tuple[Any, ...]) -> str:
    """Which invocation a job runs: the Invoker submits (handler, event, SyncContext)."""
    ctx = next((a for a in args if isinstance(a, SyncContext)), None)
    if ctx is None:
        return "a sync call"
    event = ctx.event
    what = f"!{event.command}" if event.kind == "command" else event.subject
    return f"{ctx.function.name} {ctx.function.version} {what} [{event.id}]"


class Reaped:
    """In-process code whose handlers' forked processes end with their call (runtime.process)."""

    def __init__(self, code: Loaded) -> None:
        self.code, self.function = code, code.function
        # Wrapped once per target, not on every call (a version's code does not change).
        self._wrapped: dict[str, loader.Handler] = {}

    def handler(self, target: str) -> loader.Handler:
        found = self._wrapped.get(target)
        if found is None:
            found = self._wrapped[target] = reaped(self.code.handler(target), self.function.name)
        return found

    async def start(self) -> None:
        await self.code.start()

    async def stop(self) -> None:
        await self.code.stop()

    def purge(self) -> None:
        self.code.purge()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.code, name)
