"""Per-user and per-command counters for `!stats`, answered on the NATS request `rosey.stats`.

An observer on Runtime.observers counts the commands each user ran successfully; the counters
live as long as the runtime (hot swaps keep them; a restart starts again). Several runtimes
each answer with their own counters and a requester takes the first answer.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg

from runtime.core.activation import Activation
from runtime.errors import ContractError
from runtime.wire import contract
from runtime.wire.bus import Binding, Bus

STATS = "rosey.stats"
MAX_USERS = 10_000  # distinct users remembered; past it the least active are forgotten


class Usage:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.users: Counter[str] = Counter()
        self.commands: Counter[str] = Counter()

    def __call__(self, activation: Activation) -> None:
        if activation.kind != "command" or activation.outcome != "ok":
            return
        if activation.command:
            self.commands[activation.command] += 1
        if activation.user:
            self.users[activation.user.lower()] += 1
            if len(self.users) > MAX_USERS:
                self.users = Counter(dict(self.users.most_common(MAX_USERS // 2)))

    def snapshot(self, top: int = 5) -> dict[str, Any]:
        return {
            "served": sum(self.commands.values()),
            "uptime": round(self.clock() - self.started, 1),
            "commands": dict(self.commands.most_common()),
            "top_users": [[user, n] for user, n in self.users.most_common(top)],
        }


class UsageService:
    """Answers `rosey.stats` with this runtime's Usage snapshot."""

    def __init__(self, bus: Bus, usage: Usage) -> None:
        self.usage = usage
        self.binding = Binding(bus, STATS, self._answer)
        self.bus = bus

    async def start(self) -> None:
        await self.binding.start()

    async def stop(self) -> None:
        await self.binding.stop(1.0)

    async def _answer(self, msg: Msg) -> None:
        top = 5
        try:
            request = contract.decode(msg.subject, msg.data) or {}
            top = max(1, min(20, int(request.get("top", 5))))
        except (ValueError, TypeError, AttributeError, ContractError):
            pass
        await self.bus.respond(msg, contract.ok(self.usage.snapshot(top)))
