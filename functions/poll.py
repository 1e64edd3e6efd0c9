"""Polls: `!poll [<N>s|<N>m] <title> | <option> | <option> [...]`, `!endpoll`; results announced
when a poll closes (by !endpoll, its timeout, or a moderator in CyTube's own UI).

The open poll's last counts are kept in the collection `polls`, one record per channel, from the
connector's `cytube.poll.open` and `cytube.poll.update` events; `cytube.poll.close` (which carries
no counts, like CyTube's `closePoll`) announces them and deletes the record.
The handlers are async: they run on the event loop (ctx.channel and ctx.db awaited) with no hop to
a worker thread and back.
"""

from __future__ import annotations

import re
import time
from typing import Any

from rosey import ChannelError

POLLS = "polls"
USAGE = "usage is !poll [60s|5m] <title> | <option> | <option> ..."
TIMER = re.compile(r"^(\d{1,5})([sm])$", re.IGNORECASE)
MAX_TITLE = 200
MAX_OPTION = 100


def _number(ctx: Any, key: str, default: int) -> int:
    value = ctx.config.get(key, default)
    return int(value) if isinstance(value, int | float) else default


def parse(text: str) -> tuple[str, list[str], int | None]:
    """(title, options, timeout seconds or None); raises ValueError with what is wrong. A first
    word like `60s` or `5m` is the timeout (`0s` none, so a title may start with `90s`)."""
    timeout = None
    words = text.strip().split(maxsplit=1)
    if len(words) == 2 and (m := TIMER.match(words[0])):
        timeout = int(m[1]) * (60 if m[2].lower() == "m" else 1) or None
        text = words[1]
    title, *rest = [part.strip() for part in text.split("|")]
    options = [o for o in rest if o]
    if not title or len(options) < 2:
        raise ValueError(USAGE)
    if len(title) > MAX_TITLE or any(len(o) > MAX_OPTION for o in options):
        raise ValueError(f"titles may be {MAX_TITLE} and options {MAX_OPTION} characters at most")
    return title, options, timeout


async def open_poll(event: Any, ctx: Any) -> str:
    user = event.user or "?"
    try:
        title, options, timeout = parse(event.text)
    except ValueError as e:
        return f"{user}: {e}"
    most, longest = _number(ctx, "max_options", 10), _number(ctx, "max_timeout", 3600)
    if len(options) > most:
        return f"{user}: a poll may have {most} options at most."
    if timeout is not None and timeout > longest:
        return f"{user}: a poll may run {longest // 60} minutes at most."
    current = await ctx.channel.poll()
    if current:
        return f"{user}: a poll is open already ({current.get('title')}); !endpoll closes it."
    obscured = bool(ctx.config.get("obscured", False))
    try:
        await ctx.channel.open_poll(title, options, timeout=timeout, obscured=obscured)
    except ChannelError as e:
        return f"{user}: could not open the poll: {e}"
    record = {"channel": event.channel or "", "title": title, "options": options}
    await ctx.db.set(
        POLLS, event.channel or "", {**record, "counts": [0] * len(options), "by": user}
    )
    closes = f", closes in {_span(timeout)}" if timeout else ""
    return f"Poll opened: {title} ({len(options)} options{closes})."


def _span(seconds: int) -> str:
    m, s = divmod(seconds, 60)
    return f"{m}m{s:02d}s" if m and s else f"{m}m" if m else f"{s}s"


async def end_poll(event: Any, ctx: Any) -> str | None:
    user = event.user or "?"
    if not await ctx.channel.poll():
        return f"{user}: no poll is open."
    try:
        await ctx.channel.close_poll()
    except ChannelError as e:
        return f"{user}: could not close the poll: {e}"
    return None  # the results follow, from cytube.poll.close


async def on_change(event: Any, ctx: Any) -> None:
    """cytube.poll.open / cytube.poll.update: keep the latest counts."""
    data = event.payload
    record = {
        "channel": event.channel or "",
        "title": str(data.get("title", "")),
        "options": [str(o) for o in data.get("options", [])],
        "counts": [c for c in data.get("counts", [])],
        "time": time.time(),
    }
    await ctx.db.set(POLLS, event.channel or "", record)


def results(record: dict[str, Any]) -> str:
    counts = list(record.get("counts") or [])
    shown = ", ".join(
        f"{option} {counts[i] if i < len(counts) else 0}"
        for i, option in enumerate(record.get("options") or [])
    )
    return f"Poll closed: {record.get('title')}: {shown}"


async def on_close(event: Any, ctx: Any) -> str | None:
    """cytube.poll.close: announce the last counts seen."""
    record = await ctx.db.get(POLLS, event.channel or "")
    if record is None:
        return None
    await ctx.db.delete(POLLS, event.channel or "")
    if not ctx.config.get("announce", True):
        return None
    return results(record)
