"""The issue's targets, checked against a run's rows and printed plainly under the table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import Row


@dataclass(frozen=True)
class Target:
    figure: str  # the start of a row's figure
    text: str
    met: Callable[[Row], bool]
    shown: Callable[[Row], str]


TARGETS = [
    Target(
        "dispatch latency p50",
        "dispatch p50 ≤ 1.5 x raw request/reply",
        lambda r: r.ratio <= 1.5,
        lambda r: f"{r.ratio:.2f} x",
    ),
    Target(
        "dispatch throughput",
        "dispatch throughput ≥ 0.5 x raw request/reply",
        lambda r: r.ratio >= 0.5,
        lambda r: f"{r.ratio:.2f} x",
    ),
    Target(
        "database.get",
        "database.get ≥ 0.9 x the hand-written responder",
        lambda r: r.ratio >= 0.9,
        lambda r: f"{r.ratio:.2f} x",
    ),
    Target(
        "database.query, indexed, p50",
        "indexed query p50 ≤ 5 ms",
        lambda r: r.rosey <= 5,
        lambda r: f"{r.rosey:.2f} ms",
    ),
    Target("hot swap", "swap ≤ 100 ms", lambda r: r.rosey <= 100, lambda r: f"{r.rosey:.1f} ms"),
    Target(
        "commands lost over",
        "lost = 0 at ≥ 500 commands/s",
        lambda r: r.rosey == 0,
        lambda r: f"{r.rosey:.0f}",
    ),
    Target(
        "rosey run ready",
        "`rosey run` ready ≤ 1.5 s",
        lambda r: r.rosey <= 1.5,
        lambda r: f"{r.rosey:.2f} s",
    ),
    Target(
        "RSS with the",
        "RSS ≤ 120 MB with the function library",
        lambda r: r.rosey <= 120,
        lambda r: f"{r.rosey:.0f} MB",
    ),
    Target(
        "throughput, 2 workers",
        "2 workers ≥ 1.6 x 1 worker",
        lambda r: r.ratio >= 1.6,
        lambda r: f"{r.ratio:.2f} x",
    ),
]


def verdicts(rows: list[Row]) -> list[str]:
    lines = ["", "targets:"]
    for target in TARGETS:
        row = next((r for r in rows if r.figure.startswith(target.figure)), None)
        if row is None:
            lines.append(f"  {'n/a':6} {'':>10}  {target.text} (not measured in this run)")
        else:
            mark = "met   " if target.met(row) else "MISSED"
            lines.append(f"  {mark} {target.shown(row):>10}  {target.text}")
    return lines
