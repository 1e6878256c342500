"""Evaluate: the primary metric, its gate and the expected cost of a model's decisions."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn import metrics

from ..config import Contract
from ..data.transform import features_frame
from ..files import write_atomic

SCORED_TASKS = ("binary_classification", "anomaly_detection")


class Model(Protocol):
    """What evaluation needs of a model."""

    version: int
    kind: str

    def score(self, features: pd.DataFrame) -> np.ndarray:
        """Continuous score per record."""
        ...

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Decision per record."""
        ...


def decide(model: Model, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Decisions and scores, in one pass when the model offers `decide`, else two calls."""
    both = getattr(model, "decide", None)
    if callable(both):
        decisions, scores = both(features)
        return np.asarray(decisions), np.asarray(scores)
    return model.predict(features), model.score(features)


def task_labels(contract: Contract, target: pd.Series) -> np.ndarray:
    """Target values as the task's metrics compare them: class names, 0/1, or numbers."""
    if contract.task.type == "multiclass_classification":
        return np.asarray(target.astype(str), dtype=object)
    if contract.task.type == "regression":
        return np.asarray(target, dtype=float)
    return np.asarray(target, dtype=int)


Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

METRICS: dict[str, Metric] = {
    "roc_auc": lambda y, _, score: float(metrics.roc_auc_score(y, score)),
    "average_precision": lambda y, _, score: float(metrics.average_precision_score(y, score)),
    "recall": lambda y, pred, _: float(metrics.recall_score(y, pred, zero_division=0)),
    "precision": lambda y, pred, _: float(metrics.precision_score(y, pred, zero_division=0)),
    "f1": lambda y, pred, _: float(metrics.f1_score(y, pred, zero_division=0)),
    "f1_macro": lambda y, pred, _: float(
        metrics.f1_score(y, pred, average="macro", zero_division=0)
    ),
    "balanced_accuracy": lambda y, pred, _: float(metrics.balanced_accuracy_score(y, pred)),
    "accuracy": lambda y, pred, _: float(metrics.accuracy_score(y, pred)),
    "mae": lambda y, pred, _: float(metrics.mean_absolute_error(y, pred)),
    "rmse": lambda y, pred, _: float(math.sqrt(metrics.mean_squared_error(y, pred))),
    "r2": lambda y, pred, _: float(metrics.r2_score(y, pred)),
}

METRICS_BY_TASK = {
    "binary_classification": ("roc_auc", "average_precision", "recall", "precision", "f1"),
    "anomaly_detection": ("roc_auc", "average_precision", "recall", "precision", "f1"),
    "multiclass_classification": ("f1_macro", "balanced_accuracy", "accuracy"),
    "regression": ("mae", "rmse", "r2"),
}


@dataclass(frozen=True)
class Evaluation:
    """How a model did on held-out data, in the contract's terms."""

    model_kind: str
    model_version: int
    rows: int
    metric: str
    value: float
    gate: float
    greater_is_better: bool
    passes_gate: bool
    expected_cost: float
    reference_costs: dict[str, float]
    decision: dict[str, float | None]
    metrics: dict[str, float] = field(default_factory=dict)
    model_threshold: float | None = None

    def gate_summary(self) -> str:
        """One line saying whether the gate is met and by how much."""
        verb = "meets" if self.passes_gate else "misses"
        side = "at least" if self.greater_is_better else "at most"
        margin = abs(self.value - self.gate)
        return (
            f"{self.metric} = {self.value:.4f} {verb} the gate ({side} {self.gate:g}) "
            f"by {margin:.4f}"
        )


def expected_cost(contract: Contract, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Average cost of the decisions per record, in the contract's currency."""
    costs = contract.costs
    if contract.task.type == "regression":
        over, under = costs.over_prediction or 0.0, costs.under_prediction or 0.0
        alpha = under / (over + under)
        pinball = metrics.mean_pinball_loss(y_true, y_pred, alpha=alpha)
        return float((over + under) * pinball)
    c_fp, c_fn = costs.false_positive or 0.0, costs.false_negative or 0.0
    if contract.task.type == "multiclass_classification":
        return float((c_fp + c_fn) * np.mean(y_true != y_pred))
    false_positives = np.sum((y_pred == 1) & (y_true == 0))
    false_negatives = np.sum((y_pred == 0) & (y_true == 1))
    return float((c_fp * false_positives + c_fn * false_negatives) / len(y_true))


def reference_costs(contract: Contract, y_true: np.ndarray) -> dict[str, float]:
    """Costs of the decisions people could make without any model, for comparison."""
    if contract.task.type in SCORED_TASKS:
        return {
            "act_on_none": expected_cost(contract, y_true, np.zeros_like(y_true)),
            "act_on_all": expected_cost(contract, y_true, np.ones_like(y_true)),
        }
    if contract.task.type == "regression":
        constant = np.full(len(y_true), float(np.median(y_true)))
        return {"predict_median": expected_cost(contract, y_true, constant)}
    values, counts = np.unique(y_true, return_counts=True)
    most_common = np.full(len(y_true), values[np.argmax(counts)], dtype=object)
    return {"predict_most_common_class": expected_cost(contract, y_true, most_common)}


def cost_curve(
    scores: np.ndarray, y_true: np.ndarray, contract: Contract
) -> tuple[np.ndarray, np.ndarray]:
    """Expected cost per record of acting on scores at or above each threshold that matters.

    Only thresholds between distinct scores change decisions: the midpoint between each pair of
    neighbouring scores, the lowest score (act on all) and just above the highest (act on none).

    Returns:
        The thresholds, ascending, and the expected cost at each.
    """
    c_fp, c_fn = contract.costs.false_positive or 0.0, contract.costs.false_negative or 0.0
    scores = np.asarray(scores, dtype=float)
    positive = np.asarray(y_true, dtype=int) == 1
    order = np.argsort(-scores, kind="stable")
    ranked, ranked_positive = scores[order], positive[order]
    # Acting on the k highest scores, for k = 0 .. n.
    true_positives = np.concatenate([[0], np.cumsum(ranked_positive)])
    false_positives = np.concatenate([[0], np.cumsum(~ranked_positive)])
    false_negatives = positive.sum() - true_positives
    costs = (c_fp * false_positives + c_fn * false_negatives) / len(scores)
    acting = np.arange(len(scores) + 1)
    # A cut is possible only where the score changes (or at either end).
    possible = (acting == 0) | (acting == len(scores))
    possible[1:-1] = ranked[:-1] > ranked[1:]
    cuts = np.empty(len(scores) + 1)
    cuts[0] = np.nextafter(ranked[0], np.inf)
    cuts[-1] = ranked[-1]
    cuts[1:-1] = (ranked[:-1] + ranked[1:]) / 2
    return cuts[possible][::-1], costs[possible][::-1]


def choose_threshold(model: Model, validation_frame: pd.DataFrame, contract: Contract) -> float:
    """The threshold with the least expected cost on validation records (scored tasks only).

    Of equally cheap thresholds the one nearest the contract's threshold c_fp / (c_fp + c_fn)
    is kept, so a tie never moves the decision further from what the costs imply.

    Raises:
        ValueError: The task has no yes/no decision, or the data no target or rows.
    """
    if contract.task.type not in SCORED_TASKS:
        raise ValueError(f"{contract.task.type} has no decision threshold to choose")
    target = contract.task.target
    if target not in validation_frame.columns or validation_frame.empty:
        raise ValueError(f"the validation data needs rows and a target column {target!r}")
    scores = model.score(features_frame(validation_frame))
    thresholds, costs = cost_curve(scores, validation_frame[target].to_numpy(), contract)
    cheapest = np.flatnonzero(np.isclose(costs, costs.min(), rtol=0, atol=1e-12))
    planned = contract.expected_threshold() or 0.5
    nearest = cheapest[np.argmin(np.abs(thresholds[cheapest] - planned))]
    return float(thresholds[nearest])


def _metric(name: str, y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray) -> float:
    # A metric undefined on this data (e.g. ROC AUC with one class present) is reported as NaN;
    # scikit-learn says so with an error, or with a warning (a UserWarning) and a stand-in value.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return METRICS[name](y_true, y_pred, score)
    except ValueError:
        return float("nan")


def evaluate(model: Model, frame: pd.DataFrame, contract: Contract) -> Evaluation:
    """Score a model on labelled records against the contract's metric, gate and costs.

    Args:
        model: The model to judge.
        frame: Held-out records with the target column.
        contract: The planning contract.

    Returns:
        The evaluation, including whether the metric passes the gate.
    """
    target = contract.task.target
    if target not in frame.columns:
        raise ValueError(f"the evaluation data has no target column {target!r}")
    if frame.empty:
        raise ValueError("the evaluation data has no rows")
    features = features_frame(frame)
    y_true = task_labels(contract, frame[target])
    y_pred = model.predict(features)
    score = model.score(features)
    values = {
        name: _metric(name, y_true, y_pred, score) for name in METRICS_BY_TASK[contract.task.type]
    }
    primary = contract.metrics.primary
    value = values[primary] if primary in values else _metric(primary, y_true, y_pred, score)
    gate, greater = contract.metrics.gate, contract.metrics.greater_is_better
    scored = contract.task.type in SCORED_TASKS
    passes = not math.isnan(value) and (value >= gate if greater else value <= gate)
    return Evaluation(
        model_kind=model.kind,
        model_version=model.version,
        rows=len(frame),
        metric=primary,
        value=value,
        gate=gate,
        greater_is_better=greater,
        passes_gate=passes,
        expected_cost=expected_cost(contract, y_true, y_pred),
        reference_costs=reference_costs(contract, y_true),
        decision={"threshold": contract.decision.threshold, "quantile": contract.decision.quantile},
        metrics=values,
        model_threshold=getattr(model, "threshold", None) if scored else None,
    )


def write_report(evaluation: Evaluation, contract: Contract, reports_dir: Path) -> Path:
    """Write the evaluation as JSON (for machines) and Markdown (for people); return the latter."""
    data: dict[str, Any] = asdict(evaluation)
    write_atomic(
        reports_dir / "evaluation.json",
        (json.dumps(data, indent=2, allow_nan=True) + "\n").encode("utf-8"),
    )
    lines = [
        f"# Evaluation: {contract.project.name}",
        "",
        f"Goal: {contract.project.goal}",
        "",
        f"Model: {evaluation.model_kind} version {evaluation.model_version}, "
        f"judged on {evaluation.rows} held-out records.",
        "",
        f"**{evaluation.gate_summary()}.**",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value:.4f} |" for name, value in evaluation.metrics.items()),
        "",
        "## Cost of errors",
        "",
        f"Expected cost per record with this model: **{evaluation.expected_cost:.4f}**.",
        "",
        "| without a model | expected cost per record |",
        "|---|---|",
        *(
            f"| {name.replace('_', ' ')} | {cost:.4f} |"
            for name, cost in evaluation.reference_costs.items()
        ),
        "",
    ]
    threshold, quantile = evaluation.decision["threshold"], evaluation.decision["quantile"]
    if threshold is not None:
        lines.append(f"The costs put the decision threshold at {threshold:g}.")
        chosen = evaluation.model_threshold
        if chosen is not None and chosen != threshold:
            lines.append(
                f"This model acts on scores of at least {chosen:.4g}, the threshold with the "
                "least expected cost on its validation data."
            )
    if quantile is not None:
        lines.append(f"Predictions aim at the {quantile:g} quantile (from the costs).")
    return write_atomic(reports_dir / "evaluation.md", ("\n".join(lines) + "\n").encode("utf-8"))
