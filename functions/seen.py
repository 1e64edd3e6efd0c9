"""Seen and greeter: records joins and leaves; `!seen <user>`; `!greet <text>|off` sets the
line Rosey says when you join. Both kept in the database, one record per user name. The handlers
are async: ctx.db is awaited on the event loop instead of blocking a worker thread."""

from __future__ import annotations

import time
from typing import Any

SEEN = "seen"
GREETINGS = "greetings"
MAX_GREETING = 200
MAX_NAME = 100


def ago(seconds: float) -> str:
    seconds = int(max(0, seconds))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


async def on_join(event: Any, ctx: Any) -> str | None:
    user = event.user or ""
    if not user:
        return None
    await ctx.db.set(SEEN, user.lower(), {"user": user, "time": time.time(), "what": "joined"})
    greeting = await ctx.db.get(GREETINGS, user.lower())
    return greeting["text"].replace("{user}", user) if greeting else None


async def on_leave(event: Any, ctx: Any) -> None:
    if event.user:
        await ctx.db.set(
            SEEN, event.user.lower(), {"user": event.user, "time": time.time(), "what": "left"}
        )


def plausible(name: str) -> bool:
    """A name the contract admits for a user (1 to 100 characters, no control characters), so
    it can be a record id; anything else was never seen."""
    return 0 < len(name) <= MAX_NAME and not any(ord(c) < 32 or ord(c) == 127 for c in name)


async def seen(event: Any, ctx: Any) -> str:
    if len(event.args) != 1:
        return f"{event.user}: usage is !seen <user>"
    name = event.args[0].lstrip("@")
    if name.lower() == (event.user or "").lower():
        return f"{event.user}: I see you right now."
    if not plausible(name):
        return f"{event.user}: I have not seen that user."
    record = await ctx.db.get(SEEN, name.lower())
    if record is None:
        return f"{event.user}: I have not seen {name}."
    return f"{record['user']} {record['what']} {ago(time.time() - record['time'])}."


async def greet(event: Any, ctx: Any) -> str:
    user = event.user or ""
    text = event.text.strip()
    if not text:
        current = await ctx.db.get(GREETINGS, user.lower())
        shown = f"your greeting is: {current['text']}" if current else "you have no greeting"
        return (
            f"{user}: {shown}. Set one with !greet <text> ({{user}} is your name), or !greet off."
        )
    if text.lower() == "off":
        await ctx.db.delete(GREETINGS, user.lower())
        return f"{user}: greeting removed."
    if len(text) > MAX_GREETING:
        return f"{user}: a greeting may be at most {MAX_GREETING} characters."
    if text.startswith(("/", "!")):
        return f"{user}: a greeting may not start with / or !"
    await ctx.db.set(GREETINGS, user.lower(), {"user": user, "text": text})
    return f"{user}: greeting saved."
