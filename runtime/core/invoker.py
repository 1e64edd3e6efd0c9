"""Runs one function version's handlers: bindings, concurrency, timeouts, failure isolation, replies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from nats.aio.msg import Msg

from runtime.config.manifest import Function, SubjectSpec
from runtime.constants import (
    SEND_CHAT,
    ErrorCode,
    command_subject,
    queue_group,
    request_subject,
)
from runtime.core import delivery
from runtime.core.activation import Activation, Observer, Outcome, new_id, notify
from runtime.core.breaker import Breaker
from runtime.core.context import Context, Event, Listener
from runtime.core.examples import check_examples
from runtime.core.loader import Loaded
from runtime.core.permissions import check_rank, denial_line
from runtime.core.registry import Route
from runtime.core.running import Runner
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

# Gives back the cooldown booking of a routed command that did not run (the router's).
Unrun = Callable[[], Awaitable[None]]


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
        # Routed commands this runtime's router runs here directly (`take`), each in the task
        # that read its chat line: tracked, so that stopping (a swap's drain) waits for them.
        self.taken: set[asyncio.Task[Any]] = set()
        self.taken_abandoned = 0
        self.stopping = False
        self.stats = Stats()
        self.breaker = Breaker(self.function.quarantine_failures, self.function.quarantine_window)
        self.log = logging.getLogger(f"rosey.fn.{self.function.name}")
        self.runner = Runner(self.function, executor, self.log)
        self._run = self.runner.run  # runtime/core/examples.py runs handlers through it too
        self.subject = command_subject(self.function.name)
        # What a Context sends that it built from checked parts (its replies) skips the check.
        self._built = partial(self.bus.publish, checked=True)
        self.commands: Binding | None = None  # plugin.<name>.command's, set by _bindings
        self.bindings = self._bindings()

    def __repr__(self) -> str:
        return f"Invoker({self.function.name} {self.function.version})"

    def _bindings(self) -> Bindings:
        f, queue = self.function, queue_group(self.function.name)
        found = Bindings()
        if f.commands:
            self.commands = Binding(self.bus, command_subject(f.name), self.on_command, queue)
            found.append(self.commands)
        if f.handler:
            found.append(Binding(self.bus, request_subject(f.name), self.on_request, queue))
        for spec in f.subjects:
            found.append(Binding(self.bus, spec.subject, partial(self.on_event, spec), queue))
        return found

    async def start(self) -> None:
        await self.code.start()  # a process-isolated function's worker; nothing in-process
        await self.bindings.start()

    async def stop(self, timeout: float = 10.0) -> int:
        """Unsubscribe and let work already received finish, commands taken directly from the
        router included; returns how many were drained."""
        self.stopping = True  # the router forwards from now on: the new version takes them
        taken = set(self.taken)
        drained, late = await asyncio.gather(self.bindings.stop(timeout), _finish(taken, timeout))
        self.taken_abandoned += late
        await self.code.stop()
        return drained + len(taken)

    @property
    def busy(self) -> int:
        return self.bindings.busy + len(self.taken)

    @property
    def in_flight(self) -> int:
        """Handlers running (or, sync, still in their thread after a timeout)."""
        return self.runner.in_flight

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot."""
        return self.runner.waiting

    @property
    def abandoned(self) -> int:
        return self.bindings.abandoned + self.taken_abandoned

    # Local-first dispatch: the router of this runtime runs a command here without NATS

    def can_take(self) -> bool:
        """A routed command would start at once here: a slot is free, the function is neither
        paused nor being stopped. No await between this and `take` keeps it true."""
        return self.runner.free and not (self.stopping or self.breaker.paused)

    async def take(self, payload: dict[str, Any], unrun: Unrun | None = None) -> None:
        """Run a routed command in the calling task, held like one received on NATS (a swap's
        drain waits for it); `unrun` gives its cooldown back if it does not run."""
        task = asyncio.current_task()
        if task is not None:
            self.taken.add(task)
        if self.commands is not None:
            # Counted as received on the command subject, as a forwarded one is (the service
            # discovery's num_requests).
            self.commands.received += 1
        try:
            await self.run_command(payload, None, unrun)
        finally:
            self.taken.discard(task)

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
        await self.run_command(payload, msg)

    async def run_command(
        self, payload: dict[str, Any], msg: Msg | None = None, unrun: Unrun | None = None
    ) -> None:
        """Receive a routed command (a payload valid on plugin.<name>.command) and run it: the
        one step from a command to its answer, whether it came over NATS (`msg`) or straight
        from this runtime's router (`unrun`, which gives the cooldown back if it does not run).
        """
        route = self._command(payload["command"])
        event = Event(
            kind="command",
            subject=self.subject,
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
            unknown = ContractError(self.subject, f"unknown command {payload['command']!r}")
            await self._refuse(msg, unknown, unrun)
            return
        try:
            # The router checked already; checking again protects against direct publishers.
            check_rank(route, event.rank)
        except PermissionDenied as e:
            self.stats.denied += 1
            self._record(event, "denied", 0.0, reason=str(e))
            await self._tell(msg, event, denial_line(event.user or "?", e), e, unrun)
            return
        target = self.function.handler_for(route.name)
        if target is None:
            refused = ContractError(self.subject, f"{self.function.name} has no handler for this")
            await self._refuse(msg, refused, unrun)
            return
        await self.invoke(event, target, msg, unrun)

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

    async def invoke(
        self, event: Event, target: str, msg: Msg | None = None, unrun: Unrun | None = None
    ) -> str:
        """Run `target` for `event` and answer: quarantine, concurrency, timeout, one activation
        record and the stats, whatever the event came from (`msg`: the NATS message, if any;
        `unrun`: gives a routed command's cooldown back if it does not run)."""
        f = self.function
        if not event.id:  # schedules and listen windows: a correlation id of their own
            event = replace(event, id=new_id())
        # The logger (an adapter naming the function, version and id) is built on first use.
        ctx = Context(
            f,
            event,
            self.bus.publish,
            self.bus.request,
            self.catalog,
            self.db,
            None,
            self.listener,
            built=self._built,
            logger=self.log,
        )
        requester = msg is not None and delivery.requester(msg)
        if requester and event.kind == "command":
            ctx.collected = []
        if self.breaker.paused:
            paused = QuarantineError(f.name)
            self.stats.paused += 1
            self._record(event, "paused", 0.0, reason="quarantined after repeated failures")
            await self._tell(msg, event, str(paused), paused, unrun)
            return "paused"
        self.stats.invocations += 1
        began = time.perf_counter()
        try:
            outcome = await self._attempt(msg, event, ctx, target, requester, unrun)
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
        self,
        msg: Msg | None,
        event: Event,
        ctx: Context,
        target: str,
        requester: bool,
        unrun: Unrun | None = None,
    ) -> str:
        f, began = self.function, time.perf_counter()
        try:
            result = await self._run(self.code.handler(target), event, ctx)
            await self._deliver(msg, event, ctx, result, requester)
        except FunctionBusy as e:
            self.stats.busy += 1
            self._record(event, "busy", time.perf_counter() - began, error=str(e))
            await self._tell(msg, event, str(e), e, unrun)
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

    async def _tell(
        self,
        msg: Msg | None,
        event: Event,
        line: str,
        error: RoseyError,
        unrun: Unrun | None = None,
    ) -> None:
        """One short line to the user (or a structured error to a requester), never a traceback.
        A routed command that did not run also answers the router (or, taken from this
        runtime's router, calls `unrun`), which gives back its cooldown."""
        try:
            if msg is not None and delivery.requester(msg):
                await self.bus.respond(msg, contract.failure(error.code, line))
                return
            if not isinstance(error, delivery.RAN):
                if msg is not None and delivery.routed(msg):
                    await self.bus.respond(msg, contract.failure(error.code, line))
                elif unrun is not None:
                    await unrun()
            if event.kind != "command":
                return
            ctx = Context(self.function, event, self.bus.publish, self.bus.request)
            await ctx.reply(line)
        except RoseyError as e:
            self.log.warning("could not tell %s: %s", event.user or "the requester", e)

    async def _refuse(
        self, msg: Msg | None, error: ContractError, unrun: Unrun | None = None
    ) -> None:
        self.log.warning("refused message: %s", error)
        if msg is not None:
            await self.bus.respond(msg, contract.failure(ErrorCode.INVALID_INPUT, str(error)))
        elif unrun is not None:
            await unrun()


async def _finish(tasks: set[asyncio.Task[Any]], timeout: float) -> int:
    """Wait for `tasks`; cancel those still running after `timeout` and return how many."""
    if not tasks:
        return 0
    _, late = await asyncio.wait(tasks, timeout=timeout)
    for task in late:
        task.cancel()
    return len(late)
