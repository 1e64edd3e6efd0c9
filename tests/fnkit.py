"""Calling function handlers without NATS: ctx with an in-memory db (tests/fakedb.py, the Store's
semantics) and channel."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from runtime.constants import ErrorCode
from runtime.errors import ChannelDenied, ChannelError
from tests.clitools import ROOT
from tests.fakedb import FakeDb

__all__ = ["FakeChannel", "FakeCtx", "FakeDb", "chat", "ev", "event", "library"]


class FakeCtx(SimpleNamespace):
    """A SyncContext stand-in: config, db, channel (a FakeChannel), and what the handler sent,
    explained (ctx.explain) or asked to listen."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        db: FakeDb | None = None,
        channel: FakeChannel | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(
            config=dict(config or {}),
            db=db or FakeDb(),
            channel=channel or FakeChannel(),
            log=logging.getLogger("test"),
            **kw,
        )
        self.sent: list[tuple[str, str | None]] = []
        self.explained: list[str] = []
        self.listening: float | None = None

    def explain(self, reason: str) -> None:
        self.explained.append(reason)

    def send_chat(self, text: str, channel: str | None = None) -> None:
        self.sent.append((text, channel))

    def listen(self, seconds: float) -> float:
        self.listening = seconds
        return seconds

    def stop_listening(self) -> None:
        self.listening = None


def ev(
    *args: str,
    user: str = "amy",
    rank: float = 0,
    kind: str = "command",
    channel: str | None = "test",
    text: str | None = None,
) -> SimpleNamespace:
    raw = text if text is not None else " ".join(args)
    return SimpleNamespace(
        args=tuple(args),
        user=user,
        rank=rank,
        kind=kind,
        channel=channel,
        raw_message=raw,
        text=" ".join(args),
    )


def event(
    subject: str, payload: Mapping[str, Any], channel: str | None = "test"
) -> SimpleNamespace:
    """What the invoker hands a manifest `subjects` handler: kind "event", the NATS payload."""
    data = dict(payload)
    if channel is not None:
        data.setdefault("channel", channel)
    rank = data.get("rank", 0)
    return SimpleNamespace(
        kind="event",
        subject=subject,
        payload=data,
        command=None,
        args=(),
        text="",
        user=data.get("user"),
        rank=rank if isinstance(rank, int | float) else 0,
        channel=data.get("channel"),
        raw_message=None,
    )


def chat(
    user: str, message: str, at: float, rank: float = 0, channel: str = "test"
) -> SimpleNamespace:
    """A cytube.chat line as a `subjects` handler gets it; `at` is its time in seconds."""
    payload = {"user": user, "message": message, "rank": rank, "time": int(at * 1000)}
    return event("cytube.chat", payload, channel)


def library(*names: str) -> tuple[dict[str, str], dict[str, str]]:
    """The repository's manifests of `names` and all function files."""
    manifests = {n: (ROOT / "manifests" / f"{n}.yaml").read_text() for n in names}
    code = {
        str(p.relative_to(ROOT / "functions")): p.read_text()
        for p in (ROOT / "functions").rglob("*.py")
    }
    return manifests, code


# ctx.channel in memory (the spec's API, in the blocking forms a sync handler's ctx has).

FAMILY = {
    "add": "playlist",
    "remove": "playlist",
    "move": "playlist",
    "jump": "playlist",
    "skip": "playlist",
    "voteskip": "playlist",
    "shuffle": "playlist",
    "clear": "playlist",
    "set_temp": "playlist",
    "open_poll": "poll",
    "close_poll": "poll",
    "moderate": "moderate",
}
SILENT = "CyTube did not confirm in time; the bot may lack the rank for this"


