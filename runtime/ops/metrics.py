"""Prometheus metrics of one runtime: counted from activations, and read from probes when scraped."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from runtime.core.activation import Activation

log = logging.getLogger("rosey.metrics")

# Chat commands answer in milliseconds to a few seconds; manifests allow timeouts up to 300 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Outcomes where a handler ran, so the duration is the handler's latency.
RAN = frozenset({"ok", "error", "timeout"})
# Label children kept for reuse: (function, version, outcome) combinations seen lately. Past this
# the cache starts over (old versions' children stay in the registry, as Prometheus wants).
CHILDREN = 4096

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


class Metrics:
    """The metrics of one runtime in a registry of its own (tests run many runtimes).

    It is an activation observer: `runtime.observers.append(metrics)`.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.invocations = Counter(
            "rosey_invocations",
            "Invocations by function, version and outcome "
            "(ok, error, timeout, busy, denied, cooldown, invalid).",
            ["function", "version", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "rosey_invocation_duration_seconds",
            "Handler latency by function and version (outcomes ok, error and timeout).",
            ["function", "version"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.probes = Probes()
        self.registry.register(self.probes)
        # `.labels(...)` checks and joins its arguments under a lock on every call; a dict
        # lookup finds the same child. Keyed by the label values, bounded by CHILDREN.
        self._counted: dict[tuple[str, str, str], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    def __call__(self, activation: Activation) -> None:
        a = activation
        key = (a.function, a.version, a.outcome)
        counted = self._counted.get(key)
        if counted is None:
            if len(self._counted) >= CHILDREN:
                self._counted.clear()
            counted = self._counted[key] = self.invocations.labels(*key)
        counted.inc()
        if a.outcome in RAN:
            pair = (a.function, a.version)
            timed = self._timed.get(pair)
            if timed is None:
                if len(self._timed) >= CHILDREN:
                    self._timed.clear()
                timed = self._timed[pair] = self.duration.labels(*pair)
            timed.observe(a.duration)

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
