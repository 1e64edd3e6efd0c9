"""Rosey's benchmarks: `rosey run` as shipped, in a process of its own, against hand-written
baselines in the same run. Each suite is a module with an async `run(env) -> Report`."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

NAN = float("nan")


@dataclass(frozen=True)
class Env:
    """What every suite gets: servers of the run's own, and how big to make the run."""

    nats_url: str
    redis_url: str
    quick: bool


@dataclass(frozen=True)
class Row:
    """One figure: Rosey's value, the baseline's (a hand-written bot unless the notes say
    otherwise), the raw echo's where there is one, and `shown` to print instead of Rosey's
    number (such as "refused (limit 10000)")."""

    figure: str
    unit: str
    rosey: float
    baseline: float = NAN
    echo: float = NAN
    shown: str = ""

    @property
    def ratio(self) -> float:
        if math.isnan(self.rosey) or math.isnan(self.baseline) or not self.baseline:
            return NAN
        return self.rosey / self.baseline


@dataclass(frozen=True)
class Report:
    rows: list[Row]
    notes: list[str]


@dataclass(frozen=True)
class Suite:
    name: str
    run: Callable[[Env], Coroutine[Any, Any, Report]]


HEAD = ("figure", "Rosey", "baseline", "echo", "ratio")


def table(rows: list[Row], notes: Sequence[str] = ()) -> str:
    """The one table `python -m bench` prints; ratio is Rosey / baseline."""
    cells = [
        (
            f"{r.figure} ({r.unit})",
            r.shown or num(r.rosey),
            num(r.baseline),
            num(r.echo),
            "" if math.isnan(r.ratio) else f"{r.ratio:.2f}",
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [HEAD, *cells]) for i in range(len(HEAD))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    out = [line(HEAD), "  ".join("-" * w for w in widths)]
    out += [line(c) for c in cells]
    return "\n".join([*out, *notes])


def num(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def median(values: Sequence[float]) -> float:
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return NAN
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return NAN
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
