"""Who may run what: CyTube ranks from the connector's events, and per-user cooldowns."""

from __future__ import annotations

import time
from collections.abc import Callable

from .constants import RANK_NAMES
from .errors import PermissionDenied
from .manifest import Command


def rank_name(rank: float) -> str:
    return RANK_NAMES.get(rank, f"rank {rank:g}")


def check_rank(command: Command, rank: float) -> None:
    """Raise PermissionDenied when `rank` (the server's rank of the user) is below the command's."""
    if rank < command.rank:
        raise PermissionDenied(command.name, command.rank, rank)


def may_run(command: Command, rank: float) -> bool:
    return rank >= command.rank


def denial_line(user: str, error: PermissionDenied) -> str:
    return (
        f"{user}: !{error.command} needs {rank_name(error.needed)} rank or higher "
        f"(you are {rank_name(error.have)})."
    )


class Cooldowns:
    """Per user and command: when each may next run. Moderators are not exempt on purpose:
    a manifest that wants that can lower the cooldown instead."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000
    ) -> None:
        self._clock = clock
        self._next: dict[tuple[str, str], float] = {}
        self._max = max_entries

    def remaining(self, user: str, command: Command) -> float:
        """Seconds until `user` may run `command` again; 0 when it may run now (and is then booked)."""
        if command.cooldown <= 0:
            return 0.0
        now = self._clock()
        key = (user.lower(), command.name)
        due = self._next.get(key, 0.0)
        if due > now:
            return due - now
        if len(self._next) >= self._max:
            self._next = {k: v for k, v in self._next.items() if v > now}
        self._next[key] = now + command.cooldown
        return 0.0
