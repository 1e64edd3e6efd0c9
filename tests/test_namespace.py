"""Two deployments on one Redis, told apart by `redis.prefix`: every key each writes is under its
own prefix, and neither sees the other's cooldowns, schedule claims, lease, records or bundles."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from runtime.config.keys import DEFAULT_PREFIX, Namespace
from runtime.config.manifest import Command, Function, parse
from runtime.config.settings import CytubeSettings, RedisSettings
from runtime.core.activation import Activation
from runtime.core.bundle import Bundle
from runtime.core.cooldowns import SharedCooldowns
from runtime.core.schedule import Scheduler
from runtime.cytube.connector import Connector
from runtime.cytube.lease import Lease
from runtime.database.store import Store, open_client
from runtime.deploy.versions import Versions
from runtime.ops.records import ActivationLog
from runtime.wire.bus import Bus

DB = 7  # a logical database no other test uses, so a SCAN sees only what this file writes
COMMAND = Command("8ball", cooldown=60)
DUE = 1_700_000_040.0
KINDS = {"{quotes}", "cooldown", "schedule", "lease", "activations", "deploy"}
TICKER = parse(
    {
        "name": "ticker",
        "version": "1.0.0",
        "description": "Says tick.",
        "handler": "ticker:tick",
        "schedules": [{"every": "30s"}],
    }
)
ECHO = Bundle.create(
    "echo",
    "1.0.0",
    "name: echo\nversion: '1.0.0'\ndescription: Echo.\nhandler: echo:answer\n",
    {"echo.py": "def answer(event, ctx):\n    return event.text\n"},
)


async def never(*_: Any) -> None:
    raise AssertionError("claims only; nothing fires")


@dataclass
class Deployment:
    """What one `rosey run` builds on its one Redis client, under its namespace."""

    keys: Namespace
    store: Store
    cooldowns: SharedCooldowns
    scheduler: Scheduler
    lease: Lease
    records: ActivationLog
    versions: Versions

    @classmethod
    def on(cls, redis: Redis, bus: Bus, prefix: str, function: Function) -> Deployment:
        keys = Namespace(prefix)
        cytube = CytubeSettings(url="https://cytube.example", channel="chan", username="rosey")
        return cls(
            keys,
            Store(redis, keys),
            SharedCooldowns(redis, keys),
            Scheduler(function, never, redis, keys),
            Connector(cytube, bus, redis, keys).lease,
            ActivationLog(redis, keys),
            Versions(redis, keys),
        )

    async def work(self) -> None:
        """One of everything each component writes, all of it for the first time."""
        await self.store.set("quotes", 1, {"text": self.keys.prefix})
        assert await self.cooldowns.remaining(COMMAND, "amy", "chan") == 0
        assert await self.scheduler.claim(self.scheduler.function.schedules[0], DUE)
        assert await self.lease.acquire()
        self.records(
            Activation(self.keys.prefix, "echo", "1.0.0", "command", "echo", "amy", "chan", "ok")
        )
        assert await self.records.flush() == 1
        await self.versions.save(ECHO)
        await self.versions.remove("gone")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """The one client both deployments share, as two bots on one Redis server would."""
    client = await open_client(redis_url.rsplit("/", 1)[0] + f"/{DB}")
    yield client
    await client.aclose()


async def keys_now(redis: Redis) -> set[str]:
    return {key async for key in redis.scan_iter(count=1000)}


async def test_two_prefixes_share_nothing(redis: Redis, bus: Bus) -> None:
    tag = uuid.uuid4().hex[:8]
    a = Deployment.on(redis, bus, f"bot-a-{tag}:", TICKER)
    b = Deployment.on(redis, bus, f"bot-b-{tag}:", TICKER)
    before = await keys_now(redis)

    await a.work()
    by_a = await keys_now(redis) - before
    assert by_a and all(key.startswith(a.keys.prefix) for key in by_a), sorted(by_a)
    assert {key.removeprefix(a.keys.prefix).split(":")[0] for key in by_a} == KINDS

    # B does all the same, none of it hindered by what A did.
    await b.work()
    by_b = await keys_now(redis) - before - by_a
    assert all(key.startswith(b.keys.prefix) for key in by_b), sorted(by_b)
    assert {key.removeprefix(b.keys.prefix).split(":")[0] for key in by_b} == KINDS

    # Each still sees only its own: A's cooldown and claim hold for A alone, both hold a lease.
    assert await a.cooldowns.remaining(COMMAND, "amy", "chan") > 0
    assert not await a.scheduler.claim(TICKER.schedules[0], DUE)
    assert await a.lease.holder() == a.lease.token
    assert await b.lease.holder() == b.lease.token
    assert [r["id"] for r in await a.records.query()] == [a.keys.prefix]
    assert [r["id"] for r in await b.records.query()] == [b.keys.prefix]
    assert await a.store.get("quotes", 1) == {"id": 1, "text": a.keys.prefix}
    assert await b.store.get("quotes", 1) == {"id": 1, "text": b.keys.prefix}
    await a.store.delete("quotes", 1)
    assert await b.store.get("quotes", 1) == {"id": 1, "text": b.keys.prefix}
    await a.versions.remove("echo")
    assert list(await a.versions.current()) == []
    assert list(await b.versions.current()) == ["echo"]
    assert await a.versions.removed() == {"gone", "echo"}
    assert await b.versions.removed() == {"gone"}


async def test_b_sees_nothing_a_wrote(redis: Redis, bus: Bus) -> None:
    tag = uuid.uuid4().hex[:8]
    a = Deployment.on(redis, bus, f"bot-a-{tag}:", TICKER)
    b = Deployment.on(redis, bus, f"bot-b-{tag}:", TICKER)
    await a.work()
    assert await b.store.get("quotes", 1) is None
    assert await b.store.count("quotes") == 0
    assert await b.lease.holder() is None
    assert await b.records.query() == []
    assert await b.versions.current() == {}
    assert await b.versions.removed() == set()
    assert await b.versions.history("echo") == []


def test_the_default_prefix_is_the_databases_of_before() -> None:
    """Data a runtime wrote before every key had a prefix stays where it was found."""
    assert RedisSettings().prefix == DEFAULT_PREFIX == Namespace().prefix == "rosey:db:"
    keys = Namespace()
    assert keys.tag("quotes") == "rosey:db:{quotes}:"
    assert keys.join("cooldown", "8ball", "amy") == "rosey:db:cooldown:8ball:amy"
    assert Namespace("").join("activations") == "activations"
