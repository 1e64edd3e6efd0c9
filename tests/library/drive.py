"""Calling the library's async handlers that never await, from plain (and hypothesis) tests."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from tests.fakedb import FakeDb
from tests.fnkit import FakeChannel, FakeCtx


def run(call: Coroutine[Any, Any, Any]) -> Any:
    """The return value of a handler coroutine that does not await: one step runs it to the end.
    A handler that awaits fails the test: it would not be CPU-only after all."""
    try:
        call.send(None)
    except StopIteration as done:
        return done.value
    call.close()
    raise AssertionError("the handler awaited something; it is not CPU-only")


class AsyncDb(FakeDb):
    """The in-memory database (tests/fakedb.py) with coroutine methods, as an async handler's
    ctx.db has them."""

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return attr(*args, **kwargs)

        return call


class AsyncChannel:
    """A FakeChannel (tests/fnkit.py) whose methods are coroutines, as an async handler's
    ctx.channel has them; its state (`calls`, `muted`, `refuse`, ...) reads through, and
    `fake` is the FakeChannel itself."""

    def __init__(self, channel: FakeChannel | None = None) -> None:
        self.fake = channel if channel is not None else FakeChannel()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.fake, name)
        if name.startswith("_") or not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return attr(*args, **kwargs)

        return call


class AsyncCtx(FakeCtx):
    """FakeCtx as an async handler's Context: ctx.db is an AsyncDb, ctx.channel an AsyncChannel
    over a FakeChannel, and send_chat, listen and stop_listening are coroutines; explain,
    config and log stay plain. `sent`, `explained` and `listening` record as in FakeCtx."""

    def __init__(
        self,
        config: Any = None,
        db: AsyncDb | None = None,
        channel: FakeChannel | AsyncChannel | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(config, db=db if db is not None else AsyncDb(), **kw)
        self.channel = channel if isinstance(channel, AsyncChannel) else AsyncChannel(channel)

    async def send_chat(self, text: str, channel: str | None = None) -> None:  # type: ignore[override]
        super().send_chat(text, channel)

    async def listen(self, seconds: float) -> float:  # type: ignore[override]
        return super().listen(seconds)

    async def stop_listening(self) -> None:  # type: ignore[override]
        super().stop_listening()
