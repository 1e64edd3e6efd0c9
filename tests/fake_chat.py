"""The fake CyTube server's chat path (src/channel/chat.js handleChatMsg, processChatMsg,
handlePm): the cut, control characters, AFK, the 20/10 throttle, `/me`, commands, mutes."""

from __future__ import annotations

import re
from typing import Any

from tests.cytube_rules import MIN_ANTIFLOOD, NAME, RateLimiter, cut, format_message, now_ms
from tests.fake_channel_rules import Member
from tests.fake_moderation import ModerationModule


class ChatModule(ModerationModule):
    max_length: int
    chat: list[dict[str, Any]]
    pms: list[dict[str, Any]]
    cooldowns: int

    async def _chat(self, member: Member, text: str) -> None:
        """handleChatMsg: permission, cut, control characters, blank lines."""
        if member.rank < self.permissions["chat"]:
            return
        text = re.sub(r"[\x00-\x1f]+", " ", cut(text, self.max_length))
        if text.strip():
            await self._process(member, text, {})

    async def _process(self, member: Member, text: str, meta: dict[str, Any]) -> None:
        """processChatMsg: AFK cleared, throttle, commands, mutes, then the broadcast."""
        if "/afk" not in text:
            await self._set_afk(member, False)
        if member.limiter.throttle(*MIN_ANTIFLOOD):
            self.cooldowns += 1
            if member.sid is not None:
                await self._emit("cooldown", 1000 / MIN_ANTIFLOOD[1], member.sid)
            return
        if text.startswith(">"):
            meta["addClass"] = "greentext"
        if text.split(" ", 1)[0] == "/me":
            meta.update(addClass="action", action=True)
            await self._process(member, " ".join(text.split(" ")[1:]), meta)
            return
        if text.startswith("/") and await self._command(member, text):
            return
        message = {
            "username": member.name,
            "msg": format_message(text),
            "meta": meta,
            "time": now_ms(),
        }
        if member.smuted:
            for sock in self._socks():
                shadowed = sock.name.lower() in self.smuted
                if sock.rank >= 2 or sock.sid == member.sid or not sock.name or shadowed:
                    shadow = (
                        {**message, "meta": {**meta, "shadow": True}} if sock.rank >= 2 else message
                    )
                    await self._emit("chatMsg", shadow, sock.sid)
            return
        if member.muted:
            if member.sid is not None:
                notice = {"action": "chat", "msg": "You have been muted on this channel."}
                await self._emit("noflood", notice, member.sid)
            return
        self._remember(message)
        self.chat.append(message)
        await self._emit("chatMsg", message)

    def _remember(self, message: dict[str, Any]) -> None:
        self.buffer = [*self.buffer, message][-15:]

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
