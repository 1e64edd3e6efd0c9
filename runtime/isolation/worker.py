"""The worker process of a process-isolated function: `python -m runtime.isolation.worker`.

It talks to its runtime (runtime/isolation/host.py) over its standard input and output, one JSON
object a line: `call`/`cancel` and answers to context calls come in; `ready`, `done`, context
calls and log records go out. Log records are written by the runtime's own logging, so they have
its format (text or JSON) and its masking of secrets, and the secrets never come here. The
handler's own standard output goes to standard error, so a print() cannot corrupt the protocol. The runtime keeps the NATS subscriptions, concurrency, timeouts and
activation records; this process only runs handlers, so its death costs only its own calls.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import logging
import os
import pickle
import resource
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from runtime import errors
from runtime.config.manifest import Function
from runtime.constants import ErrorCode
from runtime.core import loader
from runtime.core.context import Context, Event, SyncContext
from runtime.errors import LoadError, RoseyError, WorkerError
from runtime.process import reaped

# Exit status after a MemoryError: the heap may be in any state, so the worker starts afresh.
EXIT_MEMORY = 70
# Thread stacks under a memory limit: the default 8 MiB each would count against it.
LIMITED_STACK = 2 << 20
# Longest message (and traceback) of a forwarded log record, in characters; JSON escapes make a
# line up to 12 bytes a character, which keeps it well under the runtime's line limit.
LOG_CHARS = 1 << 19
# Attributes a record may carry as `extra` that the runtime's log formats show.
LOG_FIELDS = ("function", "version", "id")


class RemoteContext(Context):
    """ctx in the worker: every action is done by the runtime on the invocation's real ctx."""

    def __init__(self, function: Function, event: Event, worker: Worker, call: int) -> None:
        self._worker, self._call = worker, call
        super().__init__(
            function,
            event,
            lambda subject, data: self._ask("publish", subject, data),
            lambda subject, data, timeout: self._ask("request", subject, data, timeout),
            db=_RemoteDb(self),
            log=logging.LoggerAdapter(
                logging.getLogger(f"rosey.fn.{function.name}"),
                {"function": function.name, "version": function.version, "id": event.id},
            ),
        )

    async def _ask(self, method: str, *args: Any) -> Any:
        return await self._worker.ask(self._call, method, list(args))

    async def reply(self, text: str | list[str]) -> None:
        await self._ask("reply", text)

    async def send_chat(self, text: str, channel: str | None = None) -> None:
        await self._ask("send_chat", text, channel)

    async def send_pm(self, user: str, text: str) -> None:
        await self._ask("send_pm", user, text)

    async def listen(self, seconds: float) -> float:
        return float(await self._ask("listen", seconds))

    async def stop_listening(self) -> None:
        await self._ask("stop_listening")


class _RemoteDb:
    """ctx.db in the worker: each method call is made by the runtime's database client."""

    def __init__(self, ctx: RemoteContext) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._ctx._ask("db", name, list(args), kwargs)

        return call


