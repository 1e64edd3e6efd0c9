"""`mock_event_bus`: the guide's test double, made of Rosey's real EventBus on an in-process NATS."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Sequence
from fnmatch import fnmatch
from pathlib import PurePath
from typing import Any, cast

from nats.aio.client import Client

from runtime.legacy.event_bus import EventBus, Priority, handling
from runtime.wire import contract
from runtime.wire.bus import Bus

from .localnats import LocalNats
from .testdb import LazyStore, SessionRedis, TestDatabase

SETTLE_TIMEOUT = 10.0
# pytest's default `python_files`, and conftests: code there is the test, not the plugin.
TEST_FILES = ("test_*.py", "*_test.py", "conftest.py")
KIT_MODULES = ("rosey.", "runtime.")


class MockEventBus(EventBus):
    """An EventBus for plugin tests, compatible with the plugin guide's mock.

    - `published_events` lists `{"subject", "data"}` of everything a plugin published, whoever
      else received it. Left out are only the events the test code itself (a module matching
      `test_files`) published and a subscriber took, such as a command it fed to the plugin;
      `all_events` lists everything, `requests` every request.
    - Published events are delivered to subscribers, and `await publish(...)` returns once every
      handler it set off (and everything those published in turn) has finished.
    - `database.*` requests are answered by Rosey's DatabaseService, with the real service's
      semantics, from a redis-server of the test session; `db` reads and writes it directly.
    """

    __test__ = False

    def __init__(self, redis: SessionRedis, test_files: Sequence[str] = TEST_FILES) -> None:
        self.test_files = tuple(test_files)
        self.local = LocalNats()
        super().__init__(cast(Client, self.local))
        self.database = TestDatabase(redis, Bus(cast(Client, self.local)))
        self.db = LazyStore(self.database)
        self.published_events: list[dict[str, Any]] = []
        self.all_events: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []

    async def publish(
        self, subject: str, data: Any = None, priority: Priority = Priority.NORMAL
    ) -> None:
        payload = {} if data is None else data
        contract.check(subject, payload)
        inside = handling.get()
        event = {"subject": subject, "data": payload}
        self.all_events.append(event)
        if inside or not self._by_the_test() or not self.local.takers(subject):
            self.published_events.append(event)
        await super().publish(subject, payload, priority)
        if not inside:
            await self.settle()

    def _by_the_test(self) -> bool:
        """Whether `publish` was called by test code rather than by a plugin: the first caller
        outside Rosey's own modules is in a test module or conftest."""
        frame = inspect.currentframe()
        frame = frame.f_back if frame else None  # publish
        while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(
            KIT_MODULES
        ):
            frame = frame.f_back
        if frame is None:
            return False
        name = PurePath(frame.f_code.co_filename).name
        return any(fnmatch(name, pattern) for pattern in self.test_files)

    async def request(self, subject: str, data: Any = None, timeout: float = 5.0) -> Any:
        if subject.startswith("database."):
            await self.database.start()
        self.requests.append({"subject": subject, "data": {} if data is None else data})
        return await super().request(subject, data, timeout)

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait until no handler is running; raises TimeoutError naming the busy subjects."""
        deadline = time.monotonic() + timeout
        # Each handler runs as a task of its subscription's Binding: wait for those tasks to
        # end, then for any that the finished ones set off in turn, until there are none.
        while running := self._running():
            left = deadline - time.monotonic()
            if left <= 0:
                busy = [s.subject for s in self._subscriptions if s.binding.busy]
                raise TimeoutError(f"handlers still running after {timeout:g}s on: {busy}")
            await asyncio.wait(running, timeout=left)

    def _running(self) -> set[asyncio.Task[None]]:
        bindings = [s.binding for s in self._subscriptions]
        if self.database.service is not None:
            bindings += self.database.service.bindings
        return {task for binding in bindings for task in binding.tasks if not task.done()}

    async def aclose(self) -> None:
        await self.close()
        await self.database.close()
        await self.local.close()
