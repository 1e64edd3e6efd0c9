"""!why: what happened to a user's last command, read from the runtime's activation records."""

from __future__ import annotations

import time
from typing import Any

QUERY = "rosey.activations.query"
ERROR_CHARS = 150


# Async: the query is awaited on the event loop instead of holding a worker thread.
async def why(event: Any, ctx: Any) -> str:
    prefix = ctx.config.get("prefix", "!")
    asker = event.user or "?"
    target = event.args[0].lstrip("@") if event.args else asker
    moderator = event.rank >= ctx.config.get("moderator_rank", 2)
    own = target.lower() == asker.lower()
    if not own and not moderator:
        return f"{asker}: only moderators can ask about someone else's commands."
    query = {"user": target, "kind": "command", "exclude": [ctx.name], "limit": 1}
    try:
        reply = await ctx.request(QUERY, query, ctx.config.get("timeout", 2))
    except Exception as e:
        # No runtime answers the query (activation records off) or NATS is in trouble.
        ctx.log.warning("activation query failed: %s", e)
        return f"{asker}: I cannot look that up right now."
    if not reply.get("success"):
        ctx.log.warning("activation query refused: %s", reply.get("error"))
        return f"{asker}: I cannot look that up right now."
    records = reply["data"]["records"]
    if not records:
        whom = "you" if own else target
        return f"{asker}: I have no record of a command from {whom}."
    return describe(records[0], asker, "Your" if own else f"{target}'s", moderator, prefix)


def describe(
    record: dict[str, Any],
    asker: str,
    whose: str,
    moderator: bool,
    prefix: str = "!",
    now: float | None = None,
) -> str:
    """One chat line about one activation record; error messages only for moderators."""
    command = f"{prefix}{record['command']}"
    served = f"{record['function']} {record['version']}"
    ago = _ago((now if now is not None else time.time()) - record["time"])
    head = f"{asker}: {whose} last command, {command} ({served}, {ago})"
    ref = f" (ref {record['id']})"
    outcome = record["outcome"]
    if outcome == "ok":
        return f"{head}, ran fine in {record['duration'] * 1000:.0f} ms."
    if outcome == "error":
        detail = f": {_brief(record['error'])}" if moderator and record["error"] else ""
        return f"{head}, failed{detail}.{ref}"
    if outcome == "timeout":
        return f"{head}, took too long and was stopped.{ref}"
    if outcome == "busy":
        return f"{head}, was not run: {record['function']} was busy."
    if outcome == "denied":
        return f"{head}, was refused: {record['reason'] or 'not allowed'}."
    if outcome == "cooldown":
        return f"{head}, was cooling down ({record['reason'] or 'try again later'})."
    return f"{head}, was refused as invalid.{ref}"


def _brief(error: str) -> str:
    # "dice 1.0.0 failed: ValueError: ..." — the function and version are said already.
    text = error.split(" failed: ", 1)[-1]
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _ago(seconds: float) -> str:
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"
