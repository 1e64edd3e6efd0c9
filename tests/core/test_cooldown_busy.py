"""Issue 15, item 8: a cooldown starts only when the command runs. The router books it in Redis
(so it holds across runtimes) and gives it back when the invoker does not run the command."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from runtime.config.keys import DEFAULT_NAMESPACE
from runtime.config.manifest import Command
from runtime.core.cooldowns import SharedCooldowns
from tests.conftest import Chat, MakeRuntime, wait_for

CODE = {
    "hold.py": """\
    import asyncio

    GATE = asyncio.Event()

    async def hold(event, ctx):
        await GATE.wait()
        return f"held for {event.user}"
    """
}
MANIFEST = {
    "hold": """\
    name: hold
    version: "1.0.0"
    description: One at a time, with a cooldown.
    handler: hold:hold
    timeout: 10
    concurrency: 1
    quarantine: {failures: 0}
    commands:
      hold: {cooldown: 60}
    """
}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_command_refused_as_busy_books_no_cooldown(
    make_runtime: MakeRuntime, chat: Chat, redis: Redis
) -> None:
    users = [f"u{uuid.uuid4().hex[:8]}" for _ in range(6)]
    runtime = await make_runtime(MANIFEST, CODE, redis=redis)
    invoker = runtime.invokers["hold"]
    # One runs, four wait for the slot (a queue of 4 per slot), the sixth is told it is busy.
    await chat.say("!hold", user=users[0])
    await wait_for(lambda: invoker.in_flight == 1)
    for user in users[1:5]:
        await chat.say("!hold", user=user)
    await wait_for(lambda: invoker.waiting == 4)
    late = users[5]
    await chat.say("!hold", user=late)
    assert await chat.lines(1) == ["hold is busy, try again in a moment."]
    key = DEFAULT_NAMESPACE.join("cooldown", "hold", late)

    async def given_back() -> bool:
        return await redis.exists(key) == 0

    # Booked by the router before it routed the line, given back once the invoker said busy.
    await wait_for(given_back)
    assert runtime.router is not None and runtime.router.released == 1
    handler = next(iter(invoker.code.handlers.values()))
    handler.__globals__["GATE"].set()
    await chat.lines(6)
    # Told "busy", the user may try again at once; then the cooldown holds, as it ran.
    await chat.say("!hold", user=late)
    assert (await chat.lines(7))[6] == f"held for {late}"
    await chat.say("!hold", user=late)
    assert (await chat.lines(8))[7].startswith(f"{late}: !hold is cooling down, try again in ")
    keys = [DEFAULT_NAMESPACE.join("cooldown", "hold", u) for u in users]
    assert await redis.exists(*keys) == 6  # one per user who ran it, none for the refusal


async def test_a_release_gives_back_only_its_own_booking(redis: Redis) -> None:
    command = Command("c" + uuid.uuid4().hex[:8], cooldown=60)
    one, two = SharedCooldowns(redis), SharedCooldowns(redis)
    assert await one.remaining(command, "amy", "chan", token="first") == 0
    assert not await two.release(command, "amy", "chan", 0, "someone-else")
    assert await two.remaining(command, "amy", "chan", token="second") > 0
    assert await two.release(command, "amy", "chan", 0, "first")
    assert await one.remaining(command, "amy", "chan", token="third") == 0
    assert not await one.release(command, "amy", "chan", 0, "first")  # already given back


async def test_release_without_redis_uses_memory() -> None:
    command = Command("x", cooldown=60)
    memory = SharedCooldowns()
    assert await memory.remaining(command, "amy", "chan", token="a") == 0
    assert not await memory.release(command, "amy", "chan", 0, "b")
    assert await memory.release(command, "amy", "chan", 0, "a")
    assert await memory.remaining(command, "amy", "chan", token="c") == 0
