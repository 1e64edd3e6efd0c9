"""CyTube's inbound events as contract payloads, and the channel state (users, ranks) they keep."""

from __future__ import annotations

import html
import logging
import re
import time
from typing import Any

from runtime.constants import CHAT, PM, USER_AFK, USER_JOIN, USER_LEAVE, USER_RANK
from runtime.cytube.channel import Event, Room

log = logging.getLogger("rosey.cytube")

PSEUDO_USERS = frozenset({"[server]", "[voteskip]"})
_TAG = re.compile(r"<[^>]*>")


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
        self.afk: dict[str, bool] = {}  # lower-case name → AFK
        self.listed = False  # this connection has had its userlist (chat before it is history)
        self._ever_listed = False
        self.room = Room(channel, strip_html)  # playlist, media, poll, voteskip, options

    def new_connection(self) -> None:
        self.listed = False
        self.rank = -1
        self.room.new_connection()

    def is_me(self, name: str) -> bool:
        return bool(self.me) and name.lower() == self.me.lower()

    def present(self, name: str) -> bool:
        return name.lower() in self.users

    def rank_of(self, name: str) -> float:
        return self.users.get(name.lower(), (name, 0))[1]

    def user_views(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "rank": rank, "afk": self.afk.get(key, False)}
            for key, (name, rank) in self.users.items()
        ]

    def may_chat(self) -> bool:
        return self.rank >= self.permissions.get("chat", 0)

    def set_permissions(self, data: Any) -> None:
        if isinstance(data, dict):
            self.permissions = {k: float(v) for k, v in data.items() if isinstance(v, int | float)}

    # Users: each method returns the events to publish.

    def userlist(self, entries: Any) -> list[Event]:
        users: dict[str, tuple[str, float]] = {}
        self.afk = {}
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
                users[entry["name"].lower()] = (entry["name"], server_rank(entry.get("rank")))
                self.afk[entry["name"].lower()] = _afk(entry.get("meta"))
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
        self.afk[name.lower()] = _afk(entry.get("meta"))
        if known or self.is_me(name):
            return []
        return [(USER_JOIN, self._join(name, rank))]

    def user_leave(self, data: Any) -> list[Event]:
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or self.users.pop(name.lower(), None) is None:
            return []
        self.afk.pop(name.lower(), None)
        if self.is_me(name):
            return []
        return [(USER_LEAVE, {"user": name, "channel": self.channel})]

    def set_user_rank(self, data: Any) -> list[Event]:
        """setUserRank: published only when the rank changed (CyTube also sends it on every
        registered user's login). The bot's own entry is its channel rank, which arrives only
        after login, so it updates the bot's rank as well."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return []
        key, rank = data["name"].lower(), server_rank(data.get("rank"))
        if self.is_me(data["name"]) and isinstance(data.get("rank"), int | float):
            self.rank = data["rank"]
        if key not in self.users or self.users[key][1] == rank:
            return []
        name = self.users[key][0]
        self.users[key] = (name, rank)
        return [(USER_RANK, {"user": name, "rank": rank, "channel": self.channel})]

    def set_rank(self, value: Any) -> list[Event]:
        """The bot's own effective rank (`rank`). A moderator bot logs in at rank 1 and gets its
        channel rank just after; that change is published for the bot like any user's."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return []
        before, self.rank = self.rank, value
        key = self.me.lower()
        if key in self.users:
            self.users[key] = (self.users[key][0], server_rank(value))
        if not self.me or before < 0 or before == value:
            return []
        # The join line showed the rank at login; this is the channel rank that counts.
        log.info("%s: the bot's rank is now %g", self.channel, value)
        return [(USER_RANK, {"user": self.me, "rank": server_rank(value), "channel": self.channel})]

    def set_afk(self, data: Any) -> list[Event]:
        """setAFK `{name, afk}` or setUserMeta `{name, meta: {afk}}`; published when it changed."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return []
        if "afk" in data:
            afk = bool(data["afk"])
        elif isinstance(data.get("meta"), dict) and "afk" in data["meta"]:
            afk = bool(data["meta"]["afk"])
        else:
            return []
        key = data["name"].lower()
        if key not in self.users or self.afk.get(key, False) == afk:
            return []
        self.afk[key] = afk
        return [(USER_AFK, {"user": self.users[key][0], "afk": afk, "channel": self.channel})]

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

    # Media: the room keeps the playlist; these are its entry points for the older callers.

    def playlist(self, items: Any) -> None:
        self.room.handle("playlist", items)

    def set_current(self, uid: Any) -> None:
        self.room.handle("setCurrent", uid)

    def change_media(self, data: Any) -> Event | None:
        events = self.room.handle("changeMedia", data)
        return events[0] if events else None


def _afk(meta: Any) -> bool:
    return bool(meta.get("afk")) if isinstance(meta, dict) else False
