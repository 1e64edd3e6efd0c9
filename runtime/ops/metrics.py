"""Prometheus metrics of one runtime: counted from activations, and read from probes when scraped."""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from runtime.core.activation import Activation

log = logging.getLogger("rosey.metrics")

# Chat commands answer in milliseconds to a few seconds; manifests allow timeouts up to 300 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Outcomes where a handler ran, so the duration is the handler's latency.
RAN = frozenset({"ok", "error", "timeout"})

Read = Callable[[], float | int | None]
ReadMany = Callable[[], Mapping[str, float | int]]


@dataclass
class _Probe:
    kind: Literal["gauge", "counter"]
    name: str
    doc: str
    read: Read | ReadMany
    label: str = ""


class Probes(Collector):
    """Values owned elsewhere (queue depths, reconnect counts), read at scrape time.

    A probe that raises or returns None is left out of that scrape rather than failing it.
    """

    def __init__(self) -> None:
        self._probes: dict[str, _Probe] = {}

    def add(self, probe: _Probe) -> None:
        self._probes[probe.name] = probe

    def collect(self) -> Iterator[Metric]:
        for probe in list(self._probes.values()):
            try:
                value = probe.read()
            except Exception as e:
                log.debug("metric %s not read: %s", probe.name, e)
                continue
            if value is None:
                continue
            family_type = GaugeMetricFamily if probe.kind == "gauge" else CounterMetricFamily
            if probe.label:
                family = family_type(probe.name, probe.doc, labels=[probe.label])
                assert isinstance(value, Mapping)
                for key, number in sorted(value.items()):
                    family.add_metric([str(key)], float(number))
            else:
                assert not isinstance(value, Mapping)
                family = family_type(probe.name, probe.doc, value=float(value))
            yield family


class Invocations(Collector):
    """`rosey_invocations_total` and `rosey_invocation_duration_seconds`, kept as plain numbers
    and turned into metric families when scraped.

    It is counted once per command, and prometheus_client's Counter and Histogram take a lock
    per increment (a histogram one per bucket it passes): several times the cost of a dict
    update, for numbers only read at scrape time. Everything runs on the event loop's thread.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        # (function, version) → [count per bucket (the last: past the highest bound), sum]
        self.timings: dict[tuple[str, str], tuple[list[int], list[float]]] = {}

    def __call__(self, a: Activation) -> None:
        key = (a.function, a.version, a.outcome)
        self.counts[key] = self.counts.get(key, 0) + 1
        if a.outcome in RAN:
            pair = (a.function, a.version)
            timing = self.timings.get(pair)
            if timing is None:
                timing = self.timings[pair] = ([0] * (len(BUCKETS) + 1), [0.0])
            timing[0][bisect_left(BUCKETS, a.duration)] += 1  # buckets count value <= bound
            timing[1][0] += a.duration

    def collect(self) -> Iterator[Metric]:
        counted = CounterMetricFamily(
            "rosey_invocations",
            "Invocations by function, version and outcome "
            "(ok, error, timeout, busy, denied, cooldown, invalid).",
            labels=["function", "version", "outcome"],
        )
        for key, count in sorted(self.counts.items()):
            counted.add_metric(list(key), count)
        yield counted
        timed = HistogramMetricFamily(
            "rosey_invocation_duration_seconds",
            "Handler latency by function and version (outcomes ok, error and timeout).",
            labels=["function", "version"],
        )
        for pair, (buckets, total) in sorted(self.timings.items()):
            cumulative = list(accumulate(buckets))
            bounds = [*map(floatToGoString, BUCKETS), "+Inf"]
            timed.add_metric(list(pair), list(zip(bounds, cumulative, strict=True)), total[0])
        yield timed


class Metrics:
    """The metrics of one runtime in a registry of its own (tests run many runtimes).

    It is an activation observer: `runtime.observers.append(metrics)`.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.invocations = Invocations()
        self.registry.register(self.invocations)
        self.probes = Probes()
        self.registry.register(self.probes)

    def __call__(self, activation: Activation) -> None:
        self.invocations(activation)

    def gauge(self, name: str, doc: str, read: Read) -> None:
        """A gauge read from `read()` at scrape time."""
        self.probes.add(_Probe("gauge", name, doc, read))

    def counter(self, name: str, doc: str, read: Read) -> None:
        """A counter kept elsewhere; `name` without `_total`, which Prometheus adds."""
        self.probes.add(_Probe("counter", name, doc, read))

    def gauges(self, name: str, doc: str, label: str, read: ReadMany) -> None:
        """A gauge with one label, from a mapping of label value → number."""
        self.probes.add(_Probe("gauge", name, doc, read, label))

    def counters(self, name: str, doc: str, label: str, read: ReadMany) -> None:
        """A counter with one label, from a mapping of label value → count."""
        self.probes.add(_Probe("counter", name, doc, read, label))

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """Everything above and its content type, in the format an Accept header asks for
        (Prometheus text by default, OpenMetrics on request)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
