"""Waiting for CyTube to confirm an action: it answers none of them, it broadcasts what happened.

An action registers a matcher before it emits; every server event is fed to the matchers in the
order it arrived. A matcher returns the action's result (not None) for the event that confirms it,
raises Refusal for the event that says no (`queueFail`), and returns None for anything else. Each
event confirms at most one waiter of each kind (two adds of the same media get one `queue` each).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.constants import ErrorCode

Match = Callable[[str, Any], Any]


class Refusal(Exception):
    """The action failed; `code` is the envelope's error_code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


@dataclass(eq=False)
class Pending:
    kind: str
    match: Match
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Confirmations:
    def __init__(self) -> None:
        self.pending: list[Pending] = []

    def expect(self, kind: str, match: Match) -> Pending:
        pending = Pending(kind, match)
        self.pending.append(pending)
        return pending

    def feed(self, event: str, data: Any) -> None:
        settled: set[str] = set()
        for pending in list(self.pending):
            if pending.kind in settled or pending.future.done():
                continue
            try:
                result = pending.match(event, data)
            except Refusal as e:
                pending.future.set_exception(e)
            else:
                if result is None:
                    continue
                pending.future.set_result(result)
            settled.add(pending.kind)
            self.pending.remove(pending)

    async def wait(self, pending: Pending, timeout: float, what: str) -> Any:
        """The result; Refusal(TIMEOUT) when nothing confirmed it in time."""
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        except TimeoutError:
            raise Refusal(
                ErrorCode.TIMEOUT,
                f"CyTube did not confirm {what} within {timeout:g}s; the bot may lack the rank"
                " for it (CyTube refuses in silence), or the server is slow",
            ) from None
        finally:
            self.drop(pending)

    def drop(self, pending: Pending) -> None:
        if pending in self.pending:
            self.pending.remove(pending)
        if not pending.future.done():
            pending.future.cancel()

    def fail_all(self, code: ErrorCode, message: str) -> None:
        for pending in self.pending:
            if not pending.future.done():
                pending.future.set_exception(Refusal(code, message))
        self.pending.clear()
