"""CyTube 3.86's channel rules beyond chat, as the fake server applies them: the default
permissions and options (src/channel/permissions.js, src/channel/opts.js), media lookups that need
no network (src/get-info.js) and stand-ins for those that do, poll text formatting (src/poll.js),
json-typecheck's answer, and the user records shared by the fake's modules."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.cytube_rules import LINK, RateLimiter

DEFAULT_PERMISSIONS: dict[str, float] = {
    "seeplaylist": -1,
    "playlistadd": 1.5,
    "playlistnext": 1.5,
    "playlistmove": 1.5,
    "playlistdelete": 2,
    "playlistjump": 1.5,
    "playlistaddlist": 1.5,
    "oplaylistadd": -1,
    "oplaylistnext": 1.5,
    "oplaylistmove": 1.5,
    "oplaylistdelete": 2,
    "oplaylistjump": 1.5,
    "oplaylistaddlist": 1.5,
    "playlistaddcustom": 3,
    "playlistaddrawfile": 2,
    "playlistaddlive": 1.5,
    "exceedmaxlength": 2,
    "addnontemp": 2,
    "settemp": 2,
    "playlistshuffle": 2,
    "playlistclear": 2,
    "pollctl": 1.5,
    "pollvote": -1,
    "viewhiddenpoll": 1.5,
    "voteskip": -1,
    "viewvoteskip": 1.5,
    "mute": 1.5,
    "kick": 1.5,
    "ban": 2,
    "motdedit": 3,
    "filteredit": 3,
    "filterimport": 3,
    "emoteedit": 3,
    "emoteimport": 3,
    "playlistlock": 2,
    "leaderctl": 2,
    "drink": 1.5,
    "chat": 0,
    "chatclear": 2,
    "exceedmaxitems": 2,
    "deletefromchannellib": 2,
    "exceedmaxdurationperuser": 2,
}
DEFAULT_OPTIONS: dict[str, Any] = {
    "allow_voteskip": True,
    "voteskip_ratio": 0.5,
    "afk_timeout": 600,
    "maxlength": 0,
    "chat_antiflood": False,
    "chat_antiflood_params": {"burst": 4, "sustained": 1, "cooldown": 4},
    "allow_dupes": False,
}
LIVE = {"li", "tw", "rt", "cu", "hl"}  # util.isLive
STAND_IN_SECONDS = 120
UPDATE_INTERVAL = 5  # playlist.update-interval: a mediaUpdate every 5 lead-loop seconds
# The kick each of these events gets from a socket below the rank it needs.
KICKS: dict[str, tuple[float | str, str]] = {
    "assignLeader": ("leaderctl", "Attempted assignLeader without sufficient permission"),
    "setOptions": (2, "Attempted setOptions as a non-moderator"),
    "setPermissions": (3, "Attempted setPermissions as a non-admin"),
    "readChanLog": (3, "Attempted readChanLog with insufficient permission"),
    "setMotd": ("motdedit", "Attempted setMotd with insufficient permission"),
    "setChannelCSS": (3, "Attempted setChannelCSS as non-admin"),
    "setChannelJS": (3, "Attempted setChannelJS as non-admin"),
}


def atomic(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Node runs each handler to its end before the next; a lock keeps these from interleaving,
    so that, for one, nothing gets between the frames of the join sequence."""

    @functools.wraps(method)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            return await method(self, *args, **kwargs)

    return run


@dataclass
class Sock:
    sid: str
    ip: str
    joined: bool = False
    entered: bool = False  # the join sequence was sent (after the channel password, if any)
    name: str = ""
    rank: float = -1
    guest: bool = False
    limiter: RateLimiter = field(default_factory=RateLimiter)
    queue_limiter: RateLimiter = field(default_factory=RateLimiter)


@dataclass
class Member:
    """A user in the channel: a virtual one (sid None, driven by the test) or a socket's."""

    name: str
    rank: float
    sid: str | None = None
    ip: str = ""
    afk: bool = False
    muted: bool = False
    smuted: bool = False
    limiter: RateLimiter = field(default_factory=RateLimiter)
    queue_limiter: RateLimiter = field(default_factory=RateLimiter)

    def entry(self, for_rank: float = 0) -> dict[str, Any]:
        """A userlist entry as a user of `for_rank` sees it (packUserData base / mod)."""
        meta: dict[str, Any] = {"afk": self.afk, "muted": self.muted and not self.smuted}
        if for_rank >= 2:
            meta = {"afk": self.afk, "muted": self.muted, "smuted": self.smuted}
            meta.update(aliases=[], ip=cloak(self.ip))
        return {
            "name": self.name,
            "rank": self.rank,
            "profile": {"image": "", "text": ""},
            "meta": meta,
        }


