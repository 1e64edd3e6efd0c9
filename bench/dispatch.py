"""Dispatch: a chat command through Rosey against a raw nats-py request/reply echo.

Rosey: `cytube.chat` published → router → `plugin.echo.command` → a trivial handler → reply on
`cytube.send.chat`, with the runtime in a process of its own. Baseline: a raw nats-py responder
in another process echoing a request of the same payload size. Both are measured one at a time
(latency p50 and p99) and with IN_FLIGHT commands outstanding (throughput).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg

from . import Env, Report, Row

IN_FLIGHT = 100
MANIFEST = (
    'name: echo\nversion: "1.0.0"\ndescription: bench\nhandler: echo:answer\n'
    "concurrency: 200\ncommands:\n  echo: {}\n"
)
CODE = "async def answer(event, ctx):\n    return event.args[0]\n"


def sizes(quick: bool) -> tuple[int, int]:
    """(commands for latency, commands for throughput)."""
    return (200, 2_000) if quick else (2_000, 20_000)


def chat(i: int) -> bytes:
    payload = {"user": "bench", "message": f"!echo {i:08d}", "channel": "b", "rank": 0, "time": 1}
    return json.dumps(payload).encode()


class Rosey:
    """Sends chat lines, matches replies by number."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.waiting: dict[str, asyncio.Future[None]] = {}

    async def start(self) -> None:
        async def reply(msg: Msg) -> None:
            future = self.waiting.pop(json.loads(msg.data)["message"], None)
            if future is not None and not future.done():
                future.set_result(None)

        await self.nc.subscribe("cytube.send.chat", cb=reply)
        await self.nc.flush()

    async def call(self, i: int) -> None:
        future = asyncio.get_running_loop().create_future()
        self.waiting[f"{i:08d}"] = future
        await self.nc.publish("cytube.chat", chat(i))
        await asyncio.wait_for(future, 30)


class Raw:
    def __init__(self, nc: Any) -> None:
        self.nc = nc

    async def start(self) -> None:
        pass

    async def call(self, i: int) -> None:
        await self.nc.request("bench.echo", chat(i), timeout=30)


async def latencies(client: Any, count: int) -> list[float]:
    times = []
    for i in range(count):
        began = time.perf_counter()
        await client.call(i)
        times.append(time.perf_counter() - began)
    return times


async def throughput(client: Any, count: int, offset: int) -> float:
    numbers = iter(range(offset, offset + count))

    async def worker() -> None:
        for i in numbers:
            await client.call(i)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return count / (time.perf_counter() - began)


async def measure(env: Env, which: str) -> dict[str, float]:
    samples, count = sizes(env.quick)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.dispatch",
        "serve",
        which,
        env.nats_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    if (await proc.stdout.readline()).strip() != b"ready":
        raise RuntimeError(f"the {which} responder did not start")
    nc = await nats.connect(env.nats_url, name="bench-dispatch")
    client: Rosey | Raw = Rosey(nc) if which == "rosey" else Raw(nc)
    try:
        await client.start()
        await latencies(client, samples // 4)  # warm-up
        times = sorted(await latencies(client, samples))
        rate = await throughput(client, count, offset=samples)
    finally:
        await nc.close()
        proc.stdin.close()
        await proc.wait()
    return {
        "p50": statistics.median(times) * 1000,
        "p99": times[int(len(times) * 0.99) - 1] * 1000,
        "rate": rate,
    }


async def run(env: Env) -> Report:
    rosey = await measure(env, "rosey")
    raw = await measure(env, "raw")
    samples, count = sizes(env.quick)
    return Report(
        rows=[
            Row("dispatch latency p50", "ms", rosey["p50"], raw["p50"]),
            Row("dispatch latency p99", "ms", rosey["p99"], raw["p99"]),
            Row(f"dispatch throughput, {IN_FLIGHT} in flight", "cmd/s", rosey["rate"], raw["rate"]),
        ],
        notes=[
            f"dispatch: {samples:,} commands one at a time, {count:,} with {IN_FLIGHT} in flight; "
            "baseline is a raw nats-py request/reply echo in another process, same payload."
        ],
    )


# The responders, each in a process of its own.


async def serve(which: str, nats_url: str) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.run_in_executor(None, sys.stdin.read)
    if which == "raw":
        nc = await nats.connect(nats_url, name="bench-raw")

        async def echo(msg: Msg) -> None:
            await msg.respond(msg.data)

        await nc.subscribe("bench.echo", cb=echo)
        await nc.flush()
        print("ready", flush=True)
        await stop
        await nc.close()
        return
    from runtime.config.settings import Settings
    from runtime.core.runtime import Runtime
    from runtime.wire.bus import Bus

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "manifests").mkdir()
        (base / "functions").mkdir()
        (base / "manifests" / "echo.yaml").write_text(MANIFEST)
        (base / "functions" / "echo.py").write_text(CODE)
        settings = Settings(
            manifests_dir=base / "manifests",
            functions_dir=base / "functions",
            data_dir=base / "data",
            heartbeat_interval=0,
        )
        bus = await Bus.connect(nats_url, name="bench-rosey")
        runtime = Runtime(settings, bus)
        await runtime.start()
        print("ready", flush=True)
        await stop
        await runtime.stop()
        await bus.close()


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    asyncio.run(serve(sys.argv[2], sys.argv[3]))
