"""Conversational state for games: a function reads plain chat for a bounded time.

`ctx.listen(seconds)` subscribes the function to cytube.chat (in its queue group, so several
runtimes do not both take a line) until the time is up; each line that is not a command goes to
the manifest's `listen.handler` as an event of kind `chat`. When the time runs out the same
handler gets one event of kind `expired` (a game's "time is up"); calling ctx.listen again
re-arms the window, ctx.stop_listening() ends it without that event. The window is at most the
manifest's `listen.max_seconds`.

Listening is per runtime: the runtime that ran the handler calling ctx.listen reads the chat.
The Runtime hands its Listening to each Invoker, which gives it to every Context it builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg

from runtime.constants import CHAT, queue_group
from runtime.core.context import Event
from runtime.errors import ContractError, RoseyError
from runtime.wire import contract
from runtime.wire.bus import Binding, Bus

log = logging.getLogger("rosey.listen")


class ListenError(RoseyError):
    def __init__(self, function: str, problem: str) -> None:
        super().__init__(f"function {function!r}: {problem}")


class _Window:
    def __init__(self, binding: Binding, channel: str | None, deadline: float) -> None:
        self.binding, self.channel, self.deadline = binding, channel, deadline
        self.timer: asyncio.Task[None] | None = None


class Listening:
    """The listening windows of one runtime, one per function."""

    def __init__(self, bus: Bus, invokers: Callable[[], dict[str, Any]], prefix: str = "!") -> None:
        self.bus, self.invokers, self.prefix = bus, invokers, prefix
        self.windows: dict[str, _Window] = {}

    def active(self, function: str) -> bool:
        return function in self.windows

    async def listen(self, function: str, channel: str | None, seconds: float) -> float:
        """Open or re-arm `function`'s window; returns the seconds granted."""
        invoker = self.invokers().get(function)
        spec = invoker.function.listen if invoker else None
        if spec is None:
            raise ListenError(function, "ctx.listen needs a `listen` section in the manifest")
        granted = max(0.1, min(float(seconds), spec.max_seconds))
        window = self.windows.get(function)
        if window is None:
            binding = Binding(
                self.bus, CHAT, lambda msg: self._line(function, msg), queue_group(function)
            )
            window = _Window(binding, channel, time.monotonic() + granted)
            self.windows[function] = window
            await binding.start()
        window.channel, window.deadline = channel, time.monotonic() + granted
        if window.timer is not None:
            window.timer.cancel()
        window.timer = asyncio.create_task(self._expire(function, window, granted))
        return granted

    async def stop(self, function: str) -> None:
        """End `function`'s window without an `expired` event (stop_listening, swap, remove)."""
        window = self.windows.pop(function, None)
        if window is None:
            return
        if window.timer is not None and window.timer is not asyncio.current_task():
            window.timer.cancel()
        # Unsubscribe only: the handler asking to stop may be one of the lines in flight, and
        # Binding.stop would cancel it. Lines already received finish on their own.
        subscription, window.binding.subscription = window.binding.subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def stop_all(self) -> None:
        for function in list(self.windows):
            await self.stop(function)

    async def _expire(self, function: str, window: _Window, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.windows.get(function) is not window:
            return
        await self.stop(function)
        event = Event(kind="expired", subject=CHAT, channel=window.channel)
        await self._run(function, event)

    async def _line(self, function: str, msg: Msg) -> None:
        window = self.windows.get(function)
        if window is None:
            return
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError:
            return  # the router logs malformed chat already
        channel, text = payload.get("channel"), payload["message"]
        if (window.channel and channel != window.channel) or text.startswith(self.prefix):
            return
        event = Event(
            kind="chat",
            subject=msg.subject,
            payload=payload,
            args=tuple(text.split()),
            user=payload["user"],
            rank=payload["rank"],
            channel=channel,
            raw_message=text,
        )
        await self._run(function, event)

    async def _run(self, function: str, event: Event) -> None:
        invoker = self.invokers().get(function)
        spec = invoker.function.listen if invoker else None
        if invoker is None or spec is None:
            await self.stop(function)
            return
        # The invoker's one invocation path, as for commands: quarantine, slots, timeout,
        # activation record, stats; a returned str or list goes to the event's channel.
        with contextlib.suppress(RoseyError):
            await invoker.invoke(event, spec.handler or invoker.function.handler)