class FakeChannel:
    """A channel's playlist (with uids), now playing, users, poll and what the bot did.

    `calls` records every action as a tuple (`("add", url, next)`, `("skip",)`,
    `("moderate", action, user, reason)`, ...); `refuse[method] = (code, message)` makes the next
    calls of that method fail like the connector's envelope; `titles[url] = (title, duration)`
    names what an added URL turns into (default: the URL, 0 seconds). Actions outside `actions`
    raise the manifest refusal (PERMISSION_DENIED) before anything is recorded."""

    def __init__(
        self,
        users: list[dict[str, Any]] | None = None,
        bot: str = "rosey",
        rank: float = 2,
        actions: tuple[str, ...] = ("playlist", "poll", "moderate"),
    ) -> None:
        self.bot, self.rank, self.actions = bot, rank, actions
        self.items: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.current_time = 0.0
        self.people: list[dict[str, Any]] = [dict(u) for u in users or []]
        self.open: dict[str, Any] | None = None
        self.calls: list[tuple[Any, ...]] = []
        self.refuse: dict[str, tuple[str, str]] = {}
        self.titles: dict[str, tuple[str, float]] = {}
        self.muted: set[str] = set()
        self.uid = 0

    def _act(self, method: str, *args: Any) -> None:
        family = FAMILY.get(method)
        if family and family not in self.actions:
            raise ChannelDenied("test", family, method)
        if method in self.refuse:
            code, message = self.refuse[method]
            raise ChannelError(ErrorCode(code), message)
        self.calls.append((method, *args))

    def _fail(self, code: str, message: str) -> Any:
        self.calls.pop()
        raise ChannelError(ErrorCode(code), message)

    def _find(self, uid: int) -> int:
        for i, item in enumerate(self.items):
            if item["uid"] == uid:
                return i
        return self._fail("TIMEOUT", SILENT)

    def _play(self, item: dict[str, Any] | None) -> None:
        old = self.current
        if old is not None and old.get("temp") and old in self.items and old is not item:
            self.items.remove(old)
        self.current, self.current_time = item, 0.0

    # Users and state the test sets up

    def join(self, name: str, rank: float = 0, afk: bool = False) -> None:
        self.people.append({"name": name, "rank": rank, "afk": afk})

    def queue(self, title: str, duration: float = 60, queueby: str = "", **kw: Any) -> dict:
        """An item queued by someone in the channel (not by the bot)."""
        self.uid += 1
        item = {
            "uid": self.uid,
            "title": title,
            "duration": duration,
            "type": kw.get("type", "yt"),
            "id": kw.get("id", f"id{self.uid}"),
            "queueby": queueby or self.bot,
            "temp": kw.get("temp", True),
        }
        self.items.append(item)
        if self.current is None:
            self._play(item)
        return dict(item)

    # Actions

    def add(self, url: str, *, next: bool = False, temp: bool = True) -> dict[str, Any]:
        self._act("add", url, next)
        try:
            from runtime.cytube.media import parse

            ref = parse(url)
        except ValueError as e:
            return self._fail("INVALID_INPUT", str(e))
        title, duration = self.titles.get(url, (url, 0))
        same = [i for i in self.items if (i["type"], i["id"]) == (ref.type, ref.id)]
        if same and not next:
            return self._fail("INVALID_INPUT", "This item is already on the playlist")
        for old in same:
            self.items.remove(old)
        self.uid += 1
        item = {
            "uid": self.uid,
            "title": title,
            "duration": duration,
            "type": ref.type,
            "id": ref.id,
            "queueby": self.bot,
            "temp": temp,
        }
        if next and self.current in self.items:
            self.items.insert(self.items.index(self.current) + 1, item)
        else:
            self.items.append(item)
        if self.current is None:
            self._play(item)
        return dict(item)

    def remove(self, uid: int) -> None:
        self._act("remove", uid)
        item = self.items[self._find(uid)]
        if item is self.current:
            self.skip()
            self.calls.pop()
        if item in self.items:
            self.items.remove(item)

    def move(self, uid: int, after: int | str) -> None:
        self._act("move", uid, after)
        item = self.items.pop(self._find(uid))
        at = 0 if after == "prepend" else self._find(int(after)) + 1
        self.items.insert(at, item)

    def jump(self, uid: int) -> None:
        self._act("jump", uid)
        self._play(self.items[self._find(uid)])

    def skip(self) -> None:
        self._act("skip")
        if self.current is None or self.current not in self.items:
            self._play(self.items[0] if self.items else None)
            return
        at = self.items.index(self.current) + 1
        following = self.items[at] if at < len(self.items) else None
        self._play(following)
        if following is None and self.items:
            self._play(self.items[0])

    def voteskip(self) -> None:
        self._act("voteskip")

    def shuffle(self) -> None:
        self._act("shuffle")
        self.items.reverse()  # deterministic; what matters is that every uid changes
        for item in self.items:
            self.uid += 1
            item["uid"] = self.uid

    def clear(self) -> None:
        self._act("clear")
        self.items.clear()
        self._play(None)

    def set_temp(self, uid: int, temp: bool) -> None:
        self._act("set_temp", uid, temp)
        self.items[self._find(uid)]["temp"] = temp

    def open_poll(
        self,
        title: str,
        options: list[str],
        *,
        timeout: float | None = None,
        obscured: bool = False,
    ) -> None:
        self._act("open_poll", title, list(options), timeout, obscured)
        if not 2 <= len(options) <= 50:
            self._fail("INVALID_INPUT", "a poll needs 2 to 50 options")
        self.open = {
            "title": title,
            "options": list(options),
            "counts": [0] * len(options),
            "initiator": self.bot,
        }

    def close_poll(self) -> None:
        self._act("close_poll")
        if self.open is None:
            self._fail("TIMEOUT", SILENT)
        self.open = None

    def emote(self, text: str) -> None:
        self._act("emote", text)

    def moderate(self, action: str, user: str | None = None, reason: str | None = None) -> None:
        self._act("moderate", action, user, reason)
        target = next((u for u in self.people if u["name"].lower() == (user or "").lower()), None)
        if target is not None and target["rank"] >= self.rank:
            self._fail("PERMISSION_DENIED", f"{user} has a rank the bot cannot {action}")
        if action in ("kick", "ban") and target is not None:
            self.people.remove(target)
        elif action in ("mute", "smute") and user:
            self.muted.add(user.lower())
        elif action == "unmute" and user:
            self.muted.discard(user.lower())

    # Reads

    def playlist(self) -> list[dict[str, Any]]:
        return [dict(i) for i in self.items]

    def media(self) -> dict[str, Any] | None:
        if self.current is None:
            return None
        return {**self.current, "current_time": self.current_time, "paused": False}

    def users(self) -> list[dict[str, Any]]:
        return [dict(u) for u in self.people]

    def poll(self) -> dict[str, Any] | None:
        return None if self.open is None else dict(self.open)

    def state(self, what: str = "all") -> dict[str, Any]:
        reads = {
            "playlist": self.playlist,
            "media": self.media,
            "users": self.users,
            "poll": self.poll,
        }
        if what != "all":
            return {what: reads[what]()}
        found: dict[str, Any] = {k: f() for k, f in reads.items()}
        found["bot"] = {"name": self.bot, "rank": self.rank}
        found["permissions"] = {}
        found["voteskip"] = None
        return found
