"""Quarantine: a function failing too often is paused until a moderator or an operator resumes it.

The count is per runtime process (each one pauses what fails in it); resuming goes to every
runtime at once on `rosey.enable`, authorised by the deploy token. A deploy of a new version
starts with a fresh count, so shipping the fix also resumes the function.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from nats.aio.msg import Msg

from . import contract
from .bus import Binding, Bus
from .constants import ENABLE, ErrorCode
from .errors import ContractError, RoseyError

if TYPE_CHECKING:
    from .app import Runtime

log = logging.getLogger("rosey.quarantine")

ENABLE_RANK = 2  # moderators and up may `!rosey enable` in chat


class Breaker:
    """`failures` within `window` seconds trip it; 0 failures: it never trips."""

    def __init__(self, failures: int, window: float) -> None:
        self.failures, self.window = failures, window
        self.times: deque[float] = deque()
        self.paused = False

    def failed(self, now: float | None = None) -> bool:
        """Count one failure; True when this one paused the function."""
        if self.failures <= 0 or self.paused:
            return False
        now = time.monotonic() if now is None else now
        self.times.append(now)
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()
        if len(self.times) >= self.failures:
            self.paused = True
            self.times.clear()
            return True
        return False

    def reset(self) -> bool:
        was, self.paused = self.paused, False
        self.times.clear()
        return was


class EnableService:
    """Answers `rosey.enable` for this runtime, and sends it to all runtimes for `!rosey`."""

    def __init__(self, runtime: Runtime, bus: Bus, token: str, window: float = 0.3) -> None:
        self.runtime, self.bus, self.token, self.window = runtime, bus, token, window
        self.id = f"{os.getpid()}-{id(self):x}"
        self.binding = Binding(bus, ENABLE, self.on_enable)

    async def start(self) -> None:
        await self.binding.start()

    async def stop(self) -> None:
        await self.binding.stop(1.0)

    def enable(self, name: str) -> dict[str, Any]:
        invoker = self.runtime.invokers.get(name)
        if invoker is None:
            return {"runtime": self.id, "pid": os.getpid(), "ok": False, "error": "not served here"}
        resumed = invoker.enable()
        if resumed:
            log.warning("%s resumed", name)
        return {"runtime": self.id, "pid": os.getpid(), "ok": True, "resumed": resumed}

    async def on_enable(self, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError as e:
            await self.bus.respond(msg, contract.failure(ErrorCode.INVALID_INPUT, str(e)))
            return
        if not hmac.compare_digest(payload["token"].encode(), self.token.encode()):
            log.warning("refused a rosey.enable with a wrong token")
            await self.bus.respond(
                msg, contract.failure(ErrorCode.PERMISSION_DENIED, "deploy token rejected")
            )
            return
        if payload["name"] not in self.runtime.invokers:
            return  # runtimes that do not serve it stay quiet
        await self.bus.respond(msg, contract.ok(self.enable(payload["name"])))

    async def everywhere(self, name: str) -> list[dict[str, Any]]:
        """Resume `name` in this runtime and in every other one with the same deploy token."""
        answers: list[dict[str, Any]] = [self.enable(name)]
        inbox = self.bus.nc.new_inbox()

        async def collect(msg: Msg) -> None:
            reply = json.loads(msg.data)
            if reply.get("success") and reply["data"]["runtime"] != self.id:
                answers.append(reply["data"])

        sub = await self.bus.nc.subscribe(inbox, cb=collect)
        try:
            await self.bus.publish(ENABLE, {"name": name, "token": self.token}, reply=inbox)
            await self.bus.flush()
            await asyncio.sleep(self.window)
        finally:
            await sub.unsubscribe()
        return [a for a in answers if a.get("ok")]

    async def chat(self, args: list[str], user: str, rank: float) -> str:
        """`!rosey enable <function>`: the one line to answer in chat."""
        if rank < ENABLE_RANK:
            return f"{user}: !rosey needs moderator rank or higher."
        if len(args) != 2 or args[0] != "enable":
            return f"{user}: usage: !rosey enable <function>"
        name = args[1].lower()
        try:
            answers = await self.everywhere(name)
        except RoseyError as e:
            log.warning("!rosey enable %s: %s", name, e)
            return f"{user}: could not resume {name}, try again."
        if not answers:
            return f"{user}: no function named {name} is served."
        if any(a.get("resumed") for a in answers):
            return f"{name} resumed by {user}."
        return f"{user}: {name} was not paused."
