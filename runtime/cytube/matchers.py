"""Which server event confirms which action (see confirm.py), from CyTube 3.86's source.

Each factory returns a matcher: `(event, data) -> result | None`, raising Refusal for an event
that refuses the action. Matchers run after the channel state took the event, so they can read it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.constants import ErrorCode
from runtime.cytube.channel import Room, item_of
from runtime.cytube.confirm import Refusal
from runtime.cytube.events import ChannelState, strip_html

Match = Callable[[str, Any], Any]


def _get(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def queued(kind: str, ident: str, chan: ChannelState) -> Match:
    """`queue` has no request id: its `queue` broadcast is matched by media type + id and
    queueby = the bot; `queueFail {msg, link, id}` by the id that was sent; `queueWarn
    {msg, link}` by the id in its link."""

    def match(event: str, data: Any) -> Any:
        if event == "queue":
            item = item_of(_get(data, "item"), strip_html)
            if item and (item["type"], item["id"]) == (kind, ident) and chan.is_me(item["queueby"]):
                return item
            return None
        failed = event == "queueFail" and _get(data, "id") == ident
        warned = event == "queueWarn" and bool(ident) and ident in str(_get(data, "link") or "")
        if failed or warned:
            raise Refusal(ErrorCode.INVALID_INPUT, strip_html(str(_get(data, "msg") or "")))
        return None

    return match


def deleted(uid: int) -> Match:
    def match(event: str, data: Any) -> Any:
        return {"uid": uid} if event == "delete" and _get(data, "uid") == uid else None

    return match


def moved(uid: int) -> Match:
    def match(event: str, data: Any) -> Any:
        if event == "moveVideo" and _get(data, "from") == uid:
            return {"uid": uid, "after": _get(data, "after")}
        return None

    return match


def temp_set(uid: int) -> Match:
    def match(event: str, data: Any) -> Any:
        if event == "setTemp" and _get(data, "uid") == uid:
            return {"uid": uid, "temp": bool(_get(data, "temp"))}
        return None

    return match


def playing(room: Room, uid: int | None) -> Match:
    """jumpTo/playNext: the `changeMedia` that follows (after `setCurrent <uid>` for a jump)."""

    def match(event: str, data: Any) -> Any:
        if event == "changeMedia" and (uid is None or room.current == uid):
            return room.now_playing()
        return None

    return match


def relisted(room: Room) -> Match:
    """shufflePlaylist and clearPlaylist: the whole `playlist` sent again (shuffle: new uids)."""

    def match(event: str, data: Any) -> Any:
        if event == "playlist":
            return {"count": len(room.items)}
        return None

    return match


def voteskipped(room: Room) -> Match:
    """A `voteskip` count (ranks with viewvoteskip see it), or the vote passing: the
    `[voteskip]` line and the next item playing."""

    def match(event: str, data: Any) -> Any:
        if event == "voteskip" and isinstance(data, dict):
            return {"count": data.get("count", 0), "need": data.get("need", 0)}
        if event == "chatMsg" and _get(data, "username") == "[voteskip]":
            return {"passed": True}
        if event == "changeMedia":
            return {"passed": True}
        return None

    return match


def poll_opened(chan: ChannelState) -> Match:
    """`newPoll` started by the bot; an ack with an error refuses (CyTube's poll validation)."""

    def match(event: str, data: Any) -> Any:
        if event == "newPoll" and chan.is_me(str(_get(data, "initiator") or "")):
            return chan.room.poll_view()
        if event == "ack:newPoll" and isinstance(_get(data, "error"), dict):
            message = str(data["error"].get("message") or "the server refused the poll")
            raise Refusal(ErrorCode.INVALID_INPUT, message)
        return None

    return match


def poll_closed(room: Room) -> Match:
    def match(event: str, data: Any) -> Any:
        return room.closed if event == "closePoll" else None

    return match


def _whisper(data: Any) -> str:
    """A `[server]` line to moderators (sendModMessage), as lower-case plain text."""
    if _get(data, "username") != "[server]":
        return ""
    return strip_html(str(_get(data, "msg") or "")).lower()


# The `[server]` whisper each command sends when it worked (src/channel/chat.js, kickban.js).
_WHISPERS = {
    "kick": "kicked",
    "ban": "namebanned",
    "mute": "muted",
    "smute": "shadowmuted",
    "unmute": "unmuted",
}


def moderated(action: str, user: str, chan: ChannelState) -> Callable[[str, Any], bool]:
    """The event showing a moderator's chat command took effect: `clearchat` for /clear; for the
    others the `[server]` whisper "<bot> kicked <user>" and the like (sent to moderators), or
    what the target's change looks like to everyone (a kick's `userLeave`, a mute's meta)."""
    target = user.lower()

    def match(event: str, data: Any) -> bool:
        if action == "clear":
            return event == "clearchat"
        if event == "chatMsg":
            return _whisper(data) == f"{chan.me.lower()} {_WHISPERS[action]} {target}"
        name = str(_get(data, "name") or "").lower()
        if name != target:
            return False
        if event == "userLeave":
            return action in ("kick", "ban")
        if event == "setUserMeta" and isinstance(_get(data, "meta"), dict):
            muted = bool(data["meta"].get("muted"))
            return muted if action in ("mute", "smute") else (action == "unmute" and not muted)
        return False

    return match
