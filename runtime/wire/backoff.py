"""The wait between tries while NATS is away: doubling from 50 ms up to 1 s, reset on success."""

from __future__ import annotations

import asyncio

FIRST, MOST = 0.05, 1.0


class Backoff:
    """One retry loop's delay (the publisher's, the intake's, a durable reply's)."""

    def __init__(self) -> None:
        self.delay = FIRST

    @property
    def at_most(self) -> bool:
        """The delay has reached its ceiling: the server has been away a while."""
        return self.delay >= MOST

    def reset(self) -> None:
        self.delay = FIRST

    async def wait(self) -> None:
        await asyncio.sleep(self.delay)  # a pause before trying again, not synchronisation
        self.delay = min(self.delay * 2, MOST)
