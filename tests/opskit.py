"""Shared pieces of the operations tests: a small function, a runtime with operations, HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from redis.asyncio import Redis

from runtime.config.settings import ActivationSettings, CytubeSettings, HttpSettings, Settings
from runtime.core.runtime import Runtime, Wiring
from runtime.ops.operations import Operations
from runtime.wire.bus import Bus
from tests.clitools import ROOT
from tests.conftest import MakeRuntime

CALC = {
    "calc": """\
    name: calc
    version: "1.0.0"
    description: Test function with every outcome.
    handler: calc:ok
    timeout: 0.3
    commands:
      ok: {}
      boom: {handler: "calc:boom"}
      slow: {handler: "calc:slow"}
      secret: {rank: 2}
    subjects:
      - {subject: "test.calc.ping"}
      - {subject: "test.calc.pong"}
    """
}
CALC_CODE = {
    "calc.py": """\
    import asyncio

    def ok(event, ctx):
        return f"ok {event.user}"

    def boom(event, ctx):
        raise ValueError("the sum does not add up")

    async def slow(event, ctx):
        await asyncio.sleep(30)
    """
}
WHY = {"why": (ROOT / "manifests" / "why.yaml").read_text()}
WHY_CODE = {"why.py": (ROOT / "functions" / "why.py").read_text()}

Operate = Callable[..., Awaitable[tuple[Runtime, Operations]]]


@asynccontextmanager
async def operations(make_runtime: MakeRuntime, redis_url: str) -> AsyncIterator[Operate]:
    """A factory of started runtimes with operations on a free port and a stream of their own."""
    made: list[Operations] = []
    clients: list[Redis] = []

    async def operate(
        manifests: dict[str, str] | None = None,
        code: dict[str, str] | None = None,
        *,
        redis: str | None = None,
        cytube: CytubeSettings | None = None,
        listen: str = "127.0.0.1:0",
    ) -> tuple[Runtime, Operations]:
        def wire(settings: Settings, bus: Bus) -> Wiring:
            # Not opened yet: a test gives an unreachable Redis on purpose.
            client = Redis.from_url(redis or redis_url, decode_responses=True)
            clients.append(client)
            operations = Operations(settings, bus, client)
            made.append(operations)
            return Wiring(observers=operations.observers, swap_hooks=(operations.follow,))

        runtime = await make_runtime(
            manifests or {**CALC, **WHY},
            code or {**CALC_CODE, **WHY_CODE},
            settings={
                "http": HttpSettings(listen),
                "activations": ActivationSettings(stream=f"test:activations:{uuid.uuid4().hex}"),
                "cytube": cytube,
            },
            wiring=wire,
        )
        operations = made[-1]
        await operations.start(runtime)
        return runtime, operations

    try:
        yield operate
    finally:
        for operations in made:
            await operations.stop()
        for client in clients:
            await client.aclose()


async def fetch(url: str, accept: str = "") -> tuple[int, str, str]:
    """(status, content type, body) of a GET."""
    headers = {"Accept": accept} if accept else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def fetch_json(url: str) -> tuple[int, Any]:
    status, _, body = await fetch(url)
    return status, json.loads(body)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until `check()` holds (a condition, not a time limit under test)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def say(bus: Bus, message: str, user: str = "alice", rank: float = 0) -> None:
    payload = {"user": user, "message": message, "channel": "test", "rank": rank, "time": 1}
    await bus.publish("cytube.chat", payload)
