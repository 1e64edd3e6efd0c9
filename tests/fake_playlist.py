"""The fake CyTube server's playlist (src/channel/playlist.js): queue, delete, moveMedia, jumpTo,
playNext, setTemp, shufflePlaylist, clearPlaylist, assignLeader, and the lead loop that the test
drives with `tick(seconds)` instead of a timer."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tests.fake_channel_base import ChannelBase, Handler
from tests.fake_channel_rules import (
    LIVE,
    UPDATE_INTERVAL,
    Member,
    format_link,
    format_time,
    lookup,
    loose_uid,
    sanitize_text,
    typecheck,
)

TYPE_QUEUE = {
    "id": "string,boolean",
    "type": "string",
    "pos": "string",
    "title": "string,boolean,optional",
    "duration": "number,optional",
    "temp": "boolean,optional",
}
TYPE_SET_TEMP = {"uid": "number", "temp": "boolean"}
TYPE_MOVE_MEDIA = {"from": "number", "after": "string,number"}
TYPE_ASSIGN_LEADER = {"name": "string"}
TYPE_MEDIA_UPDATE = {"id": "string", "currentTime": "number", "paused": "boolean,optional"}


@dataclass
class Item:
    uid: int
    type: str
    id: str
    title: str
    seconds: float
    duration: str
    temp: bool
    queueby: str
    meta: dict[str, Any] = field(default_factory=dict)

    def media(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "seconds": self.seconds,
            "duration": self.duration,
            "type": self.type,
            "meta": dict(self.meta),
        }

    def pack(self) -> dict[str, Any]:
        return {"media": self.media(), "uid": self.uid, "temp": self.temp, "queueby": self.queueby}


class PlaylistModule(ChannelBase):
    items: list[Item]
    current: Item | None
    current_time: float
    paused: bool
    leader: str | None
    media_info: dict[tuple[str, str], Any]
    rng: random.Random
    _next_uid: int
    _counter: int

    def _init_playlist(self) -> None:
        self.items, self.current, self.leader = [], None, None
        self.current_time, self.paused = 0.0, False
        self.media_info = {}
        self.rng = random.Random(18)
        self._next_uid, self._counter = 0, 0

    def _playlist_handlers(self) -> dict[str, Handler]:
        return {
            "queue": self._on_queue,
            "delete": self._on_delete,
            "moveMedia": self._on_move,
            "jumpTo": self._on_jump,
            "playNext": self._on_play_next,
            "setTemp": self._on_set_temp,
            "shufflePlaylist": self._on_shuffle,
            "clearPlaylist": self._on_clear,
            "assignLeader": self._on_assign_leader,
            "mediaUpdate": self._on_media_update,
            "requestPlaylist": self._on_request_playlist,
            "playerReady": self._on_player_ready,
        }

    # What tests read.

    def playlist(self) -> list[dict[str, Any]]:
        """The playlist as the server would send it (`playlist` frame items)."""
        return [item.pack() for item in self.items]

    def find(self, uid: Any) -> Item | None:
        number = loose_uid(uid)
        return next((i for i in self.items if number is not None and i.uid == number), None)

    def playlist_meta(self) -> dict[str, Any]:
        raw = sum(i.seconds for i in self.items)
        return {"count": len(self.items), "rawTime": raw, "time": format_time(raw)}

    def media_frame(self) -> dict[str, Any] | None:
        if self.current is None:
            return None
        return {**self.current.media(), "currentTime": self.current_time, "paused": self.paused}

    # Test controls.

    async def add(
        self,
        kind: str,
        media_id: str,
        *,
        title: str | None = None,
        seconds: float = 120,
        by: str = "",
        temp: bool = False,
    ) -> Item:
        """Seed the playlist at the end with no checks (as if loaded with the channel)."""
        async with self._lock:
            item = Item(
                self._uid(),
                kind,
                media_id,
                title or f"{kind}:{media_id}",
                seconds,
                format_time(seconds),
                temp,
                by,
            )
            await self._append(item, "end")
            return item

    async def tick(self, seconds: float) -> None:
        """The server's lead loop run for `seconds` (1 s steps): lead-in to playing, a
        mediaUpdate every 5th second, the next item 2 s after the end."""
        async with self._lock:
            while seconds > 0:
                step = min(1.0, seconds)
                seconds -= step
                await self._lead(step)

    async def media_update(self) -> None:
        """A `mediaUpdate {currentTime, paused}` now, as the leader's seek or pause sends."""
        async with self._lock:
            if self.current is not None:
                await self._emit(
                    "mediaUpdate", {"currentTime": self.current_time, "paused": self.paused}
                )

    # Sending.

    async def _send_playlist(self, sid: str, rank: float) -> None:
        await self._emit("setPlaylistMeta", self.playlist_meta(), sid)
        if self.can(rank, "seeplaylist"):
            await self._emit("playlist", self.playlist(), sid)
            if self.current is not None:
                await self._emit("setCurrent", self.current.uid, sid)

    async def _send_media(self, sid: str | None = None) -> None:
        if self.current is None:
            return
        await self._emit("setCurrent", self.current.uid, sid)
        await self._emit("changeMedia", self.media_frame(), sid)

    async def _seers(self, event: str, data: Any) -> None:
        await self._to(event, data, lambda rank: self.can(rank, "seeplaylist"))

    # Handlers.

    async def _on_queue(self, actor: Member, data: Any) -> None:
        if error := typecheck("queue", data, TYPE_QUEUE):
            await self._tell(actor, "errorMsg", {"msg": error})
            return
        media_id, kind = data["id"], data["type"]
        if media_id is True or data["pos"] not in ("next", "end"):
            return
        title = (
            data.get("title")
            if kind in ("cu", "fi") and isinstance(data.get("title"), str)
            else None
        )
        link = format_link(media_id, kind)
        if not self.can(actor.rank, "playlistadd"):
            return
        if data["pos"] == "next" and not self.can(actor.rank, "playlistnext"):
            return
        refusal = ""
        if kind == "yp" and not self.can(actor.rank, "playlistaddlist"):
            refusal = "You don't have permission to add playlists"
        elif kind in LIVE and not self.can(actor.rank, "playlistaddlive"):
            refusal = "You don't have permission to add live media"
        elif kind == "cu" and not self.can(actor.rank, "playlistaddcustom"):
            refusal = "You don't have permission to add custom embeds"
        elif kind in ("fi", "cm") and not self.can(actor.rank, "playlistaddrawfile"):
            refusal = "You don't have permission to add raw video files"
        elif actor.queue_limiter.throttle(*((10, 2) if actor.rank >= 2 else (3, 1))):
            refusal = "You are adding videos too quickly"
        if refusal:
            await self._tell(actor, "queueFail", {"msg": refusal, "link": link, "id": media_id})
            return
        found = lookup(kind, str(media_id), self.media_info)
        if isinstance(found, str):
            await self._tell(
                actor, "queueFail", {"msg": sanitize_text(found), "link": link, "id": media_id}
            )
            return
        real_id, real_title, raw = found
        seconds = 0.0 if raw == "--:--" else float(raw)
        duration = format_time(raw)
        wanted = data.get("duration")
        if kind in LIVE and isinstance(wanted, int | float) and wanted:
            seconds, duration = float(wanted), format_time(wanted)
        refusal = ""
        if seconds == 0 and not self.can(actor.rank, "playlistaddlive"):
            refusal = "You don't have permission to add livestreams"
        maxlength = 0 if self.can(actor.rank, "exceedmaxlength") else self.options["maxlength"]
        if maxlength > 0 and seconds > maxlength:
            refusal = (
                f"Video exceeds the maximum length set by the channel admin: {maxlength} seconds"
            )
        existing = next((i for i in self.items if i.id == real_id), None)
        dupes = self.options["allow_dupes"]
        if existing and not dupes and (data["pos"] == "end" or existing is self.current):
            refusal = "This item is already on the playlist"
        if refusal:
            await self._tell(actor, "queueFail", {"msg": refusal, "link": link, "id": media_id})
            return
        temp = bool(data.get("temp")) or not self.can(actor.rank, "addnontemp")
        item = Item(
            self._uid(), kind, real_id, title or real_title, seconds, duration, temp, actor.name
        )
        if len(item.title) > 100:
            item.title = item.title[:97] + "..."
        if data["pos"] == "next" and self.current is not None:
            self.items.insert(self.items.index(self.current) + 1, item)
            if existing and not dupes:
                item.temp = existing.temp
                await self._delete(existing)  # before the `queue`, as _addItem does
            await self._queued(item)
        else:
            await self._append(item, "end")

    async def _append(self, item: Item, pos: str) -> None:
        self.items.append(item)
        await self._queued(item)

    async def _queued(self, item: Item) -> None:
        index = self.items.index(item)
        after: Any = self.items[index - 1].uid if index else "prepend"
        packet = {"item": item.pack(), "after": after}
        meta = self.playlist_meta()
        for sock in self._socks():
            if self.can(sock.rank, "seeplaylist"):
                await self._emit("queue", packet, sock.sid)
            await self._emit("setPlaylistMeta", meta, sock.sid)
        if len(self.items) == 1:
            self.current = item
            await self._start()

    async def _on_delete(self, actor: Member, data: Any) -> None:
        if not self.can(actor.rank, "playlistdelete"):
            return
        if isinstance(data, bool) or not isinstance(data, int | float):
            return  # typeof data !== "number"
        item = self.find(data)
        if item is not None:
            await self._delete(item)

    async def _delete(self, item: Item) -> None:
        index = self.items.index(item)
        following = self.items[index + 1] if index + 1 < len(self.items) else self.items[0]
        self.items.remove(item)
        meta = self.playlist_meta()
        for sock in self._socks():
            if self.can(sock.rank, "seeplaylist"):
                await self._emit("delete", {"uid": item.uid}, sock.sid)
            await self._emit("setPlaylistMeta", meta, sock.sid)
        if self.current is item and following is item:
            self.current = None
        elif self.current is item:
            self.current = following
            await self._start()

    async def _on_move(self, actor: Member, data: Any) -> None:
        if error := typecheck("moveMedia", data, TYPE_MOVE_MEDIA):
            await self._tell(actor, "errorMsg", {"msg": error})
            return
        if not self.can(actor.rank, "playlistmove"):
            return
        moving, after = self.find(data["from"]), self.find(data["after"])
        if moving is None or moving is after:
            return
        self.items.remove(moving)
        if data["after"] == "prepend":
            self.items.insert(0, moving)
        elif data["after"] == "append":
            self.items.append(moving)
        elif after is None:
            return  # insertAfter fails: CyTube has already taken the item out of its list
        else:
            self.items.insert(self.items.index(after) + 1, moving)
        await self._emit("moveVideo", data)

    async def _on_jump(self, actor: Member, data: Any) -> None:
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            return
        if not self.can(actor.rank, "playlistjump"):
            return
        target = self.find(data)
        if target is None:
            return
        old, self.current = self.current, target
        await self._start()
        if old is not None and old.temp and old is not target and old in self.items:
            await self._delete(old)

    async def _on_play_next(self, actor: Member, data: Any) -> None:
        if self.can(actor.rank, "playlistjump"):
            await self._play_next()

    async def _play_next(self) -> None:
        if self.current is None:
            return
        index = self.items.index(self.current)
        following = self.items[index + 1] if index + 1 < len(self.items) else self.items[0]
        if self.current.temp:
            await self._delete(self.current)
        else:
            self.current = following
            await self._start()

    async def _on_set_temp(self, actor: Member, data: Any) -> None:
        if error := typecheck("setTemp", data, TYPE_SET_TEMP):
            await self._tell(actor, "errorMsg", {"msg": error})
            return
        if not self.can(actor.rank, "settemp"):
            return
        item = self.find(data["uid"])
        if item is not None:
            item.temp = data["temp"]
            await self._emit("setTemp", data)

    async def _on_shuffle(self, actor: Member, data: Any) -> None:
        if not self.can(actor.rank, "playlistshuffle"):
            return
        old, current, time = list(self.items), self.current, self.current_time
        self.items = []
        while old:
            picked = old.pop(self.rng.randrange(len(old)))
            fresh = Item(
                self._uid(),
                picked.type,
                picked.id,
                picked.title,
                picked.seconds,
                picked.duration,
                picked.temp,
                picked.queueby,
                dict(picked.meta),
            )
            if picked is current:
                self.items.insert(0, fresh)
            else:
                self.items.append(fresh)
        self.current = self.items[0] if self.items else None
        await self._seers("playlist", self.playlist())
        await self._start(time)

    async def _on_clear(self, actor: Member, data: Any) -> None:
        if not self.can(actor.rank, "playlistclear"):
            return
        self.items, self.current = [], None
        await self._emit("playlist", [])
        await self._emit("setPlaylistMeta", self.playlist_meta())

    async def _on_assign_leader(self, actor: Member, data: Any) -> None:
        if error := typecheck("assignLeader", data, TYPE_ASSIGN_LEADER):
            await self._tell(actor, "errorMsg", {"msg": error})
            return
        if not self.can(actor.rank, "leaderctl"):
            await self._drop(actor, "Attempted assignLeader without sufficient permission")
            return
        name = data["name"]
        if not name:
            self.leader = None
            await self._emit("setLeader", "")
            return
        target = self.members.get(name.lower())
        if target is None or target.name != name:
            await self._tell(
                actor, "errorMsg", {"msg": f"Unable to assign leader: could not find user {name}"}
            )
            return
        self.leader = target.name
        await self._emit("setLeader", target.name)

    async def _on_media_update(self, actor: Member, data: Any) -> None:
        if typecheck("mediaUpdate", data, TYPE_MEDIA_UPDATE) or actor.name != self.leader:
            return
        if self.current is None or self.current.type in LIVE or self.current.id != data["id"]:
            return
        self.current_time, self.paused = float(data["currentTime"]), bool(data.get("paused"))
        await self._emit("mediaUpdate", {"currentTime": self.current_time, "paused": self.paused})

    async def _on_request_playlist(self, actor: Member, data: Any) -> None:
        if actor.sid is not None:
            await self._send_playlist(actor.sid, actor.rank)

    async def _on_player_ready(self, actor: Member, data: Any) -> None:
        if actor.sid is not None:
            await self._send_media(actor.sid)

    # Playback.

    def _uid(self) -> int:
        self._next_uid += 1
        return self._next_uid - 1

    async def _start(self, time: float | None = None) -> None:
        """startPlayback: a 3 s paused lead-in for items with a duration."""
        if self.current is None:
            return
        start = time or (-3.0 if self.current.seconds > 0 else 0.0)
        self.current_time, self.paused, self._counter = start, start < 0, 0
        if self.leader is not None:
            self.current_time, self.paused = time or 0.0, False
        await self._send_media()
        await self._media_changed()

    async def _media_changed(self) -> None:
        """onMediaChange of the voteskip module (overridden there)."""

    async def _lead(self, dt: float) -> None:
        item = self.current
        if item is None or item.seconds <= 0 or self.leader is not None:
            return
        if self.current_time < 0 <= self.current_time + dt:
            self.current_time, self.paused, self._counter = 0.0, False, 0
            await self._emit("mediaUpdate", {"currentTime": 0.0, "paused": False})
            return
        self.current_time += dt
        self._counter += 1
        if self.current_time >= item.seconds + 2:
            await self._play_next()
        elif self._counter % UPDATE_INTERVAL == 0:
            await self._emit(
                "mediaUpdate", {"currentTime": self.current_time, "paused": self.paused}
            )

    async def _tell(self, actor: Member, event: str, data: Any) -> None:
        """To the actor's socket only (a virtual user's answer lands in `events`, to None)."""
        if actor.sid is not None:
            await self._emit(event, data, actor.sid)
        else:
            self.events.append((event, data, f"virtual:{actor.name}"))
            self._touch()
