"""Quarantine: a function failing too often is paused until a moderator or an operator resumes it.

The count is per runtime process (each one pauses what fails in it); resuming goes to every
runtime at once on `rosey.enable`, authorised by the deploy token. A deploy of a new version
starts with a fresh count, so shipping the fix also resumes the function.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

log = logging.getLogger("rosey.quarantine")


class Breaker:
    """`failures` within `window` seconds trip it; 0 failures: it never trips."""

    def __init__(self, failures: int, window: float) -> None:
        self.failures, self.window = failures, window
        self.times: deque[float] = deque()
        self.paused = False

    def failed(self, now: float | None = None) -> bool:
        """Count one failure; True when this one paused the function."""
        if self.failures <= 0 or self.paused:
            return False
        now = time.monotonic() if now is None else now
        self.times.append(now)
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()
        if len(self.times) >= self.failures:
            self.paused = True
            self.times.clear()
            return True
        return False

    def reset(self) -> bool:
        was, self.paused = self.paused, False
        self.times.clear()
        return was
