"""Fixtures' helpers for the connector tests: a fake server per test, connectors, a NATS watcher."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from runtime.config.settings import CytubeSettings
from runtime.cytube.connector import Connector
from runtime.database.store import open_client
from runtime.wire.bus import Bus
from tests.fake_cytube import FakeCytube

ACCOUNTS = {"rosey": "secret", "Owner": "hunter2"}
MakeConnector = Callable[..., Awaitable[Connector]]


def bot_settings(fake: FakeCytube, **overrides: Any) -> CytubeSettings:
    options: dict[str, Any] = {
        "url": fake.url,
        "channel": fake.channel,
        "username": "rosey",
        "password": "secret",
        "reconnect_delay": 0.05,
        "timeout": 5.0,
        "lease_ttl": 1.5,
    }
    options.update(overrides)
    return CytubeSettings(**options)


class Watch:
    """Collects what is published on some subjects, in order."""

    def __init__(self, bus: Bus, *subjects: str) -> None:
        self.bus, self.subjects = bus, subjects
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._arrived = asyncio.Event()

    async def start(self) -> Watch:
        async def collect(msg: Any) -> None:
            self.seen.append((msg.subject, json.loads(msg.data)))
            self._arrived.set()

        for subject in self.subjects:
            await self.bus.nc.subscribe(subject, cb=collect)
        await self.bus.flush()
        return self

    def of(self, subject: str) -> list[dict[str, Any]]:
        return [p for s, p in self.seen if s == subject]

    def states(self) -> list[str]:
        return [p["state"] for p in self.of("cytube.connection")]

    async def until(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (result := check()):
                self._arrived.clear()
                await self._arrived.wait()
        return result


MakeFake = Callable[..., Awaitable[FakeCytube]]


@pytest.fixture
async def make_fake() -> AsyncIterator[MakeFake]:
    """Factory: a started FakeCytube on a free port (FakeCytube's arguments)."""
    made: list[FakeCytube] = []

    async def make(channel: str = "test", **options: Any) -> FakeCytube:
        options.setdefault("ranks", {"owner": 5})
        server = FakeCytube(channel, options.pop("accounts", ACCOUNTS), **options)
        made.append(server)
        await server.start()
        return server

    yield make
    for server in made:
        await server.stop()


@pytest.fixture
async def fake(make_fake: MakeFake) -> FakeCytube:
    return await make_fake()


@pytest.fixture
async def make_connector(nats_url: str) -> AsyncIterator[MakeConnector]:
    """Factory: a started Connector on a NATS connection of its own, as in its own process."""
    made: list[tuple[Connector, Bus]] = []
    clients: list[Redis] = []

    async def make(
        fake: FakeCytube, redis_url: str | None = None, start: bool = True, **overrides: Any
    ) -> Connector:
        bus = await Bus.connect(nats_url, name="test-connector")
        redis = await open_client(redis_url) if redis_url else None
        if redis is not None:
            clients.append(redis)  # as in `rosey run`: the process's client, closed last
        connector = Connector(bot_settings(fake, **overrides), bus, redis)
        made.append((connector, bus))
        if start:
            await connector.start()
        return connector

    yield make
    for connector, bus in made:
        await connector.stop()
        await bus.close()
    for client in clients:
        await client.aclose()
