"""What the bot's rank lets it do in a channel, judged as CyTube judges it (src/channel/permissions.js).

CyTube refuses most actions in silence, and a few (`assignLeader`, `setOptions`, ...) with a kick,
so the connector checks here first and says which permission and rank are missing instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from runtime.constants import RANK_NAMES

# CyTube 3.86's defaults, for a channel whose `setPermissions` has not arrived (it comes on join).
DEFAULTS: dict[str, float] = {
    "seeplaylist": -1,
    "playlistadd": 1.5,
    "playlistnext": 1.5,
    "playlistmove": 1.5,
    "playlistdelete": 2,
    "playlistjump": 1.5,
    "playlistaddlist": 1.5,
    "oplaylistadd": -1,
    "oplaylistnext": 1.5,
    "oplaylistmove": 1.5,
    "oplaylistdelete": 2,
    "oplaylistjump": 1.5,
    "oplaylistaddlist": 1.5,
    "playlistaddcustom": 3,
    "playlistaddrawfile": 2,
    "playlistaddlive": 1.5,
    "exceedmaxlength": 2,
    "addnontemp": 2,
    "settemp": 2,
    "playlistshuffle": 2,
    "playlistclear": 2,
    "pollctl": 1.5,
    "pollvote": -1,
    "viewhiddenpoll": 1.5,
    "voteskip": -1,
    "viewvoteskip": 1.5,
    "mute": 1.5,
    "kick": 1.5,
    "ban": 2,
    "chat": 0,
    "chatclear": 2,
}

# Media types CyTube counts as live (util.isLive): they need `playlistaddlive` as well.
LIVE_TYPES = frozenset({"li", "tw", "rt", "cu", "hl"})

# Node per chat command of cytube.send.mod.
MOD_NODES = {
    "kick": "kick",
    "ban": "ban",
    "mute": "mute",
    "smute": "mute",
    "unmute": "mute",
    "clear": "chatclear",
}


def rank_name(rank: float) -> str:
    name = RANK_NAMES.get(rank)
    return f"{rank:g} ({name})" if name else f"{rank:g}"


def needed(perms: Mapping[str, float], node: str, open_playlist: bool = False) -> float:
    """The lowest rank that has `node`. On an unlocked playlist, `playlist*` nodes also pass
    at the `o`-prefixed permission (`oplaylistadd` is -1 by default: anyone may add)."""
    rank = perms.get(node, DEFAULTS.get(node, 1_000_000))
    if open_playlist and node.startswith("playlist"):
        rank = min(rank, perms.get("o" + node, DEFAULTS.get("o" + node, rank)))
    return rank


def denied(
    perms: Mapping[str, float], rank: float, node: str, open_playlist: bool = False
) -> str | None:
    """None when `rank` has `node`; else the reason, naming the permission and both ranks."""
    need = needed(perms, node, open_playlist)
    if rank >= need:
        return None
    return (
        f"the channel's '{node}' permission needs rank {rank_name(need)};"
        f" the bot has rank {rank_name(rank)}"
    )


def queue_nodes(kind: str, position: str) -> list[str]:
    """The permissions a `queue` of media `kind` at `position` needs (handleQueue's checks)."""
    nodes = ["playlistadd"]
    if position == "next":
        nodes.append("playlistnext")
    if kind == "yp":
        nodes.append("playlistaddlist")
    elif kind in LIVE_TYPES:
        nodes.append("playlistaddlive")
    if kind == "cu":
        nodes.append("playlistaddcustom")
    elif kind in ("fi", "cm"):
        nodes.append("playlistaddrawfile")
    return nodes


def first_denied(
    perms: Mapping[str, float], rank: float, nodes: list[str], open_playlist: bool = False
) -> str | None:
    for node in nodes:
        reason = denied(perms, rank, node, open_playlist)
        if reason:
            return reason
    return None


def target_denied(bot: str, bot_rank: float, target: str, target_rank: float) -> str | None:
    """CyTube lets a moderator act only on lower ranks (kick, mute: effective rank; ban: the
    account's rank in the channel)."""
    if target.lower() == bot.lower():
        return "the bot does not act on itself"
    if target_rank >= bot_rank:
        return (
            f"{target} has rank {rank_name(target_rank)}, not below the bot's {rank_name(bot_rank)}"
        )
    return None
