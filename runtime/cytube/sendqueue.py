"""Outbound chat: splitting, refusing, a token bucket, and one queue that confirms every line."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.constants import SEND_PM

log = logging.getLogger("rosey.cytube.send")

# How long the server gets to echo a line back (or refuse it) before it counts as unconfirmed.
CONFIRM_TIMEOUT = 5.0
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f]+")
_COMMAND_START = ("/", ">")
ZWSP = "\u200b"  # invisible; keeps a continuation piece from being read as a command


def utf16_len(text: str) -> int:
    """Length as CyTube counts it (JavaScript's UTF-16 code units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _fit(text: str, limit: int) -> int:
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return max(i, 1)
    return len(text)


def _cut(text: str, fit: int) -> tuple[int, int]:
    # The last run of spaces within the limit, preferring one after which the next piece does
    # not start with `/` or `>` (a chat command or greentext) if that does not halve the piece.
    allowed: tuple[int, int] | None = None
    last: tuple[int, int] | None = None
    for space in _SPACE.finditer(text):
        if space.start() > fit:
            break
        if space.start() > 0:
            last = (space.start(), space.end())
            if text[space.end() : space.end() + 1] not in _COMMAND_START:
                allowed = last
    if allowed is not None and allowed[0] >= fit // 2:
        return allowed
    return last or allowed or (fit, fit)  # no space at all: cut inside the word


def split_text(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` UTF-16 units, cut at word boundaries where possible.
    A piece after the first never starts with `/` or `>`: if it would, it starts with U+200B."""
    pieces: list[str] = []
    text = text.strip()
    while utf16_len(text) > limit:
        end, start = _cut(text, _fit(text, limit))
        pieces.append(text[:end].rstrip())
        text = text[start:].lstrip()
        if text.startswith(_COMMAND_START):
            text = ZWSP + text
    if text:
        pieces.append(text)
    return pieces


@dataclass
class Outgoing:
    """One chat line or PM as it goes out, with the payload it came from (for failure reports)."""

    kind: str  # "chat", "pm", or "command" (a moderator's chat command: no echo comes back)
    text: str
    subject: str
    payload: dict[str, Any]
    part: int = 1
    parts: int = 1
    queued: float = field(default_factory=time.monotonic)
    attempts: int = 0
    # A command's confirmation: true for the server event that shows it took effect.
    confirm: Callable[[str, Any], bool] | None = None
    # Told the outcome (None, "") or (code, reason) instead of a cytube.send.failed report.
    done: Callable[[str | None, str], None] | None = None

    @property
    def to(self) -> str | None:
        to: str | None = self.payload.get("to")
        return to


class Refused(Exception):
    """A payload that must not be sent at all (reported on cytube.send.failed, never raised out)."""

    def __init__(self, code: str, reason: str) -> None:
        self.code, self.reason = code, reason
        super().__init__(reason)


def prepare(subject: str, payload: dict[str, Any], limit: int) -> list[Outgoing]:
    """A validated cytube.send.* payload as the lines to send; raises Refused for text that
    would start a chat command or greentext (unless `emote` asks for `/me`)."""
    emote = bool(payload.get("emote"))
    lines = [_CONTROL.sub(" ", line).strip() for line in payload["message"].splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise Refused("refused", "the message is blank")
    if not emote:
        for line in lines:
            if line.startswith(_COMMAND_START):
                raise Refused(
                    "refused",
                    f"text starting with {line[0]!r} is a chat command or greentext in CyTube;"
                    " Rosey does not send it (use emote for /me)",
                )
    prefix = "/me " if emote else ""
    pieces = [p for line in lines for p in split_text(line, limit - len(prefix))]
    kind = "pm" if subject == SEND_PM else "chat"
    return [
        Outgoing(kind, prefix + piece, subject, payload, i, len(pieces))
        for i, piece in enumerate(pieces, 1)
    ]


class TokenBucket:
    """`burst` tokens, refilled at `rate` per second."""

    def __init__(
        self, burst: float, rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst, self.rate, self.clock = burst, rate, clock
        self.tokens = float(burst)
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def delay(self) -> float:
        """Seconds until a token is free (0 when one is)."""
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self.tokens -= 1

    def empty(self) -> None:
        self._refill()
        self.tokens = min(self.tokens, 0.0)

    async def acquire(self) -> None:
        wait = self.delay()
        if wait > 0:
            await asyncio.sleep(wait)  # exactly long enough for one token to refill
        self.take()


class Link(Protocol):
    """What the queue needs from the connection."""

    async def wait_ready(self) -> None: ...

    def refusal(self, item: Outgoing) -> tuple[str, str] | None: ...

    async def emit(self, item: Outgoing) -> None: ...


Report = Callable[[Outgoing, str, str], Awaitable[None]]


class SendQueue:
    """Sends one line at a time, in order, and waits for the server's echo before the next:
    `cooldown` means re-send, an error means report; nothing leaves the queue unaccounted for."""

    def __init__(
        self,
        link: Link,
        report: Report,
        *,
        burst: float = 4,
        rate: float = 1.0,
        size: int = 200,
        max_wait: float = 120.0,
        retries: int = 5,
        confirm_timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        self.link, self.report = link, report
        self.bucket = TokenBucket(burst, rate)
        self.size, self.max_wait, self.retries = size, max_wait, retries
        self.confirm_timeout = confirm_timeout
        self.items: deque[Outgoing] = deque()
        self.sent = 0
        self.failed = 0
        self.cooldowns = 0
        self._wake = asyncio.Event()
        self._inflight: tuple[Outgoing, asyncio.Future[tuple[str, Any]]] | None = None

    def put(self, items: list[Outgoing]) -> bool:
        """Queue all of `items`, or none of them when the queue is full."""
        if len(self.items) + len(items) > self.size:
            return False
        self.items.extend(items)
        self._wake.set()
        return True

    @property
    def busy(self) -> int:
        return len(self.items)

    # Signals from the connection, in the order the server sent them.

    def confirmed(self, kind: str) -> None:
        self._resolve(("ok", None), kind)

    def cooldown(self, ms: float) -> None:
        self._resolve(("cooldown", ms))

    def rejected(self, code: str, reason: str) -> bool:
        """The server refused the line in flight; False when nothing was in flight."""
        return self._resolve(("rejected", (code, reason)))

    def lost(self) -> None:
        self._resolve(("lost", None))

    def observe(self, event: str, data: Any) -> None:
        """Any server event: confirms a command in flight when it is the one it waits for."""
        if self._inflight is None:
            return
        item, _ = self._inflight
        if item.confirm is not None and item.confirm(event, data):
            self._resolve(("ok", None), item.kind)

    def _resolve(self, outcome: tuple[str, Any], kind: str | None = None) -> bool:
        if self._inflight is None:
            return False
        item, future = self._inflight
        if future.done() or (kind is not None and kind != item.kind):
            return False
        future.set_result(outcome)
        return True

    async def run(self) -> None:
        while True:
            while not self.items:
                self._wake.clear()
                await self._wake.wait()
            item = self.items[0]
            left = item.queued + self.max_wait - time.monotonic()
            if left <= 0:
                await self._fail(item, "expired", f"not sent within {self.max_wait:g}s")
                continue
            try:
                async with asyncio.timeout(left):
                    await self.link.wait_ready()
            except TimeoutError:
                continue
            refusal = self.link.refusal(item)
            if refusal is not None:
                await self._fail(item, *refusal)
                continue
            await self.bucket.acquire()
            outcome, detail = await self._send(item)
            if outcome == "ok":
                self.items.popleft()
                self.sent += 1
                if item.done is not None:
                    item.done(None, "")
            elif outcome == "rejected":
                await self._fail(item, *detail)
            elif outcome == "timeout":
                echo = "confirm" if item.kind == "command" else "echo"
                await self._fail(
                    item,
                    "unconfirmed",
                    f"the server did not {echo} it within {self.confirm_timeout:g}s",
                )
            else:  # cooldown, or the connection dropped before the echo: send it again
                item.attempts += 1
                if item.attempts > self.retries:
                    await self._fail(item, outcome, f"gave up after {self.retries} re-sends")
                elif outcome == "cooldown":
                    self.cooldowns += 1
                    self.bucket.empty()
                    await asyncio.sleep(max(float(detail or 0) / 1000, 0.05))

    async def _send(self, item: Outgoing) -> tuple[str, Any]:
        future: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()
        self._inflight = (item, future)
        try:
            try:
                await self.link.emit(item)
            except Exception as e:
                log.debug("emit failed: %s", e)
                return "lost", None
            try:
                return await asyncio.wait_for(future, self.confirm_timeout)
            except TimeoutError:
                return "timeout", None
        finally:
            self._inflight = None

    async def _fail(self, item: Outgoing, code: str, reason: str) -> None:
        self.items.popleft()
        self.failed += 1
        if item.done is not None:
            item.done(code, reason)
        else:
            await self.report(item, code, reason)

    async def fail_all(self, code: str, reason: str) -> None:
        """Report everything still queued (the connector is stopping or lost its lease)."""
        while self.items:
            await self._fail(self.items[0], code, reason)
