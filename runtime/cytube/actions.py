"""Channel actions (cytube.send.playlist.*, .poll.*, .mod, .emote, .voteskip) and cytube.state.

Each subject is a NATS request answered with the envelope (or a plain publish, acted on alike).
Before anything is sent the bot's rank is checked against the channel's permissions (CyTube
refuses in silence, or kicks); after it is sent, the answer waits for the event the server
broadcasts when the action took effect (confirm.py), with `action_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from nats.aio.msg import Msg

from runtime.config.settings import CytubeSettings
from runtime.constants import (
    CHANNEL_STATE,
    PLAYLIST_ADD,
    PLAYLIST_CLEAR,
    PLAYLIST_JUMP,
    PLAYLIST_MOVE,
    PLAYLIST_NEXT,
    PLAYLIST_REMOVE,
    PLAYLIST_SETTEMP,
    PLAYLIST_SHUFFLE,
    POLL_CLOSE_SEND,
    POLL_OPEN_SEND,
    SEND_CHAT,
    SEND_EMOTE,
    SEND_MOD,
    SEND_VOTESKIP,
    ErrorCode,
)
from runtime.cytube import matchers, media, permits
from runtime.cytube.confirm import Confirmations, Refusal
from runtime.cytube.events import ChannelState
from runtime.cytube.sendqueue import Outgoing, Refused, SendQueue, prepare
from runtime.cytube.throttle import Limiter, queue_limits
from runtime.errors import ContractError, RoseyError
from runtime.wire import contract
from runtime.wire.bus import Binding, Bus

log = logging.getLogger("rosey.cytube.actions")

NAME = re.compile(
    r"^[\w-]{1,20}$", re.ASCII
)  # CyTube's user name rule (src/utilities.js isValidUserName)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\s]+")
REASON_LIMIT = 200  # CyTube keeps 255 of a ban reason; a kick's line is cut at 320
MAX_POLL_OPTIONS = 50  # the server's poll.max-options default
STATE_PARTS = ("playlist", "media", "users", "poll")


class Link(Protocol):
    """What the actions need from the connector."""

    chan: ChannelState
    settings: CytubeSettings
    queue: SendQueue
    channel: str

    def connected(self) -> bool: ...

    async def emit_event(
        self, event: str, data: Any = None, ack: Callable[[str, Any], None] | None = None
    ) -> None: ...


def clean_reason(reason: Any) -> str:
    """One line without control characters, at most REASON_LIMIT characters."""
    text = _CONTROL.sub(" ", str(reason or "")).strip()
    return text[:REASON_LIMIT].rstrip()


def _int(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refusal(ErrorCode.INVALID_INPUT, f"{key} must be an integer playlist uid")
    return value


class Actions:
    def __init__(self, link: Link, bus: Bus) -> None:
        self.link, self.bus = link, bus
        self.confirm = Confirmations()
        self.limiter = Limiter()
        self._adds = asyncio.Lock()  # adds go out one at a time, in order, within the throttle
        self.handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            SEND_EMOTE: self.emote,
            PLAYLIST_ADD: self.add,
            PLAYLIST_REMOVE: self.remove,
            PLAYLIST_MOVE: self.move,
            PLAYLIST_JUMP: self.jump,
            PLAYLIST_NEXT: self.next,
            PLAYLIST_SHUFFLE: self.shuffle,
            PLAYLIST_CLEAR: self.clear,
            PLAYLIST_SETTEMP: self.settemp,
            SEND_VOTESKIP: self.voteskip,
            POLL_OPEN_SEND: self.poll_open,
            POLL_CLOSE_SEND: self.poll_close,
            SEND_MOD: self.mod,
            CHANNEL_STATE: self.state,
        }

    def bindings(self) -> list[Binding]:
        return [Binding(self.bus, subject, self.on_message) for subject in self.handlers]

    @property
    def chan(self) -> ChannelState:
        return self.link.chan

    @property
    def timeout(self) -> float:
        return self.link.settings.action_timeout

    # Signals from the session.

    def observe(self, event: str, data: Any) -> None:
        self.confirm.feed(event, data)

    def ack(self, event: str, data: Any) -> None:
        self.confirm.feed("ack:" + event, data)

    def lost(self) -> None:
        self.confirm.fail_all(
            ErrorCode.NATS_ERROR, "the connection to CyTube dropped before the server confirmed"
        )

    # NATS.

    async def on_message(self, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError as e:
            log.warning("refused a malformed %s: %s", msg.subject, e.problem)
            await self._answer(msg, contract.failure(ErrorCode.INVALID_INPUT, str(e)))
            return
        channel = payload.get("channel")
        if channel and channel.lower() != self.link.channel.lower():
            return  # another channel's connector answers it
        try:
            if msg.subject != CHANNEL_STATE and not self.link.connected():
                raise Refusal(ErrorCode.NATS_ERROR, f"the bot is not in {self.link.channel} now")
            data = await self.handlers[msg.subject](payload)
            reply = contract.ok(data)
        except Refusal as e:
            log.info("%s refused: %s", msg.subject, e.message)
            reply = contract.failure(e.code, e.message)
        except Exception as e:
            log.exception("%s failed", msg.subject)
            reply = contract.failure(ErrorCode.PLUGIN_ERROR, f"internal error: {e!r}")
        await self._answer(msg, reply)

    async def _answer(self, msg: Msg, reply: dict[str, Any]) -> None:
        try:
            await self.bus.respond(msg, reply)
        except RoseyError as e:
            log.warning("could not answer %s: %s", msg.subject, e)

    # Checks and sending.

    def _need(self, *nodes: str) -> None:
        room = self.chan.room
        reason = permits.first_denied(
            self.chan.permissions, self.chan.rank, list(nodes), not room.locked
        )
        if reason:
            raise Refusal(ErrorCode.PERMISSION_DENIED, reason)

    async def _do(self, what: str, event: str, data: Any, kind: str, match: matchers.Match) -> Any:
        pending = self.confirm.expect(kind, match)
        try:
            await self.link.emit_event(event, data, self.ack)
        except ConnectionError as e:
            self.confirm.drop(pending)
            raise Refusal(ErrorCode.NATS_ERROR, f"not connected to CyTube: {e}") from e
        return await self.confirm.wait(pending, self.timeout, what)

    def _known_uid(self, uid: int) -> dict[str, Any]:
        item = self.chan.room.find(uid)
        if item is None:
            raise Refusal(
                ErrorCode.INVALID_INPUT,
                f"no item with uid {uid} on the playlist (uids change on shuffle)",
            )
        return item

    # Playlist.

    async def add(self, payload: dict[str, Any]) -> Any:
        if "url" in payload:
            try:
                ref = media.parse(payload["url"])
            except ValueError as e:
                raise Refusal(ErrorCode.INVALID_INPUT, f"cannot add {payload['url']}: {e}") from e
            kind, ident = ref.type, ref.id
        elif "type" in payload and "id" in payload:
            kind, ident = payload["type"], payload["id"]
        else:
            raise Refusal(ErrorCode.INVALID_INPUT, "give either url, or type and id")
        position = payload.get("position", "end")
        self._need(*permits.queue_nodes(kind, position))
        queued: dict[str, Any] = {
            "id": ident,
            "type": kind,
            "pos": position,
            "temp": bool(payload.get("temp", True)),
        }
        for key in ("title", "duration"):
            if key in payload:
                queued[key] = payload[key]
        async with self._adds:
            waited = await self.limiter.acquire(*queue_limits(self.chan.rank))
            if waited:
                log.debug("waited %.2fs for CyTube's queue throttle", waited)
            pending = self.confirm.expect("queue", matchers.queued(kind, ident, self.chan))
            try:
                await self.link.emit_event("queue", queued)
            except ConnectionError as e:
                self.confirm.drop(pending)
                raise Refusal(ErrorCode.NATS_ERROR, f"not connected to CyTube: {e}") from e
        timeout = self.link.settings.add_timeout
        return await self.confirm.wait(pending, timeout, f"the add of {kind}:{ident}")

    async def remove(self, payload: dict[str, Any]) -> Any:
        uid = _int(payload, "uid")
        self._need("playlistdelete")
        self._known_uid(uid)
        return await self._do(
            f"the removal of {uid}", "delete", uid, "delete", matchers.deleted(uid)
        )

    async def move(self, payload: dict[str, Any]) -> Any:
        uid = _int(payload, "uid")
        after = payload.get("after")
        self._need("playlistmove")
        self._known_uid(uid)
        if after != "prepend":
            after = _int(payload, "after")
            self._known_uid(after)
            if after == uid:
                raise Refusal(ErrorCode.INVALID_INPUT, "an item cannot move after itself")
        return await self._do(
            f"the move of {uid}",
            "moveMedia",
            {"from": uid, "after": after},
            "move",
            matchers.moved(uid),
        )

    async def jump(self, payload: dict[str, Any]) -> Any:
        uid = _int(payload, "uid")
        self._need("playlistjump")
        self._known_uid(uid)
        return await self._do(
            f"the jump to {uid}", "jumpTo", uid, "media", matchers.playing(self.chan.room, uid)
        )

    async def next(self, payload: dict[str, Any]) -> Any:
        self._need("playlistjump")
        if not self.chan.room.items:
            raise Refusal(ErrorCode.INVALID_INPUT, "the playlist is empty")
        return await self._do(
            "the skip", "playNext", None, "media", matchers.playing(self.chan.room, None)
        )

    async def shuffle(self, payload: dict[str, Any]) -> Any:
        self._need("playlistshuffle")
        return await self._do(
            "the shuffle", "shufflePlaylist", None, "playlist", matchers.relisted(self.chan.room)
        )

    async def clear(self, payload: dict[str, Any]) -> Any:
        self._need("playlistclear")
        return await self._do(
            "the clear", "clearPlaylist", None, "playlist", matchers.relisted(self.chan.room)
        )

    async def settemp(self, payload: dict[str, Any]) -> Any:
        uid = _int(payload, "uid")
        self._need("settemp")
        self._known_uid(uid)
        temp = bool(payload["temp"])
        return await self._do(
            f"setting temp on {uid}",
            "setTemp",
            {"uid": uid, "temp": temp},
            "settemp",
            matchers.temp_set(uid),
        )

    async def voteskip(self, payload: dict[str, Any]) -> Any:
        self._need("voteskip")
        if self.chan.room.options.get("allow_voteskip") is False:
            raise Refusal(ErrorCode.PERMISSION_DENIED, "the channel has voteskip turned off")
        if not self.chan.room.items:
            raise Refusal(ErrorCode.INVALID_INPUT, "nothing is playing")
        if permits.denied(self.chan.permissions, self.chan.rank, "viewvoteskip"):
            # The count goes only to ranks with `viewvoteskip`: nothing would confirm the vote.
            await self.link.emit_event("voteskip")
            return {"confirmed": False}
        return await self._do(
            "the vote to skip", "voteskip", None, "voteskip", matchers.voteskipped(self.chan.room)
        )

    # Polls.

    async def poll_open(self, payload: dict[str, Any]) -> Any:
        title = payload["title"].strip()
        options = [str(o).strip() for o in payload["options"]]
        if not title or len(title) > 255:
            raise Refusal(ErrorCode.INVALID_INPUT, "a poll title must be 1-255 characters")
        if not 2 <= len(options) <= MAX_POLL_OPTIONS:
            raise Refusal(ErrorCode.INVALID_INPUT, f"a poll needs 2-{MAX_POLL_OPTIONS} options")
        if any(not 1 <= len(o) <= 255 for o in options):
            raise Refusal(ErrorCode.INVALID_INPUT, "poll options must be 1-255 characters")
        self._need("pollctl")
        data: dict[str, Any] = {
            "title": title,
            "opts": options,
            "obscured": bool(payload.get("obscured", False)),
        }
        if payload.get("timeout") is not None:
            data["timeout"] = payload["timeout"]
        return await self._do(
            "the new poll", "newPoll", data, "poll", matchers.poll_opened(self.chan)
        )

    async def poll_close(self, payload: dict[str, Any]) -> Any:
        self._need("pollctl")
        if self.chan.room.poll is None:
            raise Refusal(ErrorCode.INVALID_INPUT, "no poll is open")
        return await self._do(
            "closing the poll", "closePoll", None, "poll", matchers.poll_closed(self.chan.room)
        )

    # Chat: emotes and moderators' commands go through the chat send queue.

    async def _queue(self, items: list[Outgoing]) -> None:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[tuple[str, str] | None] = loop.create_future()
        left = [len(items)]

        def done(code: str | None, reason: str) -> None:
            if outcome.done():
                return
            if code is not None:
                outcome.set_result((code, reason))
                return
            left[0] -= 1
            if left[0] == 0:
                outcome.set_result(None)

        for item in items:
            item.done = done
        if not self.link.queue.put(items):
            raise Refusal(ErrorCode.PLUGIN_ERROR, "the send queue is full")
        failed = await outcome
        if failed is not None:
            code, reason = failed
            error = ErrorCode.TIMEOUT if code == "unconfirmed" else ErrorCode.PLUGIN_ERROR
            if code == "rank":
                error = ErrorCode.PERMISSION_DENIED
            if code == "unconfirmed":
                reason += "; the bot may lack the rank for it (CyTube refuses in silence)"
            raise Refusal(error, f"{code}: {reason}")

    async def emote(self, payload: dict[str, Any]) -> Any:
        try:
            items = prepare(
                SEND_CHAT,
                {"message": payload["message"], "emote": True},
                self.link.settings.message_limit,
            )
        except Refused as e:
            raise Refusal(ErrorCode.INVALID_INPUT, e.reason) from e
        for item in items:
            item.subject = SEND_EMOTE
        await self._queue(items)
        return None

    async def mod(self, payload: dict[str, Any]) -> Any:
        action = payload["action"]
        user = payload.get("user")
        self._need(permits.MOD_NODES[action])
        if action == "clear":
            line = "/clear"
        else:
            if not isinstance(user, str) or not NAME.match(user):
                raise Refusal(
                    ErrorCode.INVALID_INPUT,
                    f"/{action} needs a user name of 1-20 letters, digits, _ or -",
                )
            present = self.chan.present(user)
            if action in ("kick", "mute", "smute") and not present:
                raise Refusal(ErrorCode.INVALID_INPUT, f"{user} is not in {self.link.channel}")
            if action == "unmute" and self.chan.is_me(user):
                raise Refusal(ErrorCode.INVALID_INPUT, "the bot cannot unmute itself")
            if action != "unmute" and (present or self.chan.is_me(user)):
                reason = permits.target_denied(
                    self.chan.me, self.chan.rank, user, self.chan.rank_of(user)
                )
                if reason:
                    raise Refusal(ErrorCode.PERMISSION_DENIED, reason)
            line = f"/{action} {user}"
            why = clean_reason(payload.get("reason"))
            if why and action in ("kick", "ban"):
                line += " " + why
        item = Outgoing(
            "command",
            line,
            SEND_MOD,
            payload,
            confirm=matchers.moderated(action, user or "", self.chan),
        )
        await self._queue([item])
        return {"action": action, "user": user} if user else {"action": action}

    # State.

    async def state(self, payload: dict[str, Any]) -> Any:
        what = payload.get("what", "all")
        parts = STATE_PARTS if what == "all" else (what,)
        room = self.chan.room
        views = {
            "playlist": lambda: [dict(item) for item in room.items],
            "media": room.now_playing,
            "users": self.chan.user_views,
            "poll": room.poll_view,
        }
        data: dict[str, Any] = {part: views[part]() for part in parts}
        if what == "all":
            data["bot"] = {"name": self.chan.me, "rank": self.chan.rank}
            data["permissions"] = {**permits.DEFAULTS, **self.chan.permissions}
            data["voteskip"] = dict(room.voteskip) if room.voteskip else None
            data["connected"] = self.link.connected()
        return data
