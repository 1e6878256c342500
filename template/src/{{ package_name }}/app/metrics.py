"""Prometheus metrics of the service: requests, latency, what it predicts, which model answers."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ..config import Contract

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = tuple(step / 10 for step in range(1, 11))
VALUE_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 10_000, 100_000, 1_000_000)
CONTENT_TYPE = CONTENT_TYPE_LATEST

Labels = tuple[str, ...]


@dataclass
class TallyCounter:
    """A counter's values by label values: [count, created] each."""

    name: str
    documentation: str
    labels: Labels
    values: dict[Labels, list[float]] = field(default_factory=dict)

    def inc(self, key: Labels) -> None:
        """Add one under the label values `key` (hold the tally's lock)."""
        count = self.values.get(key)
        if count is None:
            count = self.values[key] = [0.0, time.time()]
        count[0] += 1


@dataclass
class TallyHistogram:
    """A histogram's values by label values: a count per bound and +Inf, the sum, created."""

    name: str
    documentation: str
    labels: Labels
    bounds: tuple[float, ...]
    values: dict[Labels, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """The `le` labels as prometheus-client's own Histogram writes them (1.0, 1e+06, +Inf)."""
        edges = (*self.bounds, math.inf)
        self.edges = [floatToGoString(edge) for edge in edges]  # type: ignore[no-untyped-call]
        if not self.labels:  # the one series exists from the start, as prometheus-client's
            self._series(())

    def _series(self, key: Labels) -> list[float]:
        counts = self.values.get(key)
        if counts is None:
            counts = self.values[key] = [0.0] * (len(self.bounds) + 2) + [time.time()]
        return counts

    def observe(self, key: Labels, value: float) -> None:
        """Count `value` in its bucket (the first bound it does not exceed) and in the sum."""
        counts = self._series(key)
        if value == value:  # NaN: in no bucket, as prometheus-client counts it
            counts[bisect.bisect_left(self.bounds, value)] += 1
        counts[-2] += value


class Tally(Collector):
    """Counters and histograms kept as plain numbers, turned into metric families when scraped.

    prometheus-client's Counter and Histogram take a lock for every value they change and look
    for the bucket in Python: about 8 microseconds of each answered prediction. A tally takes
    one lock per observation, finds the bucket with a bisect and adds; what a scrape reads is
    the same (names, labels, cumulative buckets, `_created`). Whoever changes the values holds
    `lock` meanwhile (ServiceMetrics does), so observations may come from any thread and a
    scrape never sees a count without its sum.
    """

    def __init__(self) -> None:
        """An empty tally; add its metrics with `counter` and `histogram`, then register it."""
        self.lock = threading.Lock()
        self.counters: list[TallyCounter] = []
        self.histograms: list[TallyHistogram] = []

    def counter(self, name: str, documentation: str, labels: Labels = ()) -> TallyCounter:
        """A new counter of this tally."""
        counter = TallyCounter(name, documentation, labels)
        self.counters.append(counter)
        return counter

    def histogram(
        self, name: str, documentation: str, buckets: Sequence[float], labels: Labels = ()
    ) -> TallyHistogram:
        """A new histogram of this tally with these bucket bounds (+Inf is added)."""
        bounds = tuple(float(bound) for bound in buckets)
        histogram = TallyHistogram(name, documentation, labels, bounds)
        self.histograms.append(histogram)
        return histogram

    def collect(self) -> Iterator[Metric]:
        """The tallied metrics as prometheus-client's families, read under the lock."""
        with self.lock:
            counters = [
                (counter, [(key, list(value)) for key, value in counter.values.items()])
                for counter in self.counters
            ]
            histograms = [
                (histogram, [(key, list(value)) for key, value in histogram.values.items()])
                for histogram in self.histograms
            ]
        for counter, rows in counters:
            family = CounterMetricFamily(counter.name, counter.documentation, labels=counter.labels)
            for key, (count, created) in rows:
                family.add_metric(key, count, created=created)
            yield family
        for histogram, rows in histograms:
            buckets = HistogramMetricFamily(
                histogram.name, histogram.documentation, labels=histogram.labels
            )
            for key, counts in rows:
                cumulative, total = [], 0.0
                for edge, count in zip(histogram.edges, counts[:-2], strict=True):
                    total += count
                    cumulative.append((edge, total))
                buckets.add_metric(list(key), cumulative, sum_value=counts[-2])
                named = dict(zip(histogram.labels, key, strict=True))
                buckets.add_sample(histogram.name + "_created", named, counts[-1])
            yield buckets


class ServiceMetrics:
    """The service's metrics in a registry of their own, so that two apps never share counts."""

    def __init__(self, contract: Contract) -> None:
        """Create the metrics the contract's task calls for."""
        self.registry = CollectorRegistry()
        self.task = contract.task.type
        served = Tally()
        self.requests = served.counter(
            "http_requests",
            "HTTP requests by method, route and status code.",
            ("method", "path", "status"),
        )
        self.latency = served.histogram(
            "http_request_duration_seconds",
            "Time from request to the end of the answer, by method and route.",
            LATENCY_BUCKETS,
            ("method", "path"),
        )
        self.registry.register(served)
        self.model_version = Gauge(
            "model_version",
            "Version of the model being served; 0 before one is loaded.",
            registry=self.registry,
        )
        self.unlogged = Counter(
            "predictions_unlogged",
            "Predictions answered but never written to the prediction store.",
            registry=self.registry,
        )
        self.store_writable = Gauge(
            "prediction_store_writable",
            "1 while the prediction store takes writes, 0 while it refuses them.",
            registry=self.registry,
        )
        predicted = Tally()
        self.predicted = predicted.counter(
            "predictions",
            "Predictions by predicted class (regression: counted without a class).",
            ("label",),
        )
        self.scores = predicted.histogram(
            "prediction_score",
            "Scores behind the predictions (regression: the predicted values).",
            VALUE_BUCKETS
            if self.task in ("regression", "multiclass_classification")
            else SCORE_BUCKETS,
        )
        self.registry.register(predicted)
        self.served, self.predictions = served, predicted

    def observe_request(self, method: str, path: str, status: str, seconds: float) -> None:
        """Count one answered request and its duration; the labels must come from closed sets."""
        with self.served.lock:
            self.requests.inc((method, path, status))
            self.latency.observe((method, path), seconds)

    def observe_unlogged(self, count: int) -> None:
        """Count predictions answered but never written to the store."""
        self.unlogged.inc(count)

    def observe_predictions(self, labels: Sequence[str], scores: Sequence[float]) -> None:
        """Count predictions by class and record their scores."""
        with self.predictions.lock:
            for label in labels:
                self.predicted.inc((label,))
            for score in scores:
                self.scores.observe((), score)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
