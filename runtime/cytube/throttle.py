"""CyTube's own rate limiter, kept on the client side so the server never has to refuse Rosey.

CyTube throttles `queue` with `util.newRateLimiter` (src/utilities.js): a burst, then one action
per `1/sustained` seconds since the last accepted one, and the count starts over only once nothing
was accepted for `burst/sustained` seconds. A token bucket is not the same: after a pause shorter
than that cooldown it would allow two quick adds the server refuses. This class mirrors the rule,
with a margin for the clocks and the network.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# The `queue` throttle (src/channel/playlist.js handleQueue): 3 burst / 1 per s, rank ≥ 2: 10 / 2.
QUEUE_LIMITS = {"user": (3, 1.0), "moderator": (10, 2.0)}
MARGIN = 0.1  # seconds added to every wait


def queue_limits(rank: float) -> tuple[int, float]:
    return QUEUE_LIMITS["moderator" if rank >= 2 else "user"]


class Limiter:
    """The server's limiter, as seen by the client: `delay()` says how long to wait before the
    next action would surely be accepted, `take()` records one."""

    def __init__(self, margin: float = MARGIN, clock: Callable[[], float] = time.monotonic) -> None:
        self.margin, self.clock = margin, clock
        self.count = 0
        self.last = float("-inf")

    def delay(self, burst: int, sustained: float) -> float:
        since = self.clock() - self.last
        if since > burst / sustained + self.margin or self.count < burst:
            return 0.0
        return max(0.0, 1 / sustained + self.margin - since)

    def take(self, burst: int, sustained: float) -> None:
        since = self.clock() - self.last
        self.count = 1 if since > burst / sustained + self.margin else min(self.count + 1, burst)
        self.last = self.clock()

    async def acquire(self, burst: int, sustained: float) -> float:
        """Waits until an action is allowed and records it; returns the seconds waited."""
        waited = 0.0
        while (wait := self.delay(burst, sustained)) > 0:
            await asyncio.sleep(wait)
            waited += wait
        self.take(burst, sustained)
        return waited
