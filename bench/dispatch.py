"""Dispatch on the production path: `rosey run` against a hand-written bot and a raw echo.

Rosey: the installed `rosey run --no-console` (Redis, activation records, metrics) serving the
shipped `dice` function and one bench-only command, `!cool`, served by the same dice handler with
a per-user cooldown, so that workload adds Rosey's Redis booking: the features the hand-written
bot has, no more. Baselines: bench/baselines/handbot.py (nats-py, json, the same dice code, one
SET NX PX for `!cool`) and bench/baselines/echo.py (publish straight back). A fifth side,
"library", is `rosey run` as shipped: the whole function library (automod among it reads every
chat line, with a database read and write) and the default durable delivery; its `!roll` rows,
start-up and RSS are shown against the hand-written bot without a target. Each side runs alone in
a process of its own, on the bench's nats-server and redis-server, and the sides take turns over
several rounds (each round starts a fresh process); the rows are medians over rounds.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

from . import Env, Report, Row, median, percentile, procs
from .chatload import ChatLoad

IN_FLIGHT = 64
# "rosey": delivery.mode at-most-once, core NATS like the hand-written bot; "durable": the
# default, through JetStream (issue 19), compared with "rosey" in rows of its own.
# "library": the whole shipped library with the default delivery, as `rosey run` starts.
SIDES = ("rosey", "durable", "handbot", "echo", "library")
AT_MOST_ONCE = {"ROSEY_DELIVERY_MODE": "at-most-once"}
WORKLOADS = {"roll": "!roll 2d6", "cool": "!cool 2d6"}
COOL = (
    "cool",
    'name: cool\nversion: "1.0.0"\ndescription: bench-only dice with a cooldown\n'
    "handler: dice:roll\ntimeout: 2\nconcurrency: 32\n"
    "commands:\n  cool:\n    rank: 0\n    cooldown: {seconds: 60, per: user}\n"
    "config: {default: 1d6, max_dice: 100, max_sides: 1000}\n",
    "",
)


def dice() -> tuple[str, str, str]:
    """The shipped dice function, as (name, manifest, code) for procs.project."""
    return (
        "dice",
        (procs.ROOT / "manifests" / "dice.yaml").read_text(),
        (procs.ROOT / "functions" / "dice.py").read_text(),
    )


def sizes(quick: bool) -> tuple[int, int, int, int]:
    """(rounds, warm-up commands, commands one at a time, commands in flight)."""
    return (1, 100, 100, 600) if quick else (5, 1_000, 1_000, 10_000)


async def start(side: str, env: Env, folder: Path) -> procs.Proc:
    if side == "library":
        return await procs.start_rosey(folder.parent / "library", env.nats_url)
    if side == "rosey":
        return await procs.start_rosey(folder, env.nats_url, settings=AT_MOST_ONCE)
    if side == "durable":
        return await procs.start_rosey(folder, env.nats_url)
    await procs.reset_streams(env.nats_url)  # so the server stores nothing for a baseline
    if side == "handbot":
        return await procs.start_baseline(
            "handbot", env.nats_url, env.redis_url, str(folder / "functions")
        )
    return await procs.start_baseline("echo", env.nats_url)


async def one_side(
    side: str, env: Env, load: ChatLoad, folder: Path, found: dict[str, list[float]]
) -> None:
    _, warm, sequential, many = sizes(env.quick)
    proc = await start(side, env, folder)
    try:
        found[f"{side}.ready"].append(proc.ready_after)
        found[f"{side}.rss"].append(proc.rss_mb())
        for work, text in WORKLOADS.items():
            if side == "library" and work != "roll":
                continue  # the library's cost shows on one workload
            await load.throughput(text, warm, 16)
            times = await load.latencies(text, sequential)
            found[f"{side}.{work}.p50"].append(percentile(times, 0.5) * 1000)
            found[f"{side}.{work}.p99"].append(percentile(times, 0.99) * 1000)
            cpu: list[float] = []
            rate = await load.throughput(text, many, IN_FLIGHT, partial(_mark, cpu, proc))
            found[f"{side}.{work}.rate"].append(rate)
            found[f"{side}.{work}.cpu"].append((cpu[1] - cpu[0]) / many * 1e6)
        found[f"{side}.rss_after"].append(proc.rss_mb())
    finally:
        proc.stop()


async def run(env: Env) -> Report:
    rounds, warm, sequential, many = sizes(env.quick)
    found: dict[str, list[float]] = {
        f"{s}.{k}": [] for s in SIDES for k in ("ready", "rss", "rss_after", *_figures())
    }
    load = await ChatLoad.connect(env.nats_url)
    try:
        with tempfile.TemporaryDirectory(prefix="rosey-bench-dispatch-") as tmp:
            folder = procs.project(
                Path(tmp) / "dice", env.nats_url, env.redis_url, library=False, extra=[dice(), COOL]
            )
            procs.project(Path(tmp) / "library", env.nats_url, env.redis_url, extra=[COOL])
            for r in range(rounds):
                for side in SIDES[r % len(SIDES) :] + SIDES[: r % len(SIDES)]:
                    await one_side(side, env, load, folder, found)
    finally:
        await load.close()
    mid = {key: median(values) for key, values in found.items()}
    rows: list[Row] = []
    for work, text in WORKLOADS.items():
        label = f"{text}{', cooldown' if work == 'cool' else ''}"
        keys = ("p50", "p99", "rate", "cpu")
        rows += _rows(mid, f"dispatch {label}: ", work, keys, "rosey", "handbot")
    for work, text in WORKLOADS.items():
        label = f"{text}{', cooldown' if work == 'cool' else ''}"
        keys = ("p50", "rate", "cpu")
        rows += _rows(mid, f"durable dispatch {label}: ", work, keys, "durable", "rosey")
    functions = len(list((procs.ROOT / "manifests").glob("*.yaml"))) + 1
    shipped = f"as shipped, {functions} functions, durable: !roll 2d6 "
    rows += _rows(mid, shipped, "roll", ("p50", "rate", "cpu"), "library", "handbot")
    rows += [
        Row(
            f"start-up, rosey run with the {functions} shipped functions",
            "s",
            mid["library.ready"],  # as `rosey run` starts
            mid["handbot.ready"],
            mid["echo.ready"],
        ),
        Row(
            f"RSS with the {functions} shipped functions",
            "MB",
            mid["library.rss"],
            mid["handbot.rss"],
            mid["echo.rss"],
        ),
        Row(
            "RSS after the dispatch load",
            "MB",
            mid["library.rss_after"],
            mid["handbot.rss_after"],
            mid["echo.rss_after"],
        ),
    ]
    notes = [
        f"dispatch: {rounds} rounds, sides alternating, medians over rounds; per round and side "
        f"{warm:,} warm-up commands, p50/p99 over {sequential:,} commands one at a time, "
        f"throughput and CPU over {many:,} commands with {IN_FLIGHT} in flight. CPU per command "
        "is the bot process's utime+stime (/proc/<pid>/stat) over the throughput batch / commands.",
        "dispatch: Rosey serves the shipped dice function and !cool (the hand-written bot's "
        "commands) with delivery.mode at-most-once (core NATS, as the hand-written bot); in the "
        "durable rows Rosey runs with the default durable delivery (JetStream) and the baseline "
        "column is Rosey at-most-once from the same rounds.",
        f"as shipped: rosey run with all {functions} shipped functions (automod reads every chat "
        "line: a second invocation with a database read and write per line) and durable delivery, "
        "against the hand-written bot, which does neither; no target reads these rows.",
        "dispatch baseline: bench/baselines/handbot.py (nats-py + json + the same dice code; "
        "SET NX PX for the cooldown); echo: bench/baselines/echo.py (publish back, no parsing).",
        "start-up and RSS: the as-shipped side; spawn to /readyz 200 (baselines: spawn to `ready` "
        f"printed); RSS right after, and after its round's {warm + sequential + many:,} commands.",
    ]
    return Report(rows, notes)


# A figure's key in `found` → (what it is, its unit).
FIGURES = {
    "p50": ("latency p50", "ms"),
    "p99": ("latency p99", "ms"),
    "rate": (f"throughput, {IN_FLIGHT} in flight", "cmd/s"),
    "cpu": ("CPU per command", "µs"),
}


def _rows(
    mid: dict[str, float],
    prefix: str,
    work: str,
    keys: tuple[str, ...],
    side: str,
    baseline: str,
) -> list[Row]:
    """The `keys` figures of `side` for one workload, against `baseline` and the echo."""
    return [
        Row(
            prefix + FIGURES[key][0],
            FIGURES[key][1],
            mid[f"{side}.{work}.{key}"],
            mid[f"{baseline}.{work}.{key}"],
            mid[f"echo.{work}.{key}"],
        )
        for key in keys
    ]


def _mark(into: list[float], proc: procs.Proc) -> None:
    into.append(proc.cpu())


def _figures() -> list[str]:
    return [f"{w}.{k}" for w in WORKLOADS for k in ("p50", "p99", "rate", "cpu")]
