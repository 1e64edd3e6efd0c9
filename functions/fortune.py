"""Fortunes: `!fortune` tells one, `!fortune favorite` repeats the user's last one (kept in the
database, so it survives restarts)."""

from __future__ import annotations

import random
import time
from typing import Any

COLLECTION = "fortunes"

FORTUNES = (
    "A pleasant surprise is waiting for you.",
    "Your hard work will soon pay off.",
    "Now is the time to try something new.",
    "A good playlist is worth a thousand words.",
    "You will be hungry again in one hour.",
    "An old friend will bring good news.",
    "The next video will be better than the last.",
    "Fortune favours the bold, and the well rested.",
    "Someone in this chat admires your taste.",
    "Adventure can be real happiness.",
    "Do not mistake temptation for opportunity.",
    "Your ability to juggle many tasks will take you far.",
    "Patience is a virtue, unless the video is buffering.",
    "You will soon discover a hidden talent.",
    "A smile is your passport into the hearts of others.",
    "Today is a good day to skip the intro.",
    "The greatest risk is not taking one.",
    "Good things come to those who queue.",
    "You are about to find something you lost.",
    "A journey of a thousand miles begins with a single click.",
    "Your laugh will brighten someone's day.",
    "Help! I am being held prisoner in a chat bot.",
    "Curiosity will lead you somewhere wonderful.",
    "Be careful what you vote to skip.",
    "The stars say: hydrate.",
    "A surprise guest will join the channel.",
    "Your next idea will be a good one; write it down.",
    "Luck is what happens when preparation meets opportunity.",
    "He who laughs last did not get the joke.",
    "This fortune intentionally left blank.",
)


# Async: ctx.db is awaited on the event loop instead of blocking a worker thread.
async def tell(event: Any, ctx: Any) -> str:
    user = event.user or "someone"
    if event.args and event.args[0].lower() in ("favorite", "favourite", "fav", "last"):
        kept = await ctx.db.get(COLLECTION, user.lower())
        if kept is None:
            return f"{user}: you have no fortune yet; try !fortune"
        return f"{user}'s fortune: {kept['text']}"
    if event.args:
        return f"{user}: usage is !fortune or !fortune favorite"
    text = random.choice(list(ctx.config.get("fortunes") or FORTUNES))
    await ctx.db.set(COLLECTION, user.lower(), {"user": user, "text": text, "time": time.time()})
    return f"{user}'s fortune: {text}"
