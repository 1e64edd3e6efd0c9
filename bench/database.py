"""Unindexed `database.query` on `rosey run`: how long it takes, and how long it blocks Redis.

Records are written with `database.set` requests (64 in flight) to a `rosey run` of the bench's
own, in a collection with no declared index; then `database.query` filters on an unindexed field
(`{"group": 7}`, limit 10), so the database must read the whole collection or refuse. While the
query runs, a separate redis-py connection sends PING after PING; the longest PING round trip is
how long a client waited on Redis (baseline column: the longest PING over the same time with no
query); SLOWLOG (commands of 0.1 ms or more) gives the longest single command Redis ran meanwhile,
which is how long Redis itself was blocked, whatever the machine's load did to the PINGs (0.000:
no command took 0.1 ms).
With rosey.yaml's defaults: a refused query is shown as refused, with the reply's message; then
the same query runs again on a `rosey run` with `database.scan_limit` raised out of the way (the
`scan_limit raised` rows: what the limit prevents, not counted by the target).
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import redis.asyncio as aioredis
from nats.aio.client import Client

from . import Env, Report, Row, median, procs

COLLECTION = "benchscan"
IN_FLIGHT = 64
RAISED = "database: {scan_limit: 1000000}\n"


SLOWLOG_FROM_US = 100
SLOWLOG_LEN = 4096
QUERY = json.dumps({"collection": COLLECTION, "filter": {"group": 7}, "limit": 10}).encode()


def sizes(quick: bool) -> tuple[list[int], int]:
    """(collection sizes, queries per size)."""
    return ([1_000, 3_000], 1) if quick else ([1_000, 10_000, 100_000], 3)


async def fill(nc: Client, start: int, stop: int) -> None:
    numbers = iter(range(start, stop))

    async def worker() -> None:
        for i in numbers:
            data = {"n": i, "text": f"line number {i}", "group": i % 100}
            payload = {"collection": COLLECTION, "id": i, "data": data}
            reply = json.loads(
                (await nc.request("database.set", json.dumps(payload).encode(), 30)).data
            )
            if not reply.get("success"):
                raise RuntimeError(f"database.set failed: {reply}")

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def pings(redis: aioredis.Redis, done: asyncio.Event) -> float:
    """The longest PING round trip, in ms, until `done`."""
    worst = 0.0
    while not done.is_set():
        began = time.perf_counter()
        await redis.ping()
        worst = max(worst, time.perf_counter() - began)
    return worst * 1000


@dataclass(frozen=True)
class Result:
    took: float  # ms the query took
    ping: float  # the longest PING round trip during it, ms
    command: float  # the longest single Redis command during it (SLOWLOG), ms
    reply: dict[str, Any]


async def query(nc: Client, redis: aioredis.Redis) -> Result:
    done = asyncio.Event()
    await redis.slowlog_reset()
    pinger = asyncio.create_task(pings(redis, done))
    await asyncio.sleep(0.01)  # the PING loop is under way before the query starts
    began = time.perf_counter()
    try:
        msg = await nc.request("database.query", QUERY, timeout=120)
        reply = json.loads(msg.data)
    except Exception as e:  # a timeout is a result here, not an error of the bench
        reply = {"success": False, "error": f"{type(e).__name__}: {e}", "error_code": "TIMEOUT"}
    took = (time.perf_counter() - began) * 1000
    done.set()
    ping = await pinger
    logged = await redis.slowlog_get(SLOWLOG_LEN)
    # The bench's own SLOWLOG RESET is logged too (freeing a full log can take milliseconds):
    # it is not the query's.
    command = (
        max(
            (int(e["duration"]) for e in logged if not _named(e["command"], b"SLOWLOG")),
            default=0,
        )
        / 1000
    )
    return Result(took, ping, command, reply)


def _named(command: bytes | str, name: bytes) -> bool:
    text = command if isinstance(command, bytes) else command.encode()
    return text.upper().startswith(name)


async def idle(redis: aioredis.Redis, seconds: float) -> float:
    done = asyncio.Event()
    pinger = asyncio.create_task(pings(redis, done))
    await asyncio.sleep(seconds)
    done.set()
    return await pinger


def measured(label: str, results: list[Result], quiet: float) -> tuple[list[Row], list[str]]:
    took = median([r.took for r in results])
    reply = results[-1].reply
    shown, notes = "", []
    if not reply.get("success"):
        error = str(reply.get("error"))
        limit = re.search(r"limit[^0-9]{0,20}([0-9][0-9,_]*)", error)
        shown = (
            f"refused (limit {limit.group(1)})" if limit else f"failed ({reply.get('error_code')})"
        )
        notes.append(f"{label}: {shown} in {took:.1f} ms: {error[:140]}")
    rows = [
        Row(f"{label}: latency", "ms", took, shown=shown),
        Row(f"{label}: Redis blocked, longest command", "ms", max(r.command for r in results)),
        Row(f"{label}: longest PING during it", "ms", max(r.ping for r in results), quiet),
    ]
    return rows, notes


class Served:
    """The `rosey run` answering database.*, restarted with other settings on the same data."""

    def __init__(self, folder: Path, nats_url: str) -> None:
        self.folder, self.nats_url = folder, nats_url
        self.config = (folder / "rosey.yaml").read_text()
        self.proc: procs.Proc | None = None

    async def start(self, settings: str = "") -> None:
        self.stop()
        (self.folder / "rosey.yaml").write_text(self.config + settings)
        self.proc = await procs.start_rosey(self.folder, self.nats_url)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


async def run(env: Env) -> Report:
    counts, repeats = sizes(env.quick)
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rosey-bench-db-") as tmp:
        folder = procs.project(
            Path(tmp), env.nats_url, env.redis_url, library=False, extra=[procs.trivial("noop")]
        )
        served = Served(folder, env.nats_url)
        await served.start()
        nc = await nats.connect(env.nats_url, name="bench-db")
        redis = aioredis.Redis.from_url(env.redis_url)
        # Every command of 0.1 ms or more is logged with the time Redis spent on it.
        await redis.config_set("slowlog-log-slower-than", SLOWLOG_FROM_US)
        await redis.config_set("slowlog-max-len", SLOWLOG_LEN)
        try:
            filled = 0
            for count in counts:
                await fill(nc, filled, count)
                filled = count
                results = [await query(nc, redis) for _ in range(repeats)]
                quiet = await idle(redis, max(0.05, median([r.took for r in results]) / 1000))
                more, said = measured(f"unindexed query at {count:,} records", results, quiet)
                rows += more
                notes += said
                if results[-1].reply.get("success"):
                    continue
                # What the limit prevents: the same query with the limit out of the way.
                await served.start(RAISED)
                results = [await query(nc, redis) for _ in range(repeats)]
                quiet = await idle(redis, max(0.05, median([r.took for r in results]) / 1000))
                label = f"scan_limit raised, query at {count:,} records"
                more, said = measured(label, results, quiet)
                rows += more
                notes += said
                await served.start()
        finally:
            await nc.close()
            await redis.aclose()
            served.stop()
    notes.insert(
        0,
        f"unindexed query: filter on a field with no index, limit 10, median of {repeats}; Redis "
        "blocked = the longest single command in SLOWLOG (threshold 0.1 ms) during the query; "
        "longest PING = a concurrent PING loop (baseline: same loop, no query); records written with database.set through `rosey run` (default settings); "
        f"`scan_limit raised` rows: the same query on a `rosey run` with `{RAISED.strip()}`.",
    )
    return Report(rows, notes)
