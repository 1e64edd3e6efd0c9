"""`python -m bench --quick` runs every suite to the end and prints the whole table: every row
the issue asks for and a verdict on every target (a smoke test: it asserts no timings)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Figures, as regular expressions matched against the start of a row, that the table must have.
ROWS = [
    *(
        rf"dispatch {workload}: {what} \("
        for workload in (r"!roll 2d6", r"!cool 2d6, cooldown")
        for what in (
            "latency p50",
            "latency p99",
            r"throughput, \d+ in flight",
            "CPU per command",
        )
    ),
    *(
        rf"durable dispatch {workload}: {what} \("
        for workload in (r"!roll 2d6", r"!cool 2d6, cooldown")
        for what in ("latency p50", r"throughput, \d+ in flight", "CPU per command")
    ),
    *(
        rf"as shipped, \d+ functions, durable: !roll 2d6 {what} \("
        for what in ("latency p50", r"throughput, \d+ in flight", "CPU per command")
    ),
    r"start-up, rosey run with the \d+ shipped functions \(",
    r"RSS with the \d+ shipped functions \(",
    r"RSS after the dispatch load \(",
    r"unindexed query at [\d,]+ records: latency \(",
    r"unindexed query at [\d,]+ records: Redis blocked, longest command \(",
    r"unindexed query at [\d,]+ records: longest PING during it \(",
    r"database.set with redis.fsync always: p50 \(",
    r"database.set with redis.fsync always: p99 \(",
    r"start-up, [\d,]+ functions \(",
    r"RSS, [\d,]+ functions \(",
    r"RSS per extra function \(",
    r"rosey --help, wall time \(",
    r"rosey invoke roll 2d6, no runtime running \(",
    r"rosey invoke roll 2d6, runtime running \(",
    r"deploy 1 changed of 11, CLI start → first new reply \(",
    r"deploy 1 changed of 11, CLI wall time \(",
    r"instructions per command, !roll 2d6 \(instr\) +skipped \(--quick\)",
    r"instructions per command, !cool 2d6 \(instr\) +skipped \(--quick\)",
]
TARGETS = [
    "!roll 2d6: p50 ≤ 1.1 x the hand-written bot",
    "!roll 2d6: CPU per command ≤ 1.2 x the bot",
    "!roll 2d6: throughput ≥ 0.9 x the bot",
    "!cool 2d6, cooldown: p50 ≤ 1.1 x the hand-written bot",
    "!cool 2d6, cooldown: CPU per command ≤ 1.2 x the bot",
    "!cool 2d6, cooldown: throughput ≥ 0.9 x the bot",
    "durable !roll 2d6: p50 ≤ 1.5 x at-most-once",
    "durable !roll 2d6: throughput ≥ 1/1.5 x at-most-once",
    "durable !cool 2d6, cooldown: p50 ≤ 1.5 x at-most-once",
    "durable !cool 2d6, cooldown: throughput ≥ 1/1.5 x at-most-once",
    "unindexed queries never block Redis > 10 ms",
    "start-up with 1,000 functions ≤ 3 s",
    "RSS ≤ 80 MB with the function library",
    "RSS ≤ 20 KB per extra function",
    "`rosey --help` ≤ 0.3 s",
    "deploy of 1 changed function among 11 ≤ 1.5 s",
]
# Measured in --quick too, so their verdict must be met or MISSED, never n/a.
MEASURED_IN_QUICK = {t for t in TARGETS if "1,000 functions" not in t}


def test_quick_benchmark_prints_every_row_and_verdict() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["figure", "Rosey", "baseline", "echo", "ratio"]
    body = lines[2 : lines.index("")]
    missing = [row for row in ROWS if not any(re.match(row, line) for line in body)]
    assert not missing, done.stdout
    numbers = [line for line in body if "skipped" not in line and "refused" not in line]
    for line in numbers:  # Rosey's cell is a number
        cell = re.split(r"\)\s+", line, maxsplit=1)[1].split()[0]
        assert re.fullmatch(r"-?[\d,]+(\.\d+)?", cell), line
    verdicts = {}
    for line in lines[lines.index("targets (issues 16 and 19):") + 1 :]:
        mark, rest = line.split(maxsplit=1)
        verdicts[rest.split("  ", 1)[-1].strip()] = mark
    assert set(verdicts) == set(TARGETS), done.stdout
    assert {verdicts[t] for t in TARGETS} <= {"met", "MISSED", "n/a"}
    assert all(verdicts[t] in ("met", "MISSED") for t in MEASURED_IN_QUICK), done.stdout
