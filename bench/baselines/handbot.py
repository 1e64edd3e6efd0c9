"""The hand-written bot: what one would write with nats-py (and redis-py) for the same commands.

`python bench/baselines/handbot.py NATS_URL REDIS_URL FUNCTIONS_DIR`; prints `ready` once
subscribed, stops on SIGTERM. Per `cytube.chat` line: json.loads, split the command, look it up
in a dict, check the user's rank, roll the dice with the shipped functions/dice.py (the same
work as Rosey's `dice` function), json.dumps the reply and publish it on `cytube.send.chat`.
`!cool` adds a per-user cooldown: one Redis call, SET NX PX, awaited in a task of its own so
that commands overlap while Redis answers. Plain asyncio, as most hand-written bots run.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import nats
import redis.asyncio as aioredis
from nats.aio.msg import Msg

COOLDOWN_MS = 60_000
LIMITS = {"max_dice": 100, "max_sides": 1000}


async def main(nats_url: str, redis_url: str, functions: str) -> None:
    sys.path.insert(0, str(Path(functions).resolve()))
    from dice import DiceError, roll_expression  # the shipped library's own dice code

    nc = await nats.connect(nats_url, name="bench-handbot")
    redis = aioredis.Redis.from_url(redis_url)
    await redis.ping()
    prefix = f"handbot:{random.getrandbits(64)}:cd:"
    tasks: set[asyncio.Task[None]] = set()

    def roll(user: str, args: list[str]) -> str:
        expression = " ".join(args) or "1d6"
        try:
            total, shown = roll_expression(expression, random.Random(), **LIMITS)
        except DiceError as e:
            return f"{user}: {e}"
        return f"{user} rolled {expression}: {shown} = {total}"

    async def say(text: str) -> None:
        await nc.publish("cytube.send.chat", json.dumps({"message": text}).encode())

    async def cool(user: str, args: list[str]) -> None:
        if await redis.set(prefix + user, 1, nx=True, px=COOLDOWN_MS):
            await say(roll(user, args))
        else:
            await say(f"{user}: wait a moment")

    ranks = {"roll": 0, "r": 0, "cool": 0}
    sync: dict[str, Callable[[str, list[str]], str]] = {"roll": roll, "r": roll}
    slow: dict[str, Callable[[str, list[str]], Coroutine[Any, Any, None]]] = {"cool": cool}

    async def on_chat(msg: Msg) -> None:
        line: dict[str, Any] = json.loads(msg.data)
        text = line.get("message", "")
        if not text.startswith("!"):
            return
        word, *args = text[1:].split()
        if line.get("rank", 0) < ranks.get(word, 0):
            return
        if word in sync:
            await say(sync[word](line["user"], args))
        elif word in slow:
            task = asyncio.create_task(slow[word](line["user"], args))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    await nc.subscribe("cytube.chat", cb=on_chat)
    await nc.flush()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await nc.close()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
