"""database.get/set/query through NATS: Rosey's DatabaseService against a hand-written responder.

Each responder runs in a process of its own (`python -m bench.database serve rosey|baseline`)
so that the load generator, here, does not share its event loop. The baseline is what one
would write by hand with nats-py and redis-py: parse, one Redis call, reply. It makes the same
Redis calls as Rosey (HGETALL for get, the same Lua scripts for set and query) with the same
client settings, and also runs a bounded task per request; what it skips is everything Rosey
adds: contract validation, id and filter checks, query planning, the envelope's error paths.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from . import Env, Report, Row

COLLECTION = "bench"
IN_FLIGHT = 128  # concurrent requests the generator keeps open
SCORES = 10_000


def sizes(quick: bool) -> tuple[int, int, int]:
    """(records, requests per throughput figure, requests for the latency figure)."""
    return (5_000, 2_000, 200) if quick else (100_000, 20_000, 2_000)


def record(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "user": f"user{i}",
        "score": rng.randrange(SCORES),
        "text": f"quote number {i}",
        "tags": ["a"],
    }


async def load(env: Env, records: int) -> None:
    from runtime.database.store import Store

    store = await Store.connect(env.redis_url)
    try:
        await store.declare_indexes(COLLECTION, ["score"])
        rng = random.Random(1)
        for start in range(1, records + 1, 64):  # 64 at a time: as many Redis connections
            batch = range(start, min(start + 64, records + 1))
            await asyncio.gather(*(store.set(COLLECTION, i, record(i, rng)) for i in batch))
    finally:
        await store.close()


def workloads(records: int, requests: int) -> dict[str, list[bytes]]:
    rng = random.Random(2)

    def encode(payload: dict[str, Any]) -> bytes:
        return json.dumps(payload).encode()

    ids = [rng.randint(1, records) for _ in range(requests)]
    return {
        "get": [encode({"collection": COLLECTION, "id": i}) for i in ids],
        "set": [encode({"collection": COLLECTION, "id": i, "data": record(i, rng)}) for i in ids],
        "query": [
            encode(
                {
                    "collection": COLLECTION,
                    "filter": {"score": {"$gte": rng.randrange(SCORES)}},
                    "order_by": "score DESC",
                    "limit": 10,
                }
            )
            for _ in ids
        ],
    }


async def throughput(nc: Client, subject: str, payloads: list[bytes]) -> float:
    """Requests per second with IN_FLIGHT requests open at a time."""
    queue = iter(payloads)
    failures: list[bytes] = []

    async def worker() -> None:
        for payload in queue:
            reply = await nc.request(subject, payload, timeout=30)
            if not reply.data.startswith(b'{"success":true') and not reply.data.startswith(
                b'{"success": true'
            ):
                failures.append(reply.data)

    queue = iter(payloads[: len(payloads) // 5])  # warm-up: connections, caches, scripts
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    queue = iter(payloads)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{subject}: {len(failures)} failed, such as {failures[0][:200]!r}")
    return len(payloads) / elapsed


async def latency(nc: Client, subject: str, payloads: list[bytes]) -> float:
    """Median milliseconds of one request at a time."""
    times = []
    for payload in payloads:
        started = time.perf_counter()
        await nc.request(subject, payload, timeout=30)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def responder(env: Env, which: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.database",
        "serve",
        which,
        env.nats_url,
        env.redis_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if line.strip() != b"ready":
        raise RuntimeError(f"the {which} responder did not start: {line!r}")
    return proc


async def measure(env: Env, work: dict[str, list[bytes]], samples: int) -> dict[str, float]:
    """Each figure for Rosey and the baseline in turn, `rounds` times; the best of each.

    Taking turns (rather than all of Rosey, then all of the baseline) spreads whatever else the
    machine does over both sides alike; both responders run throughout, the idle one costs nothing.
    """
    rounds = 1 if env.quick else 3
    procs = [await responder(env, "rosey"), await responder(env, "baseline")]
    nc = await nats.connect(env.nats_url, name="bench-load")
    found: dict[str, float] = {}
    try:
        for op in ("get", "set", "query", "p50"):
            for _ in range(rounds):
                for side in ("database", "baseline"):
                    if op == "p50":
                        value = await latency(nc, f"{side}.query", work["query"][:samples])
                        best = min(value, found.get(f"{side}.{op}", value))
                    else:
                        value = await throughput(nc, f"{side}.{op}", work[op])
                        best = max(value, found.get(f"{side}.{op}", value))
                    found[f"{side}.{op}"] = best
    finally:
        await nc.close()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()  # a responder stops at the end of its input
            await proc.wait()
    return found


async def run(env: Env) -> Report:
    records, requests, samples = sizes(env.quick)
    started = time.perf_counter()
    await load(env, records)
    loaded = time.perf_counter() - started
    found = await measure(env, workloads(records, requests), samples)
    figures = [
        ("database.get", "req/s", "get"),
        ("database.set", "req/s", "set"),
        ("database.query, indexed", "req/s", "query"),
        ("database.query, indexed, p50", "ms", "p50"),
    ]
    rows = [
        Row(name, unit, found[f"database.{op}"], found[f"baseline.{op}"])
        for name, unit, op in figures
    ]
    notes = [
        "",
        f"{records:,} records (loaded in {loaded:.1f}s through the Store), {requests:,} requests per "
        f"figure with {IN_FLIGHT} in flight, p50 of {samples:,} requests one at a time; "
        f"Rosey and baseline take turns, best of {1 if env.quick else 3} rounds.",
        'query: {"score": {"$gte": random}} order_by "score DESC" limit 10, score indexed.',
        "ratio is Rosey / baseline: above 1 is better for req/s, below 1 is better for ms.",
    ]
    return Report(rows, notes)


# The responders, each run in its own process.


async def serve_rosey(nats_url: str, redis_url: str, stop: Awaitable[Any]) -> None:
    from runtime.database.service import DatabaseService
    from runtime.database.store import Store
    from runtime.wire.bus import Bus

    bus = await Bus.connect(nats_url, name="bench-rosey")
    store = await Store.connect(redis_url)
    service = DatabaseService(bus, store)
    await service.start()
    print("ready", flush=True)
    await stop
    await service.stop()
    await store.close()
    await bus.close()


def number_key(value: float) -> bytes:
    # By hand: IEEE 754 bits with the sign folded, so byte order is numeric order.
    bits = int.from_bytes(struct.pack(">d", float(value) or 0.0), "big")
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63)
    return b"%016x" % bits


async def serve_baseline(nats_url: str, redis_url: str, stop: Awaitable[Any]) -> None:
    from redis.asyncio import ConnectionPool, Redis

    # Shared with Rosey on purpose: the same client settings and the same Lua scripts.
    from runtime.database.scripts import PAGE, SET
    from runtime.database.store import CLIENT_OPTIONS, client_retry

    nc = await nats.connect(nats_url, name="bench-baseline")
    redis = Redis.from_pool(
        ConnectionPool.from_url(redis_url, retry=client_retry(), **CLIENT_OPTIONS)
    )
    set_script, page_script = redis.register_script(SET), redis.register_script(PAGE)
    base = "rosey:db:{" + COLLECTION + "}:"

    async def get(req: dict[str, Any]) -> dict[str, Any]:
        flat = await redis.hgetall(f"{base}r:{req['id']}")
        return {"success": True, "data": {k: json.loads(v) for k, v in flat.items()}}

    async def set_(req: dict[str, Any]) -> dict[str, Any]:
        rid = req["id"]
        pairs = [
            x for k, v in req["data"].items() for x in (k, json.dumps(v, separators=(",", ":")))
        ]
        await set_script(
            keys=[base + "ids", base + "meta", base + "seq"],
            args=[base, "", f"i{rid:016d}", str(rid), str(rid), *pairs],
        )
        return {"success": True, "id": rid}

    async def query(req: dict[str, Any]) -> dict[str, Any]:
        low = b"[4" + number_key(req["filter"]["score"]["$gte"])
        out = await page_script(
            keys=[base + "i:score", base + "meta"],
            args=[base, "score", low, b"(5", 1, 0, req["limit"]],
        )
        data = [
            {flat[i]: json.loads(flat[i + 1]) for i in range(0, len(flat), 2)} for flat in out[1:]
        ]
        return {"success": True, "data": data, "count": out[0]}

    slots = asyncio.Semaphore(256)
    tasks: set[asyncio.Task[None]] = set()

    def bounded(
        handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    ) -> Callable[[Msg], Awaitable[None]]:
        async def answer(msg: Msg) -> None:
            try:
                reply = await handler(json.loads(msg.data))
                await msg.respond(json.dumps(reply, separators=(",", ":")).encode())
            finally:
                slots.release()

        async def on_message(msg: Msg) -> None:
            await slots.acquire()
            task = asyncio.create_task(answer(msg))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        return on_message

    for name, handler in (("get", get), ("set", set_), ("query", query)):
        await nc.subscribe(f"baseline.{name}", cb=bounded(handler))
    await nc.flush()
    print("ready", flush=True)
    await stop
    await nc.drain()
    await redis.aclose()


async def serve(which: str, nats_url: str, redis_url: str) -> None:
    stop = asyncio.ensure_future(asyncio.to_thread(sys.stdin.read))  # ends when the parent goes
    if which == "rosey":
        await serve_rosey(nats_url, redis_url, stop)
    else:
        await serve_baseline(nats_url, redis_url, stop)


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    asyncio.run(serve(*sys.argv[2:5]))
