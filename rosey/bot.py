"""`bot`: a project's functions behind Rosey's real router and invoker, on an in-process NATS."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any, cast

from nats.aio.client import Client

from runtime.config.manifest import Function
from runtime.config.settings import Settings
from runtime.constants import CHAT, PM, SEND_CHAT, SEND_PM
from runtime.core.runtime import Runtime, Wiring
from runtime.database.client import DatabaseClient
from runtime.legacy.host import LegacyPlugins
from runtime.wire.bus import Bus

from .localnats import LocalNats
from .testdb import LazyStore, SessionRedis, TestDatabase

log = logging.getLogger("rosey.testing")


class Bot:
    """A Runtime serving the project's manifests (and its enabled legacy plugins) to test chat.

    `await bot.say("!roll 2d6", user="alice", rank=0)` returns the lines Rosey sent back, once
    every handler the line set off has finished. `bot.db` is the database the functions use
    (Rosey's Store: `await bot.db.get("quotes", 1)`, `await bot.db.set(...)`, ...).
    """

    def __init__(self, settings: Settings, redis: SessionRedis, channel: str = "test") -> None:
        # No heartbeat in tests: it would publish on a timer while a test waits for quiet.
        self.settings = replace(settings, heartbeat_interval=0)
        self.channel = channel
        self.nc = LocalNats()
        self.bus = Bus(cast(Client, self.nc))
        self.database = TestDatabase(redis, self.bus)
        self.db = LazyStore(self.database)
        self.runtime = Runtime(
            self.settings,
            self.bus,
            wiring=Wiring(
                db=lambda f: DatabaseClient(self.bus, f.name, f.collections),
                preparers=(self._declare_indexes,),
            ),
        )
        self.plugins = LegacyPlugins(self.runtime, self.settings.plugins)
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def start(self) -> None:
        await self.database.start()
        await self.nc.subscribe(SEND_CHAT, cb=self._collect)
        await self.nc.subscribe(SEND_PM, cb=self._collect)
        await self.runtime.start()
        await self.plugins.start()

    async def stop(self) -> None:
        if self.runtime.started_at:
            await self.runtime.stop("test over")
        await self.plugins.stop()
        await self.database.close()
        await self.nc.close()

    async def say(
        self,
        text: str,
        user: str = "alice",
        rank: float = 0,
        pm: bool = False,
        channel: str | None = None,
    ) -> list[str]:
        """Say `text` in chat (or by PM) and return the replies it got."""
        before = len(self.sent)
        payload = {"user": user, "message": text, "rank": rank, "channel": channel or self.channel}
        await self.bus.publish(PM if pm else CHAT, payload)
        await self.settle()
        return [p["message"] for _, p in self.sent[before:]]

    async def settle(self) -> None:
        """Wait until nothing is in flight: router, functions, plugins and the database."""
        idle = await self.runtime.quiesce(extra=lambda: self.plugins.busy + self.database.busy)
        if not idle:
            log.warning("bot: handlers were still running when the wait ran out")

    @property
    def replies(self) -> list[str]:
        """Every line sent so far."""
        return [p["message"] for _, p in self.sent]

    async def _collect(self, msg: Any) -> None:
        self.sent.append((msg.subject, json.loads(msg.data)))

    async def _declare_indexes(self, function: Function) -> None:
        if function.indexes:
            store = await self.database.start()
            for collection, fields in function.indexes.items():
                await store.declare_indexes(collection, list(fields))
