"""CyTube 3.86's rules, as the fake server applies them: names, chat formatting, the 320-unit
cut, the chat throttle and the per-IP connection bucket (/work/shared/cytube-protocol.md)."""

from __future__ import annotations

import re
import time

NAME = re.compile(r"^[\w-]{1,20}$")
CHANNEL = re.compile(r"^[\w-]{1,30}$")
LINK = re.compile(r"(\w+://(?:[^:/\[\]\s]+|\[[0-9a-f:]+\])(?::\d+)?(?:/[^/\s]*)*)", re.I)
FILTERS = [  # CyTube's default chat filters, applied after escaping
    (re.compile(r"`(.+?)`"), r"<code>\1</code>"),
    (re.compile(r"\*(.+?)\*"), r"<strong>\1</strong>"),
    (re.compile(r"_(.+?)_"), r"<em>\1</em>"),
    (re.compile(r"~~(.+?)~~"), r"<s>\1</s>"),
    (re.compile(r"\[sp\](.*?)\[/sp\]", re.I), r'<span class="spoiler">\1</span>'),
]
COMMANDS = {"sp", "say", "shout", "rcv", "clear", "afk", "mute", "smute", "unmute", "kick", "ban"}
MIN_ANTIFLOOD = (20, 10)  # burst, sustained per second


def format_message(text: str) -> str:
    """XSS.sanitizeText, the default filters, then links as anchors (src/channel/chat.js)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    links = LINK.findall(escaped)
    body = LINK.sub("\ueeee", escaped)
    for pattern, replacement in FILTERS:
        body = pattern.sub(replacement, body)
    for link in links:
        anchor = f'<a href="{link}" target="_blank" rel="noopener noreferrer">{link}</a>'
        body = body.replace("\ueeee", anchor, 1)
    return body


def cut(text: str, limit: int) -> str:
    """JavaScript's substring(0, limit): UTF-16 code units."""
    return text.encode("utf-16-le")[: limit * 2].decode("utf-16-le", errors="ignore")


class RateLimiter:
    """src/utilities.js newRateLimiter."""

    def __init__(self) -> None:
        self.count, self.last = 0, 0.0

    def throttle(self, burst: int, sustained: float) -> bool:
        now = time.monotonic()
        since = now - self.last
        if since > burst / sustained:
            self.count, self.last = 1, now
            return False
        if self.count < burst:
            self.count, self.last = self.count + 1, now
            return False
        if since < 1 / sustained:
            return True
        self.count, self.last = self.count + 1, now
        return False


class IpBucket:
    """The per-IP connection TokenBucket(5, 0.1)."""

    def __init__(self, burst: float = 5, rate: float = 0.1) -> None:
        self.burst, self.rate, self.tokens, self.stamp = burst, rate, burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def now_ms() -> int:
    return int(time.time() * 1000)
