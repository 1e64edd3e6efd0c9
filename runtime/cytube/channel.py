"""The channel's playlist, what plays now, the poll and the voteskip count, kept from CyTube's events.

`Room.handle(event, data)` takes every server event it knows (ROOM_EVENTS), updates the model and
returns the contract events to publish. The shapes are those of the contract (docs/contracts.md):
a playlist item is `{uid, title, duration, type, id, queueby, temp}`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from runtime.constants import (
    MEDIA_CHANGE,
    MEDIA_DELETE,
    MEDIA_MOVE,
    MEDIA_QUEUE,
    POLL_CLOSE,
    POLL_OPEN,
    POLL_UPDATE,
    VOTESKIP,
)

Event = tuple[str, dict[str, Any]]

ROOM_EVENTS = frozenset(
    {
        "playlist",
        "queue",
        "delete",
        "moveVideo",
        "setTemp",
        "setCurrent",
        "changeMedia",
        "mediaUpdate",
        "newPoll",
        "updatePoll",
        "closePoll",
        "voteskip",
        "channelOpts",
        "setPlaylistLocked",
    }
)

# Media types whose id makes a link; the others (custom embeds and such) go without `url`.
MEDIA_URLS = {
    "yt": "https://youtu.be/{id}",
    "vi": "https://vimeo.com/{id}",
    "dm": "https://www.dailymotion.com/video/{id}",
    "tw": "https://twitch.tv/{id}",
    "sc": "{id}",
    "fi": "{id}",
    "hl": "{id}",
    "rt": "{id}",
}


def _number(value: Any, default: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return value


def _uid(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def item_of(raw: Any, plain: Callable[[str], str]) -> dict[str, Any] | None:
    """A server playlist item (`{media: {id, title, seconds, type}, uid, temp, queueby}`) as the
    contract's item; None when it is not one."""
    if not isinstance(raw, dict) or _uid(raw.get("uid")) is None:
        return None
    media: dict[str, Any] = raw["media"] if isinstance(raw.get("media"), dict) else {}
    return {
        "uid": raw["uid"],
        "title": plain(str(media.get("title") or "")),
        "duration": max(0, _number(media.get("seconds"))),
        "type": str(media.get("type") or ""),
        "id": str(media.get("id") or ""),
        "queueby": raw["queueby"] if isinstance(raw.get("queueby"), str) else "",
        "temp": bool(raw.get("temp")),
    }


