"""Turns chat lines such as `!roll 2d6` into routed commands, after checking rank and cooldown."""

from __future__ import annotations

import logging
import shlex
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Protocol, cast

from msgspec import UNSET
from nats.aio.msg import Msg

from runtime.config.manifest import Command
from runtime.config.settings import DeliverySettings
from runtime.constants import CHAT, PM, ROUTED_REPLY, SEND_CHAT, SEND_PM, command_subject
from runtime.core.activation import Activation, Observer, Outcome, new_id, notify
from runtime.core.cooldowns import SharedCooldowns, exempt
from runtime.core.permissions import check_rank, denial_line
from runtime.core.registry import Registry, Route
from runtime.errors import ContractError, PermissionDenied, RoseyError
from runtime.wire import contract
from runtime.wire.bus import Binding, Bindings, Bus
from runtime.wire.intake import Intake
from runtime.wire.payloads import Line
from runtime.wire.streams import CHAT_LINES

log = logging.getLogger("rosey.router")

ROUTER_QUEUE = "rosey.router"
BUILTIN = "rosey"  # `!rosey enable <function>`, unless a function claims the command

# (args, user, rank) → the line to answer
Admin = Callable[[list[str], str, float], Awaitable[str]]
# Cooldown bookings that an invoker may still give back, at most this many at once.
MAX_PENDING = 10_000


class Local(Protocol):
    """A function loaded in this runtime, as the router runs its commands without NATS
    (runtime/core/invoker.py's Invoker)."""

    def can_take(self) -> bool: ...

    async def take(
        self, payload: dict[str, Any], unrun: Callable[[], Awaitable[None]] | None = None
    ) -> None: ...


Locals = Callable[[str], Local | None]


