"""Start-up time and memory of `rosey run` on embedded defaults, against a hand-written bot.

Rosey: `rosey run --no-console` in a fresh folder with the shipped function library, timed from
spawn to ready (its `runtime.json` written: NATS and Redis up, every function bound). Baseline: a
hand-written nats-py + redis-py bot that starts the same two embedded servers, connects to both
and subscribes one subject. Memory is the resident set of the Python process (the servers are
children of both and not counted); per function is the growth over 20 more deployed functions.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runtime.core.bundle import Bundle

from . import Env, Report, Row

ROOT = Path(__file__).resolve().parent.parent
ROSEY = str(Path(sys.executable).parent / "rosey")
EXTRA = 20

BASELINE = """
import asyncio, sys, tempfile
from pathlib import Path
import nats, redis.asyncio as redis
from runtime.host.servers import EmbeddedNats, EmbeddedRedis

async def main():
    tmp = Path(tempfile.mkdtemp())
    n = EmbeddedNats(tmp / "nats"); r = EmbeddedRedis(tmp / "redis")
    nc = await nats.connect(n.start()); rc = redis.Redis.from_url(r.start()); await rc.ping()
    async def echo(msg): await msg.respond(msg.data)
    await nc.subscribe("echo", cb=echo); await nc.flush()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await nc.close(); await rc.aclose(); n.stop(); r.stop()

asyncio.run(main())
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rosey_once(folder: Path) -> tuple[float, float, float]:
    state = folder / ".rosey" / "runtime.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSEY_")}
    env["ROSEY_HTTP_LISTEN"] = "off"
    began = time.perf_counter()
    proc = subprocess.Popen(
        [ROSEY, "run", "--no-console"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not state.exists():
            if proc.poll() is not None or time.perf_counter() - began > 60:
                raise RuntimeError("rosey run did not become ready")
            time.sleep(0.005)
        ready = time.perf_counter() - began
        time.sleep(0.5)
        rss = rss_mb(proc.pid)
        extra = asyncio.run(deploy_extra(folder, json.loads(state.read_text())))
        time.sleep(0.5)
        per_function = (rss_mb(proc.pid) - rss) / extra
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return ready, rss, per_function


async def deploy_extra(folder: Path, state: dict[str, str]) -> int:
    from runtime.wire.bus import Bus

    bus = await Bus.connect(state["nats_url"], reconnect=False)
    try:
        for i in range(EXTRA):
            name = f"extra{i}"
            manifest = (
                f'name: {name}\nversion: "1.0.0"\ndescription: x\nhandler: {name}:f\n'
                f"commands:\n  {name}: {{}}\n"
            )
            code = f"def f(event, ctx):\n    return 'x{i}'\n"
            bundle = Bundle.create(name, "1.0.0", manifest, {f"{name}.py": code})
            reply = await bus.request(
                "rosey.deploy",
                {
                    "token": state["token"],
                    "action": "deploy",
                    "bundle": json.loads(bundle.to_json()),
                },
                timeout=30,
            )
            assert reply["success"], reply
    finally:
        await bus.close()
    return EXTRA


def baseline_once() -> tuple[float, float]:
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("the baseline bot did not start")
    ready = time.perf_counter() - began
    time.sleep(0.5)
    rss = rss_mb(proc.pid)
    proc.stdin.close()
    proc.wait(30)
    return ready, rss


async def run(env: Env) -> Report:
    rounds = 1 if env.quick else 3
    results = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            shutil.copytree(ROOT / "functions", folder / "functions")
            shutil.copytree(ROOT / "manifests", folder / "manifests")
            results.append(await asyncio.to_thread(rosey_once, folder))
    base = [await asyncio.to_thread(baseline_once) for _ in range(rounds)]
    ready = min(r[0] for r in results)
    rss = min(r[1] for r in results)
    per_function = min(r[2] for r in results)
    functions = len(list((ROOT / "manifests").glob("*.yaml")))
    return Report(
        rows=[
            Row("rosey run ready, embedded defaults", "s", ready, min(b[0] for b in base)),
            Row(f"RSS with the {functions} shipped functions", "MB", rss, min(b[1] for b in base)),
            Row("RSS per additional function", "MB", per_function, float("nan")),
        ],
        notes=[
            f"start-up and memory: best of {rounds}; baseline is a hand-written nats-py + "
            "redis-py bot starting the same embedded servers (no per-function baseline)."
        ],
    )
