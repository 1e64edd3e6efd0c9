"""What the fake CyTube server's modules share: emitting (to the room, to one socket, to the
sockets of some ranks), the channel's users, permission checks, `[server]` whispers, and binding a
socket event to a handler that also serves virtual users (FakeCytube.act)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from tests.cytube_rules import now_ms
from tests.fake_channel_rules import KICKS, Member, Sock

Handler = Callable[[Member, Any], Awaitable[Any]]


class ChannelBase:
    channel: str
    sio: socketio.AsyncServer | None
    members: dict[str, Member]
    permissions: dict[str, float]
    options: dict[str, Any]
    events: list[tuple[str, Any, str | None]]
    kicked: list[tuple[str, str | None]]
    _sockets: dict[str, Sock]
    _lock: asyncio.Lock
    _changed: asyncio.Event

    def _touch(self) -> None:
        self._changed.set()

    async def _emit(self, event: str, data: Any = None, to: str | None = None) -> None:
        self.events.append((event, data, to))
        if self.sio is not None:
            await self.sio.emit(event, data, to=to, room=None if to else self.channel)
        self._touch()

    async def kick_sid(self, sid: str, reason: str | None) -> None:
        """`kick {reason}` (or `kick {}`) then the disconnect, as user.kick does."""
        assert self.sio is not None
        self.events.append(("kick", reason, sid))
        await self.sio.emit("kick", {} if reason is None else {"reason": reason}, to=sid)
        await self.sio.disconnect(sid)

    def emitted(self, event: str) -> list[Any]:
        """The payload of every `event` the server sent (broadcast or to one socket), in order."""
        return [data for name, data, _ in self.events if name == event]

    # Who is in the channel.

    def _socks(self) -> list[Sock]:
        return [s for s in self._sockets.values() if s.entered]

    def _users(self) -> list[Member]:
        """channel.users: every member, plus sockets that joined without logging in."""
        anonymous = [Member("", s.rank, s.sid, s.ip) for s in self._socks() if not s.name]
        return [*self.members.values(), *anonymous]

    def member(self, name: str) -> Member:
        return self.members[name.lower()]

    def can(self, rank: float, node: str) -> bool:
        """permissions.hasPermission (the playlist is locked: `o…` permissions unused)."""
        return rank >= self.permissions.get(node, 1_000_000)

    async def _to(
        self, event: str, data: Any, where: Callable[[float], bool] | None = None
    ) -> None:
        """`data` (or data(rank)) to every socket in the channel whose rank passes `where`."""
        for sock in self._socks():
            if where is None or where(sock.rank):
                await self._emit(event, data(sock.rank) if callable(data) else data, sock.sid)

    async def _whisper(self, text: str, minrank: float = 2) -> None:
        """chat.sendModMessage: a `[server]` line for ranks >= minrank."""
        meta = {"addClass": "server-whisper", "addClassToNameAndTimestamp": True}
        message = {"username": "[server]", "msg": text, "meta": meta, "time": now_ms()}
        await self._to("chatMsg", message, lambda rank: rank >= minrank)

    async def _drop(self, member: Member, reason: str | None) -> None:
        """user.kick: a socket gets `kick` + disconnect; a virtual user just leaves."""
        self.kicked.append((member.name, reason))
        if member.sid is not None:
            await self.kick_sid(member.sid, reason)
            return
        if self.members.pop(member.name.lower(), None) is not None:
            await self._emit("userLeave", {"name": member.name})
            await self._parted(member)

    async def _parted(self, member: Member) -> None:
        """onUserPart of the poll and voteskip modules (overridden there)."""

    # Events: one handler serves sockets and virtual users.

    def _handlers(self) -> dict[str, Handler]:
        return {}

    def _bind(self, event: str, handler: Handler) -> Callable[..., Awaitable[Any]]:
        async def run(sid: str, *args: Any) -> Any:
            async with self._lock:
                actor = self._actor(sid)
                if actor is None:
                    return None
                return await handler(actor, args[0] if args else None)

        return run

    def _actor(self, sid: str) -> Member | None:
        sock = self._sockets.get(sid)
        if sock is None or not sock.entered:
            return None  # handlers are bound once the join sequence was sent
        member = self.members.get(sock.name.lower()) if sock.name else None
        if member is not None and member.sid == sid:
            return member
        return Member(sock.name, sock.rank, sid, sock.ip, queue_limiter=sock.queue_limiter)

    async def act(self, name: str, event: str, data: Any = None) -> Any:
        """Virtual user `name` emits `event` with `data`, handled as a socket's would be."""
        handler = self._handlers()[event]
        async with self._lock:
            return await handler(self.member(name), data)

    async def _kicking(self, actor: Member, data: Any, event: str) -> None:
        """Events the fake does not model beyond the kick a rank below their need gets."""
        need, reason = KICKS[event]
        rank = self.permissions[need] if isinstance(need, str) else need
        if actor.rank < rank:
            await self._drop(actor, reason)
