"""ctx.channel: a function acts in its CyTube channel (playlist, polls, emotes, moderation) and
reads the channel's state, through the connector's request subjects (runtime/constants.py).

One Channel is built per invocation by its Context, for the event's channel. Every method is one
NATS request; the connector's failure envelope becomes ChannelError with its error_code, and an
action family the manifest does not declare (`actions: [playlist, poll, moderate]`) is refused
with ChannelDenied before anything is sent. Emotes and reads need no declaration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from runtime.config.manifest import Function
from runtime.constants import (
    ACTIONS,
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
    SEND_EMOTE,
    SEND_MOD,
    SEND_VOTESKIP,
    ErrorCode,
)
from runtime.errors import BusError, ChannelDenied, ChannelError

Requester = Callable[[str, Any, float], Awaitable[Any]]

MOD_ACTIONS = ("kick", "ban", "mute", "smute", "unmute", "clear")
STATE_KEYS = ("playlist", "media", "users", "poll", "all")
# Seconds to wait for the connector's answer: it waits a few seconds for the server's
# confirmation itself and answers TIMEOUT, so this is only the bound for a connector that is gone.
REQUEST_TIMEOUT = 15.0


class Channel:
    """ctx.channel: the actions and reads of the invocation's channel (async)."""

    def __init__(
        self,
        function: Function,
        channel: str | None,
        request: Requester,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.function, self.name, self._request, self.timeout = function, channel, request, timeout

    # Playlist (manifest action `playlist`)

    async def add(self, url: str, *, next: bool = False, temp: bool = True) -> dict[str, Any]:
        """Queue a media link at the end (or next); the item as the server queued it:
        {uid, title, duration, type, id, queueby, temp}."""
        if not isinstance(url, str) or not url.strip():
            raise ChannelError(ErrorCode.INVALID_INPUT, "a media link is needed")
        payload = {"url": url.strip(), "position": "next" if next else "end", "temp": bool(temp)}
        item = await self._send(PLAYLIST_ADD, payload, "queue media")
        return item if isinstance(item, dict) else {}

    async def remove(self, uid: int) -> Any:
        return await self._send(PLAYLIST_REMOVE, {"uid": _uid(uid)}, "remove playlist items")

    async def move(self, uid: int, after: int | str) -> Any:
        """Move item `uid` after item `after` (a uid, or "prepend" for the top)."""
        if after != "prepend":
            after = _uid(after, "after")
        return await self._send(
            PLAYLIST_MOVE, {"uid": _uid(uid), "after": after}, "move playlist items"
        )

    async def jump(self, uid: int) -> Any:
        return await self._send(PLAYLIST_JUMP, {"uid": _uid(uid)}, "jump to a playlist item")

    async def skip(self) -> Any:
        """Play the next item now (CyTube's playNext)."""
        return await self._send(PLAYLIST_NEXT, {}, "skip media")

    async def voteskip(self) -> Any:
        return await self._send(SEND_VOTESKIP, {}, "vote to skip")

    async def shuffle(self) -> Any:
        return await self._send(PLAYLIST_SHUFFLE, {}, "shuffle the playlist")

    async def clear(self) -> Any:
        return await self._send(PLAYLIST_CLEAR, {}, "clear the playlist")

    async def set_temp(self, uid: int, temp: bool) -> Any:
        return await self._send(
            PLAYLIST_SETTEMP, {"uid": _uid(uid), "temp": bool(temp)}, "change playlist items"
        )

    # Polls (manifest action `poll`)

    async def open_poll(
        self,
        title: str,
        options: list[str] | tuple[str, ...],
        *,
        timeout: float | None = None,
        obscured: bool = False,
    ) -> Any:
        """Open a poll of 2 to 50 options; `timeout` seconds closes it on its own."""
        if not isinstance(title, str) or not title.strip():
            raise ChannelError(ErrorCode.INVALID_INPUT, "a poll needs a title")
        opts = list(options) if isinstance(options, list | tuple) else []
        if not 2 <= len(opts) <= 50 or not all(isinstance(o, str) and o.strip() for o in opts):
            raise ChannelError(ErrorCode.INVALID_INPUT, "a poll needs 2 to 50 options (text)")
        payload: dict[str, Any] = {"title": title, "options": opts, "obscured": bool(obscured)}
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
                raise ChannelError(ErrorCode.INVALID_INPUT, "a poll's timeout is seconds > 0")
            payload["timeout"] = timeout
        return await self._send(POLL_OPEN_SEND, payload, "open polls")

    async def close_poll(self) -> Any:
        return await self._send(POLL_CLOSE_SEND, {}, "close polls")

    # Chat and moderation

    async def emote(self, text: str) -> Any:
        """A `/me` line (no declaration needed)."""
        if not isinstance(text, str) or not text.strip():
            raise ChannelError(ErrorCode.INVALID_INPUT, "an emote needs some text")
        return await self._send(SEND_EMOTE, {"message": text}, "emote")

    async def moderate(
        self, action: str, user: str | None = None, reason: str | None = None
    ) -> Any:
        """kick, ban, mute, smute, unmute (a user) or clear (the chat); manifest action
        `moderate`."""
        if action not in MOD_ACTIONS:
            raise ChannelError(
                ErrorCode.INVALID_INPUT, f"moderate: action must be one of {', '.join(MOD_ACTIONS)}"
            )
        payload: dict[str, Any] = {"action": action}
        if action != "clear":
            if not isinstance(user, str) or not user.strip():
                raise ChannelError(ErrorCode.INVALID_INPUT, f"moderate: {action} needs a user")
            payload["user"] = user.strip()
        if reason:
            payload["reason"] = str(reason)
        return await self._send(SEND_MOD, payload, f"{action} users")

    # Reads (no declaration needed)

    async def state(self, what: str = "all") -> dict[str, Any]:
        """The connector's view of the channel: keys playlist, media, users, poll (and for
        "all" also bot, permissions, voteskip)."""
        if what not in STATE_KEYS:
            raise ChannelError(
                ErrorCode.INVALID_INPUT, f"state: what must be one of {', '.join(STATE_KEYS)}"
            )
        data = await self._ask(CHANNEL_STATE, self._with_channel({"what": what}))
        return data if isinstance(data, dict) else {}

    async def playlist(self) -> list[dict[str, Any]]:
        return list((await self.state("playlist")).get("playlist") or [])

    async def media(self) -> dict[str, Any] | None:
        return (await self.state("media")).get("media")

    async def users(self) -> list[dict[str, Any]]:
        return list((await self.state("users")).get("users") or [])

    async def poll(self) -> dict[str, Any] | None:
        return (await self.state("poll")).get("poll")

    # Sending

    async def _send(self, subject: str, payload: dict[str, Any], what: str) -> Any:
        action = ACTIONS.get(subject)
        if action is not None and action not in self.function.actions:
            raise ChannelDenied(self.function.name, action, what)
        return await self._ask(subject, self._with_channel(payload))

    def _with_channel(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.name:
            payload["channel"] = self.name
        return payload

    async def _ask(self, subject: str, payload: dict[str, Any]) -> Any:
        try:
            answer = await self._request(subject, payload, self.timeout)
        except ChannelError:
            raise
        except BusError as e:
            raise ChannelError(ErrorCode.NATS_ERROR, f"no answer from the channel: {e}") from e
        if not isinstance(answer, dict) or "success" not in answer:
            raise ChannelError(ErrorCode.PLUGIN_ERROR, f"{subject}: not an answer: {answer!r}")
        if not answer["success"]:
            raise ChannelError(
                str(answer.get("error_code") or ErrorCode.PLUGIN_ERROR),
                str(answer.get("error") or f"{subject} failed"),
            )
        return answer.get("data")


def _uid(value: Any, name: str = "uid") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChannelError(ErrorCode.INVALID_INPUT, f"{name} must be a playlist item's uid (int)")
    return value
