"""The issues' targets (16: speed; 19: durable delivery's cost), checked against a run's rows and printed plainly under the table.

A target reads the rows whose figure starts with its `figure`; with none (a suite not run, or a
figure not measured in --quick) it is shown as n/a, never as met.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from . import Row


@dataclass(frozen=True)
class Target:
    figure: str  # the start of the figures it reads
    text: str
    value: Callable[[list[Row]], float]  # what the rows say, compared with `limit`
    limit: float
    at_most: bool  # met when value <= limit (else: when value >= limit)
    unit: str


def ratio(rows: list[Row]) -> float:
    return rows[0].ratio


def rosey(rows: list[Row]) -> float:
    return rows[0].rosey


def worst(rows: list[Row]) -> float:
    return max(r.rosey for r in rows)


def _dispatch(workload: str) -> list[Target]:
    base = f"dispatch {workload}"
    return [
        Target(
            f"{base}: latency p50",
            f"{workload}: p50 ≤ 1.1 x the hand-written bot",
            ratio,
            1.1,
            True,
            "x",
        ),
        Target(
            f"{base}: CPU per command",
            f"{workload}: CPU per command ≤ 1.2 x the bot",
            ratio,
            1.2,
            True,
            "x",
        ),
        Target(
            f"{base}: throughput", f"{workload}: throughput ≥ 0.9 x the bot", ratio, 0.9, False, "x"
        ),
    ]


def _durable(workload: str) -> list[Target]:
    """Issue 19: durable dispatch within 1.5 x of at-most-once."""
    base = f"durable dispatch {workload}"
    return [
        Target(
            f"{base}: latency p50",
            f"durable {workload}: p50 ≤ 1.5 x at-most-once",
            ratio,
            1.5,
            True,
            "x",
        ),
        Target(
            f"{base}: throughput",
            f"durable {workload}: throughput ≥ 1/1.5 x at-most-once",
            ratio,
            1 / 1.5,
            False,
            "x",
        ),
    ]


TARGETS = [
    *_dispatch("!roll 2d6"),
    *_dispatch("!cool 2d6, cooldown"),
    *_durable("!roll 2d6"),
    *_durable("!cool 2d6, cooldown"),
    Target(
        "unindexed query at",
        "unindexed queries never block Redis > 10 ms",
        lambda rows: worst([r for r in rows if "Redis blocked, longest command" in r.figure]),
        10,
        True,
        "ms",
    ),
    Target("start-up, 1,000 functions", "start-up with 1,000 functions ≤ 3 s", rosey, 3, True, "s"),
    Target("RSS with the", "RSS ≤ 80 MB with the function library", rosey, 80, True, "MB"),
    Target("RSS per extra function", "RSS ≤ 20 KB per extra function", rosey, 20, True, "KB"),
    Target("rosey --help", "`rosey --help` ≤ 0.3 s", rosey, 0.3, True, "s"),
    Target(
        "deploy 1 changed of 11, CLI start",
        "deploy of 1 changed function among 11 ≤ 1.5 s",
        rosey,
        1.5,
        True,
        "s",
    ),
]


def verdict(target: Target, rows: list[Row]) -> tuple[str, str]:
    """(mark, the value shown): mark is `met`, `MISSED` or `n/a`."""
    chosen = [r for r in rows if r.figure.startswith(target.figure)]
    value = target.value(chosen) if chosen else math.nan
    if math.isnan(value):
        return "n/a", "-"
    met = value <= target.limit if target.at_most else value >= target.limit
    return ("met" if met else "MISSED"), f"{value:.2f} {target.unit}"


def verdicts(rows: list[Row]) -> list[str]:
    lines = ["", "targets (issues 16 and 19):"]
    for target in TARGETS:
        mark, shown = verdict(target, rows)
        lines.append(f"  {mark:6} {shown:>10}  {target.text}")
    return lines
