"""Fixtures' helpers for the connector tests: a fake server per test, connectors, a NATS watcher."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import socketio
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
        delivery = overrides.pop("delivery", None)  # DeliverySettings: durable delivery
        connector = Connector(bot_settings(fake, **overrides), bus, redis, delivery=delivery)
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


class RawClient:
    """A bare python-socketio client speaking CyTube's protocol, as a web client would; it
    records every event it gets. `ip` is sent as X-Forwarded-For (the fake trusts loopback)."""

    def __init__(self, fake: FakeCytube, ip: str = "127.0.0.1") -> None:
        self.fake, self.ip = fake, ip
        self.sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.got: list[tuple[str, Any]] = []
        self._arrived = asyncio.Event()
        self.sio.on("*", self._record)

    async def _record(self, event: str, *args: Any) -> None:
        self.got.append((event, args[0] if args else None))
        self._arrived.set()

    async def enter(self, name: str | None = None, pw: str | None = None) -> RawClient:
        """Connect, joinChannel, login (if a name), and wait for the join to finish."""
        await self.sio.connect(
            self.fake.url, transports=["websocket"], headers={"X-Forwarded-For": self.ip}
        )
        await self.sio.emit("joinChannel", {"name": self.fake.channel})
        await self.until(lambda: self.of("usercount"))
        if name is not None:
            await self.sio.emit("login", {"name": name, **({"pw": pw} if pw else {})})
            await self.until(lambda: any(u["name"] == name for u in self.of("addUser")))
            await self.sync()
        return self

    def of(self, event: str) -> list[Any]:
        return [data for name, data in self.got if name == event]

    def names(self) -> list[str]:
        return [name for name, _ in self.got]

    async def emit(self, event: str, data: Any = None) -> None:
        if data is None:
            await self.sio.emit(event)
        else:
            await self.sio.emit(event, data)

    async def call(self, event: str, data: Any) -> Any:
        return await self.sio.call(event, data, timeout=5)

    async def sync(self) -> None:
        """A barrier: what was emitted before has been handled, and its answers received, once
        the fake acks a `requestPlaylist` (a test aid: CyTube itself sends no ack for it)."""
        await self.sio.call("requestPlaylist", timeout=5)
        await asyncio.sleep(0)

    async def until(self, check: Callable[[], Any], timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (result := check()):
                self._arrived.clear()
                await self._arrived.wait()
        return result

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


MakeClient = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Factory: `await make_client(fake, name=None, pw=None, ip="127.0.0.1")`, a RawClient in
    the channel (logged in when a name is given); closed at the end."""
    made: list[RawClient] = []

    async def make(
        fake: FakeCytube, name: str | None = None, pw: str | None = None, ip: str = "127.0.0.1"
    ) -> RawClient:
        client = RawClient(fake, ip)
        made.append(client)
        return await client.enter(name, pw)

    yield make
    for client in made:
        await client.close()