class Forward(logging.Handler):
    """Sends every log record of this process to the runtime, which logs it with its handlers."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = f"{record.msg!r} (bad log arguments: {record.args!r})"
        message: dict[str, Any] = {
            "op": "log",
            "logger": record.name,
            "level": record.levelno,
            "message": text[:LOG_CHARS],
        }
        for key in LOG_FIELDS:
            value = getattr(record, key, None)
            if isinstance(value, str):
                message[key] = value
        if record.exc_info:
            message["exception"] = logging.Formatter().formatException(record.exc_info)[:LOG_CHARS]
        elif record.exc_text:
            message["exception"] = record.exc_text[:LOG_CHARS]
        if record.stack_info:
            message["stack"] = record.stack_info[:LOG_CHARS]
        try:
            self.worker.send(message)
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # The runtime closed the pipe: this worker is ending. The default would print the
        # record's message and arguments, unmasked, to standard error.
        pass


class Worker:
    def __init__(self, inbox: IO[bytes], outbox: IO[bytes]) -> None:
        self.inbox, self.outbox = inbox, outbox
        self.sending = threading.Lock()  # log records come from any thread
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.threads: set[int] = set()  # calls of sync handlers, which cannot be cancelled
        self.asked: dict[int, asyncio.Future[Any]] = {}
        self.next_ask = 0
        self.ended = asyncio.Event()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, default=str).encode() + b"\n"
        with self.sending:
            self.outbox.write(line)
            self.outbox.flush()

    async def run(self) -> None:
        init = json.loads(self.inbox.readline())
        # Pickle only ever goes from the runtime to its worker, never back.
        function: Function = pickle.loads(base64.b64decode(init["function"]))
        self.function = function
        # No handler of its own: the runtime writes every line, as it writes its own.
        logging.basicConfig(
            level=init.get("log_level", "INFO"), handlers=[Forward(self)], force=True
        )
        if init.get("memory"):
            threading.stack_size(LIMITED_STACK)
            resource.setrlimit(resource.RLIMIT_AS, (init["memory"], init["memory"]))
        try:
            self.code = loader.load(function, Path(init["folder"]))
        except LoadError as e:
            self.send({"op": "load_error", "target": e.target, "reason": e.reason})
            return
        self.loop = asyncio.get_running_loop()
        self.executor = ThreadPoolExecutor(function.concurrency, thread_name_prefix="rosey-sync")
        self.send({"op": "ready", "pid": os.getpid()})
        threading.Thread(target=self._read, daemon=True).start()
        await self.ended.wait()

    def _read(self) -> None:
        for line in self.inbox:
            self.loop.call_soon_threadsafe(self._on_line, line)
        self.loop.call_soon_threadsafe(self.ended.set)  # the runtime closed the pipe: stop

    def _on_line(self, line: bytes) -> None:
        message = json.loads(line)
        op = message["op"]
        if op == "call":
            self.tasks[message["id"]] = asyncio.create_task(self._call(message))
        elif op == "cancel":
            task = self.tasks.get(message["id"])
            # An async handler stops; a thread cannot be stopped, so a sync one is left running:
            # the runtime kills this worker if it does not finish within the grace.
            if task is not None and message["id"] not in self.threads:
                task.cancel()
        elif op == "answer":
            future = self.asked.pop(message["id"], None)
            if future is not None and not future.done():
                if message["ok"]:
                    future.set_result(message.get("value"))
                else:
                    future.set_exception(_rebuild(message))

    async def ask(self, call: int, method: str, args: list[Any]) -> Any:
        self.next_ask += 1
        future = self.loop.create_future()
        self.asked[self.next_ask] = future
        self.send({"op": "ctx", "id": self.next_ask, "call": call, "method": method, "args": args})
        return await future

    async def _call(self, message: dict[str, Any]) -> None:
        call = message["id"]
        data = message["event"]
        event = Event(**{**data, "args": tuple(data["args"])})
        ctx = RemoteContext(self.function, event, self, call)
        # A process the handler forks ends with the call (and the runtime kills this worker's
        # whole process group when it ends).
        handler = reaped(self.code.handler(message["target"]), self.function.name)
        try:
            if loader.is_async(handler):
                value = await handler(event, ctx)
            else:
                self.threads.add(call)
                run = contextvars.copy_context().run
                value = await self.loop.run_in_executor(
                    self.executor, run, handler, event, SyncContext(ctx, self.loop)
                )
            json.dumps(value)
            self.send({"op": "done", "id": call, "ok": True, "value": value, **_why(ctx)})
        except asyncio.CancelledError:
            self.send({"op": "done", "id": call, "ok": False, "cancelled": True})
        except MemoryError:
            self.send(
                {"op": "done", "id": call, "ok": False, "error": "MemoryError: out of memory"}
            )
            os._exit(EXIT_MEMORY)
        except SystemExit as e:
            # sys.exit() in a handler ends this worker, as it would any program; the runtime
            # fails the calls in flight and starts another.
            os._exit(e.code if isinstance(e.code, int) else 1)
        except RoseyError as e:
            self.send(
                {"op": "done", "id": call, "ok": False, "error": _brief(e), "code": e.code}
                | _why(ctx)
            )
        except Exception as e:
            self.send({"op": "done", "id": call, "ok": False, "error": _brief(e), **_why(ctx)})
        finally:
            self.tasks.pop(call, None)
            self.threads.discard(call)


def _why(ctx: Context) -> dict[str, str]:
    """ctx.explain's reason travels with the call's `done`: a ctx call of its own could arrive
    after the call is over."""
    return {"reason": ctx.reason} if ctx.reason else {}


def _brief(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _rebuild(message: dict[str, Any]) -> Exception:
    """The runtime's exception for a context call, as the same RoseyError class when it is one,
    so handlers can catch StoreError and the like as they would in the runtime's process."""
    cls = getattr(errors, str(message.get("type")), None)
    code = ErrorCode(message.get("code") or ErrorCode.PLUGIN_ERROR)
    if isinstance(cls, type) and issubclass(cls, RoseyError):
        error = cls.__new__(cls)
        Exception.__init__(error, message["error"])
        error.code = code
        return error
    return WorkerError(message["error"], code)


def _loop_factory() -> Any:
    """uvloop's event loop, as in the runtime (`rosey run`); asyncio's when it is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    inbox = os.fdopen(os.dup(0), "rb")
    outbox = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() in a handler goes to standard error, not into the protocol
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(Worker(inbox, outbox).run())
    sys.stderr.flush()
    # Threads of sync handlers may still run; they cannot be stopped, so do not wait for them.
    os._exit(0)


if __name__ == "__main__":
    main()
