"""Scale-out: command throughput with 1 and with 2 `rosey worker` processes (ratio printed), and
the commands lost under steady load while the nats-server restarts and while a worker is killed
with -9. The figures of loss have the commands sent as their baseline (ratio: the share lost).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats

from runtime.host.servers import EmbeddedNats

from . import Env, Report, Row

IN_FLIGHT = 64
MANIFEST = (
    'name: cpu\nversion: "1.0.0"\ndescription: bench\nhandler: cpu:work\n'
    "concurrency: 200\ntimeout: 10\nquarantine: {failures: 0}\ncommands:\n  cpu: {}\n"
)
# About a millisecond of pure Python: one process is CPU-bound, so a second one should help.
CODE = "def work(event, ctx):\n    return str(sum(i * i for i in range(20_000)))\n"
PAYLOAD = b'{"command": "cpu", "args": [], "user": "bench", "rank": 0}'


def _project(base: Path, nats_url: str, redis_url: str) -> Path:
    (base / "manifests").mkdir(parents=True)
    (base / "functions").mkdir()
    (base / "manifests" / "cpu.yaml").write_text(MANIFEST)
    (base / "functions" / "cpu.py").write_text(CODE)
    (base / "rosey.yaml").write_text(
        f"nats: {{url: '{nats_url}'}}\nredis: {{url: '{redis_url}'}}\nlog_level: ERROR\n"
        "heartbeat_interval: 0\nhttp: {listen: 'off'}\ndeploy: {token: bench}\n"
    )
    return base


async def _worker(project: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSEY_")}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "rosey"),
        "worker",
        cwd=project,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    while b"worker serving" not in (line := await proc.stderr.readline()):
        if not line:
            raise RuntimeError("rosey worker did not start")
    return proc


async def _stop(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def _throughput(url: str, count: int) -> float:
    nc = await nats.connect(url, name="bench-scale")
    left = iter(range(count))

    async def one() -> None:
        for _ in left:
            await nc.request("plugin.cpu.command", PAYLOAD, timeout=30)

    try:
        began = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(IN_FLIGHT)))
        return count / (time.perf_counter() - began)
    finally:
        await nc.close()


async def _steady(url: str, seconds: float, fault: Any) -> tuple[int, int]:
    """Send a command every 5 ms for `seconds`, doing `fault` half-way; (sent, lost)."""

    async def quiet(e: Exception) -> None:
        pass  # the outage is the point; its errors are counted as lost commands

    nc = await nats.connect(url, name="bench-steady", reconnect_time_wait=0.1, error_cb=quiet)
    sent = lost = 0

    async def one() -> None:
        nonlocal lost
        try:
            await nc.request("plugin.cpu.command", PAYLOAD, timeout=3)
        except Exception:
            lost += 1

    tasks = []
    began = time.monotonic()
    faulted = False
    try:
        while time.monotonic() - began < seconds:
            if not faulted and time.monotonic() - began > seconds / 2:
                faulted = True
                await fault()
            tasks.append(asyncio.create_task(one()))
            sent += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
    finally:
        await nc.close()
    return sent, lost


async def run(env: Env) -> Report:
    count = 300 if env.quick else 5_000
    seconds = 2.0 if env.quick else 10.0
    with tempfile.TemporaryDirectory(prefix="rosey-scale-") as tmp:
        base = Path(tmp)
        project = _project(base / "project", env.nats_url, env.redis_url)
        procs = [await _worker(project)]
        try:
            one = await _throughput(env.nats_url, count)
            procs.append(await _worker(project))
            two = await _throughput(env.nats_url, count)

            async def kill_one() -> None:
                procs[0].kill()

            kill_sent, kill_lost = await _steady(env.nats_url, seconds, kill_one)
        finally:
            await _stop(procs)
        # A nats-server of the suite's own, restarted on the same port under load.
        server = EmbeddedNats(base / "nats")
        url = server.start()
        port = int(url.rsplit(":", 1)[1])
        private = _project(base / "private", url, env.redis_url)
        procs = [await _worker(private)]
        try:

            async def restart() -> None:
                server.stop()
                await asyncio.sleep(0.2)
                server.start(port=port)

            restart_sent, restart_lost = await _steady(url, seconds, restart)
        finally:
            await _stop(procs)
            server.stop()
    return Report(
        rows=[
            Row("throughput, 2 workers vs 1", "cmd/s", two, one),
            Row("commands lost, a worker killed -9 of 2", "cmd", kill_lost, kill_sent),
            Row("commands lost, nats-server restart", "cmd", restart_lost, restart_sent),
        ],
        notes=[
            f"scale: {count:,} commands of ~1 ms CPU with {IN_FLIGHT} in flight per run; loss under "
            f"a steady command every 5 ms for {seconds:g}s (baseline column: commands sent)."
        ],
    )
