"""`python -m bench [--quick] [--only SUITE]`: start private servers, run the suites, print one table."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from runtime.host.servers import EmbeddedNats, EmbeddedRedis

from . import Env, Row, Suite, database, deploy, dispatch, scale, startup, table, targets

# Add a suite here: a module with an async run(env) -> Report.
SUITES: list[Suite] = [
    Suite("dispatch", dispatch.run),
    Suite("database", database.run),
    Suite("deploy", deploy.run),
    Suite("startup", startup.run),
    Suite("scale", scale.run),
]


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
    with tempfile.TemporaryDirectory(prefix="rosey-bench-") as tmp:
        nats, redis = EmbeddedNats(Path(tmp) / "nats"), EmbeddedRedis(Path(tmp) / "redis")
        try:
            env = Env(nats_url=nats.start(), redis_url=redis.start(), quick=args.quick)
            rows: list[Row] = []
            notes: list[str] = []
            for suite in suites:
                print(f"running {suite.name}...", file=sys.stderr, flush=True)
                report = asyncio.run(suite.run(env))
                rows += report.rows
                notes += report.notes
        finally:
            nats.stop()
            redis.stop()
    print(table(rows, [*notes, *targets.verdicts(rows)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
