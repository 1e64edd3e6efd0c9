"""`python -m bench --quick` runs to the end and prints its table (a smoke test: no timings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["figure", "Rosey", "baseline", "ratio"]
    figures = [
        line.split(" (")[0] for line in lines[2:] if " (" in line and not line.startswith(" ")
    ]
    for figure in (
        "database.get",
        "database.set",
        "database.query, indexed",
        "database.query, indexed, p50",
    ):
        assert figure in figures, done.stdout
