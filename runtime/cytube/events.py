"""CyTube's inbound events as contract payloads, and the channel state (users, ranks) they keep."""

from __future__ import annotations

import html
import re
import time
from typing import Any

from runtime.constants import CHAT, MEDIA_CHANGE, PM, USER_JOIN, USER_LEAVE

PSEUDO_USERS = frozenset({"[server]", "[voteskip]"})
_TAG = re.compile(r"<[^>]*>")

# Media types whose id makes a link; the others (custom embeds and such) go without `url`.
_MEDIA_URLS = {
    "yt": "https://youtu.be/{id}",
    "vi": "https://vimeo.com/{id}",
    "dm": "https://www.dailymotion.com/video/{id}",
    "tw": "https://twitch.tv/{id}",
    "sc": "{id}",
    "fi": "{id}",
    "hl": "{id}",
    "rt": "{id}",
}

Event = tuple[str, dict[str, Any]]


def strip_html(text: str) -> str:
    """CyTube's message HTML as plain text: `new<em>york</em>city` → `newyorkcity`."""
    # The server escapes every `<` a user types, so what looks like a tag here is one.
    return html.unescape(_TAG.sub("", text))


def server_rank(value: Any) -> float:
    """A rank as the contract carries it: site admins above 255 count as 255."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return min(max(value, -1), 255)


def _now_ms() -> int:
    return int(time.time() * 1000)


class ChannelState:
    """Who is in the channel with which rank, the bot's own login and rank, and what is playing."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.me = ""  # the canonical name from the login reply
        self.rank: float = -1
        self.permissions: dict[str, float] = {}
        self.users: dict[str, tuple[str, float]] = {}  # lower-case name → (name, rank)
        self.listed = False  # this connection has had its userlist (chat before it is history)
        self._ever_listed = False
        self._queued_by: dict[Any, str] = {}
        self._current: Any = None
        self._media: tuple[str, str] | None = None

    def new_connection(self) -> None:
        self.listed = False
        self.rank = -1
        self._queued_by.clear()

    def is_me(self, name: str) -> bool:
        return bool(self.me) and name.lower() == self.me.lower()

    def present(self, name: str) -> bool:
        return name.lower() in self.users

    def rank_of(self, name: str) -> float:
        return self.users.get(name.lower(), (name, 0))[1]

    def may_chat(self) -> bool:
        return self.rank >= self.permissions.get("chat", 0)

    def set_permissions(self, data: Any) -> None:
        if isinstance(data, dict):
            self.permissions = {k: float(v) for k, v in data.items() if isinstance(v, int | float)}

    # Users: each method returns the events to publish.

    def userlist(self, entries: Any) -> list[Event]:
        users: dict[str, tuple[str, float]] = {}
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
                users[entry["name"].lower()] = (entry["name"], server_rank(entry.get("rank")))
        events: list[Event] = []
        if self._ever_listed:
            # After a reconnect, the difference is who came and went while the bot was away.
            for key, (name, rank) in users.items():
                if key not in self.users and not self.is_me(name):
                    events.append((USER_JOIN, self._join(name, rank)))
            for key, (name, _) in self.users.items():
                if key not in users and not self.is_me(name):
                    events.append((USER_LEAVE, {"user": name, "channel": self.channel}))
        self.users = users
        self.listed = self._ever_listed = True
        return events

    def add_user(self, entry: Any) -> list[Event]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return []
        name, rank = entry["name"], server_rank(entry.get("rank"))
        if not name:
            return []
        known = self.present(name)
        self.users[name.lower()] = (name, rank)
        if known or self.is_me(name):
            return []
        return [(USER_JOIN, self._join(name, rank))]

    def user_leave(self, data: Any) -> list[Event]:
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or self.users.pop(name.lower(), None) is None:
            return []
        if self.is_me(name):
            return []
        return [(USER_LEAVE, {"user": name, "channel": self.channel})]

    def set_user_rank(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return
        key = data["name"].lower()
        if key in self.users:
            self.users[key] = (self.users[key][0], server_rank(data.get("rank")))

    def _join(self, name: str, rank: float) -> dict[str, Any]:
        return {"user": name, "rank": rank, "channel": self.channel, "time": _now_ms()}

    # Messages.

    def message(self, data: Any, private: bool = False) -> Event | None:
        """The cytube.chat/pm event for a chatMsg/pm, or None when it must not be published:
        history replayed before the userlist, the bot's own echo, pseudo-users, shadow-muted."""
        if not isinstance(data, dict):
            return None
        name, text = data.get("username"), data.get("msg")
        if not isinstance(name, str) or not name or not isinstance(text, str):
            return None
        meta: dict[str, Any] = data["meta"] if isinstance(data.get("meta"), dict) else {}
        if self.is_me(name) or name in PSEUDO_USERS:
            return None
        if not private and (not self.listed or meta.get("shadow")):
            return None
        payload: dict[str, Any] = {
            "user": name,
            "message": strip_html(text),
            "html": text,
            "rank": self.rank_of(name),
            "channel": self.channel,
        }
        stamp = data.get("time")
        if isinstance(stamp, int | float) and not isinstance(stamp, bool) and stamp >= 0:
            payload["time"] = stamp
        if meta.get("action"):
            payload["emote"] = True
        return (PM if private else CHAT), payload

    # Media: the playlist says who queued each item; changeMedia says what plays now.

    def playlist(self, items: Any) -> None:
        self._queued_by.clear()
        for item in items if isinstance(items, list) else []:
            self.queue({"item": item})

    def queue(self, data: Any) -> None:
        item = data.get("item") if isinstance(data, dict) else None
        if isinstance(item, dict) and isinstance(item.get("queueby"), str):
            self._queued_by[item.get("uid")] = item["queueby"]

    def set_current(self, uid: Any) -> None:
        self._current = uid

    def change_media(self, data: Any) -> Event | None:
        if not isinstance(data, dict) or not isinstance(data.get("title"), str):
            return None
        kind, ident = str(data.get("type", "")), str(data.get("id", ""))
        if self._media == (kind, ident):
            return None  # the same item again, as sent on every (re)join
        self._media = (kind, ident)
        payload: dict[str, Any] = {"title": data["title"], "type": kind, "channel": self.channel}
        if kind in _MEDIA_URLS and ident:
            payload["url"] = _MEDIA_URLS[kind].format(id=ident)
        seconds = data.get("seconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            payload["duration"] = seconds
        queued_by = self._queued_by.get(self._current)
        if queued_by:
            payload["queued_by"] = queued_by
        return MEDIA_CHANGE, payload
