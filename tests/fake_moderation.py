"""The fake CyTube server's moderation and channel settings: the chat commands `/kick`, `/ban`,
`/mute`, `/smute`, `/unmute`, `/clear`, `/afk`, `/poll` (src/channel/kickban.js, chat.js, poll.js),
AFK and mute state in `setUserMeta`/`setAFK`, `setPermissions`/`setOptions`, and the kick that
protocol abuse gets (src/channel/permissions.js, opts.js, customization.js, channel.js)."""

from __future__ import annotations

import functools
import re
from typing import Any

from tests.cytube_rules import NAME
from tests.fake_channel_base import Handler
from tests.fake_channel_rules import Member, poll_text
from tests.fake_poll import Poll, PollModule


class ModerationModule(PollModule):
    muted: set[str]  # lowercase names; persists after the user leaves, as the channel's state
    smuted: set[str]
    banned: dict[str, str]  # lowercase name → reason
    ranks: dict[str, float]
    buffer: list[dict[str, Any]]

    def _init_moderation(self) -> None:
        self.muted, self.smuted, self.banned = set(), set(), {}

    def _moderation_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {
            "setOptions": self._on_set_options,
            "setPermissions": self._on_set_permissions,
        }
        for event in ("readChanLog", "setMotd", "setChannelCSS", "setChannelJS"):
            handlers[event] = functools.partial(self._kicking, event=event)
        return handlers

    # Test controls.

    async def set_permissions(self, **permissions: float) -> None:
        """Change the channel's permissions (e.g. playlistadd=2) and broadcast setPermissions."""
        async with self._lock:
            self.permissions.update(permissions)
            await self._emit("setPermissions", dict(self.permissions))

    async def set_options(self, **options: Any) -> None:
        """Change channel options (e.g. voteskip_ratio=1, maxlength=60); broadcast channelOpts."""
        async with self._lock:
            self.options.update(options)
            await self._emit("channelOpts", dict(self.options))

    async def set_afk(self, name: str, afk: bool = True) -> None:
        """User `name` goes AFK (or comes back), as the afk_timeout or `/afk` does."""
        async with self._lock:
            await self._set_afk(self.member(name), afk)

    # State.

    async def _set_afk(self, member: Member, afk: bool) -> None:
        if member.afk == afk:
            return
        member.afk = afk
        if afk and self.skip_votes is not None:
            self.skip_votes.discard(member.ip)
            if member.sid is not None:
                await self._emit("clearVoteskipVote", None, member.sid)
        await self._skip_update()
        await self._user_meta(member)
        await self._emit("setAFK", {"name": member.name, "afk": afk})

    async def _user_meta(self, member: Member, minrank: float = -1) -> None:
        """channel.sendUserMeta: the base meta below rank 2, the moderators' meta from 2 up."""
        await self._to(
            "setUserMeta",
            lambda rank: {"name": member.name, "meta": member.entry(rank)["meta"]},
            lambda rank: rank >= minrank,
        )

    # Settings.

    async def _on_set_options(self, actor: Member, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if actor.rank < 2:
            await self._drop(actor, "Attempted setOptions as a non-moderator")
            return
        self.options.update({k: v for k, v in data.items() if k in self.options})
        await self._emit("channelOpts", dict(self.options))

    async def _on_set_permissions(self, actor: Member, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if actor.rank < 3:
            await self._drop(actor, "Attempted setPermissions as a non-admin")
            return
        for key, value in data.items():
            try:
                number = value if isinstance(value, int | float) else float(value)
            except (TypeError, ValueError):
                continue
            if key in self.permissions:
                self.permissions[key] = number
        await self._emit("setPermissions", dict(self.permissions))

    # Chat commands.

    async def _command(self, actor: Member, text: str) -> bool:
        """A registered chat command: run it (or swallow it) and say True; else False."""
        word = text[1:].split(" ", 1)[0]
        handler = {
            "kick": self._cmd_kick,
            "ban": self._cmd_ban,
            "mute": self._cmd_mute,
            "smute": self._cmd_mute,
            "unmute": self._cmd_unmute,
            "unsmute": self._cmd_unmute,
            "clear": self._cmd_clear,
            "afk": self._cmd_afk,
            "poll": self._cmd_poll,
            "hpoll": self._cmd_poll,
        }.get(word)
        if handler is not None:
            await handler(actor, text)
            return True
        return word in {"sp", "say", "shout", "rcv", "kickanons", "ipban", "banip", "rank"}

    def _present(self, name: str) -> Member | None:
        return next((m for m in self._users() if m.name.lower() == name), None)

    async def _cmd_kick(self, actor: Member, text: str) -> None:
        if not self.can(actor.rank, "kick"):
            return
        args = text.split(" ")[1:]
        if not args or not args[0].strip():
            msg = "No kick target specified.  If you're trying to kick anonymous users, use /kickanons"
            await self._tell(actor, "errorMsg", {"msg": msg})
            return
        target = self._present(args[0].lower())
        if target is None:
            return
        if target.rank >= actor.rank:
            await self._tell(
                actor, "errorMsg", {"msg": f"You do not have permission to kick {target.name}"}
            )
            return
        await self._drop(target, " ".join(args[1:]))
        await self._whisper(f"{actor.name} kicked {target.name}")

    async def _cmd_ban(self, actor: Member, text: str) -> None:
        args = text.split(" ")[1:]
        if not args or not args[0].strip():
            await self._tell(actor, "errorMsg", {"msg": "No ban target specified."})
            return
        name, reason = args[0].lower(), " ".join(args[1:])[:255]
        problem = ""
        present = self._present(name)
        known = present.rank if present is not None else self.ranks.get(name, 0)
        if not NAME.match(name):
            problem = "Invalid username"
        elif not self.can(actor.rank, "ban"):
            problem = "You do not have ban permissions on this channel"
        elif name == actor.name.lower():
            await self._tell(actor, "costanza", {"msg": "You can't ban yourself"})
            problem = "You cannot ban yourself"
        elif known >= actor.rank:
            problem = f"You don't have permission to ban {name}"
        elif name in self.banned:
            problem = f"{name} is already banned"
        if problem:
            await self._tell(actor, "errorMsg", {"msg": problem})
            return
        self.banned[name] = reason
        await self._whisper(f"{actor.name} namebanned {name}", self.permissions["ban"])
        for member in [m for m in self._users() if m.name.lower() == name]:
            await self._drop(member, "You're banned!")

    async def _cmd_mute(self, actor: Member, text: str) -> None:
        if not self.can(actor.rank, "mute"):
            return
        command, *args = text[1:].split(" ")
        if not args:
            await self._tell(actor, "errorMsg", {"msg": f"/{command} requires a target name"})
            return
        target = self._present(args[0].lower())
        if target is None:
            msg = f"/{command} target {args[0].lower()} not present in channel."
            await self._tell(actor, "errorMsg", {"msg": msg})
            return
        if target.rank >= actor.rank:
            msg = f"/{command} failed - {target.name} has equal or higher rank than you."
            await self._tell(actor, "errorMsg", {"msg": msg})
            return
        shadow = command == "smute"
        target.muted, target.smuted = True, target.smuted or shadow
        self.muted.add(target.name.lower())
        if shadow:
            self.smuted.add(target.name.lower())
        minrank = self.permissions["mute"] if shadow else -1
        await self._user_meta(target, minrank)
        verb = "shadowmuted" if shadow else "muted"
        await self._whisper(f"{actor.name} {verb} {target.name}", self.permissions["mute"])

    async def _cmd_unmute(self, actor: Member, text: str) -> None:
        if not self.can(actor.rank, "mute"):
            return
        command, *args = text[1:].split(" ")
        if not args:
            await self._tell(actor, "errorMsg", {"msg": f"/{command} requires a target name"})
            return
        name = args[0].lower()
        if name == actor.name.lower():
            await self._tell(actor, "errorMsg", {"msg": "You are not allowed to unmute yourself"})
            return
        if name not in self.muted:
            await self._tell(actor, "errorMsg", {"msg": f"{name} is not muted."})
            return
        self.muted.discard(name)
        self.smuted.discard(name)
        await self._whisper(f"{actor.name} unmuted {name}", self.permissions["mute"])
        target = self._present(name)
        if target is not None:
            target.muted = target.smuted = False
            await self._user_meta(target)

    async def _cmd_clear(self, actor: Member, text: str) -> None:
        if not self.can(actor.rank, "chatclear"):
            return
        self.buffer = []
        await self._emit("clearchat", {"clearedBy": actor.name})
        await self._whisper(f"{actor.name} cleared chat.", -1)

    async def _cmd_afk(self, actor: Member, text: str) -> None:
        if actor.name:
            await self._set_afk(actor, not actor.afk)

    async def _cmd_poll(self, actor: Member, text: str) -> None:
        if not self.can(actor.rank, "pollctl"):
            return
        await self._on_close_poll(actor, None)
        title, *options = re.sub(r"^/h?poll", "", text).split(",")
        obscured = text.startswith("/hpoll")
        if len(title) > 255 or any(not 0 < len(o) <= 255 for o in options):
            msg = "Error creating poll: Poll options must be 1-255 characters long."
            await self._tell(actor, "errorMsg", {"msg": msg})
            return
        self.poll = Poll(poll_text(title), [poll_text(o) for o in options], actor.name, obscured)
        await self._broadcast_poll("newPoll")
