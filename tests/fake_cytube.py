"""A fake CyTube 3.86 server: python-socketio's AsyncServer on aiohttp, behaving as
/work/shared/cytube-protocol.md and CyTube's source (calzoneman/sync 3.0) describe: the join
sequence with history replay, echo of the sender's own chat, HTML-formatted `msg`, the 320-unit
cut, the 20/10 chat throttle answering `cooldown`, `kick` before disconnect, duplicate-login kick,
the per-IP connection bucket; and the channel: permissions, playlist, polls, voteskip, moderation.
The modules: fake_playlist.py, fake_poll.py (polls, voteskip), fake_moderation.py (chat commands,
AFK/mute, settings), fake_channel_rules.py (defaults, media stand-ins), fake_channel_base.py.

Test-facing API (`fake` is a started FakeCytube, e.g. the `fake`/`make_fake` fixtures):
* Set up: `FakeCytube(channel, accounts, ranks={"rosey": 2}, permissions={"playlistadd": 2},
  options={"voteskip_ratio": 1}, history=[(user, text)])`. `ranks` are the accounts' channel
  ranks: the bot logs in at rank 1 and gets its channel rank after (`rank 1`, `login`, `addUser`,
  `rank 2`, `userlist` again when it reaches 2, `setUserRank 2`). While running:
  `await fake.set_permissions(playlistadd=3)`, `await fake.set_options(maxlength=60)`,
  `await fake.set_rank("rosey", 1)` (a socket user also gets `rank`). `fake.permissions`,
  `fake.options` are the current dicts (defaults: DEFAULT_PERMISSIONS/DEFAULT_OPTIONS).
* Virtual users: `await fake.join("alice", rank=0, ip=None, afk=False)` (an own IP each unless
  given; registered = rank >= 1, which broadcasts `setUserRank`), `leave`, `say(name, text)` (chat
  commands included: `/kick`, `/mute`, `/poll a,b,c`...), `pm`, `set_afk(name, True)`,
  `await fake.act(name, event, data)`: the user emits any socket event (`queue`, `delete`,
  `jumpTo`, `vote`, `voteskip`, `newPoll`, ...), handled exactly as a socket's; shortcuts
  `vote(name, option)`, `voteskip(name)`, `open_poll(name, title, options, obscured=, timeout=)`.
  Votes count per IP: `join("bob", ip=fake.member("alice").ip)` shares alice's vote.
* Playlist: `await fake.add("yt", "abc", title=, seconds=, by=, temp=)` seeds an item (no
  checks); `fake.playlist()` the packed items in order, `fake.current` (an Item: uid, type, id,
  title, seconds, temp, queueby), `fake.current_time`, `fake.paused`, `fake.find(uid)`,
  `fake.media_info[("yt", "abc")] = ("Title", 300)` or `= "error text"` (queueFail) for a lookup.
  Time is test-driven: `await fake.tick(seconds)` runs the lead loop (mediaUpdate every 5 s, the
  next item 2 s after the end); `await fake.media_update()` sends one now. `fake.rng` shuffles.
* Polls: `fake.poll` (a Poll: title, options, votes by IP, counts()) or None;
  `await fake.expire_poll()` fires a poll's timeout now.
* Moderation state: `fake.kicked` [(name, reason)], `fake.muted`, `fake.smuted`, `fake.banned`.
* A raw socket client: `make_client(fake, "alice", "pw", ip=...)` (tests/cytube_helpers.py
  RawClient: `.emit`, `.call`, `.of(event)`, `.until(check)`, `.sync()` barrier).
* What was sent: `fake.emitted("queue")` every payload of an event, `fake.events`
  [(event, data, to-sid or None for the room)]; `fake.chat`, `fake.pms`, `fake.said(user)`;
  `await fake.until(lambda: ...)` waits for a condition.

Media lookups: `tw` ("Twitch.tv - <name>"), `hl` (https only, "Livestream"), `rt`, `li` behave as
CyTube's (no network). The fake has no internet, so every other type gets a deterministic
stand-in: title "<type>:<id>", 120 s (unless `media_info` says otherwise); `cu` keeps its id and is
titled "Custom Media" (CyTube parses the embed); `cu`/`fi` take the client's `title`.
Not modelled: leader playback beyond setLeader/mediaUpdate, IP bans, the playlist lock, the channel
library, chat filters editing, `/sp` `/say` (swallowed), anonymous socket userlist counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import socketio
from aiohttp import web

from tests.cytube_rules import (
    CHANNEL,
    NAME,
    IpBucket,
    format_message,
)
from tests.fake_channel_base import Handler
from tests.fake_channel_rules import DEFAULT_OPTIONS, DEFAULT_PERMISSIONS, Member, Sock, atomic
from tests.fake_chat import ChatModule

__all__ = ["FakeCytube", "Member", "Sock", "atomic"]


class FakeCytube(ChatModule):
    def __init__(
        self,
        channel: str = "test",
        accounts: dict[str, str] | None = None,
        *,
        ranks: dict[str, float] | None = None,
        history: list[tuple[str, str]] | None = None,
        channel_password: str = "",
        max_length: int = 320,
        permissions: dict[str, float] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.channel = channel.lower()
        self.accounts = {k.lower(): (k, v) for k, v in (accounts or {}).items()}
        self.ranks = {k.lower(): v for k, v in (ranks or {}).items()}
        self.channel_password = channel_password
        self.max_length = max_length
        self.permissions = {**DEFAULT_PERMISSIONS, **(permissions or {})}
        self.options = {**DEFAULT_OPTIONS, **(options or {})}
        self.buffer: list[dict[str, Any]] = []  # the chat replay buffer survives restarts
        for user, text in history or []:
            self._remember({"username": user, "msg": format_message(text), "meta": {}, "time": 1})
        self.members: dict[str, Member] = {}
        # What tests look at.
        self.chat: list[dict[str, Any]] = []
        self.pms: list[dict[str, Any]] = []
        self.logins: list[str] = []
        self.cooldowns = 0
        self.events: list[tuple[str, Any, str | None]] = []
        self.kicked: list[tuple[str, str | None]] = []
        self._virtual = 0  # virtual users get IPs 10.18.0.1, 10.18.0.2, ...
        self._init_playlist()
        self._init_poll()
        self._init_moderation()
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
        for event, handler in self._handlers().items():
            self.sio.on(event, self._bind(event, handler))
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

    def _handlers(self) -> dict[str, Handler]:
        return {
            **self._playlist_handlers(),
            **self._poll_handlers(),
            **self._moderation_handlers(),
        }

    @atomic
    async def join(
        self, name: str, rank: float = 0, *, ip: str | None = None, afk: bool = False
    ) -> None:
        key = name.lower()
        self._virtual += 1
        member = Member(
            name, rank, None, ip or f"10.18.{self._virtual // 250}.{self._virtual % 250}"
        )
        member.afk, member.muted, member.smuted = afk, key in self.muted, key in self.smuted
        self.members[key] = member
        await self._to("addUser", member.entry)
        if rank >= 1:
            await self._emit("setUserRank", {"name": name, "rank": rank})
        await self._skip_update()

    @atomic
    async def leave(self, name: str) -> None:
        member = self.members.pop(name.lower(), None)
        if member is not None:
            await self._emit("userLeave", {"name": member.name})
            await self._parted(member)

    @atomic
    async def say(self, name: str, text: str) -> None:
        member = self.members[name.lower()]
        await self._chat(member, text)

    @atomic
    async def pm(self, name: str, to: str, text: str) -> None:
        member = self.members[name.lower()]
        await self._pm(member.name, member.limiter, None, to, text)

    @atomic
    async def set_rank(self, name: str, rank: float) -> None:
        member = self.members[name.lower()]
        old, member.rank = member.rank, rank
        sock = self._sockets.get(member.sid) if member.sid else None
        if sock is not None:
            sock.rank = rank
            await self._emit("rank", rank, sock.sid)
            if (old >= 2) != (rank >= 2):
                await self._emit(
                    "userlist", [m.entry(rank) for m in self.members.values()], sock.sid
                )
        await self._emit("setUserRank", {"name": member.name, "rank": rank})

    async def kick(self, name: str, reason: str | None = None) -> None:
        """The server kicks the socket user `name` (e.g. "Channel reloading")."""
        member = self.members.get(name.lower())
        if member is None or member.sid is None:
            return
        await self.kick_sid(member.sid, reason)

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
            await self._parted(member)
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

    async def _send_channel(self, sock: Sock) -> None:
        sid = sock.sid
        first: tuple[tuple[str, Any], ...] = (
            ("setPermissions", dict(self.permissions)),
            ("setPlaylistLocked", True),
            ("emoteList", []),
        )
        for event, data in first:
            await self._emit(event, data, sid)
        for message in self.buffer:
            await self._emit("chatMsg", message, sid)
        then: tuple[tuple[str, Any], ...] = (
            ("drinkCount", 0),
            ("channelCSSJS", {"css": "", "js": ""}),
            ("setMotd", ""),
            ("channelOpts", dict(self.options)),
        )
        for event, data in then:
            await self._emit(event, data, sid)
        await self._send_playlist(sid, sock.rank)
        await self._send_media(sid)
        await self._send_poll(sid, sock.rank)
        await self._emit("userlist", [m.entry(sock.rank) for m in self.members.values()], sid)
        await self._emit("usercount", len(self._sockets), sid)
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
        if key in self.banned:
            await self.kick_sid(sock.sid, "You are banned from this channel.")
            return
        member = Member(sock.name, sock.rank, sock.sid, sock.ip)
        member.limiter, member.queue_limiter = sock.limiter, sock.queue_limiter
        member.muted, member.smuted = key in self.muted, key in self.smuted
        self.members[key] = member
        await self._to("addUser", member.entry)
        rank = max(sock.rank, self.ranks.get(key, sock.rank))  # the channel rank, loaded later
        if rank != sock.rank:
            was, sock.rank, member.rank = sock.rank, rank, rank
            await self._emit("rank", rank, sock.sid)
            if was < 2 <= rank:
                await self._emit(
                    "userlist", [m.entry(rank) for m in self.members.values()], sock.sid
                )
        if not sock.guest:
            await self._emit("setUserRank", {"name": sock.name, "rank": rank})
        await self._send_playlist(sock.sid, rank)
        await self._skip_update()

    @atomic
    async def _on_chatmsg(self, sid: str, data: Any) -> None:
        sock = self._sockets.get(sid)
        if sock is None or not isinstance(data, dict) or not isinstance(data.get("msg"), str):
            await self._emit("errorMsg", {"msg": "Unexpected error for message chatMsg"}, sid)
            return
        if not sock.joined or not sock.name or sock.name.lower() not in self.members:
            return  # before join + login: dropped silently
        await self._chat(self.members[sock.name.lower()], data["msg"])

    @atomic
    async def _on_pm(self, sid: str, data: Any) -> None:
        sock = self._sockets.get(sid)
        if sock is None or not isinstance(data, dict):
            return
        if not sock.name:
            await self._emit("errorMsg", {"msg": "You must be signed in to send PMs"}, sid)
            return
        await self._pm(sock.name, sock.limiter, sid, str(data.get("to", "")), str(data["msg"]))
