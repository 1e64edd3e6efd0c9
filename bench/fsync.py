"""What `redis.fsync: always` costs a database write (issue 19): `database.set` through the
Store on an embedded redis-server started with `appendfsync always`, against one with
`everysec`, the two taking turns over rounds; medians of each round's p50 and p99.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from runtime.database.store import Store
from runtime.host.servers import EmbeddedRedis

from . import Env, Report, Row, median, percentile


def sizes(quick: bool) -> tuple[int, int]:
    """(rounds, writes per round and side)."""
    return (1, 200) if quick else (3, 2_000)


async def writes(fsync: str, folder: Path, count: int) -> list[float]:
    server = EmbeddedRedis(folder, fsync=fsync)
    url = server.start()
    try:
        store = await Store.connect(url)
        try:
            times = []
            for i in range(count):
                began = time.perf_counter()
                await store.set("bench", None, {"n": i, "text": "a quote of ordinary length"})
                times.append(time.perf_counter() - began)
            return times
        finally:
            await store.close()
    finally:
        server.stop()


async def run(env: Env) -> Report:
    rounds, count = sizes(env.quick)
    found: dict[str, list[float]] = {f"{s}.{k}": [] for s in ("always", "everysec") for k in "59"}
    with tempfile.TemporaryDirectory(prefix="rosey-bench-fsync-") as tmp:
        for r in range(rounds):
            sides = ("always", "everysec") if r % 2 == 0 else ("everysec", "always")
            for side in sides:
                times = await writes(side, Path(tmp) / f"{side}{r}", count)
                found[f"{side}.5"].append(percentile(times, 0.5) * 1000)
                found[f"{side}.9"].append(percentile(times, 0.99) * 1000)
    mid = {k: median(v) for k, v in found.items()}
    rows = [
        Row("database.set with redis.fsync always: p50", "ms", mid["always.5"], mid["everysec.5"]),
        Row("database.set with redis.fsync always: p99", "ms", mid["always.9"], mid["everysec.9"]),
    ]
    notes = [
        f"fsync: {count:,} sequential Store.set per side and round, {rounds} round(s), sides "
        "alternating, medians; baseline: the same with redis.fsync everysec (the default). The "
        "disk is the machine's: a sync costs what its storage makes it cost."
    ]
    return Report(rows, notes)
