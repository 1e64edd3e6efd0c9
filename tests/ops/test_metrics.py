"""The activation observer of Metrics: counts by labels, with label children reused."""

import pytest

from runtime.core.activation import Activation
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


def test_latencies_fall_in_cumulative_buckets_with_their_sum() -> None:
    metrics = Metrics()
    for duration in (0.001, 0.004, 0.2, 400.0):  # on a bound, between, and past the last
        metrics(act("dice") if duration == 0.004 else _timed(duration))
    labels = {"function": "dice", "version": "1.0.0"}

    def bucket(le: str) -> float | None:
        return metrics.registry.get_sample_value(
            "rosey_invocation_duration_seconds_bucket", {**labels, "le": le}
        )

    assert [bucket(le) for le in ("0.001", "0.005", "0.25", "300.0", "+Inf")] == [1, 2, 3, 3, 4]
    total = metrics.registry.get_sample_value("rosey_invocation_duration_seconds_sum", labels)
    assert total == pytest.approx(400.205)
    text = metrics.render()[0].decode()
    assert 'rosey_invocations_total{function="dice",outcome="ok",version="1.0.0"} 4.0' in text
    assert "# TYPE rosey_invocation_duration_seconds histogram" in text


def _timed(duration: float) -> Activation:
    return Activation(
        id="x",
        function="dice",
        version="1.0.0",
        kind="command",
        command="c",
        user="u",
        channel="c",
        outcome="ok",
        duration=duration,
    )
