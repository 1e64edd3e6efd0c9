"""Who may run what: CyTube ranks, as the connector's events give them (cooldowns: cooldowns.py)."""

from __future__ import annotations

import math

from runtime.config.manifest import Command
from runtime.constants import RANK_NAMES
from runtime.errors import PermissionDenied


def rank_name(rank: float) -> str:
    if not _is_rank(rank):
        return "an invalid rank"
    return RANK_NAMES.get(rank, f"rank {rank:g}")


def _is_rank(rank: object) -> bool:
    """A real, finite number (bool is not a rank)."""
    return isinstance(rank, int | float) and not isinstance(rank, bool) and math.isfinite(rank)


def check_rank(command: Command, rank: float) -> None:
    """Raise PermissionDenied when `rank` (the server's rank of the user) is below the command's.

    Fails closed: a rank that is not a finite number (NaN compares False with everything, so
    `rank < needed` would let it through) is refused."""
    if not may_run(command, rank):
        raise PermissionDenied(command.name, command.rank, rank if _is_rank(rank) else math.nan)


def may_run(command: Command, rank: float) -> bool:
    return _is_rank(rank) and rank >= command.rank


def denial_line(user: str, error: PermissionDenied) -> str:
    return (
        f"{user}: !{error.command} needs {rank_name(error.needed)} rank or higher "
        f"(you are {rank_name(error.have)})."
    )
