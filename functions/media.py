"""Media: `!add <url> [next]`, `!np`, `!playlist [n]`, `!skip`, `!shuffle`, `!remove <n>`.

Everything acts through ctx.channel (manifest `actions: [playlist]`). The bot queues the items,
so the server's `queueby` is the bot's name: who asked is kept in the collection
`media_requests`, one record per playlist item keyed by `<channel>:<type>:<id>`. Not by uid: a
shuffle gives every item a new uid, while CyTube never holds the same type+id twice in a
playlist. Skip votes are counted in `media_skips`, one record per channel for the item playing
now, one field per voter, incremented atomically so a vote counts once whichever runtime ran it.
The handlers are async: ctx.channel and ctx.db are awaited on the event loop, with no hop to a
worker thread and back.
"""

from __future__ import annotations

import math
import time
from typing import Any

from rosey import ChannelError

REQUESTS = "media_requests"
SKIPS = "media_skips"
PRUNE_AFTER = 60  # seconds: a request record older than this whose item is gone is deleted
TITLE = 60  # characters of a title shown in a listing


def clock(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour."""
    total = int(max(0, seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def length(seconds: float) -> str:
    return clock(seconds) if seconds else "live"


def _short(text: str, size: int = TITLE) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _config(ctx: Any, key: str, default: float) -> float:
    value = ctx.config.get(key, default)
    return float(value) if isinstance(value, int | float) else default


def _key(channel: str | None, item: dict[str, Any]) -> str:
    return f"{channel or ''}:{item.get('type')}:{item.get('id')}"


def _refusal(user: str, what: str, error: ChannelError) -> str:
    return f"{user}: could not {what}: {_short(str(error), 200)}"


async def _requests(ctx: Any, channel: str | None) -> dict[str, dict[str, Any]]:
    """This channel's request records by key."""
    page = await ctx.db.query(REQUESTS, {"channel": channel or ""}, limit=1000)
    return {r["key"]: r for r in page.records if "key" in r}


def _who(item: dict[str, Any], requests: dict[str, dict[str, Any]], channel: str | None) -> str:
    record = requests.get(_key(channel, item))
    return str(record["user"]) if record else str(item.get("queueby") or "")


async def _upcoming(ctx: Any) -> list[dict[str, Any]]:
    """The items in the order they will play: those after the item playing now, then those
    before it (the playlist loops); all of it when nothing is playing."""
    playlist = await ctx.channel.playlist()
    media = await ctx.channel.media()
    if not media:
        return list(playlist)
    for i, item in enumerate(playlist):
        if ("uid" in media and item.get("uid") == media["uid"]) or (
            "uid" not in media
            and (item.get("type"), item.get("id")) == (media.get("type"), media.get("id"))
        ):
            return list(playlist[i + 1 :]) + list(playlist[:i])  # CyTube's playlist loops
    return list(playlist)


async def _prune(ctx: Any, channel: str | None, playlist: list[dict[str, Any]]) -> None:
    """Delete request records of items no longer on the playlist (older than a minute, so an
    item another runtime is adding right now keeps its record)."""
    keep = {_key(channel, item) for item in playlist}
    old = await ctx.db.query(
        REQUESTS, {"channel": channel or "", "time": {"$lt": time.time() - PRUNE_AFTER}}, limit=100
    )
    for record in old.records:
        if record.get("key") not in keep:
            await ctx.db.delete(REQUESTS, record["id"])


async def add(event: Any, ctx: Any) -> str:
    user, args = event.user or "?", list(event.args)
    if not args or len(args) > 2 or (len(args) == 2 and args[1].lower() != "next"):
        return f"{user}: usage is !add <url> [next]"
    url, next_ = args[0], len(args) == 2
    exempt = event.rank >= _config(ctx, "exempt_rank", 2)
    if next_ and event.rank < _config(ctx, "next_rank", 2):
        return f"{user}: only moderators may add next; !add <url> queues at the end."
    limit = int(_config(ctx, "max_per_user", 3))
    if not exempt and limit > 0:
        requests = await _requests(ctx, event.channel)
        mine = sum(
            1
            for item in await _upcoming(ctx)
            if _who(item, requests, event.channel).lower() == user.lower()
        )
        if mine >= limit:
            return f"{user}: you have {mine} items queued already (the limit is {limit})."
    try:
        item = await ctx.channel.add(url, next=next_)
    except ChannelError as e:
        return _refusal(user, "add that", e)
    title = _short(str(item.get("title") or url))
    duration = float(item.get("duration") or 0)
    longest = _config(ctx, "max_duration", 900)
    if not exempt and longest > 0 and duration > longest:
        try:
            await ctx.channel.remove(item["uid"])
        except ChannelError as e:
            ctx.log.warning("could not remove %s, which is too long: %s", title, e)
        return f"{user}: {title} is {clock(duration)} long; at most {clock(longest)} is allowed."
    key = _key(event.channel, item)
    record = {"key": key, "channel": event.channel or "", "user": user, "title": title}
    await ctx.db.set(REQUESTS, key, {**record, "time": time.time()})
    await _prune(ctx, event.channel, await ctx.channel.playlist())
    return f"{user} added {title} ({length(duration)}){' to play next' if next_ else ''}."


async def now_playing(event: Any, ctx: Any) -> str:
    media = await ctx.channel.media()
    if not media:
        return "Nothing is playing."
    title = _short(str(media.get("title") or "?"), 120)
    elapsed, duration = float(media.get("current_time") or 0), float(media.get("duration") or 0)
    where = f"{clock(elapsed)}/{clock(duration)}" if duration else f"{clock(elapsed)}, live"
    record = await ctx.db.get(REQUESTS, _key(event.channel, media))
    who = record["user"] if record else media.get("queueby")
    return f"Now playing: {title} [{where}]" + (f", queued by {who}." if who else ".")


async def playlist(event: Any, ctx: Any) -> str | list[str]:
    user = event.user or "?"
    cap = int(_config(ctx, "playlist_max", 5))
    if len(event.args) > 1 or (event.args and not event.args[0].isdigit()):
        return f"{user}: usage is !playlist [n], at most {cap}"
    n = int(event.args[0]) if event.args else int(_config(ctx, "playlist_default", 3))
    n = max(1, min(n, cap))
    upcoming = await _upcoming(ctx)
    if not upcoming:
        return "Nothing is queued."
    requests = await _requests(ctx, event.channel)
    shown = []
    for i, item in enumerate(upcoming[:n], 1):
        who = _who(item, requests, event.channel)
        by = f", {who}" if who else ""
        shown.append(
            f"{i}. {_short(str(item.get('title') or '?'))} ({length(item.get('duration') or 0)}{by})"
        )
    if len(upcoming) > n:
        shown.append(f"… and {len(upcoming) - n} more.")
    return shown


async def skip(event: Any, ctx: Any) -> str | None:
    user = event.user or "?"
    state = await ctx.channel.state("all")
    media = state.get("media")
    if not media:
        return "Nothing is playing."
    title = _short(str(media.get("title") or "?"))
    if event.rank >= _config(ctx, "skip_rank", 2):
        try:
            await ctx.channel.skip()
        except ChannelError as e:
            return _refusal(user, "skip", e)
        return f"{user} skipped {title}."
    bot = str((state.get("bot") or {}).get("name") or "").lower()
    present = {
        str(u.get("name", "")).lower()
        for u in state.get("users") or []
        if not u.get("afk") and str(u.get("name", "")).lower() != bot
    }
    present.add(user.lower())  # a user who just typed is there and not AFK
    need = max(1, math.ceil(_config(ctx, "skip_ratio", 0.5) * len(present)))
    rid = event.channel or ""
    item = f"{media.get('uid', '')}:{media.get('type')}:{media.get('id')}"
    record = await ctx.db.get(SKIPS, rid)
    if record is None or record.get("item") != item:
        await ctx.db.set(SKIPS, rid, {"channel": rid, "item": item, "title": title})
    vote = f"v:{user.lower()}"
    record = await ctx.db.update(SKIPS, rid, inc={vote: 1}) or {}
    votes = sum(1 for k in record if k.startswith("v:") and k[2:] in present)
    if votes >= need:
        claimed = await ctx.db.update(SKIPS, rid, inc={"skipped": 1}) or {}
        if claimed.get("skipped") != 1:
            return None  # another vote, maybe on another runtime, skipped it already
        try:
            await ctx.channel.skip()
        except ChannelError as e:
            return _refusal(user, "skip", e)
        return f"Skipping {title} ({votes}/{need} votes)."
    if record.get(vote, 1) > 1:
        return f"{user}: you already voted to skip this ({votes}/{need})."
    return f"{user} voted to skip {title} ({votes}/{need})."


async def shuffle(event: Any, ctx: Any) -> str:
    try:
        await ctx.channel.shuffle()
    except ChannelError as e:
        return _refusal(event.user or "?", "shuffle", e)
    return "Playlist shuffled."


async def remove(event: Any, ctx: Any) -> str:
    user = event.user or "?"
    if len(event.args) != 1 or not event.args[0].lstrip("#").isdigit():
        return f"{user}: usage is !remove <n>, n a position shown by !playlist"
    n = int(event.args[0].lstrip("#"))
    upcoming = await _upcoming(ctx)
    if not 1 <= n <= len(upcoming):
        return f"{user}: there is no #{n}; {len(upcoming)} items are queued."
    item = upcoming[n - 1]
    key = _key(event.channel, item)
    record = await ctx.db.get(REQUESTS, key)
    who = str(record["user"]) if record else str(item.get("queueby") or "")
    title = _short(str(item.get("title") or "?"))
    if who.lower() != user.lower() and event.rank < _config(ctx, "remove_rank", 2):
        return f"{user}: #{n} is not yours ({title}, queued by {who or 'someone else'})."
    try:
        await ctx.channel.remove(item["uid"])
    except ChannelError as e:
        return _refusal(user, "remove it", e)
    await ctx.db.delete(REQUESTS, key)
    return f"{user} removed {title}."
