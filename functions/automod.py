"""Automod: reads every chat line (`cytube.chat`) and acts on flooding, too many lines, shouting,
links below a rank and banned words, escalating warn → mute → kick within a window.

Moderators and up are exempt. Each action says why with ctx.explain (the activation record's
reason) and is done with ctx.channel.moderate, or as a chat line naming the user for a warning
(and whenever the bot may not mute or kick, so an offender is at least warned). The state is per
user in the collection `automod` (id `<channel>:<user>`), so any runtime can read the next
line; the manifest's `concurrency: 1` keeps one runtime's lines of a user in order.
The handlers are async: automod reads every chat line, so each line is handled on the event loop
(ctx.db, ctx.channel and ctx.send_chat awaited) with no hop to a worker thread and back.
"""

from __future__ import annotations

import re
import time
from typing import Any

from rosey import ChannelError

STATE = "automod"
LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S")
URL = re.compile(r"(?i)\b(?:https?://|www\.)\S*")
STEPS = ("warn", "mute", "smute", "kick", "ban")
DEFAULTS: dict[str, Any] = {
    "exempt_rank": 2,
    "flood": {"repeats": 5, "seconds": 10},
    "rate": {"lines": 12, "seconds": 10},
    "caps": {"min_letters": 20, "ratio": 0.8},
    "links_below_rank": None,
    "banned_words": [],
    "escalation": {"steps": ["warn", "mute", "kick"], "window": 900},
    "mute_seconds": 300,
}
WHAT = {
    "flood": "stop repeating the same line",
    "rate": "slow down",
    "caps": "stop shouting",
    "link": "no links from your rank here",
    "word": "watch your language",
}


def settings(config: Any) -> dict[str, Any]:
    """The defaults with the manifest's config over them (nested maps merged one level)."""
    found = dict(DEFAULTS)
    for key, value in dict(config or {}).items():
        if isinstance(value, dict) and isinstance(found.get(key), dict):
            found[key] = {**found[key], **value}
        else:
            found[key] = value
    return found


def _on(rule: Any, *keys: str) -> bool:
    """A rule is on when it is a map whose numbers are all positive."""
    return isinstance(rule, dict) and all(
        isinstance(rule.get(k), int | float) and rule[k] > 0 for k in keys
    )


def same_line(message: str) -> str:
    return " ".join(message.lower().split())


def shouting(message: str, rule: Any) -> bool:
    if not _on(rule, "min_letters", "ratio"):
        return False
    letters = [c for c in URL.sub(" ", message) if c.isalpha()]
    if len(letters) < rule["min_letters"]:
        return False
    return sum(c.isupper() for c in letters) >= rule["ratio"] * len(letters)


def banned(message: str, words: Any) -> str | None:
    lower = same_line(message)
    for word in words if isinstance(words, list) else []:
        w = str(word).lower().strip()
        if w and re.search(rf"(?<!\w){re.escape(w)}(?!\w)", lower):
            return w
    return None


def offence(
    cfg: dict[str, Any], lines: list[list[Any]], message: str, rank: float, now: float
) -> tuple[str, str] | None:
    """(rule, reason) for the newest line (the last of `lines`), or None."""
    word = banned(message, cfg["banned_words"])
    if word:
        return "word", f"banned word {word!r}"
    below = cfg["links_below_rank"]
    if isinstance(below, int | float) and rank < below and LINK.search(message):
        return "link", f"a link below rank {below:g}"
    if shouting(message, cfg["caps"]):
        return "caps", "a long line in capitals"
    flood = cfg["flood"]
    if _on(flood, "repeats", "seconds"):
        norm = lines[-1][1]
        repeats = sum(1 for t, text in lines if text == norm and now - t <= flood["seconds"])
        if repeats >= flood["repeats"]:
            return "flood", f"the same line {repeats} times within {flood['seconds']:g}s"
    rate = cfg["rate"]
    if _on(rate, "lines", "seconds"):
        recent = sum(1 for t, _ in lines if now - t <= rate["seconds"])
        if recent >= rate["lines"]:
            return "rate", f"{recent} lines within {rate['seconds']:g}s"
    return None


def _when(event: Any) -> float:
    sent = event.payload.get("time")
    return sent / 1000 if isinstance(sent, int | float) and sent > 0 else time.time()


async def on_chat(event: Any, ctx: Any) -> None:
    data = event.payload
    user, message = str(data.get("user") or ""), str(data.get("message") or "")
    cfg = settings(ctx.config)
    if not user or not message or event.rank >= cfg["exempt_rank"]:
        return
    now = _when(event)
    rid = f"{event.channel or ''}:{user.lower()}"
    record = await ctx.db.get(STATE, rid) or {}
    keep = max(
        float(r["seconds"])
        for r in (cfg["flood"], cfg["rate"], {"seconds": 0})
        if _on(r, "seconds")
    )
    lines = [x for x in record.get("lines", []) if now - x[0] <= keep]
    lines.append([now, same_line(message)])
    escalation = cfg["escalation"] if isinstance(cfg["escalation"], dict) else {}
    window = float(escalation.get("window") or 0)
    strikes = [t for t in record.get("strikes", []) if now - t <= window]
    found = offence(cfg, lines, message, event.rank, now)
    state = {
        "channel": event.channel or "",
        "user": user,
        "lines": lines,
        "strikes": strikes,
        "muted_until": record.get("muted_until", 0),
    }
    if found is not None:
        rule, reason = found
        strikes.append(now)
        if rule in ("flood", "rate"):
            state["lines"] = []  # the burst is dealt with; the next one counts afresh
        steps = [s for s in escalation.get("steps") or ["warn"] if s in STEPS] or ["warn"]
        step = steps[min(len(strikes), len(steps)) - 1]
        if step in ("mute", "smute"):
            seconds = float(cfg["mute_seconds"] or 0)
            state["muted_until"] = now + seconds if seconds > 0 else 0
        await _act(ctx, event, user, rule, reason, step, len(strikes))
    await ctx.db.set(STATE, rid, state)


async def _act(
    ctx: Any, event: Any, user: str, rule: str, reason: str, step: str, strike: int
) -> None:
    why = f"{step} {user}: {reason} (strike {strike})"
    if step != "warn":
        try:
            await ctx.channel.moderate(step, user, f"automod: {reason}")
        except ChannelError as e:
            why += f"; could not {step}: {e}, warned instead"
            step = "warn"
    ctx.explain(why)
    if step == "warn":
        await ctx.send_chat(
            f"{user}: please {WHAT[rule]} ({reason}; automod warning).", event.channel
        )
    elif step in ("mute", "smute"):
        await ctx.send_chat(f"{user} is muted for a while: {reason}.", event.channel)


async def unmute(event: Any, ctx: Any) -> None:
    """Every 30 s (manifest schedule): lift the mutes automod gave whose time is up."""
    now = time.time()
    due = await ctx.db.query(STATE, {"muted_until": {"$gt": 0, "$lte": now}}, limit=50)
    if due.records:
        ctx.explain("unmute " + ", ".join(str(r["user"]) for r in due.records) + ": time is up")
    for record in due.records:
        try:
            await ctx.channel.moderate("unmute", record["user"], "automod: mute time is up")
        except ChannelError as e:
            ctx.log.warning("could not unmute %s: %s", record["user"], e)
        await ctx.db.update(STATE, record["id"], {"muted_until": 0})
