"""What happened to each invocation, handed to observers (metrics, activation records, logs)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("rosey.activation")

Outcome = Literal["ok", "error", "timeout", "busy", "denied", "cooldown", "invalid", "paused"]


@dataclass(frozen=True)
class Activation:
    """One invocation's record. `duration` is in seconds; `reason` explains a denial."""

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
    time: float = field(default_factory=time.time)


Observer = Callable[[Activation], None]


def new_id() -> str:
    """A correlation id: the router gives one to every command, and logs carry it."""
    return uuid.uuid4().hex[:16]


def notify(observers: Sequence[Observer], activation: Activation) -> None:
    # An observer must never break an invocation: its failure is logged and forgotten.
    for observer in observers:
        try:
            observer(activation)
        except Exception:
            log.exception("activation observer %r failed", observer)
