"""`!stats`: commands served, top users and uptime, from the runtime's own counters.

The runtime counts successful commands per user and per command (runtime/usage.py) and answers
the NATS request `rosey.stats` with them; this handler asks and formats the answer.
"""

from __future__ import annotations

from typing import Any

SUBJECT = "rosey.stats"


def duration(seconds: float) -> str:
    """`3725` → `1h 2m`; the two largest units."""
    seconds = int(seconds)
    parts = [(seconds // 86400, "d"), (seconds // 3600 % 24, "h"), (seconds // 60 % 60, "m")]
    shown = [f"{n}{unit}" for n, unit in parts if n]
    return " ".join(shown[:2]) or f"{seconds}s"


# Async: the request is awaited on the event loop, where a sync handler would hold a worker
# thread while it waits for the answer.
async def show(event: Any, ctx: Any) -> str:
    top = int(ctx.config.get("top", 3))
    try:
        reply = await ctx.request(SUBJECT, {"top": top}, timeout=2.0)
    except Exception as e:  # BusError and friends: say so in one line, no traceback in chat
        ctx.log.warning("stats request failed: %s", e)
        return f"{event.user}: stats are not available right now."
    if not reply.get("success"):
        return f"{event.user}: stats are not available right now."
    data = reply.get("data") or {}
    users = ", ".join(f"{u} ({n})" for u, n in data.get("top_users", [])) or "nobody yet"
    busiest = next(iter(data.get("commands") or {}), None)
    favourite = f"; most used !{busiest}" if busiest else ""
    return (
        f"Served {data.get('served', 0)} commands in {duration(data.get('uptime', 0))}"
        f"{favourite}; top users: {users}."
    )
