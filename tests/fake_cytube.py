"""A fake CyTube 3.86 server: python-socketio's AsyncServer on aiohttp, behaving as
/work/shared/cytube-protocol.md describes (join sequence with history replay, echo of the
sender's own chat, HTML-formatted `msg`, the 320-unit cut, the 20/10 chat throttle answering
`cooldown`, `kick` before disconnect, duplicate-login kick, the per-IP connection bucket).

Users other than the bot are virtual: the test makes them join, chat and leave.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiohttp import web

from tests.cytube_rules import (
    CHANNEL,
    COMMANDS,
    MIN_ANTIFLOOD,
    NAME,
    IpBucket,
    RateLimiter,
    cut,
    format_message,
    now_ms,
)


def atomic(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Node runs each handler to its end before the next; a lock keeps these from interleaving,
    so that, for one, nothing gets between the frames of the join sequence."""

    @functools.wraps(method)
    async def run(self: FakeCytube, *args: Any) -> None:
        async with self._lock:
            await method(self, *args)

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


@dataclass
class Member:
    name: str
    rank: float
    sid: str | None = None  # None: a virtual user driven by the test
    limiter: RateLimiter = field(default_factory=RateLimiter)

    def entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rank": self.rank,
            "profile": {"image": "", "text": ""},
            "meta": {"afk": False, "muted": False},
        }


