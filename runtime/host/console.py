"""Console chat: standard input as a CyTube channel, for trying functions without a server."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from nats.aio.msg import Msg

from runtime.constants import CHAT, SEND_CHAT, SEND_PM
from runtime.errors import ContractError
from runtime.host.localchannel import LocalChannel
from runtime.wire import contract
from runtime.wire.bus import Binding, Bindings, Bus

HELP = (
    "Console chat: you are {user} (rank {rank:g}). Try !help. /rank N and /user NAME change "
    "that, /vote N votes in a poll; Ctrl-D quits."
)


class Console:
    """Publishes typed lines as cytube.chat and prints what functions send back."""

    def __init__(
        self,
        bus: Bus,
        user: str = "console",
        rank: float = 0,
        channel: str = "console",
        out: TextIO | None = None,
        offline_channel: bool = False,
    ) -> None:
        self.bus, self.user, self.rank, self.channel = bus, user, rank, channel
        self.out = out or sys.stdout
        self.bindings = Bindings(
            [Binding(bus, SEND_CHAT, self._show), Binding(bus, SEND_PM, self._show)]
        )
        # Without CyTube, a local playlist/poll/users model answers ctx.channel and prints what
        # the bot did (`* rosey queued <title>`).
        self.local = (
            LocalChannel(bus, channel, people=self._people, say=self._print)
            if offline_channel
            else None
        )

    async def start(self) -> None:
        await self.bindings.start()
        if self.local is not None:
            await self.local.start()

    async def stop(self) -> None:
        if self.local is not None:
            await self.local.stop()
        await self.bindings.stop(1.0)

    @property
    def busy(self) -> int:
        return self.bindings.busy + (self.local.busy if self.local else 0)

    def _people(self) -> list[dict[str, Any]]:
        return [{"name": self.user, "rank": self.rank, "afk": False}]

    async def _show(self, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError as e:
            self._print(f"[rosey sent a malformed message: {e}]")
            return
        if msg.subject == SEND_PM:
            self._print(f"rosey → {payload['to']} (pm): {payload['message']}")
        else:
            self._print(f"rosey: {payload['message']}")

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    async def say(self, line: str) -> None:
        """One typed line: a console setting (/rank, /user) or a chat message."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return
        if line.startswith("/rank "):
            try:
                self.rank = float(line.split()[1])
                self._print(f"[rank is now {self.rank:g}]")
            except (IndexError, ValueError):
                self._print("[usage: /rank N]")
            return
        if line.startswith("/vote") and self.local is not None:
            try:
                self._print(self.local.vote(self.user, int(line.split()[1])))
            except (IndexError, ValueError):
                self._print("[usage: /vote N]")
            return
        if line.startswith("/user "):
            self.user = line.split(maxsplit=1)[1].strip() or self.user
            self._print(f"[you are now {self.user}]")
            return
        payload: dict[str, Any] = {
            "user": self.user,
            "message": line,
            "channel": self.channel,
            "rank": self.rank,
            "time": int(time.time() * 1000),
        }
        await self.bus.publish(CHAT, payload)

    async def read(
        self, stream: TextIO | None = None, settle: Callable[[], Awaitable[Any]] | None = None
    ) -> None:
        """Feed lines until end of input. Piped input waits for `settle` after each line, so
        that a script's lines are answered in order (`!addquote x` before `!quote 1`)."""
        stream = stream or sys.stdin
        interactive = stream.isatty()
        if interactive:
            print(HELP.format(user=self.user, rank=self.rank), file=sys.stderr)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()

        def pump() -> None:
            # A daemon thread: a read blocked on a terminal must not keep Rosey from exiting,
            # and a line (or the end of input) that comes after the loop closed is dropped.
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                for line in iter(stream.readline, ""):
                    loop.call_soon_threadsafe(queue.put_nowait, line)
                loop.call_soon_threadsafe(queue.put_nowait, "")

        threading.Thread(target=pump, name="rosey-console", daemon=True).start()
        while line := await queue.get():
            await self.say(line)
            if settle is not None and not interactive:
                await settle()
