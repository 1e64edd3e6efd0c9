"""The fake CyTube server's polls (src/channel/poll.js, src/poll.js) and voteskip
(src/channel/voteskip.js). Both count votes per IP address, as CyTube does."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tests.cytube_rules import now_ms
from tests.fake_channel_base import ChannelBase, Handler
from tests.fake_channel_rules import Member, poll_text, typecheck
from tests.fake_playlist import PlaylistModule

TYPE_NEW_POLL = {
    "title": "string",
    "timeout": "number,optional",
    "obscured": "boolean",
    "retainVotes": "boolean,optional",
    "opts": "array",
}
TYPE_VOTE = {"option": "number"}
MAX_OPTIONS = 50  # poll.max-options


@dataclass
class Poll:
    title: str
    options: list[str]
    initiator: str
    obscured: bool = False
    retain_votes: bool = False
    timeout: float | None = None
    timestamp: int = field(default_factory=now_ms)
    votes: dict[str, int] = field(default_factory=dict)  # ip → option

    def counts(self) -> list[int]:
        counts = [0] * len(self.options)
        for option in self.votes.values():
            counts[option] += 1
        return counts

    def frame(self, show_hidden: bool) -> dict[str, Any]:
        """toUpdateFrame: counts hidden as "?" (or "n?" for ranks with viewhiddenpoll)."""
        counts: list[Any] = self.counts()
        if self.obscured:
            counts = [f"{c}?" if show_hidden else "?" for c in counts]
        return {
            "title": self.title,
            "options": list(self.options),
            "counts": counts,
            "initiator": self.initiator,
            "timestamp": self.timestamp,
        }


class PollModule(PlaylistModule, ChannelBase):
    poll: Poll | None
    skip_votes: set[str] | None  # IPs; None when no voteskip is running

    def _init_poll(self) -> None:
        self.poll, self.skip_votes = None, None

    def _poll_handlers(self) -> dict[str, Handler]:
        return {
            "newPoll": self._on_new_poll,
            "vote": self._on_vote,
            "closePoll": self._on_close_poll,
            "voteskip": self._on_voteskip,
        }

    # Test controls.

    async def open_poll(
        self,
        name: str,
        title: str,
        options: list[str],
        *,
        obscured: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Virtual user `name` sends newPoll (checked like a socket's); returns the ack."""
        data: dict[str, Any] = {"title": title, "opts": options, "obscured": obscured}
        if timeout is not None:
            data["timeout"] = timeout
        return await self.act(name, "newPoll", data)

    async def vote(self, name: str, option: int) -> None:
        await self.act(name, "vote", {"option": option})

    async def voteskip(self, name: str) -> None:
        await self.act(name, "voteskip")

    async def expire_poll(self) -> None:
        """The poll's timeout fires now (only if it was opened with a timeout)."""
        async with self._lock:
            if self.poll is not None and self.poll.timeout is not None:
                await self._close_poll()

    # Polls.

    async def _send_poll(self, sid: str, rank: float) -> None:
        if self.poll is not None:
            await self._emit("newPoll", self.poll.frame(self.can(rank, "viewhiddenpoll")), sid)

    async def _broadcast_poll(self, event: str) -> None:
        poll = self.poll
        if poll is not None:
            await self._to(event, lambda rank: poll.frame(self.can(rank, "viewhiddenpoll")))

    async def _on_new_poll(self, actor: Member, data: Any) -> Any:
        if error := typecheck("newPoll", data, TYPE_NEW_POLL):
            await self._tell(actor, "errorMsg", {"msg": error})
            return None
        if not self.can(actor.rank, "pollctl"):
            return None
        await self._on_close_poll(actor, None)
        title, options = data["title"], data["opts"]
        problem = ""
        if len(title) > 255:
            problem = "Poll title must be no more than 255 characters long."
        elif len(options) > MAX_OPTIONS:
            problem = f"Polls are limited to a maximum of {MAX_OPTIONS} options."
        elif any(not isinstance(o, str) for o in options):
            problem = "Poll options must be strings."
        elif any(not 0 < len(o) <= 255 for o in options):
            problem = "Poll options must be 1-255 characters long."
        elif "timeout" in data and not 1 <= data["timeout"] <= 86400:
            problem = "Poll timeout must be between 1 and 86400 seconds"
        if problem:
            # ackOrErrorMsg: the ack when the client asked for one, else errorMsg
            await self._tell(actor, "errorMsg", {"msg": problem})
            return {"error": {"message": problem}}
        self.poll = Poll(
            poll_text(title),
            [poll_text(o) for o in options],
            actor.name,
            data["obscured"],
            bool(data.get("retainVotes", False)),
            data.get("timeout"),
        )
        await self._broadcast_poll("newPoll")
        return {}

    async def _on_vote(self, actor: Member, data: Any) -> None:
        if error := typecheck("vote", data, TYPE_VOTE):
            await self._tell(actor, "errorMsg", {"msg": error})
            return
        if not self.can(actor.rank, "pollvote") or self.poll is None:
            return
        option = data["option"]
        if not 0 <= option < len(self.poll.options) or option != int(option):
            return
        if self.poll.votes.get(actor.ip) != option:
            self.poll.votes[actor.ip] = int(option)
            await self._broadcast_poll("updatePoll")

    async def _on_close_poll(self, actor: Member, data: Any) -> None:
        if self.can(actor.rank, "pollctl"):
            await self._close_poll()

    async def _close_poll(self) -> None:
        if self.poll is None:
            return
        if self.poll.obscured:
            self.poll.obscured = False
            await self._emit("updatePoll", self.poll.frame(True))
        await self._emit("closePoll")
        self.poll = None

    # Voteskip.

    def _skip_counts(self) -> tuple[int, int, int, int]:
        """calcUsercounts: total, no permission, AFK, eligible."""
        users = self._users()
        denied = sum(1 for u in users if not self.can(u.rank, "voteskip"))
        afk = sum(1 for u in users if self.can(u.rank, "voteskip") and u.afk)
        return len(users), denied, afk, len(users) - denied - afk

    async def _on_voteskip(self, actor: Member, data: Any) -> None:
        if not self.options["allow_voteskip"] or not self.can(actor.rank, "voteskip"):
            return
        if self.skip_votes is None:
            self.skip_votes = set()
        if actor.ip in self.skip_votes:
            return  # this IP already voted
        self.skip_votes.add(actor.ip)
        if actor.afk and actor.name:
            await self._set_afk(actor, False)  # runs update() too, as user.setAFK does
        await self._skip_update()

    async def _set_afk(self, member: Member, afk: bool) -> None:
        """Overridden by the moderation module."""

    async def _skip_update(self) -> None:
        if not self.options["allow_voteskip"] or self.skip_votes is None or not self.items:
            return
        total, denied, afk, eligible = self._skip_counts()
        ratio = self.options["voteskip_ratio"]
        count = len(self.skip_votes)
        if count >= max(1, math.ceil(eligible * ratio)):
            info = (
                f"{count}/{eligible} skipped; eligible voters: {eligible} = total ({total})"
                f" - AFK ({afk}) - no permission ({denied}); ratio = {ratio:g}"
            )
            meta = {"addClass": "server-whisper", "addClassToNameAndTimestamp": True}
            message = {
                "username": "[voteskip]",
                "msg": f"Voteskip passed: {info}",
                "meta": meta,
                "time": now_ms(),
            }
            await self._emit("chatMsg", message)
            await self._skip_reset()
            await self._play_next()
        else:
            await self._skip_send()

    async def _skip_send(self) -> None:
        if self.skip_votes is None:
            data = {"count": 0, "need": 0}
        else:
            eligible = self._skip_counts()[3]
            data = {
                "count": len(self.skip_votes),
                "need": math.ceil(eligible * self.options["voteskip_ratio"]),
            }
        await self._to("voteskip", data, lambda rank: self.can(rank, "viewvoteskip"))

    async def _skip_reset(self) -> None:
        self.skip_votes = None
        await self._skip_send()

    async def _media_changed(self) -> None:
        await self._skip_reset()

    async def _parted(self, member: Member) -> None:
        if self.poll is not None and not self.poll.retain_votes and member.ip in self.poll.votes:
            del self.poll.votes[member.ip]
            await self._broadcast_poll("updatePoll")
        if self.skip_votes is not None:
            self.skip_votes.discard(member.ip)
            await self._skip_update()
