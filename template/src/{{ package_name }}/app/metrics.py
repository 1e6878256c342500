"""Prometheus metrics of the service: requests, latency, what it predicts, which model answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ..config import Contract

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = tuple(step / 10 for step in range(1, 11))
VALUE_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 10_000, 100_000, 1_000_000)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """The service's metrics in a registry of their own, so that two apps never share counts."""

    def __init__(self, contract: Contract) -> None:
        """Create the metrics the contract's task calls for."""
        self.registry = CollectorRegistry()
        self.task = contract.task.type
        self.requests = Counter(
            "http_requests",
            "HTTP requests by method, route and status code.",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request to the end of the answer, by method and route.",
            ["method", "path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
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
        self.predicted = Counter(
            "predictions",
            "Predictions by predicted class (regression: counted without a class).",
            ["label"],
            registry=self.registry,
        )
        buckets = (
            VALUE_BUCKETS
            if self.task in ("regression", "multiclass_classification")
            else (SCORE_BUCKETS)
        )
        self.scores = Histogram(
            "prediction_score",
            "Scores behind the predictions (regression: the predicted values).",
            buckets=buckets,
            registry=self.registry,
        )
        # Children by label values, looked up once: prometheus-client's labels() takes a lock
        # and builds its key on every call, which is most of what a counted request costs.
        self._children: dict[tuple[Any, ...], Any] = {}

    def observe_request(self, method: str, path: str, status: str, seconds: float) -> None:
        """Count one answered request and its duration; the labels must come from closed sets."""
        self._child(self.requests, method, path, status).inc()
        self._child(self.latency, method, path).observe(seconds)

    def observe_unlogged(self, count: int) -> None:
        """Count predictions answered but never written to the store."""
        self.unlogged.inc(count)

    def observe_predictions(self, labels: Sequence[str], scores: Sequence[float]) -> None:
        """Count predictions by class and record their scores."""
        for label in labels:
            self._child(self.predicted, label).inc()
        for score in scores:
            self.scores.observe(score)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
