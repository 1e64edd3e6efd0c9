"""Who may run what: CyTube ranks, as the connector's events give them (cooldowns: cooldowns.py)."""

from __future__ import annotations

from runtime.config.manifest import Command
from runtime.constants import RANK_NAMES
from runtime.errors import PermissionDenied


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
