"""What happened to each invocation, handed to observers (metrics, activation records, logs)."""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal

import msgspec

log = logging.getLogger("rosey.activation")

Outcome = Literal["ok", "error", "timeout", "busy", "denied", "cooldown", "invalid", "paused"]


class Activation(msgspec.Struct, frozen=True):
    """One invocation's record. `duration` is in seconds; `reason` explains a denial.

    A msgspec Struct, not a frozen dataclass: one is made per command, and a frozen dataclass
    sets each of its twelve fields through object.__setattr__."""

    id: str
    function: str
    version: str
    kind: str
    command: str | None
    user: str | None
    channel: str | None
    outcome: Outcome
    duration: float = 0.0
    error: str = ""
    reason: str = ""
    time: float = msgspec.field(default_factory=time.time)


Observer = Callable[[Activation], None]


class Ids:
    """Correlation ids: 16 lowercase hex digits, a random 40-bit prefix and a 24-bit counter.

    One id per command: a uuid4 reads os.urandom each time (about 1.5 µs here), a counter does
    not (about 0.3 µs). Each process, each forked child (see `_IDS` below) and each block of
    2^24 ids draws a fresh prefix, so ids stay unique across processes and restarts unless two
    blocks draw the same 40 bits (about 1 in 2 million for a thousand blocks). Hex only: an id
    is a token of the NATS subject `rosey.routed.<router>.<id>`, so it holds no dot or wildcard.
    """

    BLOCK = 1 << 24

    def __init__(self) -> None:
        self._lock = threading.Lock()  # sync handlers run in threads; renewal must be once
        self._block = (secrets.token_hex(5), itertools.count())

    def renew(self) -> None:
        """Start a new block under a new prefix (when a block is used up)."""
        self._block = (secrets.token_hex(5), itertools.count())

    def forked(self) -> None:
        """In a forked child: a block of its own, and a lock no thread of the parent holds."""
        self._lock = threading.Lock()
        self.renew()

    def __call__(self) -> str:
        while True:
            block = self._block  # prefix and counter are read together, never mixed
            n = next(block[1])  # itertools.count is atomic under the GIL
            if n < self.BLOCK:
                return f"{block[0]}{n:06x}"
            with self._lock:
                if self._block is block:
                    self.renew()


_IDS = Ids()
# A forked child (a handler may fork) would repeat the parent's ids: it starts a block of its own.
os.register_at_fork(after_in_child=_IDS.forked)


def new_id() -> str:
    """A correlation id: the router gives one to every command, and logs carry it."""
    return _IDS()


def notify(observers: Sequence[Observer], activation: Activation) -> None:
    # An observer must never break an invocation: its failure is logged and forgotten.
    for observer in observers:
        try:
            observer(activation)
        except Exception:
            log.exception("activation observer %r failed", observer)