class FakeCytube:
    def __init__(
        self,
        channel: str = "test",
        accounts: dict[str, str] | None = None,
        *,
        ranks: dict[str, float] | None = None,
        history: list[tuple[str, str]] | None = None,
        channel_password: str = "",
        max_length: int = 320,
    ) -> None:
        self.channel = channel.lower()
        self.accounts = {k.lower(): (k, v) for k, v in (accounts or {}).items()}
        self.ranks = {k.lower(): v for k, v in (ranks or {}).items()}
        self.channel_password = channel_password
        self.max_length = max_length
        self.permissions = {"chat": 0.0, "playlistadd": 1.5, "kick": 1.5, "ban": 2.0}
        self.buffer: list[dict[str, Any]] = []  # the chat replay buffer survives restarts
        for user, text in history or []:
            self._remember({"username": user, "msg": format_message(text), "meta": {}, "time": 1})
        self.members: dict[str, Member] = {}
        # What tests look at.
        self.chat: list[dict[str, Any]] = []
        self.pms: list[dict[str, Any]] = []
        self.logins: list[str] = []
        self.cooldowns = 0
        self.connects = 0
        self.port = 0
        self._sockets: dict[str, Sock] = {}
        self._buckets: dict[str, IpBucket] = {}
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self.sio: socketio.AsyncServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Server life.

    async def start(self) -> None:
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", ping_interval=25, ping_timeout=120, max_http_buffer_size=1 << 20
        )
        for event in ("connect", "disconnect", "joinChannel", "login", "chatMsg", "pm"):
            self.sio.on(event, getattr(self, f"_on_{event.lower()}"))
        self.sio.on("channelPassword", self._on_channel_password)
        app = web.Application()
        self.sio.attach(app)
        app.router.add_get("/socketconfig/{name}.json", self._socketconfig)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            server = site._server
            assert server is not None and server.sockets  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Like a server restart: sockets drop without a kick; virtual users stay."""
        if self.sio is not None:
            if self.sio.eio.sockets:
                await self.sio.eio.disconnect()
            await self.sio.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
        self.sio, self._runner = None, None
        for key in [k for k, m in self.members.items() if m.sid is not None]:
            del self.members[key]
        self._sockets.clear()
        self._buckets.clear()
        self._touch()

    # Waiting for things to happen.

    def _touch(self) -> None:
        self._changed.set()

    async def until(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (result := check()):
                self._changed.clear()
                await self._changed.wait()
        return result

    def said(self, user: str) -> list[str]:
        """The `msg` of every chat line `user` got broadcast."""
        return [c["msg"] for c in self.chat if c["username"].lower() == user.lower()]

    def drain_connect_bucket(self, ip: str) -> None:
        """As if `ip` had just made its burst of connections."""
        bucket = self._buckets.setdefault(ip, IpBucket())
        bucket.tokens = 0

    def bots(self) -> list[str]:
        return [m.name for m in self.members.values() if m.sid is not None]

    # Driving the virtual users.

    @atomic
    async def join(self, name: str, rank: float = 0) -> None:
        member = Member(name, rank)
        self.members[name.lower()] = member
        await self._emit("addUser", member.entry())

    @atomic
    async def leave(self, name: str) -> None:
        if self.members.pop(name.lower(), None) is not None:
            await self._emit("userLeave", {"name": name})

    @atomic
    async def say(self, name: str, text: str) -> None:
        member = self.members[name.lower()]
        await self._chat(member.name, member.rank, member.limiter, None, text)

    @atomic
    async def pm(self, name: str, to: str, text: str) -> None:
        member = self.members[name.lower()]
        await self._pm(member.name, member.limiter, None, to, text)

    @atomic
    async def set_rank(self, name: str, rank: float) -> None:
        member = self.members[name.lower()]
        member.rank = rank
        await self._emit("setUserRank", {"name": member.name, "rank": rank})

    async def kick(self, name: str, reason: str | None = None) -> None:
        member = self.members.get(name.lower())
        if member is None or member.sid is None:
            return
        assert self.sio is not None
        await self.sio.emit("kick", {} if reason is None else {"reason": reason}, to=member.sid)
        await self.sio.disconnect(member.sid)

    async def _emit(self, event: str, data: Any = None, to: str | None = None) -> None:
        if self.sio is not None:
            await self.sio.emit(event, data, to=to, room=None if to else self.channel)
        self._touch()

    # HTTP.

    async def _socketconfig(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not CHANNEL.match(name):
            return web.json_response({"error": f'Channel "{name}" does not exist.'}, status=404)
        return web.json_response({"servers": [{"url": self.url, "secure": False}]})

    # Socket events.

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        request = environ["aiohttp.request"]
        ip = request.remote or "127.0.0.1"
        if ip == "127.0.0.1" and environ.get("HTTP_X_FORWARDED_FOR"):
            ip = environ["HTTP_X_FORWARDED_FOR"].split(",")[0].strip()
        if not self._buckets.setdefault(ip, IpBucket()).take():
            raise socketio.exceptions.ConnectionRefusedError("Rate limit exceeded")
        self.connects += 1
        self._sockets[sid] = Sock(sid, ip)
        assert self.sio is not None
        # After the connect ack, as the server emits it from the User constructor.
        self.sio.start_background_task(self._emit, "rank", -1, sid)
        if sum(1 for s in self._sockets.values() if s.ip == ip) > 10:
            await self.sio.emit(
                "kick", {"reason": "Too many connections from your IP address"}, to=sid
            )
            await self.sio.disconnect(sid)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        sock = self._sockets.pop(sid, None)
        if sock is None or not sock.name:
            return
        member = self.members.get(sock.name.lower())
        if member is not None and member.sid == sid:
            del self.members[sock.name.lower()]
            await self._emit("userLeave", {"name": sock.name})
        self._touch()

    @atomic
    async def _on_joinchannel(self, sid: str, data: Any) -> None:
        sock = self._sockets.get(sid)
        if sock is None or sock.joined:
            return  # socket.once: one channel per socket
        name = data.get("name") if isinstance(data, dict) else None
        assert self.sio is not None
        if not isinstance(name, str) or not CHANNEL.match(name):
            await self._emit("errorMsg", {"msg": "Invalid channel name"}, sid)
            await self.kick_sid(sid, "Invalid channel name")
            return
        if name.lower() != self.channel:
            await self.kick_sid(sid, "Channel could not be loaded: this fake has one channel")
            return
        sock.joined = True
        await self.sio.enter_room(sid, self.channel)
        if self.channel_password and data.get("pw") != self.channel_password and sock.rank < 2:
            await self._emit("needPassword", "pw" in data, sid)
            return
        await self._send_channel(sock)

    @atomic
    async def _on_channel_password(self, sid: str, password: Any) -> None:
        sock = self._sockets.get(sid)
        if sock is None or not sock.joined:
            return
        if password != self.channel_password:
            await self._emit("needPassword", True, sid)
            return
        await self._emit("cancelNeedPassword", None, sid)
        await self._send_channel(sock)

    async def kick_sid(self, sid: str, reason: str) -> None:
        assert self.sio is not None
        await self.sio.emit("kick", {"reason": reason}, to=sid)
        await self.sio.disconnect(sid)

    async def _send_channel(self, sock: Sock) -> None:
        sid = sock.sid
        for event, data in (
            ("setPermissions", self.permissions),
            ("setPlaylistLocked", True),
            ("emoteList", []),
        ):
            await self._emit(event, data, sid)
        for message in self.buffer:
            await self._emit("chatMsg", message, sid)
        for event, data in (
            ("drinkCount", 0),
            ("channelCSSJS", {"css": "", "js": ""}),
            ("setMotd", ""),
            ("channelOpts", {"chat_antiflood": False}),
            ("setPlaylistMeta", {"count": 0, "rawTime": 0, "time": "00:00"}),
            ("playlist", []),
            ("userlist", [m.entry() for m in self.members.values()]),
            ("usercount", len(self._sockets)),
        ):
            await self._emit(event, data, sid)
        sock.entered = True
        if sock.name:
            await self._accept(sock)

    @atomic
    async def _on_login(self, sid: str, data: Any) -> None:
        sock = self._sockets.get(sid)
        if sock is None or sock.name or not isinstance(data, dict):
            return
        name, pw = str(data.get("name", "")), str(data.get("pw") or "")[:100]
        error = ""
        if not NAME.match(name):
            error = (
                "Invalid username.  Usernames must be 1-20 characters long and consist only"
                " of characters a-z, A-Z, 0-9, -, or _."
            )
        elif pw:
            account = self.accounts.get(name.lower())
            if account is None:
                error = "User does not exist"
            elif account[1] != pw:
                error = "Invalid username/password combination"
            else:
                name = account[0]
        elif name.lower() in self.accounts:
            error = "That username is registered."
        elif name.lower() in self.members:
            error = "That name is already in use on this channel."
        if error:
            await self._emit("login", {"success": False, "error": error}, sid)
            return
        sock.name, sock.guest = name, not pw
        sock.rank = 0 if sock.guest else 1
        self.logins.append(name)
        await self._emit("rank", sock.rank, sid)
        reply: dict[str, Any] = {"success": True, "name": name}
        if sock.guest:
            reply["guest"] = True
        await self._emit("login", reply, sid)
        if sock.entered:
            await self._accept(sock)

    async def _accept(self, sock: Sock) -> None:
        key = sock.name.lower()
        old = self.members.get(key)
        if old is not None and old.sid is not None and old.sid != sock.sid:
            old_sid = old.sid
            old.sid = None  # its disconnect must not remove the new member
            del self.members[key]
            await self.kick_sid(old_sid, "Duplicate login")
            await self._emit("userLeave", {"name": sock.name})
        rank = max(sock.rank, self.ranks.get(key, sock.rank))
        if rank != sock.rank:
            sock.rank = rank
            await self._emit("rank", rank, sock.sid)
        member = Member(sock.name, rank, sock.sid)
        self.members[key] = member
        await self._emit("addUser", member.entry())
        if not sock.guest:
            await self._emit("setUserRank", {"name": sock.name, "rank": rank})
        await self._emit("setPlaylistMeta", {"count": 0, "rawTime": 0, "time": "00:00"}, sock.sid)
        await self._emit("playlist", [], sock.sid)

    @atomic
    async def _on_chatmsg(self, sid: str, data: Any) -> None:
        sock = self._sockets.get(sid)
        if sock is None or not isinstance(data, dict) or not isinstance(data.get("msg"), str):
            await self._emit("errorMsg", {"msg": "Unexpected error for message chatMsg"}, sid)
            return
        if not sock.joined or not sock.name or sock.name.lower() not in self.members:
            return  # before join + login: dropped silently
        await self._chat(sock.name, sock.rank, sock.limiter, sid, data["msg"])

    async def _chat(
        self, name: str, rank: float, limiter: RateLimiter, sid: str | None, text: str
    ) -> None:
        if rank < self.permissions["chat"]:
            return
        text = re.sub(r"[\x00-\x1f]+", " ", cut(text, self.max_length))
        if not text.strip():
            return
        if limiter.throttle(*MIN_ANTIFLOOD):
            self.cooldowns += 1
            if sid is not None:
                await self._emit("cooldown", 1000 / MIN_ANTIFLOOD[1], sid)
            return
        meta: dict[str, Any] = {}
        if text.startswith(">"):
            meta["addClass"] = "greentext"
        if text.startswith("/"):
            command = text[1:].split(" ", 1)[0]
            if command == "me":
                meta.update(addClass="action", action=True)
                text = text.split(" ", 1)[1] if " " in text else ""
                if not text.strip():
                    return
            elif command in COMMANDS:
                return  # a command the user may not use is swallowed
        message = {"username": name, "msg": format_message(text), "meta": meta, "time": now_ms()}
        self._remember(message)
        self.chat.append(message)
        await self._emit("chatMsg", message)

    def _remember(self, message: dict[str, Any]) -> None:
        self.buffer = [*self.buffer, message][-15:]

    @atomic
    async def _on_pm(self, sid: str, data: Any) -> None:
        sock = self._sockets.get(sid)
        if sock is None or not isinstance(data, dict):
            return
        if not sock.name:
            await self._emit("errorMsg", {"msg": "You must be signed in to send PMs"}, sid)
            return
        await self._pm(sock.name, sock.limiter, sid, str(data.get("to", "")), str(data["msg"]))

    async def _pm(
        self, name: str, limiter: RateLimiter, sid: str | None, to: str, text: str
    ) -> None:
        to = to.lower()
        problem = ""
        if to == name.lower():
            problem = "You can't PM yourself!"
        elif not NAME.match(to):
            problem = f"PM failed: {to} isn't a valid username."
        elif limiter.throttle(*MIN_ANTIFLOOD):
            self.cooldowns += 1
            if sid is not None:
                await self._emit("cooldown", 1000 / MIN_ANTIFLOOD[1], sid)
            return
        elif to not in self.members:
            problem = f"PM failed: {to} isn't connected to this channel."
        if problem:
            if sid is not None:
                await self._emit("errorMsg", {"msg": problem}, sid)
            return
        text = cut(text, self.max_length)
        target = self.members[to]
        meta = {"addClass": "greentext"} if text.startswith(">") else {}
        message = {
            "username": name,
            "msg": format_message(text),
            "meta": meta,
            "time": now_ms(),
            "to": target.name,
        }
        if target.sid is not None:
            await self._emit("pm", message, target.sid)
        else:
            self.pms.append(message)
        if sid is not None:
            await self._emit("pm", message, sid)
        self._touch()
