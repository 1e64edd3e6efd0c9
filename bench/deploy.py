"""Hot swap under load: 10 deploys while commands arrive at a steady rate.

Rosey: a Runtime with its DeployService; the load goes through the router (`cytube.chat` →
`plugin.echo.command` → reply on `cytube.send.chat`). Baseline: what a hand-written nats-py bot
does to reload a handler: unsubscribe the old subscription, subscribe the new one, with the same
load published straight to its subject. Swap time is from the deploy being acknowledged (the
baseline: from the swap starting) to the first reply by the new version; lost is commands sent
and never answered.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg

from runtime.config import manifest as manifests
from runtime.config.settings import Settings
from runtime.core.bundle import Bundle
from runtime.core.runtime import Runtime
from runtime.deploy.service import DeployService
from runtime.deploy.versions import Versions
from runtime.wire.bus import Bus

from . import Env, Report, Row

RATE = 600  # commands per second, above the 500
DEPLOYS = 10
TOKEN = "bench"


def manifest(version: str) -> str:
    return (
        f'name: echo\nversion: "{version}"\ndescription: bench\nhandler: echo:answer\n'
        "concurrency: 64\ncommands:\n  echo: {}\n"
    )


def code(version: str) -> str:
    return f"async def answer(event, ctx):\n    return '{version}:' + event.args[0]\n"


class Load:
    """Publishes numbered commands at RATE and records which version answered each."""

    def __init__(self, send: Any) -> None:
        self.send, self.sent, self.answers = send, 0, {}  # type: ignore[var-annotated]
        self.first: dict[str, float] = {}
        self.running = True

    def on_reply(self, text: str) -> None:
        version, _, number = text.partition(":")
        self.answers[int(number)] = version
        self.first.setdefault(version, time.perf_counter())

    async def run(self) -> None:
        began = time.perf_counter()
        while self.running:
            due = began + self.sent / RATE
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            await self.send(self.sent)
            self.sent += 1

    async def first_reply(self, version: str, timeout: float = 10.0) -> float:
        deadline = time.perf_counter() + timeout
        while version not in self.first and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        return self.first.get(version, float("nan"))

    async def finish(self) -> int:
        self.running = False
        await asyncio.sleep(1.0)  # let the last replies arrive
        return self.sent - len(self.answers)


async def rosey(env: Env, deploys: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "manifests").mkdir()
        (base / "functions").mkdir()
        (base / "manifests" / "echo.yaml").write_text(manifest("1.0.0"))
        (base / "functions" / "echo.py").write_text(code("v0"))
        settings = Settings(
            manifests_dir=base / "manifests",
            functions_dir=base / "functions",
            data_dir=base / "data",
            heartbeat_interval=0,
        )
        bus = await Bus.connect(env.nats_url)
        client = await Bus.connect(env.nats_url)
        versions = Versions.connect(env.redis_url, prefix=f"bench:{time.time_ns()}:")
        runtime = Runtime(settings, bus)
        service = DeployService(runtime, bus, TOKEN, versions, ack_window=0.05)
        await runtime.start(service.choose(manifests.load_dir(settings.manifests_dir)))
        await service.start()

        async def send(i: int) -> None:
            await client.publish("cytube.chat", {"user": "b", "message": f"!echo {i}", "rank": 0})

        load = Load(send)

        async def reply(msg: Msg) -> None:
            load.on_reply(json.loads(msg.data)["message"])

        await client.nc.subscribe("cytube.send.chat", cb=reply)
        await client.flush()
        sender = asyncio.create_task(load.run())
        swaps = []
        try:
            for n in range(1, deploys + 1):
                await asyncio.sleep(0.2)
                version = f"v{n}"
                bundle = Bundle.create(
                    "echo", f"1.0.{n}", manifest(f"1.0.{n}"), {"echo.py": code(version)}
                )
                request = {
                    "token": TOKEN,
                    "action": "deploy",
                    "bundle": json.loads(bundle.to_json()),
                }
                began = time.perf_counter()
                reply_env = await client.request("rosey.deploy", request, timeout=30)
                assert reply_env["success"], reply_env
                swaps.append(await load.first_reply(version) - began)
            lost = await load.finish()
        finally:
            load.running = False
            await sender
            await service.stop()
            await runtime.stop()
            await bus.close()
            await client.close()
            await versions.close()
    return _median(swaps), lost


async def baseline(env: Env, deploys: int) -> tuple[float, int]:
    nc = await nats.connect(env.nats_url)
    client = await nats.connect(env.nats_url)

    def handler(version: str) -> Any:
        async def answer(msg: Msg) -> None:
            number = json.loads(msg.data)["args"][0]
            await nc.publish("bench.reply", json.dumps({"message": f"{version}:{number}"}).encode())

        return answer

    async def send(i: int) -> None:
        payload = {"command": "echo", "args": [str(i)], "user": "b", "rank": 0}
        await client.publish("bench.echo", json.dumps(payload).encode())

    load = Load(send)

    async def reply(msg: Msg) -> None:
        load.on_reply(json.loads(msg.data)["message"])

    await client.subscribe("bench.reply", cb=reply)
    sub = await nc.subscribe("bench.echo", cb=handler("v0"))
    await nc.flush()
    await client.flush()
    sender = asyncio.create_task(load.run())
    swaps = []
    for n in range(1, deploys + 1):
        await asyncio.sleep(0.2)
        began = time.perf_counter()
        await sub.unsubscribe()
        sub = await nc.subscribe("bench.echo", cb=handler(f"v{n}"))
        swaps.append(await load.first_reply(f"v{n}") - began)
    lost = await load.finish()
    await sender
    await nc.close()
    await client.close()
    return _median(swaps), lost


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] * 1000 if ordered else float("nan")


async def run(env: Env) -> Report:
    deploys = 3 if env.quick else DEPLOYS
    rosey_swap, rosey_lost = await rosey(env, deploys)
    base_swap, base_lost = await baseline(env, deploys)
    return Report(
        rows=[
            Row(
                f"hot swap, deploy sent → first new reply, p50 of {deploys}",
                "ms",
                rosey_swap,
                base_swap,
            ),
            Row(f"commands lost over {deploys} swaps at {RATE}/s", "count", rosey_lost, base_lost),
        ],
        notes=[
            "hot swap baseline: a raw nats-py handler reloaded by unsubscribe + subscribe "
            "and no validation."
        ],
    )
