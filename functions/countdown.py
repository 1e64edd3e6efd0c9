"""Countdowns: `!countdown <name> <time or duration>`, recurring with `every friday 20:00`,
alerts before the end, `!countdown list|cancel <name>`. Kept in the database and driven by a
manifest schedule (`tick`), so they survive restarts and fire once however many runtimes run.
The handlers are async: they run on the event loop (ctx.db and ctx.send_chat awaited) with no hop
to a worker thread and back."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from runtime.config.cron import Cron, zone

COLLECTION = "countdowns"
MAX_PER_CHANNEL = 20
_PART = re.compile(r"(\d+)([dhms])")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CountdownError(ValueError):
    pass


def parse_when(words: list[str], now: float, tz_name: str = "UTC") -> tuple[float, str | None]:
    """The target time (epoch seconds) and, for `every ...`, the cron expression it repeats on."""
    text = " ".join(words).lower().strip()
    tz = zone(tz_name)
    if re.fullmatch(r"(\d+[dhms])+", text):
        seconds = sum(
            int(n) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[u] for n, u in _PART.findall(text)
        )
        if seconds <= 0:
            raise CountdownError("the duration must be more than zero")
        return now + seconds, None
    recurring = text.startswith("every ")
    text = text.removeprefix("every ").strip()
    match = re.fullmatch(
        r"(?:(\d{4})-(\d{2})-(\d{2})|(day|daily|[a-z]+))?\s*(?:(\d{1,2}):(\d{2}))?", text
    )
    if not match or not text:
        raise CountdownError(
            "give a duration (90m, 2h30m) or a time (20:00, friday 20:00, 2030-01-01 18:00, every friday 20:00)"
        )
    year, month, day, word, hour, minute = match.groups()
    h, m = (int(hour), int(minute)) if hour else (0, 0)
    if h > 23 or m > 59:
        raise CountdownError(f"{hour}:{minute} is not a time of day")
    if year:
        if recurring:
            raise CountdownError("every needs a weekday or day, not a date")
        try:
            target = datetime(int(year), int(month), int(day), h, m, tzinfo=tz)
        except ValueError as e:
            raise CountdownError(f"not a date: {e}") from e
        if target.timestamp() <= now:
            raise CountdownError("that time has passed")
        return target.timestamp(), None
    weekday = "*"
    if word and word not in ("day", "daily"):
        found = [d for d in _DAYS if word.startswith(d)]
        if not found:
            raise CountdownError(f"{word!r} is not a weekday")
        weekday = found[0]
    elif word is None and recurring:
        raise CountdownError("every needs a weekday or day, as in every friday 20:00")
    cron = f"{m} {h} * * {weekday}"
    moment = datetime.fromtimestamp(now, tz)
    target_time = Cron.parse(cron).next_after(moment).timestamp()
    return target_time, cron if recurring else None


def remaining(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts[:3]) if parts else f"{secs}s"


def _key(channel: str | None, name: str) -> str:
    return f"{channel or '-'}:{name.lower()}"


async def command(event: Any, ctx: Any) -> str | list[str]:
    user, args = event.user, list(event.args)
    usage = f"{user}: usage is !countdown <name> <time or duration>, !countdown list, !countdown cancel <name>"
    if not args:
        return usage
    if args[0].lower() == "list":
        page = await ctx.db.query(
            COLLECTION, {"channel": event.channel or "-"}, order_by="target", limit=MAX_PER_CHANNEL
        )
        if not page.records:
            return "No countdowns. Start one with !countdown <name> <time or duration>"
        now = time.time()
        return "Countdowns: " + "; ".join(
            f"{r['name']} in {remaining(r['target'] - now)}"
            + (" (repeats)" if r.get("cron") else "")
            for r in page.records
        )
    if args[0].lower() == "cancel":
        if len(args) != 2:
            return f"{user}: usage is !countdown cancel <name>"
        record = await ctx.db.get(COLLECTION, _key(event.channel, args[1]))
        if record is None:
            return f"{user}: there is no countdown {args[1]!r}."
        if event.rank < 2 and record.get("creator", "").lower() != (user or "").lower():
            return (
                f"{user}: only {record.get('creator')} or a moderator may cancel {record['name']}."
            )
        await ctx.db.delete(COLLECTION, _key(event.channel, args[1]))
        return f"Countdown {record['name']} cancelled."
    name = args[0]
    if not re.fullmatch(r"[\w-]{1,32}", name):
        return f"{user}: a countdown name is 1 to 32 letters, digits, - or _."
    if len(args) == 1:
        record = await ctx.db.get(COLLECTION, _key(event.channel, name))
        if record is None:
            return usage
        return f"{record['name']}: {remaining(record['target'] - time.time())} to go."
    now = time.time()
    try:
        target, cron = parse_when(args[1:], now, ctx.config.get("timezone", "UTC"))
    except CountdownError as e:
        return f"{user}: {e}"
    if await ctx.db.count(COLLECTION, {"channel": event.channel or "-"}) >= MAX_PER_CHANNEL:
        return f"{user}: this channel has {MAX_PER_CHANNEL} countdowns already."
    record = {
        "name": name,
        "channel": event.channel or "-",
        "target": target,
        "cron": cron,
        "creator": user,
        "alerted": [],
    }
    await ctx.db.set(COLLECTION, _key(event.channel, name), record)
    repeats = " and repeats" if cron else ""
    return f"Countdown {name} set: {remaining(target - now)} to go{repeats}."


async def tick(event: Any, ctx: Any) -> None:
    """Every 30 s (manifest schedule): alerts, the end, and the next round of recurring ones."""
    now = time.time()
    alerts = sorted((int(a) for a in ctx.config.get("alerts", [3600, 600, 60])), reverse=True)
    tz = ctx.config.get("timezone", "UTC")
    page = await ctx.db.query(COLLECTION, {"target": {"$lte": now + max([*alerts, 0])}}, limit=1000)
    for record in page.records:
        channel = None if record["channel"] == "-" else record["channel"]
        left = record["target"] - now
        if left <= 0:
            await ctx.send_chat(f"⏰ {record['name']} is now!", channel)
            if record.get("cron"):
                moment = datetime.fromtimestamp(max(now, record["target"]), zone(tz))
                following = Cron.parse(record["cron"]).next_after(moment).timestamp()
                await ctx.db.update(COLLECTION, record["id"], {"target": following, "alerted": []})
            else:
                await ctx.db.delete(COLLECTION, record["id"])
            continue
        due = [a for a in alerts if left <= a and a not in record.get("alerted", [])]
        if due:
            await ctx.send_chat(f"{record['name']} in {remaining(left)}!", channel)
            await ctx.db.update(
                COLLECTION, record["id"], {"alerted": [*record.get("alerted", []), *due]}
            )
