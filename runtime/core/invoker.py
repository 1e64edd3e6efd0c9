"""Runs one function version's handlers: bindings, concurrency, timeouts, failure isolation, replies."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from nats.aio.msg import Msg

from runtime.config.manifest import Function, SubjectSpec
from runtime.constants import (
    QUEUE_PER_SLOT,
    SEND_CHAT,
    ErrorCode,
    command_subject,
    queue_group,
    request_subject,
)
from runtime.core import delivery
from runtime.core.activation import Activation, Observer, Outcome, new_id, notify
from runtime.core.breaker import Breaker
from runtime.core.context import Context, Event, Listener, SyncContext
from runtime.core.examples import check_examples
from runtime.core.loader import Loaded, is_async
from runtime.core.permissions import check_rank, denial_line
from runtime.core.registry import Route
from runtime.errors import (
    BusError,
    ContractError,
    FunctionBusy,
    InvocationError,
    InvocationTimeout,
    PermissionDenied,
    QuarantineError,
    RoseyError,
    WorkerError,
)
from runtime.wire import contract
from runtime.wire.bus import Binding, Bindings, Bus

log = logging.getLogger("rosey.invoker")


@dataclass
class Stats:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    invalid: int = 0  # refused because the caller's input could not be used
    busy: int = 0
    denied: int = 0
    paused: int = 0


class Invoker:
    """One loaded version of a function and the subscriptions that feed it."""

    def __init__(
        self,
        code: Loaded,
        bus: Bus,
        executor: Executor,
        catalog: Callable[[], list[Route]] = list,
        db: Any = None,
        observers: Sequence[Observer] = (),
        listener: Listener | None = None,
    ) -> None:
        self.function: Function = code.function
        self.code, self.bus, self.executor, self.catalog, self.db = code, bus, executor, catalog, db
        self.observers, self.listener = observers, listener
        self.in_flight = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(self.function.concurrency)
        self.stats = Stats()
        self.breaker = Breaker(self.function.quarantine_failures, self.function.quarantine_window)
        self.log = logging.getLogger(f"rosey.fn.{self.function.name}")
        self.bindings = self._bindings()

    def __repr__(self) -> str:
        return f"Invoker({self.function.name} {self.function.version})"

    def _bindings(self) -> Bindings:
        f, queue = self.function, queue_group(self.function.name)
        found = Bindings()
        if f.commands:
            found.append(Binding(self.bus, command_subject(f.name), self.on_command, queue))
        if f.handler:
            found.append(Binding(self.bus, request_subject(f.name), self.on_request, queue))
        for spec in f.subjects:
            found.append(Binding(self.bus, spec.subject, partial(self.on_event, spec), queue))
        return found

    async def start(self) -> None:
        await self.code.start()  # a process-isolated function's worker; nothing in-process
        await self.bindings.start()

    async def stop(self, timeout: float = 10.0) -> int:
        """Unsubscribe and let work already received finish; returns how many were drained."""
        drained = await self.bindings.stop(timeout)
        await self.code.stop()
        return drained

    @property
    def busy(self) -> int:
        return self.bindings.busy

    @property
    def abandoned(self) -> int:
        return self.bindings.abandoned

    async def check_examples(self) -> None:
        """Run the manifest's examples against this version; raises DeployError on a mismatch."""
        await check_examples(self)

    # Inbound messages

    async def on_command(self, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError as e:
            await self._refuse(msg, e)
            return
        route = self._command(payload["command"])
        event = Event(
            kind="command",
            subject=msg.subject,
            payload=payload,
            command=route.name if route else payload["command"],
            args=tuple(payload["args"]),
            user=payload["user"],
            rank=payload["rank"],
            channel=payload.get("channel"),
            raw_message=payload.get("raw_message"),
            source=payload.get("source", "chat"),
            id=payload.get("id") or new_id(),
        )
        if route is None:
            await self._refuse(
                msg, ContractError(msg.subject, f"unknown command {payload['command']!r}")
            )
            return
        try:
            # The router checked already; checking again protects against direct publishers.
            check_rank(route, event.rank)
        except PermissionDenied as e:
            self.stats.denied += 1
            self._record(event, "denied", 0.0, reason=str(e))
            await self._tell(msg, event, denial_line(event.user or "?", e), e)
            return
        await self._invoke(msg, event, self.function.handler_for(route.name))

    async def on_request(self, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError as e:
            await self._refuse(msg, e)
            return
        event = Event(
            kind="request",
            subject=msg.subject,
            payload=payload,
            command=payload.get("action") or payload.get("command"),
            user=payload.get("user"),
            rank=payload.get("rank", 0),
            channel=payload.get("channel"),
            id=new_id(),
        )
        await self._invoke(msg, event, self.function.handler)

    async def on_event(self, spec: SubjectSpec, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError as e:
            await self._refuse(msg, e)
            return
        data = payload if isinstance(payload, dict) else {"value": payload}
        event = Event(
            kind="event",
            subject=msg.subject,
            payload=data,
            user=data.get("user"),
            rank=data.get("rank", 0) if isinstance(data.get("rank"), int | float) else 0,
            channel=data.get("channel"),
            id=new_id(),
        )
        await self._invoke(msg, event, spec.handler or self.function.handler)

    def _command(self, word: str) -> Any:
        commands = self.function.commands
        if word in commands:
            return commands[word]
        return next((c for c in commands.values() if word in c.aliases), None)

    # Running a handler: the one path of commands, requests, events, schedules and listen windows

    async def _invoke(self, msg: Msg, event: Event, target: str | None) -> None:
        if target is None:
            await self._refuse(
                msg, ContractError(msg.subject, f"{self.function.name} has no handler for this")
            )
            return
        await self.invoke(event, target, msg)

    async def invoke(self, event: Event, target: str, msg: Msg | None = None) -> str:
        """Run `target` for `event` and answer: quarantine, concurrency, timeout, one activation
        record and the stats, whatever the event came from (`msg`: the NATS message, if any)."""
        f = self.function
        if not event.id:  # schedules and listen windows: a correlation id of their own
            event = replace(event, id=new_id())
        ctx = Context(
            f,
            event,
            self.bus.publish,
            self.bus.request,
            self.catalog,
            self.db,
            logging.LoggerAdapter(
                self.log, {"function": f.name, "version": f.version, "id": event.id}
            ),
            self.listener,
        )
        requester = msg is not None and delivery.requester(msg)
        if requester and event.kind == "command":
            ctx.collected = []
        if self.breaker.paused:
            paused = QuarantineError(f.name)
            self.stats.paused += 1
            self._record(event, "paused", 0.0, reason="quarantined after repeated failures")
            await self._tell(msg, event, str(paused), paused)
            return "paused"
        self.stats.invocations += 1
        began = time.perf_counter()
        try:
            outcome = await self._attempt(msg, event, ctx, target, requester)
        finally:
            if ctx.budget.cut:
                self.log.warning(
                    "%s %s: %s [%s]", f.name, f.version, ctx.budget.summary(), event.id
                )
        if outcome == "ok":
            cut = ctx.budget.summary() if ctx.budget.cut else ""
            self._record(event, "ok", time.perf_counter() - began, error=cut, reason=ctx.reason)
        elif outcome in ("error", "timeout"):
            await self._failed(event)
        return outcome

    async def _attempt(
        self, msg: Msg | None, event: Event, ctx: Context, target: str, requester: bool
    ) -> str:
        f, began = self.function, time.perf_counter()
        try:
            result = await self._run(self.code.handler(target), event, ctx)
            await self._deliver(msg, event, ctx, result, requester)
        except FunctionBusy as e:
            self.stats.busy += 1
            self._record(event, "busy", time.perf_counter() - began, error=str(e))
            await self._tell(msg, event, str(e), e)
            return "busy"
        except InvocationTimeout as e:
            self.stats.timeouts += 1
            self._record(event, "timeout", time.perf_counter() - began, error=str(e))
            self.log.warning("%s [%s]", e, event.id)
            await self._tell(msg, event, f"Sorry, {event.command or f.name} took too long.", e)
            return "timeout"
        except InvocationError as e:
            if e.code == ErrorCode.INVALID_INPUT:
                # The caller's input could not be used (a name the database refuses, the
                # author's InvalidInput): the function is not at fault and is not quarantined.
                self.stats.invalid += 1
                self._record(event, "invalid", time.perf_counter() - began, error=str(e))
                self.log.warning("%s (handler %s) [%s]", e, target, event.id)
                await self._tell(msg, event, delivery.invalid_line(event.command, f.name, e), e)
                return "invalid"
            self.stats.errors += 1
            self._record(
                event, "error", time.perf_counter() - began, error=str(e), reason=ctx.reason
            )
            self.log.error(
                "%s (handler %s, %s) [%s]",
                e,
                target,
                event.subject,
                event.id,
                # A worker's traceback stays in its process; the runtime's would say nothing.
                exc_info=None if isinstance(e.__cause__, WorkerError) else e.__cause__,
            )
            await self._tell(msg, event, f"Sorry, {event.command or f.name} failed.", e)
            return "error"
        except BusError as e:
            # NATS would not take the answer (disconnected, say): not the function's fault, so
            # not counted towards quarantine, but not "ok" either.
            self.stats.errors += 1
            self._record(
                event, "error", time.perf_counter() - began, error=f"answer not delivered: {e}"
            )
            self.log.error("%s %s: answer not delivered: %s [%s]", f.name, f.version, e, event.id)
            await self._tell(msg, event, f"Sorry, {event.command or f.name} failed.", e)
            return "undelivered"
        return "ok"

    async def _failed(self, event: Event) -> None:
        """Count a failure; on the one that trips the breaker, tell the channel's moderators."""
        f = self.function
        if not self.breaker.failed():
            return
        self.log.error(
            "%s %s quarantined: %d failures within %gs",
            f.name,
            f.version,
            f.quarantine_failures,
            f.quarantine_window,
        )
        line = (
            f"Moderators: {f.name} is paused after {f.quarantine_failures} failures within "
            f"{f.quarantine_window:g}s; resume it with !rosey enable {f.name}."
        )
        payload: dict[str, Any] = {"message": line}
        if event.channel:
            payload["channel"] = event.channel
        try:
            await self.bus.publish(SEND_CHAT, payload)
        except RoseyError as e:
            self.log.warning("could not tell the channel %s is paused: %s", f.name, e)

    def enable(self) -> bool:
        """Resume a quarantined function; False when it was not paused."""
        return self.breaker.reset()

    async def _run(self, handler: Any, event: Event, ctx: Context) -> Any:
        f = self.function
        await self._acquire()
        timer = asyncio.timeout(f.timeout)
        if is_async(handler):
            try:
                async with timer:
                    return await handler(event, ctx)
            except TimeoutError as e:
                if timer.expired():
                    raise InvocationTimeout(f.name, f.version, f.timeout) from e
                raise InvocationError(f.name, f.version, _brief(e)) from e
            except (Exception, SystemExit) as e:
                raise InvocationError(f.name, f.version, _brief(e), _code(e)) from e
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
        except TimeoutError as e:
            if timer.expired():
                raise InvocationTimeout(f.name, f.version, f.timeout) from e
            raise InvocationError(f.name, f.version, _brief(e)) from e
        except (Exception, SystemExit) as e:
            # sys.exit() in a handler in this process must not end the runtime.
            raise InvocationError(f.name, f.version, _brief(e), _code(e)) from e

    def _record(
        self, event: Event, outcome: Outcome, duration: float, error: str = "", reason: str = ""
    ) -> None:
        if not self.observers:
            return
        f = self.function
        notify(
            self.observers,
            Activation(
                id=event.id,
                function=f.name,
                version=f.version,
                kind=event.kind,
                command=event.command,
                user=event.user,
                channel=event.channel,
                outcome=outcome,
                duration=duration,
                error=error,
                reason=reason,
            ),
        )

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

    # Answers (runtime/core/delivery.py: the reply caps, what a return value may be)

    async def _deliver(
        self, msg: Msg | None, event: Event, ctx: Context, result: Any, requester: bool
    ) -> None:
        f = self.function
        if event.kind == "request":
            if msg is not None:
                await delivery.respond(self.bus, msg, f, contract.ok(result))
            return
        said = delivery.chat_lines(f, result)
        if said:
            await delivery.send(ctx.reply, f, said)
        if requester and msg is not None and ctx.collected is not None:
            await delivery.respond(self.bus, msg, f, contract.ok({"replies": ctx.collected}))

    async def _tell(self, msg: Msg | None, event: Event, line: str, error: RoseyError) -> None:
        """One short line to the user (or a structured error to a requester), never a traceback.
        A routed command that did not run also answers the router, which gives back its
        cooldown."""
        try:
            if msg is not None and delivery.requester(msg):
                await self.bus.respond(msg, contract.failure(error.code, line))
                return
            if msg is not None and delivery.routed(msg) and not isinstance(error, delivery.RAN):
                await self.bus.respond(msg, contract.failure(error.code, line))
            if event.kind != "command":
                return
            ctx = Context(self.function, event, self.bus.publish, self.bus.request)
            await ctx.reply(line)
        except RoseyError as e:
            self.log.warning("could not tell %s: %s", event.user or "the requester", e)

    async def _refuse(self, msg: Msg, error: ContractError) -> None:
        self.log.warning("refused message: %s", error)
        await self.bus.respond(msg, contract.failure(ErrorCode.INVALID_INPUT, str(error)))


def _brief(e: BaseException) -> str:
    if isinstance(e, WorkerError):
        return str(e)  # already "RuntimeError: ..." from the worker, or how the worker died
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _code(e: BaseException) -> ErrorCode:
    return e.code if isinstance(e, RoseyError) else ErrorCode.PLUGIN_ERROR
