"""Per-command cooldowns per user, channel or globally, kept in Redis so they hold across runtimes.

One key per (command, scope), under the deployment's namespace, with the cooldown as its expiry.
One script call per check (`_BOOK`, sent as EVALSHA): `SET NX PX` books a run (the value is the
command's correlation id), and when the key exists already the same script returns its `PTTL`,
how long to wait; one round trip, and no gap between the two in which the key could expire. A
booking for a command that then does not run (the function was busy, paused or refused it) is
given back with `release`, which deletes the key only while it still holds that correlation id,
so it never ends someone else's later booking.
Without Redis, or with `cooldowns: local` (one router: nothing to share), MemoryCooldowns keeps
the same scopes for this runtime alone, with no round trip at all.
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
        due, holder = self._next.get(key, (0.0, ""))
        if due > now:
            # Its own booking, for a command delivered again: as in the Redis script.
            return 0.0 if token and holder == token else due - now
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
        mode: str = "shared",
    ) -> None:
        """`mode` is the `cooldowns` setting: "shared" (in `redis` when there is one) or "local"
        (in memory, for a runtime that is the only router)."""
        self.redis = redis if mode == "shared" else None
        self.keys = keys
        self.memory = memory or MemoryCooldowns()
        self._book = self.redis.register_script(_BOOK) if self.redis is not None else None
        self._release = self.redis.register_script(_RELEASE) if self.redis is not None else None

    async def remaining(
        self,
        command: Command,
        user: str,
        channel: str | None = None,
        rank: float = 0,
        token: str = "",
    ) -> float:
        """Seconds until `user` may run `command`; 0 when it may run now (and is then booked
        under `token`, the command's correlation id, for `release`)."""
        if command.cooldown <= 0 or exempt(command, rank):
            return 0.0
        who = scope(command, user, channel)
        if self._book is None:
            return self.memory.remaining(who, command, token)
        key = self.keys.join("cooldown", command.name, who)
        try:
            left = await self._book(keys=[key], args=[token, max(1, int(command.cooldown * 1000))])
        except Exception as e:  # redis-py raises several families; any of them means "no Redis"
            log.warning("cooldowns fall back to memory: %s", e)
            return self.memory.remaining(who, command, token)
        # 0: booked now. -1 (a key without expiry, not one of ours) does not hold anyone back.
        return left / 1000 if left > 0 else 0.0

    async def release(
        self, command: Command, user: str, channel: str | None, rank: float, token: str
    ) -> bool:
        """Give back the booking `remaining` made under `token`, as long as it is still that
        booking; True when one was given back."""
        if command.cooldown <= 0 or exempt(command, rank):
            return False
        who = scope(command, user, channel)
        if self._release is None:
            return self.memory.release(who, command, token)
        key = self.keys.join("cooldown", command.name, who)
        try:
            return bool(await self._release(keys=[key], args=[token]))
        except Exception as e:  # as in remaining: without Redis, the memory fallback booked it
            log.warning("cooldown release falls back to memory: %s", e)
            return self.memory.release(who, command, token)


# Book the run (0), or say how many milliseconds the booking in place has left, atomically. A
# booking under this very token is the same command delivered again (durable delivery redelivers
# a command whose runtime died): it may run, or it would be refused by its own booking.
_BOOK = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then
  return 0
end
return redis.call('PTTL', KEYS[1])
"""

# Delete the key only while it holds this booking's token (compare and delete, atomically).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
