"""Calling the library's async handlers that never await, from plain (and hypothesis) tests."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from tests.fakedb import FakeDb


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
