"""The activation observer of Metrics: counts by labels, with label children reused."""

import pytest

from runtime.core.activation import Activation
from runtime.ops import metrics as metrics_module
from runtime.ops.metrics import Metrics


def act(function: str, outcome: str = "ok", version: str = "1.0.0") -> Activation:
    return Activation(
        id="x",
        function=function,
        version=version,
        kind="command",
        command="c",
        user="u",
        channel="c",
        outcome=outcome,  # type: ignore[arg-type]
        duration=0.004,
    )


def count(metrics: Metrics, function: str, outcome: str = "ok") -> float | None:
    labels = {"function": function, "version": "1.0.0", "outcome": outcome}
    return metrics.registry.get_sample_value("rosey_invocations_total", labels)


def test_counts_by_function_version_and_outcome() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics(act("dice"))
    metrics(act("dice", "error"))
    metrics(act("dice", "busy"))
    assert (count(metrics, "dice"), count(metrics, "dice", "error")) == (3, 1)
    timed = metrics.registry.get_sample_value(
        "rosey_invocation_duration_seconds_count", {"function": "dice", "version": "1.0.0"}
    )
    assert timed == 4  # busy: no handler ran, so no latency


def test_the_cache_of_label_children_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "CHILDREN", 3)
    metrics = Metrics()
    for _ in range(2):
        for n in range(5):
            metrics(act(f"f{n}"))
        assert len(metrics._counted) <= 3 and len(metrics._timed) <= 3
    # Starting the cache over finds the same children again: no count is lost or split.
    assert [count(metrics, f"f{n}") for n in range(5)] == [2, 2, 2, 2, 2]
