"""Turns chat lines such as `!roll 2d6` into routed commands, after checking rank and cooldown."""

from __future__ import annotations

import logging
import shlex
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from nats.aio.msg import Msg

from runtime.config.manifest import Command
from runtime.constants import CHAT, PM, ROUTED_REPLY, SEND_CHAT, SEND_PM, command_subject
from runtime.core.activation import Activation, Observer, Outcome, new_id, notify
from runtime.core.cooldowns import SharedCooldowns, exempt
from runtime.core.permissions import check_rank, denial_line
from runtime.core.registry import Registry, Route
from runtime.errors import ContractError, PermissionDenied, RoseyError
from runtime.wire import contract
from runtime.wire.bus import Binding, Bindings, Bus

log = logging.getLogger("rosey.router")

ROUTER_QUEUE = "rosey.router"
BUILTIN = "rosey"  # `!rosey enable <function>`, unless a function claims the command

# (args, user, rank) → the line to answer
Admin = Callable[[list[str], str, float], Awaitable[str]]
# Cooldown bookings that an invoker may still give back, at most this many at once.
MAX_PENDING = 10_000


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
    ) -> None:
        self.bus, self.registry, self.prefix = bus, registry, prefix
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
        self.bindings = Bindings(
            [
                Binding(bus, CHAT, self.on_message, ROUTER_QUEUE),
                Binding(bus, PM, self.on_message, ROUTER_QUEUE),
                Binding(bus, f"{self.unrun}.*", self.on_not_run),
            ]
        )
        self.routed = 0
        self.released = 0

    async def start(self) -> None:
        await self.bindings.start()

    async def stop(self, timeout: float = 10.0) -> None:
        await self.bindings.stop(timeout)

    @property
    def busy(self) -> int:
        return self.bindings.busy

    async def on_message(self, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError as e:
            log.warning("ignored malformed message: %s", e)
            return
        parsed = parse(payload["message"], self.prefix)
        if parsed is None:
            return
        word, args = parsed
        route = self.registry().resolve(word)
        source = "pm" if msg.subject == PM else "chat"
        if route is None and word == BUILTIN and self.admin is not None:
            line = await self.admin(args, payload["user"], payload["rank"])
            await self._answer(payload, source, line)
            return
        if route is None:
            return  # unknown commands are ignored: other bots may own them
        user, rank = payload["user"], payload["rank"]
        command = route.command
        correlation = new_id()
        try:
            check_rank(command, rank)
        except PermissionDenied as e:
            self._record(correlation, route, payload, "denied", str(e))
            await self._answer(payload, source, denial_line(user, e))
            return
        channel = payload.get("channel")
        wait = await self.cooldowns.remaining(command, user, channel, rank, token=correlation)
        if wait > 0:
            self._record(correlation, route, payload, "cooldown", f"{wait:.1f}s left")
            await self._answer(
                payload,
                source,
                f"{user}: !{command.name} is cooling down, try again in {max(1, round(wait))}s.",
            )
            return
        routed: dict[str, Any] = {
            "command": command.name,
            "args": args,
            "user": user,
            "rank": rank,
            "raw_message": payload["message"],
            "source": source,
            "id": correlation,
            "time": payload.get("time") or int(time.time() * 1000),
        }
        if channel is not None:
            routed["channel"] = channel
        reply = ""
        if command.cooldown > 0 and not exempt(command, rank) and not route.function.external:
            # External functions (other processes, legacy plugins) would take a reply subject
            # for a requester's: their cooldown is kept as booked.
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
        if await self.cooldowns.release(command, user, channel, rank, correlation):
            self.released += 1

    def _record(
        self, correlation: str, route: Route, payload: dict[str, Any], outcome: Outcome, reason: str
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
                    user=payload["user"],
                    channel=payload.get("channel"),
                    outcome=outcome,
                    reason=reason,
                ),
            )

    async def _answer(self, payload: dict[str, Any], source: str, line: str) -> None:
        channel = payload.get("channel")
        out: dict[str, Any] = {"message": line}
        if channel is not None:
            out["channel"] = channel
        try:
            if source == "pm":
                await self.bus.publish(SEND_PM, {"to": payload["user"], **out})
            else:
                await self.bus.publish(SEND_CHAT, out)
        except RoseyError as e:
            log.warning("could not answer %s: %s", payload["user"], e)
