"""Child processes that end with Rosey: shared by the embedded servers and isolated functions,
and the processes a function's handler forks, which end with its call."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import functools
import inspect
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("rosey.process")

# The processes forked by the handler call running in this context (None outside handlers).
_FORKED: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar("forked", default=None)
# The pipe on which a child forked by a handler tells its pid, kept by the forking thread.
_PIPE = threading.local()


def die_with_parent(parent: int) -> None:
    # Linux: the child gets SIGTERM when Rosey dies, even by kill -9, so no server is orphaned.
    # The kernel watches the *thread* that forked, so start servers from a long-lived thread.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # Rosey died between fork and prctl: nobody would stop us
        os._exit(1)
    os.setpgid(0, 0)  # and Ctrl-C in a terminal reaches Rosey only, which stops it in order


def kill_group(pid: int) -> None:
    """SIGKILL the process group `pid` leads (a worker and whatever its handlers started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# os.fork() in a handler: the at-fork hooks learn the child's pid (the handler's os.fork()
# returns it to the handler only), so the call can kill and reap the child when it ends.


def _before_fork() -> None:
    if _FORKED.get() is not None:
        _PIPE.fds = os.pipe()


def _after_fork_in_child() -> None:
    fds = getattr(_PIPE, "fds", None)
    if fds is None:
        return
    _PIPE.fds = None
    read, write = fds
    os.close(read)
    os.write(write, str(os.getpid()).encode())
    os.close(write)


def _after_fork_in_parent() -> None:
    fds, _PIPE.fds = getattr(_PIPE, "fds", None), None
    if fds is None:
        return
    read, write = fds
    os.close(write)  # no child (fork failed): the read below sees the end at once
    try:
        told = os.read(read, 32)
    finally:
        os.close(read)
    forked = _FORKED.get()
    if told and forked is not None:
        forked.add(int(told))


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


class Reaping:
    """Processes forked (os.fork, multiprocessing, a preexec_fn) while the block runs in this
    context are killed, if they still run, and reaped when it ends. A forked child that returns
    through the block exits there: it must not go on as a second copy of Rosey.

    A class rather than a @contextmanager: it is entered once per handler call, and a generator
    based one costs several times as much."""

    __slots__ = ("forked", "name", "parent", "token")

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.forked: set[int] = set()
        self.token = _FORKED.set(self.forked)
        self.parent = os.getpid()

    def __exit__(self, *exc: object) -> None:
        if os.getpid() != self.parent:
            os._exit(0)
        _FORKED.reset(self.token)
        for pid in self.forked:
            _reap(pid, self.name)


def _reap(pid: int, name: str) -> None:
    try:
        ended, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return  # the handler reaped it itself
    if ended:
        return
    log.warning("%s: process %d, forked by its handler, outlived the call; killed", name, pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def reaped(handler: Callable[..., Any], name: str) -> Callable[..., Any]:
    """`handler`, async or not as it was, calling it under `Reaping(name)`."""
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - callable objects with async __call__
    ):

        @functools.wraps(handler)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with Reaping(name):
                return await handler(*args, **kwargs)

        return run_async

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        with Reaping(name):
            return handler(*args, **kwargs)

    return run


class Watchdog:
    """Ends the process with status 1 if it is still running `seconds` after it was armed: the
    bound on a shutdown, whatever a function does. Cancelled when the shutdown finished."""

    def __init__(
        self, seconds: float, what: str, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """`loop`: the event loop whose unfinished tasks are named in the log when it fires."""
        self.seconds, self.what, self.loop = seconds, what, loop
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.name = "rosey-watchdog"
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        log.error("%s did not finish within %gs; exiting now", self.what, self.seconds)
        if self.loop is not None:
            # Read from this thread while the loop is stuck: racy, but the process ends next and
            # this is what says where the shutdown hung.
            with contextlib.suppress(Exception):
                for task in list(asyncio.all_tasks(self.loop)):
                    log.error("still running: %s at %s", task.get_name(), _where(task))
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(1)


def _where(task: asyncio.Task[object]) -> str:
    """The innermost frame of a task's own code (asyncio's internals skipped):
    `file:line in function`."""
    coro: object = task.get_coro()
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    own = [f for f in frames if f"{os.sep}asyncio{os.sep}" not in f.f_code.co_filename]
    if not (own or frames):
        return "?"
    frame = (own or frames)[-1]
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
