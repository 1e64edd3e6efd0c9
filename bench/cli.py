"""Wall time of the `rosey` command: `rosey --help`, and `rosey invoke roll 2d6` with no runtime
running (it starts a private one) and against a running `rosey run`.

Each is the installed console script spawned in a copy of the shipped project, timed from spawn
to exit, the median of several. Baseline: the interpreter alone (`python -c pass`), the floor of
any Python command.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from . import Env, Report, Row, median, procs


def repeats(quick: bool) -> int:
    return 2 if quick else 7


async def run(env: Env) -> Report:
    n = repeats(env.quick)
    with tempfile.TemporaryDirectory(prefix="rosey-bench-cli-") as tmp:
        # No NATS URL: no runtime is found, so `rosey invoke` starts a private one.
        alone = procs.project(Path(tmp) / "alone", None, None)
        python = median([procs.wall([sys.executable, "-c", "pass"], alone) for _ in range(n)])
        helped = median([procs.wall([procs.ROSEY, "--help"], alone) for _ in range(n)])
        invoke = [procs.ROSEY, "invoke", "roll", "2d6"]
        private = median([procs.wall(invoke, alone) for _ in range(n)])
        served = procs.project(Path(tmp) / "served", env.nats_url, env.redis_url)
        proc = await procs.start_rosey(served, env.nats_url)
        try:
            running = median([procs.wall(invoke, served) for _ in range(n)])
        finally:
            proc.stop()
    rows = [
        Row("rosey --help, wall time", "s", helped, python),
        Row("rosey invoke roll 2d6, no runtime running", "s", private, python),
        Row("rosey invoke roll 2d6, runtime running", "s", running, python),
    ]
    notes = [f"cli: spawn to exit, median of {n}; baseline: `python -c pass`."]
    return Report(rows, notes)
