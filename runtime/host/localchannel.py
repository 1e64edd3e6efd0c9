"""An offline CyTube channel: answers the channel action subjects and `cytube.state` from a local
model, so functions that act in the channel can be tried with console chat (`rosey run` without a
cytube section) and `rosey invoke`, and says what the bot did (`* rosey queued <title>`).

The model: a playlist of items with uids (media links parsed as CyTube's client does, titled by
their link, duration 0), what is playing (the first item queued into an empty playlist plays), an
open poll with counts, the users (the console user and the bot). Everything the bot may do is
allowed; the answers have the connector's envelopes, so a function behaves as it would on a server.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg

from runtime.constants import (
    CHANNEL_STATE,
    MEDIA_CHANGE,
    MEDIA_DELETE,
    MEDIA_QUEUE,
    PLAYLIST_ADD,
    PLAYLIST_CLEAR,
    PLAYLIST_JUMP,
    PLAYLIST_MOVE,
    PLAYLIST_NEXT,
    PLAYLIST_REMOVE,
    PLAYLIST_SETTEMP,
    PLAYLIST_SHUFFLE,
    POLL_CLOSE,
    POLL_CLOSE_SEND,
    POLL_OPEN,
    POLL_OPEN_SEND,
    POLL_UPDATE,
    SEND_EMOTE,
    SEND_MOD,
    SEND_VOTESKIP,
    ErrorCode,
)
from runtime.cytube import media
from runtime.errors import RoseyError
from runtime.wire import contract
from runtime.wire.bus import Binding, Bindings, Bus

log = logging.getLogger("rosey.localchannel")

BOT = "rosey"
BOT_RANK = 3.0  # an admin: offline, the bot may do everything
MOD_WORDS = {
    "kick": "kicks",
    "ban": "bans",
    "mute": "mutes",
    "smute": "shadow-mutes",
    "unmute": "unmutes",
}


class Refused(Exception):
    """An action the model cannot do: answered as a failure envelope."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.INVALID_INPUT) -> None:
        self.code = code
        super().__init__(message)


People = Callable[[], list[dict[str, Any]]]


