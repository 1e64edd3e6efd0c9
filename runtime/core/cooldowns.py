"""Per-command cooldowns per user, channel or globally, kept in Redis so they hold across runtimes.

One key per (command, scope), under the deployment's namespace, with the cooldown as its expiry:
`SET NX PX` books a run (the value is the command's correlation id), and when the key exists
already its `PTTL` says how long to wait. A booking for a command that then does not run (the
function was busy, paused or refused it) is given back with `release`, which deletes the key only
while it still holds that correlation id, so it never ends someone else's later booking.
Without Redis, MemoryCooldowns keeps the same scopes for this runtime alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from runtime.config.keys import DEFAULT_NAMESPACE, Namespace
from runtime.config.manifest import Command

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("rosey.cooldowns")


def scope(command: Command, user: str, channel: str | None) -> str:
    """Who shares a cooldown: the user, everyone in the channel, or everyone."""
    if command.cooldown_per == "channel":
        return f"#{channel or ''}"
    if command.cooldown_per == "global":
        return "*"
    return user.lower()


def exempt(command: Command, rank: float) -> bool:
    return command.cooldown_exempt is not None and rank >= command.cooldown_exempt


class MemoryCooldowns:
    """When each (scope, command) may next run, for one runtime without Redis. Scopes and rank
    exemptions are worked out by SharedCooldowns before it asks."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000
    ) -> None:
        self._clock = clock
        self._next: dict[tuple[str, str], tuple[float, str]] = {}
        self._max = max_entries

    def remaining(self, who: str, command: Command, token: str = "") -> float:
        """Seconds until `who` may run `command` again; 0 when it may run now (and is then booked
        under `token`)."""
        if command.cooldown <= 0:
            return 0.0
        now = self._clock()
        key = (who, command.name)
        due = self._next.get(key, (0.0, ""))[0]
        if due > now:
            return due - now
        if len(self._next) >= self._max:
            self._next = {k: v for k, v in self._next.items() if v[0] > now}
        self._next[key] = (now + command.cooldown, token)
        return 0.0

    def release(self, who: str, command: Command, token: str) -> bool:
        """Give back the booking made under `token`; False when there is none (any more)."""
        key = (who, command.name)
        booked = self._next.get(key)
        if booked is None or booked[1] != token or booked[0] <= self._clock():
            return False
        del self._next[key]
        return True


class SharedCooldowns:
    """Cooldowns in Redis when there is one (keys `<prefix>cooldown:<command>:<scope>`), in
    memory otherwise."""

    def __init__(
        self,
        redis: Redis | None = None,
        keys: Namespace = DEFAULT_NAMESPACE,
        memory: MemoryCooldowns | None = None,
    ) -> None:
        self.redis, self.keys = redis, keys
        self.memory = memory or MemoryCooldowns()

    async def remaining(
        self,
        command: Command,
        user: str,
        channel: str | None = None,
        rank: float = 0,
        token: str = "1",
    ) -> float:
        """Seconds until `user` may run `command`; 0 when it may run now (and is then booked
        under `token`, the command's correlation id, for `release`)."""
        if command.cooldown <= 0 or exempt(command, rank):
            return 0.0
        who = scope(command, user, channel)
        if self.redis is None:
            return self.memory.remaining(who, command, token)
        key = self.keys.join("cooldown", command.name, who)
        try:
            if await self.redis.set(key, token, nx=True, px=max(1, int(command.cooldown * 1000))):
                return 0.0
            left = await self.redis.pttl(key)
        except Exception as e:  # redis-py raises several families; any of them means "no Redis"
            log.warning("cooldowns fall back to memory: %s", e)
            return self.memory.remaining(who, command, token)
        # -2: expired between the two calls; -1 cannot happen (always set with an expiry).
        return max(0.0, left / 1000) if left > 0 else 0.0

    async def release(
        self, command: Command, user: str, channel: str | None, rank: float, token: str
    ) -> bool:
        """Give back the booking `remaining` made under `token`, as long as it is still that
        booking; True when one was given back."""
        if command.cooldown <= 0 or exempt(command, rank):
            return False
        who = scope(command, user, channel)
        if self.redis is None:
            return self.memory.release(who, command, token)
        key = self.keys.join("cooldown", command.name, who)
        try:
            return bool(await self.redis.eval(_RELEASE, 1, key, token))
        except Exception as e:  # as in remaining: without Redis, the memory fallback booked it
            log.warning("cooldown release falls back to memory: %s", e)
            return self.memory.release(who, command, token)


# Delete the key only while it holds this booking's token (compare and delete, atomically).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