def parse(text: str, prefix: str) -> tuple[str, list[str]] | None:
    """`!roll "a b" c` → ("roll", ["a b", "c"]); None when the line is not a command."""
    if not prefix or not text.startswith(prefix):
        return None
    body = text[len(prefix) :]
    if not body or body[0].isspace() or body.startswith(prefix):
        return None
    if '"' not in body and "'" not in body:
        words = body.split()  # most commands have no quotes, and shlex is slow
        return words[0].lower(), words[1:]
    lexer = shlex.shlex(body, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""  # backslashes are ordinary characters in chat
    try:
        words = list(lexer)
    except ValueError:
        words = body.split()  # an unbalanced quote: take the words as typed
    if not words:
        return None
    return words[0].lower(), words[1:]


class Router:
    """Reads cytube.chat and cytube.pm; the manifests in the registry are the routing table."""

    def __init__(
        self,
        bus: Bus,
        registry: Callable[[], Registry],
        prefix: str = "!",
        cooldowns: SharedCooldowns | None = None,
        observers: Sequence[Observer] = (),
        admin: Admin | None = None,
        local: Locals | None = None,
        delivery: DeliverySettings | None = None,
    ) -> None:
        """`local` finds a function loaded in this runtime by name: its commands run here
        directly when it has a free slot (local-first dispatch); the rest go over NATS.
        `delivery` in durable mode: chat lines come from the JetStream consumer every runtime
        shares, not from core NATS (runtime/wire/intake.py), and a line is acknowledged once
        its command has been answered here."""
        self.bus, self.registry, self.prefix = bus, registry, prefix
        self.local = local
        # In Redis when the runtime has it, so a cooldown holds whichever runtime routes the line.
        self.cooldowns = cooldowns or SharedCooldowns()
        self.observers = observers
        # The built-in `!rosey` command (runtime/ops/enable.py), where `rosey run` provides it.
        self.admin = admin
        # A queue group, so that several runtimes route each chat line once.
        # A command booked for a cooldown is routed with a reply subject under `unrun`: the
        # invoker that does not run it (busy, paused, refused) answers there, in whichever
        # runtime it is, and the booking is given back (cooldowns start only when a command runs).
        self.unrun = f"{ROUTED_REPLY}.{uuid.uuid4().hex}"
        self.booked: OrderedDict[str, tuple[Command, str, str | None, float, float]] = OrderedDict()
        self.intake: Intake | None = None
        lines: list[Binding] = []
        if delivery is not None and delivery.mode == "durable":
            self.intake = Intake(
                bus.nc.jetstream(),
                CHAT_LINES,
                self.route,
                max_age=delivery.max_age,
                ack_wait=delivery.ack_wait,
            )
        else:
            lines = [
                Binding(bus, CHAT, self.on_message, ROUTER_QUEUE),
                Binding(bus, PM, self.on_message, ROUTER_QUEUE),
            ]
        self.bindings = Bindings([*lines, Binding(bus, f"{self.unrun}.*", self.on_not_run)])
        self.routed = 0  # commands dispatched, here or over NATS
        self.taken = 0  # of them, run here without NATS
        self.released = 0

    async def start(self) -> None:
        await self.bindings.start()
        if self.intake is not None:
            await self.intake.start()

    async def stop(self, timeout: float = 10.0) -> None:
        if self.intake is not None:
            await self.intake.stop(timeout)  # what is not answered by then goes to another
        await self.bindings.stop(timeout)

    @property
    def busy(self) -> int:
        return self.bindings.busy + (self.intake.busy if self.intake is not None else 0)

    async def on_message(self, msg: Msg) -> None:
        await self.route(msg)

    async def route(self, msg: Msg, durable: str | None = None) -> bool:
        """Route one chat line. `durable`: the line's id in JetStream (a redelivery has the
        same), used as the command's id; then a command is only run here, and False gives the
        line back for another runtime when the function cannot start here now."""
        try:
            decoded, _ = contract.decode_struct(msg.subject, msg.data)  # in one step, as a Struct
        except ContractError as e:
            log.warning("ignored malformed message: %s", e)
            return True
        line = cast(Line, decoded)  # cytube.chat's or cytube.pm's
        parsed = parse(line.message, self.prefix)
        if parsed is None:
            return True
        word, args = parsed
        route = self.registry().resolve(word)
        source = "pm" if msg.subject == PM else "chat"
        user, rank = line.user, line.rank
        channel = None if line.channel is UNSET else line.channel
        if route is None and word == BUILTIN:
            if self.admin is None:
                return durable is None  # a runtime that has the built-in takes it
            await self._answer(user, channel, source, await self.admin(args, user, rank))
            return True
        if route is None:
            return True  # unknown commands are ignored: other bots may own them
        command = route.command
        correlation = durable or new_id()
        if durable is not None and not route.function.external and not self._free(route):
            return False  # not loaded here, or busy: another runtime (or this one later)
        try:
            check_rank(command, rank)
        except PermissionDenied as e:
            self._record(correlation, route, user, channel, "denied", str(e))
            await self._answer(user, channel, source, denial_line(user, e))
            return True
        wait = await self.cooldowns.remaining(command, user, channel, rank, token=correlation)
        if wait > 0:
            self._record(correlation, route, user, channel, "cooldown", f"{wait:.1f}s left")
            await self._answer(
                user,
                channel,
                source,
                f"{user}: !{command.name} is cooling down, try again in {max(1, round(wait))}s.",
            )
            return True
        routed: dict[str, Any] = {
            "command": command.name,
            "args": args,
            "user": user,
            "rank": rank,
            "raw_message": line.message,
            "source": source,
            "id": correlation,
            "time": (line.time if line.time is not UNSET else 0) or int(time.time() * 1000),
        }
        if channel is not None:
            routed["channel"] = channel
        # External functions (other processes, legacy plugins) would take a reply subject for a
        # requester's: their cooldown is kept as booked.
        booked = command.cooldown > 0 and not exempt(command, rank) and not route.function.external
        # Looked up after the cooldown check: a swap meanwhile has the new invoker take it.
        local = self.local(route.function.name) if self.local is not None else None
        if local is not None and local.can_take():
            # Local-first: the function is loaded here and would start at once, so it runs in
            # this task; a command that does not run gives its booking back directly.
            self.routed += 1
            self.taken += 1
            unrun = None
            if booked:
                unrun = partial(self._give_back, (command, user, channel, rank), correlation)
            await local.take(routed, unrun)
            return True
        if durable is not None and not route.function.external:
            # It became busy while the cooldown was booked: give both back.
            await self._give_back((command, user, channel, rank), correlation)
            return False
        reply = ""
        if booked:
            reply = f"{self.unrun}.{correlation}"
            self._remember(correlation, (command, user, channel, rank))
        try:
            # Built here from a payload checked on the way in: no need to check it again.
            await self.bus.publish(
                command_subject(route.function.name), routed, reply=reply, checked=True
            )
            self.routed += 1
        except RoseyError as e:
            log.error("could not route !%s from %s: %s", word, user, e)
            await self._release(correlation)
        return True

    def _free(self, route: Route) -> bool:
        """The route's function is loaded here and would start at once."""
        local = self.local(route.function.name) if self.local is not None else None
        return local is not None and local.can_take()

    async def on_not_run(self, msg: Msg) -> None:
        """An invoker did not run a routed command: give its cooldown booking back."""
        await self._release(msg.subject.rsplit(".", 1)[-1])

    def _remember(self, correlation: str, booking: tuple[Command, str, str | None, float]) -> None:
        now = time.monotonic()
        while self.booked and (
            len(self.booked) >= MAX_PENDING or next(iter(self.booked.values()))[4] <= now
        ):
            self.booked.popitem(last=False)  # expired, or the oldest past the bound
        self.booked[correlation] = (*booking, now + booking[0].cooldown)

    async def _release(self, correlation: str) -> None:
        booking = self.booked.pop(correlation, None)
        if booking is None:
            return
        command, user, channel, rank, _ = booking
        await self._give_back((command, user, channel, rank), correlation)

    async def _give_back(
        self, booking: tuple[Command, str, str | None, float], correlation: str
    ) -> None:
        command, user, channel, rank = booking
        if await self.cooldowns.release(command, user, channel, rank, correlation):
            self.released += 1

    def _record(
        self,
        correlation: str,
        route: Route,
        user: str,
        channel: str | None,
        outcome: Outcome,
        reason: str,
    ) -> None:
        if self.observers:
            notify(
                self.observers,
                Activation(
                    id=correlation,
                    function=route.function.name,
                    version=route.function.version,
                    kind="command",
                    command=route.command.name,
                    user=user,
                    channel=channel,
                    outcome=outcome,
                    reason=reason,
                ),
            )

    async def _answer(self, user: str, channel: str | None, source: str, line: str) -> None:
        out: dict[str, Any] = {"message": line}
        if channel is not None:
            out["channel"] = channel
        try:
            if source == "pm":
                await self.bus.publish(SEND_PM, {"to": user, **out})
            else:
                await self.bus.publish(SEND_CHAT, out)
        except RoseyError as e:
            log.warning("could not answer %s: %s", user, e)