class Room:
    """One channel's playlist, current media, poll, voteskip count, options and permissions."""

    def __init__(
        self,
        channel: str,
        plain: Callable[[str], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel, self.plain, self.clock = channel, plain, clock
        self.items: list[dict[str, Any]] = []
        self.current: int | None = None
        self.media: dict[str, Any] | None = None  # as changeMedia said, plus uid and queueby
        self._media_key: tuple[str, str] | None = None
        self._position = (0.0, 0.0)  # (currentTime, clock) of the last changeMedia/mediaUpdate
        self.poll: dict[str, Any] | None = None
        self.closed: dict[str, Any] = {}  # the poll as it was when it closed
        self._poll_stamp: Any = None
        self.voteskip: dict[str, Any] | None = None
        self.options: dict[str, Any] = {}
        self.locked = True  # setPlaylistLocked; an unlocked playlist uses the o* permissions

    def new_connection(self) -> None:
        self.voteskip = None

    def handle(self, event: str, data: Any) -> list[Event]:
        method = getattr(self, "_on_" + event, None)
        found = method(data) if method is not None else None
        if found is None:
            return []
        return found if isinstance(found, list) else [found]

    # Reads.

    def find(self, uid: Any) -> dict[str, Any] | None:
        return next((item for item in self.items if item["uid"] == uid), None)

    def find_media(self, kind: str, ident: str) -> dict[str, Any] | None:
        return next((i for i in self.items if i["type"] == kind and i["id"] == ident), None)

    def now_playing(self) -> dict[str, Any] | None:
        """The current media with `current_time` extrapolated from the last update while playing."""
        if self.media is None:
            return None
        media = dict(self.media)
        base, stamp = self._position
        position = base if media["paused"] else base + (self.clock() - stamp)
        if media["duration"] > 0:
            position = min(position, media["duration"])
        media["current_time"] = round(max(position, 0.0), 3)
        return media

    def poll_view(self) -> dict[str, Any] | None:
        return dict(self.poll) if self.poll is not None else None

    # Playlist.

    def _on_playlist(self, data: Any) -> None:
        items = [item_of(raw, self.plain) for raw in data] if isinstance(data, list) else []
        self.items = [item for item in items if item is not None]
        if self.current is not None and self.find(self.current) is None:
            self.current = None
        self._stop_if_empty()

    def _on_queue(self, data: Any) -> Event | None:
        if not isinstance(data, dict):
            return None
        item = item_of(data.get("item"), self.plain)
        if item is None:
            return None
        after = data.get("after")
        self.items = [i for i in self.items if i["uid"] != item["uid"]]
        if after == "prepend" or _uid(after) is None:
            self.items.insert(0, item)
            after = "prepend"
        else:
            at = next((n for n, i in enumerate(self.items) if i["uid"] == after), None)
            self.items.insert(len(self.items) if at is None else at + 1, item)
        return MEDIA_QUEUE, {"item": item, "after": after, "channel": self.channel}

    def _on_delete(self, data: Any) -> Event | None:
        uid = _uid(data.get("uid")) if isinstance(data, dict) else None
        if uid is None:
            return None
        self.items = [i for i in self.items if i["uid"] != uid]
        self._stop_if_empty()
        return MEDIA_DELETE, {"uid": uid, "channel": self.channel}

    def _stop_if_empty(self) -> None:
        """An empty playlist plays nothing: CyTube sets its current to null (clearPlaylist, the
        last item deleted) and sends no changeMedia to say so."""
        if not self.items:
            self.current, self.media, self._media_key = None, None, None

    def _on_moveVideo(self, data: Any) -> Event | None:
        if not isinstance(data, dict) or _uid(data.get("from")) is None:
            return None
        moved, after = self.find(data["from"]), data.get("after")
        if moved is not None:
            self.items.remove(moved)
            if after == "prepend":
                self.items.insert(0, moved)
            elif after == "append":
                self.items.append(moved)
            else:
                at = next((n for n, i in enumerate(self.items) if i["uid"] == after), None)
                self.items.insert(len(self.items) if at is None else at + 1, moved)
        if after not in ("prepend", "append") and _uid(after) is None:
            return None
        return MEDIA_MOVE, {"from": data["from"], "after": after, "channel": self.channel}

    def _on_setTemp(self, data: Any) -> None:
        item = self.find(data.get("uid")) if isinstance(data, dict) else None
        if item is not None:
            item["temp"] = bool(data.get("temp"))

    def _on_setCurrent(self, data: Any) -> None:
        self.current = _uid(data)

    def _on_changeMedia(self, data: Any) -> Event | None:
        if not isinstance(data, dict) or not isinstance(data.get("title"), str):
            return None
        kind, ident = str(data.get("type", "")), str(data.get("id", ""))
        item = self.find(self.current)  # setCurrent comes just before changeMedia
        if item is not None and item["id"] and (item["type"], item["id"]) != (kind, ident):
            item = None
        media: dict[str, Any] = {
            "title": self.plain(data["title"]),
            "duration": max(0, _number(data.get("seconds"))),
            "type": kind,
            "id": ident,
            "paused": bool(data.get("paused")),
        }
        if item is not None:
            media["uid"] = item["uid"]
            if item["queueby"]:
                media["queueby"] = item["queueby"]
        self.media = media
        self._position = (_number(data.get("currentTime")), self.clock())
        if self._media_key == (kind, ident):
            return None  # the same item again, as sent on every (re)join
        self._media_key = (kind, ident)
        payload: dict[str, Any] = {"title": media["title"], "type": kind, "channel": self.channel}
        if ident:
            payload["id"] = ident
        if kind in MEDIA_URLS and ident:
            payload["url"] = MEDIA_URLS[kind].format(id=ident)
        seconds = data.get("seconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            payload["duration"] = seconds
        if item is not None:
            payload["uid"] = item["uid"]
            if item["queueby"]:
                payload["queued_by"] = item["queueby"]
        return MEDIA_CHANGE, payload

    def _on_mediaUpdate(self, data: Any) -> None:
        if self.media is None or not isinstance(data, dict):
            return
        if "paused" in data:
            self.media["paused"] = bool(data["paused"])
        self._position = (_number(data.get("currentTime")), self.clock())

    # Polls and voteskip.

    def _poll(self, data: Any) -> dict[str, Any] | None:
        if not isinstance(data, dict) or not isinstance(data.get("title"), str):
            return None
        options: list[Any] = data["options"] if isinstance(data.get("options"), list) else []
        counts: list[Any] = data["counts"] if isinstance(data.get("counts"), list) else []
        poll: dict[str, Any] = {
            "title": self.plain(data["title"]),
            "options": [self.plain(str(o)) for o in options],
            "counts": [c if isinstance(c, int | float | str) else 0 for c in counts],
        }
        if isinstance(data.get("initiator"), str):
            poll["initiator"] = data["initiator"]
        return poll

    def _on_newPoll(self, data: Any) -> Event | None:
        poll = self._poll(data)
        if poll is None:
            return None
        stamp = (poll["title"], data.get("timestamp"))
        again = self.poll is not None and self._poll_stamp == stamp
        self.poll, self._poll_stamp = poll, stamp
        if again:
            return None  # the open poll, sent again on a rejoin
        return POLL_OPEN, {**poll, "channel": self.channel}

    def _on_updatePoll(self, data: Any) -> Event | None:
        poll = self._poll(data)
        if poll is None:
            return None
        self.poll = poll
        return POLL_UPDATE, {**poll, "channel": self.channel}

    def _on_closePoll(self, data: Any) -> Event | None:
        if self.poll is None:
            return None
        self.closed = self.poll
        self.poll = self._poll_stamp = None
        return POLL_CLOSE, {"channel": self.channel}

    def _on_voteskip(self, data: Any) -> Event | None:
        if not isinstance(data, dict):
            return None
        count, need = _number(data.get("count")), _number(data.get("need"))
        self.voteskip = {"count": count, "need": need}
        return VOTESKIP, {"count": count, "need": need, "channel": self.channel}

    # Channel settings.

    def _on_channelOpts(self, data: Any) -> None:
        if isinstance(data, dict):
            self.options = dict(data)

    def _on_setPlaylistLocked(self, data: Any) -> None:
        self.locked = bool(data)
