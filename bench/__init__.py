"""Rosey's benchmarks: each suite measures Rosey against a hand-written baseline in the same run."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Env:
    """What every suite gets: servers of the run's own, and how big to make the run."""

    nats_url: str
    redis_url: str
    quick: bool


@dataclass(frozen=True)
class Row:
    """One figure, measured for Rosey and for the baseline with the same load."""

    figure: str
    unit: str
    rosey: float
    baseline: float

    @property
    def ratio(self) -> float:
        return self.rosey / self.baseline if self.baseline else float("nan")


@dataclass(frozen=True)
class Report:
    rows: list[Row]
    notes: list[str]


@dataclass(frozen=True)
class Suite:
    name: str
    run: Callable[[Env], Coroutine[Any, Any, Report]]


def table(rows: list[Row], notes: Sequence[str] = ()) -> str:
    """The one table `python -m bench` prints; ratio is Rosey / baseline."""
    head = ("figure", "Rosey", "baseline", "ratio")
    cells = [
        (f"{r.figure} ({r.unit})", _num(r.rosey), _num(r.baseline), f"{r.ratio:.2f}") for r in rows
    ]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(4)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(c, widths, strict=True))
            )
        )
    return "\n".join([*lines, *notes])


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3f}"