class LocalChannel:
    """Answers ctx.channel's subjects for one offline channel and prints what the bot did."""

    def __init__(
        self,
        bus: Bus,
        channel: str = "console",
        people: People = list,
        say: Callable[[str], None] = print,
        bot: str = BOT,
    ) -> None:
        self.bus, self.channel, self.people, self.say, self.bot = bus, channel, people, say, bot
        self.playlist: list[dict[str, Any]] = []
        self.current: int | None = None  # uid of what is playing
        self.started = time.monotonic()
        self.poll: dict[str, Any] | None = None
        self.voted: dict[str, int] = {}  # poll votes by user
        self._poll_timer: asyncio.TimerHandle | None = None
        self._next_uid = 1
        self._tasks: set[asyncio.Task[None]] = set()
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            PLAYLIST_ADD: self.add,
            PLAYLIST_REMOVE: self.remove,
            PLAYLIST_MOVE: self.move,
            PLAYLIST_JUMP: self.jump,
            PLAYLIST_NEXT: self.next,
            PLAYLIST_SHUFFLE: self.shuffle,
            PLAYLIST_CLEAR: self.clear,
            PLAYLIST_SETTEMP: self.settemp,
            SEND_VOTESKIP: self.voteskip,
            POLL_OPEN_SEND: self.open_poll,
            POLL_CLOSE_SEND: self.close_poll,
            SEND_MOD: self.moderate,
            SEND_EMOTE: self.emote,
            CHANNEL_STATE: self.state,
        }
        self.bindings = Bindings(
            Binding(bus, subject, self._answerer(handler)) for subject, handler in handlers.items()
        )

    async def start(self) -> None:
        await self.bindings.start()

    async def stop(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.cancel()
        await self.bindings.stop(1.0)

    @property
    def busy(self) -> int:
        return self.bindings.busy + len(self._tasks)

    def _answerer(self, handler: Callable[[dict[str, Any]], Any]) -> Any:
        async def answer(msg: Msg) -> None:
            try:
                payload = contract.decode(msg.subject, msg.data)
                if not isinstance(payload, dict):
                    raise Refused("the payload must be an object")
                reply = contract.ok(handler(payload))
            except Refused as e:
                reply = contract.failure(e.code, str(e))
            except RoseyError as e:
                reply = contract.failure(e.code, str(e))
            await self.bus.respond(msg, reply)

        return answer

    # Playlist

    def add(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("url"):
            try:
                ref = media.parse(str(p["url"]))
            except ValueError as e:
                raise Refused(str(e)) from e
            kind, media_id, title = ref.type, ref.id, str(p["url"]).strip()
        elif p.get("type") and p.get("id"):
            kind, media_id = str(p["type"]), str(p["id"])
            title = str(p.get("title") or f"{kind}:{media_id}")
        else:
            raise Refused("playlist.add needs a url, or a type and an id")
        following = p.get("position") == "next"
        existing = next(
            (i for i in self.playlist if (i["type"], i["id"]) == (kind, media_id)), None
        )
        if existing is not None:
            if not following:
                raise Refused("This item is already on the playlist")
            self.playlist.remove(existing)  # CyTube moves an existing copy when queued next
        item = existing or {
            "uid": self._uid(),
            "title": title,
            "duration": int(p.get("duration") or 0),
            "type": kind,
            "id": media_id,
            "queueby": self.bot,
            "temp": bool(p.get("temp", True)),
        }
        at = self._index(self.current) + 1 if following and self.current is not None else None
        if at is None:
            at = 0 if following else len(self.playlist)
        self.playlist.insert(at, item)
        after: int | str = self.playlist[at - 1]["uid"] if at > 0 else "prepend"
        self.say(f"* {self.bot} queued {item['title']}" + (" (next)" if following else ""))
        self._event(MEDIA_QUEUE, {"item": dict(item), "after": after})
        if self.current is None:
            self._play(item)
        return dict(item)

    def remove(self, p: dict[str, Any]) -> None:
        item = self._item(p.get("uid"))
        if item["uid"] == self.current:
            self._advance()
        self.playlist.remove(item)
        self.say(f"* {self.bot} removed {item['title']}")
        self._event(MEDIA_DELETE, {"uid": item["uid"]})

    def move(self, p: dict[str, Any]) -> None:
        item = self._item(p.get("uid"))
        after = p.get("after")
        if after != "prepend":
            self._item(after)
        self.playlist.remove(item)
        at = 0 if after == "prepend" else self._index(after) + 1
        self.playlist.insert(at, item)
        self.say(f"* {self.bot} moved {item['title']}")

    def jump(self, p: dict[str, Any]) -> None:
        self._play(self._item(p.get("uid")))

    def next(self, p: dict[str, Any]) -> None:
        playing = self._playing()
        if playing is None:
            raise Refused("nothing is playing")
        self.say(f"* {self.bot} skipped {playing['title']}")
        self._advance()

    def shuffle(self, p: dict[str, Any]) -> None:
        random.shuffle(self.playlist)
        for item in self.playlist:  # CyTube gives every item a new uid
            new = self._uid()
            if item["uid"] == self.current:
                self.current = new
            item["uid"] = new
        self.say(f"* {self.bot} shuffled the playlist")

    def clear(self, p: dict[str, Any]) -> None:
        self.playlist.clear()
        self.current = None
        self.say(f"* {self.bot} cleared the playlist")

    def settemp(self, p: dict[str, Any]) -> None:
        item = self._item(p.get("uid"))
        item["temp"] = bool(p.get("temp"))
        how = "temporary" if item["temp"] else "permanent"
        self.say(f"* {self.bot} made {item['title']} {how}")

    def voteskip(self, p: dict[str, Any]) -> None:
        self.say(f"* {self.bot} votes to skip")

    # Polls

    def open_poll(self, p: dict[str, Any]) -> None:
        title, options = str(p.get("title") or ""), p.get("options")
        if not title or not isinstance(options, list) or not 2 <= len(options) <= 50:
            raise Refused("a poll needs a title and 2 to 50 options")
        if self.poll is not None:
            self._close()
        self.poll = {
            "title": title,
            "options": [str(o) for o in options],
            "counts": [0] * len(options),
            "initiator": self.bot,
        }
        self.voted = {}
        self.say(f"* poll opened: {title} ({' / '.join(self.poll['options'])})")
        self._event(POLL_OPEN, dict(self.poll))
        timeout = p.get("timeout")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
            self._poll_timer = asyncio.get_running_loop().call_later(timeout, self._close)

    def close_poll(self, p: dict[str, Any]) -> None:
        if self.poll is None:
            raise Refused("no poll is open")
        self._close()

    def vote(self, user: str, option: int) -> str:
        """A console user's vote (the console's /vote N, counted from 1); the line to show."""
        if self.poll is None:
            return "[no poll is open]"
        if not 1 <= option <= len(self.poll["options"]):
            return f"[vote 1 to {len(self.poll['options'])}]"
        counts = self.poll["counts"]
        if user in self.voted:
            counts[self.voted[user]] -= 1
        self.voted[user] = option - 1
        counts[option - 1] += 1
        self._event(POLL_UPDATE, dict(self.poll))
        return f"* {user} votes {self.poll['options'][option - 1]} ({_tally(self.poll)})"

    def _close(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.cancel()
            self._poll_timer = None
        if self.poll is None:
            return
        self.say(f"* poll closed: {self.poll['title']} ({_tally(self.poll)})")
        self.poll = None
        self._event(POLL_CLOSE, {})

    # Chat

    def moderate(self, p: dict[str, Any]) -> None:
        action, user, reason = p.get("action"), p.get("user"), p.get("reason")
        if action == "clear":
            self.say(f"* {self.bot} clears the chat")
            return
        if action not in MOD_WORDS or not isinstance(user, str) or not user:
            raise Refused("mod: action kick, ban, mute, smute, unmute (with a user) or clear")
        self.say(f"* {self.bot} {MOD_WORDS[action]} {user}" + (f": {reason}" if reason else ""))

    def emote(self, p: dict[str, Any]) -> None:
        self.say(f"* {self.bot} {p.get('message', '')}")

    # Reads

    def state(self, p: dict[str, Any]) -> dict[str, Any]:
        what = p.get("what", "all")
        parts: dict[str, Any] = {
            "playlist": [dict(i) for i in self.playlist],
            "media": self._media(),
            "users": [
                *({"afk": False, **u} for u in self.people()),
                {"name": self.bot, "rank": BOT_RANK, "afk": False},
            ],
            "poll": dict(self.poll) if self.poll else None,
        }
        if what == "all":
            return {
                **parts,
                "bot": {"name": self.bot, "rank": BOT_RANK},
                "permissions": {},
                "voteskip": None,
            }
        if what not in parts:
            raise Refused("state: what is one of playlist, media, users, poll, all")
        return {what: parts[what]}

    # The model

    def _uid(self) -> int:
        self._next_uid += 1
        return self._next_uid - 1

    def _index(self, uid: Any) -> int:
        return next(i for i, item in enumerate(self.playlist) if item["uid"] == uid)

    def _item(self, uid: Any) -> dict[str, Any]:
        if isinstance(uid, bool) or not isinstance(uid, int):
            raise Refused("uid must be a number")
        for item in self.playlist:
            if item["uid"] == uid:
                return item
        raise Refused(f"no playlist item has uid {uid}")

    def _playing(self) -> dict[str, Any] | None:
        return next((i for i in self.playlist if i["uid"] == self.current), None)

    def _media(self) -> dict[str, Any] | None:
        item = self._playing()
        if item is None:
            return None
        return {
            **{k: item[k] for k in ("uid", "title", "duration", "type", "id", "queueby")},
            "current_time": round(time.monotonic() - self.started, 1),
            "paused": False,
        }

    def _play(self, item: dict[str, Any]) -> None:
        self.current, self.started = item["uid"], time.monotonic()
        self.say(f"* now playing: {item['title']}")
        change = {k: item[k] for k in ("title", "type", "id", "uid", "duration")}
        self._event(MEDIA_CHANGE, {**change, "queued_by": item["queueby"]})

    def _advance(self) -> None:
        """Play what follows the current item; a temporary item leaves the playlist."""
        playing = self._playing()
        if playing is None:
            return
        at = self._index(playing["uid"])
        following = self.playlist[at + 1] if at + 1 < len(self.playlist) else None
        if playing["temp"]:
            self.playlist.remove(playing)
        if following is None:
            self.current = None
        else:
            self._play(following)

    def _event(self, subject: str, payload: dict[str, Any]) -> None:
        """Publish what changed, as the connector does, for functions that listen to it."""
        task = asyncio.get_running_loop().create_task(
            self._publish(subject, {**payload, "channel": self.channel})
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, subject: str, payload: dict[str, Any]) -> None:
        try:
            await self.bus.publish(subject, payload)
        except RoseyError as e:
            log.warning("offline channel: %s not published: %s", subject, e)


def _tally(poll: dict[str, Any]) -> str:
    return ", ".join(f"{o}: {c}" for o, c in zip(poll["options"], poll["counts"], strict=True))
