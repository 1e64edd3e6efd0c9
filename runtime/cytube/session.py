"""One socket.io connection to CyTube: join and login, then every event in order until it drops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import socketio

from runtime.config.settings import CytubeSettings
from runtime.cytube.channel import ROOM_EVENTS
from runtime.cytube.events import ChannelState
from runtime.cytube.sendqueue import Outgoing, SendQueue
from runtime.errors import ConnectorError, LoginError

log = logging.getLogger("rosey.cytube")

IP_LIMIT_DELAY = 10.0  # the server's per-IP bucket gives one more connection every 10 s
KICK_DELAY = 30.0  # after a moderator's kick: come back, but not at once

# Kick reasons (lower case, matched as substrings) and what they mean for reconnecting.
_PARK_KICKS = ("duplicate login",)  # another client logged in with the bot's account
_FATAL_KICKS = ("banned", "invalid channel name", "channel deleted")
_SOON_KICKS = ("channel reloading", "channel shutting down")
_SLOW_KICKS = ("rate limit exceeded", "too many connections")
# Login failures that pass with time; every other one is a credentials problem.
_PASSING_LOGIN = ("guest logins are restricted", "already in use on this channel")

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]
Observe = Callable[[str, Any], None]
Inbox = asyncio.Queue[tuple[str, tuple[Any, ...]]]


@dataclass
class Ended:
    """How a session ended, and what that means for the next one."""

    reason: str
    ready: bool  # it got as far as login + userlist
    min_delay: float = 0.0
    park: bool = False  # do not reconnect until restarted


def text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("message", value)
    return "" if value is None else str(value)


async def discover(settings: CytubeSettings) -> str:
    """The socket.io URL from `<url>/socketconfig/<channel>.json`, as the web client picks it."""
    channel = settings.channel
    url = f"{settings.url.rstrip('/')}/socketconfig/{channel}.json"
    try:
        timeout = aiohttp.ClientTimeout(total=settings.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
            status, body_text = response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError) as e:
        raise ConnectorError(channel, f"cannot read {url}: {e!r}", fatal=False) from e
    try:
        body = json.loads(body_text)
    except ValueError:
        body = None
    if status >= 500:
        raise ConnectorError(channel, f"{url} answered {status}", fatal=False)
    if status != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise ConnectorError(channel, f"{url} answered {status}: {error or body_text[:200]!r}")
    servers = [s for s in body.get("servers") or [] if isinstance(s, dict) and s.get("url")]
    if not servers:
        raise ConnectorError(channel, f"{url} lists no socket.io server")
    chosen = next((s for s in servers if s.get("secure")), servers[0])
    return str(chosen["url"])


def after_kick(channel: str, kick: str | None, ready: bool) -> Ended:
    """What a disconnect means, given the reason of the `kick` before it (None: no kick)."""
    if kick is None:
        return Ended("connection lost", ready)
    reason = f"kicked: {kick or 'no reason given'}"
    lowered = kick.lower()
    if any(k in lowered for k in _PARK_KICKS):
        return Ended(reason, ready, park=True)
    if any(k in lowered for k in _FATAL_KICKS):
        raise ConnectorError(channel, reason)
    if any(k in lowered for k in _SOON_KICKS):
        return Ended(reason, ready)
    slow = IP_LIMIT_DELAY if any(k in lowered for k in _SLOW_KICKS) else KICK_DELAY
    return Ended(reason, ready, slow)


class Session:
    """Connects, joins, logs in, and turns the server's events into channel state, NATS
    publications and send-queue signals. `ready` is set once login and userlist are in."""

    def __init__(
        self,
        settings: CytubeSettings,
        chan: ChannelState,
        queue: SendQueue,
        ready: asyncio.Event,
        publish: Publish,
        on_ready: Callable[[], Awaitable[None]],
        observe: Observe | None = None,
    ) -> None:
        self.settings, self.chan, self.queue, self.ready = settings, chan, queue, ready
        self.channel = settings.channel
        self.publish, self.on_ready = publish, on_ready
        self.observe = observe  # sees every event after the state took it (action confirmations)
        self.inbox: Inbox = asyncio.Queue()
        self.refused: list[str] = []
        self._hanging_up: asyncio.Task[None] | None = None
        # Handlers only queue events: one loop handles them in the order the server sent them.
        self.sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.sio.on("*", lambda event, *args: self.inbox.put_nowait((event, args)))
        self.sio.on("disconnect", lambda *args: self.inbox.put_nowait(("disconnect", args)))
        self.sio.on("connect_error", lambda data=None: self.refused.append(text(data)))

    async def run(self, endpoint: str) -> Ended:
        """Until the connection ends; raises ConnectorError when the channel cannot be served."""
        try:
            try:
                await self.sio.connect(
                    endpoint, transports=["websocket"], wait_timeout=self.settings.timeout
                )
            except socketio.exceptions.ConnectionError as e:
                reason = self.refused[-1] if self.refused else str(e) or "connection failed"
                if "banned" in reason.lower():
                    raise ConnectorError(self.channel, f"{endpoint} refused: {reason}") from e
                slow = IP_LIMIT_DELAY if "rate limit" in reason.lower() else 0.0
                return Ended(f"cannot connect to {endpoint}: {reason}", False, slow)
            self.chan.new_connection()
            join: dict[str, Any] = {"name": self.channel}
            if self.settings.channel_password:
                join["pw"] = self.settings.channel_password
            await self.sio.emit("joinChannel", join)
            login: dict[str, Any] = {"name": self.settings.username}
            if self.settings.password:
                login["pw"] = self.settings.password
            await self.sio.emit("login", login)
            return await self._events()
        finally:
            self.ready.clear()
            self.queue.lost()
            await self._hang_up()

    async def close(self) -> None:
        await self._hang_up()
        # Ends the session even if the client reports no disconnect of its own.
        self.inbox.put_nowait(("disconnect", ()))

    async def _hang_up(self) -> None:
        """Disconnects; a call while another is under way waits for that one. engineio's disconnect
        is not reentrant: a second call during the first empties the send queue under it, CLOSE
        and end-of-queue marker included, and the first then waits out the write loop's timeout
        (ping timeout + 5 s). close() triggers the disconnect event, so run() would make that
        second call. Shielded: a cancelled caller (the lease renewer) does not cut it short."""
        if self._hanging_up is None or self._hanging_up.done():
            self._hanging_up = asyncio.create_task(self._disconnect())
        await asyncio.shield(self._hanging_up)

    async def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()

    async def emit_event(self, event: str, data: Any = None, ack: Observe | None = None) -> None:
        """A channel action (`queue`, `delete`, `newPoll`, ...); `ack` gets the server's ack."""
        if not self.sio.connected:
            raise ConnectionError("not connected")
        callback = None if ack is None else (lambda *args: ack(event, args[0] if args else None))
        if data is None:
            await self.sio.emit(event, callback=callback)
        else:
            await self.sio.emit(event, data, callback=callback)

    async def emit(self, item: Outgoing) -> None:
        if not self.sio.connected:
            raise ConnectionError("not connected")
        if item.kind == "pm":
            await self.sio.emit("pm", {"to": item.to, "msg": item.text, "meta": {}})
        else:
            await self.sio.emit("chatMsg", {"msg": item.text, "meta": {}})

    async def _events(self) -> Ended:
        deadline = time.monotonic() + self.settings.timeout
        kick: str | None = None
        logged_in = False
        while True:
            try:
                if self.ready.is_set():
                    event, args = await self.inbox.get()
                else:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        event, args = await self.inbox.get()
            except TimeoutError:
                what = "userlist" if logged_in else "login reply"
                return Ended(f"no {what} within {self.settings.timeout:g}s", False)
            data = args[0] if args else None
            if event == "disconnect":
                return after_kick(self.channel, kick, self.ready.is_set())
            if event == "kick":
                kick = text(data.get("reason") if isinstance(data, dict) else None)
                log.warning("kicked from %s: %s", self.channel, kick or "(no reason)")
            elif event == "login":
                logged_in = self._login(data)
            elif event == "needPassword":
                await self._password(bool(data))
            else:
                await self._handle(event, data)
            if not self.ready.is_set() and logged_in and self.chan.listed:
                self.ready.set()
                await self.on_ready()

    def _login(self, data: Any) -> bool:
        data = data if isinstance(data, dict) else {}
        if data.get("success"):
            self.chan.me = str(data.get("name") or self.settings.username)
            return True
        reason = text(data.get("error")) or "no reason given"
        passing = any(p in reason.lower() for p in _PASSING_LOGIN)
        raise LoginError(self.channel, self.settings.username, reason, fatal=not passing)

    async def _password(self, wrong: bool) -> None:
        if wrong or not self.settings.channel_password:
            problem = (
                "the channel password was refused" if wrong else "the channel needs a password"
            )
            raise ConnectorError(self.channel, f"{problem} (set cytube.channel_password)")
        await self.sio.emit("channelPassword", self.settings.channel_password)

    async def _handle(self, event: str, data: Any) -> None:
        chan = self.chan
        published: list[tuple[str, dict[str, Any]]] = []
        if event in ("chatMsg", "pm"):
            sender = data.get("username") if isinstance(data, dict) else None
            if isinstance(sender, str) and chan.is_me(sender):
                self.queue.confirmed("pm" if event == "pm" else "chat")
            found = chan.message(data, private=event == "pm")
            published = [found] if found else []
        elif event == "rank":
            published = chan.set_rank(data)
        elif event == "setPermissions":
            chan.set_permissions(data)
        elif event == "userlist":
            published = chan.userlist(data)
        elif event == "addUser":
            published = chan.add_user(data)
        elif event == "userLeave":
            published = chan.user_leave(data)
        elif event == "setUserRank":
            published = chan.set_user_rank(data)
        elif event in ("setAFK", "setUserMeta"):
            published = chan.set_afk(data)
        elif event == "cooldown":
            self.queue.cooldown(float(data) if isinstance(data, int | float) else 1000.0)
        elif event in ("errorMsg", "noflood", "spamFiltered"):
            self._refused(event, data)
        elif event in ROOM_EVENTS:
            published = chan.room.handle(event, data)
        self.queue.observe(event, data)
        if self.observe is not None:
            self.observe(event, data)
        for subject, payload in published:
            await self.publish(subject, payload)

    def _refused(self, event: str, data: Any) -> None:
        info = data if isinstance(data, dict) else {}
        if event == "spamFiltered":
            code, reason = "spam_filtered", f"new-account chat restriction ({info.get('reason')})"
        elif event == "noflood":
            code, reason = "muted", text(info.get("msg")) or "muted"
        else:
            code, reason = "server_error", text(info.get("msg")) or "error"
        # An error with no line in flight is about something else; it is only logged.
        if not self.queue.rejected(code, reason):
            log.warning("%s from %s: %s", event, self.channel, reason)
