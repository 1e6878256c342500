"""Prometheus metrics of the service: requests, latency, what it predicts, which model answers."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Iterator, Sequence

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
        self.counters: list[tuple[str, str, Labels, dict[Labels, list[float]]]] = []
        self.histograms: list[tuple[str, str, Labels, list[str], dict[Labels, list[float]]]] = []

    def counter(
        self, name: str, documentation: str, labels: Labels = ()
    ) -> dict[Labels, list[float]]:
        """A counter's values by label values: [count, created] each."""
        values: dict[Labels, list[float]] = {}
        self.counters.append((name, documentation, labels, values))
        return values

    def histogram(
        self, name: str, documentation: str, buckets: Sequence[float], labels: Labels = ()
    ) -> dict[Labels, list[float]]:
        """A histogram's values by label values: one count per bucket, +Inf, sum, created."""
        values: dict[Labels, list[float]] = {}
        bounds = (*(float(bound) for bound in buckets), math.inf)
        # The `le` labels as prometheus-client's own Histogram writes them (1.0, 1e+06, +Inf).
        edges = [floatToGoString(bound) for bound in bounds]  # type: ignore[no-untyped-call]
        self.histograms.append((name, documentation, labels, edges, values))
        if not labels:
            values[()] = self.new_histogram(buckets)
        return values

    @staticmethod
    def new_histogram(bounds: Sequence[float]) -> list[float]:
        """Zero counts for every bound and +Inf, a zero sum, created now."""
        return [0.0] * (len(bounds) + 2) + [time.time()]

    @staticmethod
    def observe(counts: list[float], bounds: tuple[float, ...], value: float) -> None:
        """Count `value` in its bucket (the first bound it does not exceed) and in the sum."""
        if value == value:  # NaN: in no bucket, as prometheus-client counts it
            counts[bisect.bisect_left(bounds, value)] += 1
        counts[-2] += value

    def collect(self) -> Iterator[Metric]:
        """The tallied metrics as prometheus-client's families, read under the lock."""
        with self.lock:
            counters = [
                (name, doc, labels, [(key, list(value)) for key, value in values.items()])
                for name, doc, labels, values in self.counters
            ]
            histograms = [
                (name, doc, labels, bounds, [(key, list(value)) for key, value in values.items()])
                for name, doc, labels, bounds, values in self.histograms
            ]
        for name, documentation, labels, rows in counters:
            counter = CounterMetricFamily(name, documentation, labels=labels)
            for key, (count, created) in rows:
                counter.add_metric(key, count, created=created)
            yield counter
        for name, documentation, labels, edges, rows in histograms:
            histogram = HistogramMetricFamily(name, documentation, labels=labels)
            for key, counts in rows:
                cumulative, total = [], 0.0
                for edge, count in zip(edges, counts[:-2], strict=True):
                    total += count
                    cumulative.append((edge, total))
                histogram.add_metric(list(key), cumulative, sum_value=counts[-2])
                named = dict(zip(labels, key, strict=True))
                histogram.add_sample(name + "_created", named, counts[-1])
            yield histogram


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
        self.score_bounds = tuple(
            float(bound)
            for bound in (
                VALUE_BUCKETS
                if self.task in ("regression", "multiclass_classification")
                else SCORE_BUCKETS
            )
        )
        self.scores = predicted.histogram(
            "prediction_score",
            "Scores behind the predictions (regression: the predicted values).",
            self.score_bounds,
        )[()]
        self.registry.register(predicted)
        self.served, self.predictions = served, predicted

    def observe_request(self, method: str, path: str, status: str, seconds: float) -> None:
        """Count one answered request and its duration; the labels must come from closed sets."""
        with self.served.lock:
            count = self.requests.get((method, path, status))
            if count is None:
                count = self.requests[(method, path, status)] = [0.0, time.time()]
            count[0] += 1
            counts = self.latency.get((method, path))
            if counts is None:
                counts = self.latency[(method, path)] = Tally.new_histogram(LATENCY_BUCKETS)
            Tally.observe(counts, LATENCY_BUCKETS, seconds)

    def observe_unlogged(self, count: int) -> None:
        """Count predictions answered but never written to the store."""
        self.unlogged.inc(count)

    def observe_predictions(self, labels: Sequence[str], scores: Sequence[float]) -> None:
        """Count predictions by class and record their scores."""
        with self.predictions.lock:
            for label in labels:
                count = self.predicted.get((label,))
                if count is None:
                    count = self.predicted[(label,)] = [0.0, time.time()]
                count[0] += 1
            for score in scores:
                Tally.observe(self.scores, self.score_bounds, score)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
