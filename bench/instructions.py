"""Instructions per command, counted by valgrind's callgrind (independent of machine load).

`rosey run` and the hand-written bot each run under `valgrind --tool=callgrind
--instr-atstart=no` (start-up uninstrumented), warm up, then `callgrind_control -i on`; a batch
of N commands and a dump, a batch of 2N and a dump: (I(2N) - I(N)) / N cancels what a batch
costs whatever its size (the dump itself, timers). Slow, so only in the full run; skipped with
a note under --quick or without valgrind on PATH.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import NAN, Env, Report, Row, procs
from .chatload import ChatLoad
from .dispatch import COOL, WORKLOADS

COUNT = 300
IN_FLIGHT = 16


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


async def total(path: Path, timeout: float = 300) -> int:
    """The `totals:` line of a callgrind dump, once the dump is written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith(("totals:", "summary:")):
                    return int(line.split()[1])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no callgrind dump at {path}")


async def side(which: str, env: Env, load: ChatLoad, folder: Path, out: Path) -> dict[str, float]:
    prefix = (
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        f"--log-file={out}.log",
    )
    if which == "rosey":
        # At-most-once, as the hand-written bot: the same delivery, the same work.
        proc = await procs.start_rosey(
            folder, env.nats_url, prefix=prefix, settings={"ROSEY_DELIVERY_MODE": "at-most-once"}
        )
    else:
        await procs.reset_streams(env.nats_url)
        proc = await procs.start_baseline(
            "handbot", env.nats_url, env.redis_url, str(folder / "functions"), prefix=prefix
        )
    found: dict[str, float] = {}
    dumps = 0
    try:
        for work, text in WORKLOADS.items():
            await load.throughput(text, 100, IN_FLIGHT)  # warm-up, uninstrumented
            pid = str(proc.pid)
            await asyncio.to_thread(control, "-z", pid)
            await asyncio.to_thread(control, "-i", "on", pid)
            counts = []
            for size in (COUNT, 2 * COUNT):
                await load.throughput(text, size, IN_FLIGHT)
                await asyncio.to_thread(control, "--dump", pid)
                dumps += 1
                counts.append(await total(Path(f"{out}.{dumps}")))
            await asyncio.to_thread(control, "-i", "off", pid)
            found[work] = (counts[1] - counts[0]) / COUNT
    finally:
        proc.stop()
    return found


async def run(env: Env) -> Report:
    figures = [f"instructions per command, {text}" for text in WORKLOADS.values()]
    skipped = "skipped (--quick)" if env.quick else ""
    if not skipped and shutil.which("valgrind") is None:
        skipped = "skipped (no valgrind)"
    if skipped:
        rows = [Row(f, "instr", NAN, shown=skipped) for f in figures]
        return Report(rows, ["instructions: callgrind runs only in the full `make bench`."])
    load = await ChatLoad.connect(env.nats_url)
    try:
        with tempfile.TemporaryDirectory(prefix="rosey-bench-cg-") as tmp:
            folder = procs.project(Path(tmp), env.nats_url, env.redis_url, extra=[COOL])
            rosey = await side("rosey", env, load, folder, Path(tmp) / "rosey.cg")
            bot = await side("handbot", env, load, folder, Path(tmp) / "handbot.cg")
    finally:
        await load.close()
    rows = [
        Row(figure, "instr", rosey[work], bot[work])
        for figure, work in zip(figures, WORKLOADS, strict=True)
    ]
    notes = [
        f"instructions: callgrind, (I(2N) - I(N)) / N with N = {COUNT}, {IN_FLIGHT} in flight; "
        "the bot process only (not nats-server or redis-server)."
    ]
    return Report(rows, notes)
