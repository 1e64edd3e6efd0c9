"""`python -m bench [--quick] [--only SUITE]`: start private servers, run the suites, print one table."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import traceback
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from runtime.host.servers import EmbeddedNats, EmbeddedRedis

from . import (
    Env,
    Row,
    Suite,
    cli,
    database,
    deploy,
    dispatch,
    fsync,
    instructions,
    startup,
    table,
    targets,
)

# Add a suite here: a module with an async run(env) -> Report.
SUITES: list[Suite] = [
    Suite("dispatch", dispatch.run),
    Suite("database", database.run),
    Suite("fsync", fsync.run),
    Suite("startup", startup.run),
    Suite("cli", cli.run),
    Suite("deploy", deploy.run),
    Suite("instructions", instructions.run),
]


def run_async(work: Coroutine[Any, Any, Any]) -> Any:
    """The load generator on uvloop when it is installed, so it is not the bottleneck."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a small run (seconds), for smoke tests"
    )
    parser.add_argument(
        "--only", choices=[s.name for s in SUITES], action="append", help="run only these"
    )
    args = parser.parse_args(argv)
    suites = [s for s in SUITES if not args.only or s.name in args.only]
    rows: list[Row] = []
    notes: list[str] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rosey-bench-") as tmp:
        # JetStream on, as `rosey run` starts its own: durable delivery is the default.
        nats = EmbeddedNats(Path(tmp) / "nats", jetstream=True)
        redis = EmbeddedRedis(Path(tmp) / "redis")
        try:
            env = Env(nats_url=nats.start(), redis_url=redis.start(), quick=args.quick)
            for suite in suites:
                began = time.perf_counter()
                print(f"running {suite.name}...", file=sys.stderr, flush=True)
                try:
                    report = run_async(suite.run(env))
                except Exception as e:  # the other suites still run; the exit code says it
                    traceback.print_exc()
                    failed.append(f"suite {suite.name} FAILED: {type(e).__name__}: {e}"[:300])
                    continue
                print(
                    f"  {suite.name}: {time.perf_counter() - began:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
                rows += report.rows
                notes += report.notes
        finally:
            nats.stop()
            redis.stop()
    print(table(rows, ["", *notes, *failed, *targets.verdicts(rows)]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