def cloak(ip: str) -> str:
    """Roughly util.cloakIP: the last parts hidden."""
    parts = ip.split(".")
    return ".".join(parts[:2] + ["x"] * (len(parts) - 2)) if len(parts) == 4 else ip


def format_time(seconds: float | str) -> str:
    """util.formatTime; "--:--" stays."""
    if seconds == "--:--":
        return "--:--"
    sec = math.floor(float(seconds))
    hours, sec = divmod(sec, 3600) if sec >= 3600 else (None, sec)
    minutes, sec = divmod(sec, 60)
    parts = ([f"{hours:02d}"] if hours is not None else []) + [f"{minutes:02d}", f"{sec:02d}"]
    return ":".join(parts)


LINKS = {
    "yt": "https://youtu.be/{}",
    "vi": "https://vimeo.com/{}",
    "dm": "https://dailymotion.com/video/{}",
    "li": "https://livestream.com/{}",
    "tw": "https://twitch.tv/{}",
    "gd": "https://docs.google.com/file/d/{}",
    "sb": "https://streamable.com/{}",
    "tc": "https://clips.twitch.tv/{}",
    "nv": "https://www.nicovideo.jp/watch/{}",
    "bc": "https://www.bitchute.com/video/{}/",
}


def format_link(media_id: Any, kind: str) -> str:
    """util.formatLink (the `link` of queueFail/queueWarn); "" for types it does not know."""
    if kind in ("sc", "rt", "fi", "hl", "cm"):
        return str(media_id)
    return LINKS[kind].format(media_id) if kind in LINKS else ""


def sanitize_text(text: str) -> str:
    """XSS.sanitizeText."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        text = text.replace(char, entity)
    return text.replace("'", "&#39;").replace("(", "&#40;").replace(")", "&#41;")


def poll_text(text: str) -> str:
    """src/poll.js sanitizedWithLinksReplaced (note CyTube's own `noreferer` spelling)."""
    return LINK.sub(
        r'<a href="\1" target="_blank" rel="noopener noreferer">\1</a>', sanitize_text(text)
    )


def lookup(
    kind: str, media_id: str, table: dict[tuple[str, str], Any]
) -> tuple[str, str, float | str] | str:
    """(id, title, seconds or "--:--") as InfoGetter.getMedia gives, or an error text.
    Types needing no network behave as CyTube's; the rest get a stand-in from `table`
    ((type, id) → (title, seconds) or an error string) or else f"{type}:{id}", 120 s."""
    if (kind, media_id) in table:
        known = table[(kind, media_id)]
        return known if isinstance(known, str) else (media_id, known[0], known[1])
    if kind == "tw":
        match = re.search(r"[\w-]+", media_id)
        return (match[0], f"Twitch.tv - {match[0]}", "--:--") if match else "Invalid ID"
    if kind == "rt":
        return (media_id, "Livestream", "--:--")
    if kind == "hl":
        if not media_id.startswith("https"):
            return (
                "HLS links must start with HTTPS due to browser security policy.  "
                "See https://git.io/vpDLK for details."
            )
        return (media_id, "Livestream", "--:--")
    if kind == "li":
        return (
            (media_id, "Livestream.com", "--:--")
            if re.match(r"^\d+;\d+$", media_id)
            else "Invalid ID"
        )
    if kind == "cu":
        return (media_id, "Custom Media", "--:--")
    return (media_id, f"{kind}:{media_id}", STAND_IN_SECONDS)


def js_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def typecheck(event: str, data: Any, spec: dict[str, str]) -> str | None:
    """json-typecheck as typecheckedOn uses it: the errorMsg text for a bad payload, or None."""
    if not isinstance(data, dict):
        return f"Unexpected error for message {event}: Expected object, instead got {js_type(data)}"
    for key, allowed in spec.items():
        kinds = allowed.split(",")
        if key not in data:
            if "optional" in kinds:
                continue
            got = "undefined"
        else:
            got = js_type(data[key])
            if got in kinds or (got == "array" and "object" in kinds):
                continue
        wanted = " or ".join(k for k in kinds if k != "optional")
        return (
            f"Unexpected error for message {event}: Expected key {key} to be of type {wanted},"
            f" instead got {got}"
        )
    return None


def loose_uid(value: Any) -> float | None:
    """The number JavaScript's `uid != value` compares with (ULList.find), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str):
        try:
            return float(value.strip() or 0)
        except ValueError:
            return None
    return float(value)
