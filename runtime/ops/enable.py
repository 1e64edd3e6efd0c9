"""`rosey.enable` and `!rosey enable`: resume a quarantined function in every runtime, authorised by
the deploy token."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from nats.aio.msg import Msg

from runtime.constants import ENABLE, ErrorCode
from runtime.errors import ContractError, RoseyError
from runtime.wire import contract
from runtime.wire.bus import Binding, Bus
from runtime.wire.signing import Signer

if TYPE_CHECKING:
    from runtime.core.runtime import Runtime


log = logging.getLogger("rosey.quarantine")

ENABLE_RANK = 2  # moderators and up may `!rosey enable` in chat


class EnableService:
    """Answers `rosey.enable` for this runtime, and sends it to all runtimes for `!rosey`.

    Built before the Runtime, whose router takes `chat` as its `!rosey` command; `start()` with
    the runtime whose functions it resumes."""

    def __init__(self, bus: Bus, token: str, window: float = 0.3) -> None:
        self.bus, self.window = bus, window
        self.signer = Signer(token)  # requests are signed, fresh and used once: no replay
        self.runtime: Runtime | None = None
        self.id = f"{os.getpid()}-{id(self):x}"
        self.binding = Binding(bus, ENABLE, self.on_enable)

    async def start(self, runtime: Runtime) -> None:
        self.runtime = runtime
        await self.binding.start()

    async def stop(self) -> None:
        await self.binding.stop(1.0)

    def enable(self, name: str) -> dict[str, Any]:
        invoker = self.runtime.invokers.get(name) if self.runtime else None
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
        problem = self.signer.problem(payload)
        if problem is not None:
            log.warning("refused a rosey.enable for %s: %s", payload["name"], problem)
            await self.bus.respond(
                msg, contract.failure(ErrorCode.PERMISSION_DENIED, f"refused: {problem}")
            )
            return
        if self.runtime is None or payload["name"] not in self.runtime.invokers:
            return  # runtimes that do not serve it stay quiet
        await self.bus.respond(msg, contract.ok(self.enable(payload["name"])))

    async def everywhere(self, name: str) -> list[dict[str, Any]]:
        """Resume `name` in this runtime and in every other one with the same deploy token."""
        answers: list[dict[str, Any]] = [self.enable(name)]
        replies = await self.bus.gather(ENABLE, self.signer.sign({"name": name}), self.window)
        for reply in replies:
            data = reply.get("data")
            if reply.get("success") and isinstance(data, dict) and data.get("runtime") != self.id:
                answers.append(data)
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
