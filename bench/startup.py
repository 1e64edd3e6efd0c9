"""Start-up and memory against the number of functions: `rosey run` with N generated functions.

Each function is a manifest and a file of its own with one command and a one-line sync handler.
Start-up is from spawning `rosey run --no-console` to its /readyz answering 200 (it binds every
function before it reports ready); RSS is the resident set of that process right then. The
per-function figure is the slope of RSS between the smallest and the largest N.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from . import NAN, Env, Report, Row, median, procs


def sizes(quick: bool) -> tuple[list[int], int]:
    """(function counts, runs per count)."""
    return ([10, 100], 1) if quick else ([10, 100, 1_000], 3)


async def once(env: Env, count: int, base: Path) -> tuple[float, float]:
    folder = procs.project(
        base,
        env.nats_url,
        env.redis_url,
        library=False,
        extra=[procs.trivial(f"gen{i}") for i in range(count)],
    )
    proc = await procs.start_rosey(folder, env.nats_url)
    try:
        return proc.ready_after, proc.rss_mb()
    finally:
        proc.stop()


async def run(env: Env) -> Report:
    counts, runs = sizes(env.quick)
    ready: dict[int, float] = {}
    rss: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="rosey-bench-startup-") as tmp:
        for count in counts:
            found = [await once(env, count, Path(tmp) / f"n{count}-{r}") for r in range(runs)]
            ready[count] = median([f[0] for f in found])
            rss[count] = median([f[1] for f in found])
    low, high = counts[0], counts[-1]
    rows = [Row(f"start-up, {n:,} functions", "s", ready[n]) for n in counts]
    rows += [Row(f"RSS, {n:,} functions", "MB", rss[n]) for n in counts]
    slope = (rss[high] - rss[low]) * 1024 / (high - low) if high > low else NAN
    rows.append(Row("RSS per extra function", "KB", slope))
    notes = [
        f"start-up: {', '.join(f'{n:,}' for n in counts)} generated one-command functions, "
        f"median of {runs}; RSS per extra function = (RSS({high:,}) - RSS({low:,})) / {high - low:,}."
    ]
    return Report(rows, notes)
