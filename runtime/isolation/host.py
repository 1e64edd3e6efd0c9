"""Process isolation: a function's handlers in a worker process of their own, supervised.

Why a pipe and not NATS between the runtime and its worker: the runtime keeps the function's
NATS subscriptions, so it knows exactly which calls each worker holds. When the worker dies
(exception at the C level, sys.exit, a segfault, over its memory limit, killed after an endless
loop) those calls, and only those, are answered with one short line, and nothing is lost in a
queue group with no one left to answer. Concurrency, timeouts, quarantine and activation records
stay in one place (the Invoker), and the worker holds no NATS credentials.

The worker's log records come over the pipe too and are handled by the runtime's logging, so its
lines have the runtime's format (text or JSON) and its masking of secrets, which the worker is
never told.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtime.config.manifest import Function
from runtime.config.settings import IsolationSettings
from runtime.constants import ErrorCode
from runtime.core.context import Context, Event
from runtime.errors import LoadError, RoseyError, WorkerError
from runtime.isolation.worker import EXIT_MEMORY
from runtime.process import die_with_parent, kill_group
from runtime.tasks import halt

log = logging.getLogger("rosey.isolation")

LOAD_TIMEOUT = 30.0  # seconds a worker has to import the function's code
STABLE = 30.0  # a worker that lived this long restarts without the accumulated backoff
LINE_LIMIT = 16 << 20  # longest protocol line (a reply or a database result)
CTX_METHODS = frozenset(
    {"reply", "send_chat", "send_pm", "publish", "request", "listen", "stop_listening"}
)


@dataclass
class _Call:
    future: asyncio.Future[Any]
    ctx: Context


class Isolated:
    """Stands where loader.Code does: `handler(target)` gives an async callable that runs the
    handler in the worker process. Started and stopped with its Invoker."""

    def __init__(
        self,
        function: Function,
        folder: Path,
        settings: IsolationSettings,
        log_level: str = "INFO",
    ) -> None:
        self.function, self.folder, self.settings = function, folder, settings
        self.log_level = log_level
        self.process: asyncio.subprocess.Process | None = None
        self.calls: dict[int, _Call] = {}
        self.restarts = 0
        self._next = 0
        self._ready = asyncio.Event()
        self._started = self._stopping = False
        self._reader: asyncio.Task[None] | None = None
        self._restart: asyncio.Task[None] | None = None
        self._watchers: set[asyncio.Task[None]] = set()
        self._backoff = settings.restart_backoff
        self._born = 0.0

    def __repr__(self) -> str:
        return f"Isolated({self.function.name} {self.function.version})"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.returncode is None else None

    # Life.

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        await halt(self._restart)
        for watcher in list(self._watchers):
            watcher.cancel()
        process = self.process
        if process is not None:
            if self.calls:  # abandoned by the drain: no reason to wait for them
                kill_group(process.pid)
            if process.stdin is not None:
                process.stdin.close()  # end of input: the worker exits
            try:
                async with asyncio.timeout(self.settings.kill_grace):
                    await process.wait()
            except TimeoutError:
                log.warning(
                    "%s: worker %d did not exit within %gs of being stopped; killed",
                    self.function.name,
                    process.pid,
                    self.settings.kill_grace,
                )
            # The worker's group: it, and whatever its handlers started that is still running.
            kill_group(process.pid)
            await process.wait()
        if self._reader is not None:
            await self._reader

    def purge(self) -> None:
        """A safety net after stop(): no worker, nor anything it started, outlives its Invoker."""
        if self.process is not None:
            kill_group(self.process.pid)

    async def _spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROSEY_")}
        # Each malloc arena reserves address space; two keep a memory limit meaningful.
        env["MALLOC_ARENA_MAX"] = "2"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runtime.isolation.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
            env=env,
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )
        assert process.stdin is not None and process.stdout is not None
        init = {
            "function": base64.b64encode(pickle.dumps(self.function)).decode(),
            "folder": str(self.folder),
            "memory": self.function.memory,
            "log_level": self.log_level,
        }
        process.stdin.write(json.dumps(init).encode() + b"\n")
        try:
            async with asyncio.timeout(LOAD_TIMEOUT):
                while True:  # log lines of the import come before `ready`
                    line = await process.stdout.readline()
                    message = json.loads(line) if line else {}
                    if not isinstance(message, dict):
                        raise ValueError("not a JSON object")
                    if message.get("op") != "log":
                        break
                    self._log(message, process.pid)
        except (TimeoutError, ValueError) as e:
            process.kill()
            await _reap(process)
            raise LoadError(self.function.name, "worker", "the worker did not start") from e
        if message.get("op") != "ready":
            await _reap(process)
            if message.get("op") == "load_error":
                raise LoadError(self.function.name, message["target"], message["reason"])
            raise LoadError(
                self.function.name, "worker", f"the worker {describe(process.returncode)}"
            )
        self.process, self._born = process, time.monotonic()
        self._on_exit(process.pid, functools.partial(kill_group, process.pid))
        self._reader = asyncio.create_task(self._read(process), name=f"worker-{self.function.name}")
        self._ready.set()
        log.debug("%s worker %d ready", self.function.name, process.pid)

    # Calls.

    def handler(self, target: str) -> Any:
        async def run(event: Event, ctx: Context) -> Any:
            return await self.call(target, event, ctx)

        return run

    async def call(self, target: str, event: Event, ctx: Context) -> Any:
        await self._ready.wait()  # while a dead worker restarts; the invoker's timeout bounds it
        process = self.process
        assert process is not None and process.stdin is not None
        self._next += 1
        number = self._next
        future = asyncio.get_running_loop().create_future()
        self.calls[number] = _Call(future, ctx)
        data = {**asdict(event), "args": list(event.args), "payload": dict(event.payload)}
        self._send(process, {"op": "call", "id": number, "target": target, "event": data})
        try:
            return await future
        except asyncio.CancelledError:
            # The invoker timed out: ask the worker to stop the call. An async handler stops; a
            # sync one (or a blocked event loop) cannot, so after a grace the worker is killed.
            if number in self.calls:
                self._send(process, {"op": "cancel", "id": number})
                watcher = asyncio.create_task(self._kill_if_stuck(process, number))
                self._watchers.add(watcher)
                watcher.add_done_callback(self._watchers.discard)
            raise

    async def _kill_if_stuck(self, process: asyncio.subprocess.Process, number: int) -> None:
        await asyncio.sleep(self.settings.kill_grace)
        if number in self.calls and process.returncode is None:
            log.warning(
                "%s: a timed-out call did not stop within %gs; killing worker %d",
                self.function.name,
                self.settings.kill_grace,
                process.pid,
            )
            kill_group(process.pid)

    def _send(self, process: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
        stdin = process.stdin
        if stdin is not None and process.returncode is None and not stdin.is_closing():
            stdin.write(json.dumps(message, default=str).encode() + b"\n")

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        tasks: set[asyncio.Task[None]] = set()
        try:
            while line := await process.stdout.readline():
                message = json.loads(line)
                if message["op"] == "done":
                    self._done(message)
                elif message["op"] == "log":
                    self._log(message, process.pid)
                elif message["op"] == "ctx":
                    task = asyncio.create_task(self._context(process, message))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        except (ValueError, KeyError, TypeError, asyncio.LimitOverrunError) as e:
            log.error(
                "%s: worker %d broke the protocol (%s); killing it",
                self.function.name,
                process.pid,
                e,
            )
            kill_group(process.pid)
        await _reap(process)
        self._ready.clear()
        lost = list(self.calls.values())
        self.calls.clear()
        how = describe(process.returncode)
        for call in lost:
            if not call.future.done():
                call.future.set_exception(WorkerError(f"its worker process {how}"))
        if self._stopping:
            return
        if time.monotonic() - self._born > STABLE:
            self._backoff = self.settings.restart_backoff
        log.error(
            "%s worker %d %s; %d call(s) failed; restarting in %gs",
            self.function.name,
            process.pid,
            how,
            len(lost),
            self._backoff,
        )
        self._restart = asyncio.create_task(self._restart_later())

    def _done(self, message: dict[str, Any]) -> None:
        call = self.calls.pop(message["id"], None)
        if call is None or call.future.done():
            return  # timed out already: its result is discarded
        if message.get("reason"):
            call.ctx.explain(str(message["reason"]))  # the worker's ctx.explain
        if message["ok"]:
            call.future.set_result(message.get("value"))
        elif message.get("cancelled"):
            call.future.cancel()
        else:
            code = ErrorCode(message.get("code") or ErrorCode.PLUGIN_ERROR)
            call.future.set_exception(WorkerError(str(message.get("error")), code))

    def _log(self, message: dict[str, Any], pid: int) -> None:
        """A log record of the worker, handled by the runtime's own logging. Raises ValueError
        for a malformed one (a protocol error)."""
        try:
            name = str(message["logger"]) or f"rosey.fn.{self.function.name}"
            level = int(message["level"])
            fields = {
                key: str(message[key])
                for key in ("function", "version", "id", "exception", "stack")
                if message.get(key) is not None
            }
            text = str(message["message"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"bad log message: {e}") from e
        logger = logging.getLogger(name)
        if not logger.isEnabledFor(level):
            return
        # Stamped with the runtime's clock: it arrived just now, and a worker cannot misdate it.
        record = logging.makeLogRecord(
            {
                "name": name,
                "levelno": level,
                "levelname": logging.getLevelName(level),
                "msg": text,
                "args": None,
                "process": pid,
                "processName": f"worker-{self.function.name}",
                "exc_text": fields.pop("exception", None),
                "stack_info": fields.pop("stack", None),
                **fields,
            }
        )
        logger.handle(record)

    async def _context(self, process: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
        """A ctx call from the worker, made on the invocation's real Context."""
        answer: dict[str, Any] = {"op": "answer", "id": message["id"], "ok": True}
        try:
            call = self.calls.get(message["call"])
            if call is None or call.future.done():
                raise WorkerError("the call is over (timed out); its context is closed")
            method, args = message["method"], message["args"]
            if method == "db":
                name, positional, keywords = args
                if not isinstance(name, str) or name.startswith("_"):
                    raise WorkerError(f"ctx.db has no {name!r}")
                result = getattr(call.ctx.db, name)(*positional, **keywords)
            elif method in CTX_METHODS:
                result = getattr(call.ctx, method)(*args)
            else:
                raise WorkerError(f"ctx has no {method!r}")
            if asyncio.iscoroutine(result):
                result = await result
            answer["value"] = result
        except RoseyError as e:
            answer.update(ok=False, error=str(e), type=type(e).__name__, code=e.code)
        except Exception as e:
            answer.update(ok=False, error=f"{type(e).__name__}: {e}", type=type(e).__name__)
        self._send(process, answer)

    def _on_exit(self, pid: int, then: Callable[[], None]) -> None:
        """Call `then` as soon as process `pid` ends. Its standard output cannot tell: a process its
        handler forked may hold the pipe open (and asyncio's wait() waits for the pipes too). So a
        worker's death kills its group, which closes the pipe, and its calls fail at once."""
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(pid)  # Linux 5.3: readable once the process ended
        except OSError as e:
            log.debug("no pidfd (%s): a worker's death is seen at the end of its output", e)
            return

        def ended() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            then()

        loop.add_reader(fd, ended)

    async def _restart_later(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, self.settings.restart_backoff_max)
            try:
                await self._spawn()
            except LoadError as e:
                log.error("%s: worker restart failed: %s", self.function.name, e)
                continue
            self.restarts += 1
            log.info("%s worker restarted (pid %d)", self.function.name, self.pid or 0)
            return


async def _reap(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None:
        process.stdin.close()
    await process.wait()


def describe(returncode: int | None) -> str:
    """How a worker ended, for logs: "was killed by SIGSEGV", "ran out of memory", ..."""
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    if returncode == EXIT_MEMORY:
        return "ran out of memory"
    return f"exited with status {returncode}"


def isolator(settings: IsolationSettings, log_level: str) -> Callable[[Function, Path], Isolated]:
    """The `Wiring.isolate` of a runtime: functions declaring `isolation: process` run in a
    worker process of their own."""
    return functools.partial(Isolated, settings=settings, log_level=log_level)
