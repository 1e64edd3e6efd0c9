"""Quotes: `!quote [id|text|random]`, `!addquote <text>`, `!delquote <id>`, `!quotesearch <words>`.

Each quote is a record of the `quotes` collection: text, a lowercase copy for searching, author
and time. Ids are allocated by the database service (set with id None), so they never repeat.
The handlers are async: ctx.db is awaited on the event loop instead of blocking a worker thread.
"""

from __future__ import annotations

import random
import time
from typing import Any

COLLECTION = "quotes"
MAX_LENGTH = 400


def _show(record: dict[str, Any]) -> str:
    return f"Quote #{record['id']}: {record['text']} (added by {record.get('author', '?')})"


async def _random(ctx: Any) -> dict[str, Any] | None:
    total = await ctx.db.count(COLLECTION)
    if total == 0:
        return None
    page = await ctx.db.query(COLLECTION, limit=1, offset=random.randrange(total))
    return page.records[0] if page.records else None


async def _search(ctx: Any, words: list[str], limit: int) -> list[dict[str, Any]]:
    """Quotes containing every word (case-insensitive); the database narrows by the first."""
    words = [w.lower() for w in words]
    page = await ctx.db.query(COLLECTION, {"lower": {"$contains": words[0]}}, limit=1000)
    found = [r for r in page.records if all(w in r.get("lower", "") for w in words[1:])]
    return found[:limit]


async def quote(event: Any, ctx: Any) -> str:
    args = list(event.args)
    if not args or args[0].lower() == "random":
        record = await _random(ctx)
        return _show(record) if record else "No quotes yet; add one with !addquote <text>"
    word = args[0].lstrip("#")
    if len(args) == 1 and word.isdigit():
        record = await ctx.db.get(COLLECTION, int(word))
        return _show(record) if record else f"{event.user}: there is no quote #{word}."
    found = await _search(ctx, args, 1)
    return _show(found[0]) if found else f"{event.user}: no quote matches {event.text!r}."


async def add(event: Any, ctx: Any) -> str:
    text = event.text.strip()
    if not text:
        return f"{event.user}: usage is !addquote <text>"
    if len(text) > MAX_LENGTH:
        return f"{event.user}: a quote may be at most {MAX_LENGTH} characters."
    record = {"text": text, "lower": text.lower(), "author": event.user, "time": time.time()}
    rid = await ctx.db.set(COLLECTION, None, record)
    return f"Quote #{rid} added."


async def delete(event: Any, ctx: Any) -> str:
    word = event.args[0].lstrip("#") if event.args else ""
    if not word.isdigit() or len(event.args) != 1:
        return f"{event.user}: usage is !delquote <id>, with the quote's number."
    if await ctx.db.delete(COLLECTION, int(word)):
        return f"Quote #{word} deleted."
    return f"{event.user}: there is no quote #{word}."


async def search(event: Any, ctx: Any) -> str | list[str]:
    if not event.args:
        return f"{event.user}: usage is !quotesearch <words>"
    found = await _search(ctx, list(event.args), int(ctx.config.get("search_results", 3)))
    if not found:
        return f"{event.user}: no quote matches {event.text!r}."
    return [_show(r) for r in found]
