"""Fairness: how far a model's decisions and errors differ between groups of sensitive features.

Every rate is computed per group with fairlearn's MetricFrame; the gate compares the largest gap
between groups with the contract's tolerance. A rate is only judged for groups that have at
least MIN_GROUP_ROWS records it is computed on (rows, actual positives or actual negatives): a
smaller group's rate is mostly noise. Such groups are still shown in the report, marked as too
small, and the report says which rates went unjudged. A feature with no rate that two groups
are large enough to judge fails the gate: the model cannot be shown to be fair on it.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..config import Contract
from ..data.transform import features_frame
from ..errors import ProjectError
from ..files import png, write_atomic
from .evaluate import METRICS, SCORED_TASKS, Model, task_labels

MIN_GROUP_ROWS = 30
# A numeric sensitive column with more distinct values than this is cut into quartile bands.
MAX_GROUPS = 10
DPI = 100

# Which records each rate is computed on, so that its group can be checked for size.
RECORDS_OF_RATE = {
    "selection_rate": "count",
    "true_positive_rate": "positives",
    "false_positive_rate": "negatives",
    "roc_auc": "smaller_class",
    "average_precision": "positives",
    "recall": "positives",
    "f1": "positives",
    "precision": "predicted_positives",
}

RECORD_NAMES = {
    "count": "rows",
    "positives": "positives",
    "negatives": "negatives",
    "predicted_positives": "predicted positives",
    "smaller_class": "records of its smaller class",
}

GroupMetric = Callable[..., float]


class FairnessError(ProjectError):
    """The data cannot be judged for fairness, e.g. a sensitive column is missing."""


@dataclass(frozen=True)
class FairnessReport:
    """How far the groups of each sensitive feature are apart, against the contract's tolerance.

    `groups` maps feature -> group -> {"count": rows, rate name: value, ...}; `unjudged` maps
    feature -> notes on the groups too small for a rate, which the gate left out.
    """

    metric: str
    value: float
    tolerance: float
    passes: bool
    by_feature: dict[str, float]
    groups: dict[str, dict[str, dict[str, float]]]
    rates: list[str] = field(default_factory=list)
    primary_metric: str = ""
    unjudged: dict[str, list[str]] = field(default_factory=dict)
    min_group_rows: int = MIN_GROUP_ROWS

    @property
    def worst_feature(self) -> str | None:
        """The feature with the largest gap (or one that could not be judged), if any."""
        if not self.by_feature:
            return None
        return max(
            self.by_feature,
            key=lambda name: (
                math.inf if math.isnan(self.by_feature[name]) else self.by_feature[name]
            ),
        )

    def describe_metric(self) -> str:
        """The measure in words."""
        if self.metric == "metric_gap":
            return f"gap in {self.primary_metric} between groups"
        return self.metric.replace("_", " ")

    def summary(self) -> str:
        """One line: the number, the tolerance, and by how much it is met or missed, and where."""
        feature = self.worst_feature
        if feature is None:
            return "no sensitive features in the contract: fairness was not judged"
        if math.isnan(self.value):
            return (
                f"{self.describe_metric()} cannot be judged on {feature}: no two groups have "
                f"{self.min_group_rows} records for any rate in the test split; judge on more "
                "data (collect more, or raise data.test_fraction in ml_contract.yaml)"
            )
        verb = "is within" if self.passes else "exceeds"
        left_out = sum(len(notes) for notes in self.unjudged.values())
        return (
            f"{self.describe_metric()} = {self.value:.4f} on {feature} {verb} the tolerance "
            f"{self.tolerance:g} by {abs(self.tolerance - self.value):.4f}"
            + (f" ({left_out} rates of too small groups not judged)" if left_out else "")
        )

    def _next_when_unjudged(self) -> str:
        """The ways to give the gate enough records, as far as they fit this contract."""
        ways = [
            "a larger test split (data.test_fraction in ml_contract.yaml) or more data",
            f"fewer, larger groups of {self.worst_feature} (bands or regions made in the data "
            "before collect)",
        ]
        if self.metric != "demographic_parity_difference":
            # Demographic parity counts every row of a group, but only yes/no decisions have it:
            # regression and multiclass classification judge the gap in their metric.
            ways.append(
                "for yes/no decisions, a fairness.metric whose rates need fewer records "
                "(demographic_parity_difference counts every row)"
            )
        return f"Next: give the gate enough records to judge: {'; or '.join(ways)}."

    def explain(self, model: str, remedy: str) -> str:
        """Why the gate judged a model so: the verdict, each group's rates, and the next steps.

        Args:
            model: The model judged, in words (e.g. "the baseline").
            remedy: What would make this model treat the groups alike.

        Returns:
            One line with the verdict, one per group, and one with the next steps.
        """
        lines = [f"{model}: {self.summary()}"]
        for feature, groups in self.groups.items():
            for group, values in groups.items():
                rates = ", ".join(self._rate_shown(rate, values) for rate in self.rates)
                lines.append(f"  {feature} = {group}: {int(values['count'])} rows, {rates}")
        if math.isnan(self.value):
            lines.append(self._next_when_unjudged())
            return "\n".join(lines)
        lines.append(
            f"Next: {remedy}; or, where the gap is justified, raise fairness.tolerance in "
            "ml_contract.yaml and write the reason in fairness.reason, which the model card shows."
        )
        return "\n".join(lines)

    def _rate_shown(self, rate: str, values: dict[str, float]) -> str:
        """A group's rate, and why it was not judged when its group is too small for it."""
        shown = f"{rate.replace('_', ' ')} {values.get(rate, math.nan):.4f}"
        records = _records_of(rate)
        size = values.get(records, math.nan)
        if size < self.min_group_rows:
            shown += f" (not judged: {int(size)} {RECORD_NAMES[records]})"
        return shown


def baseline_remedy() -> str:
    """The next step when the baseline itself sets groups apart: its rules are the cause."""
    package = __name__.split(".")[0]
    return (
        f"change the baseline's rules (src/{package}/model/baseline.py) that set the groups "
        "apart, then run the pipeline again"
    )


def assess(model: Model, frame: pd.DataFrame, contract: Contract) -> FairnessReport:
    """Judge a model's decisions on labelled records, group by group, against the contract.

    Args:
        model: The model to judge.
        frame: Labelled records with the sensitive columns and the target.
        contract: The planning contract (sensitive features, measure, tolerance).

    Returns:
        The report; `passes` is False when a gap exceeds the tolerance or cannot be judged.

    Raises:
        FairnessError: A sensitive column or the target is missing, or there are no rows.
    """
    spec, target = contract.fairness, contract.task.target
    _check_columns(frame, [*spec.sensitive_features, target])
    if frame.empty:
        raise FairnessError("the fairness data has no rows")
    features = features_frame(frame)
    y_true = task_labels(contract, frame[target])
    predictions = model.predict(features)
    scores = model.score(features)
    rates = gated_rates(contract)
    by_feature: dict[str, float] = {}
    groups: dict[str, dict[str, dict[str, float]]] = {}
    unjudged: dict[str, list[str]] = {}
    for feature in spec.sensitive_features:
        table = _by_group(contract, y_true, predictions, scores, groups_of(frame[feature]))
        groups[feature] = {
            str(group): {str(name): float(value) for name, value in row.items()}
            for group, row in table.iterrows()
        }
        gaps = [_gap(groups[feature], rate, MIN_GROUP_ROWS) for rate in rates]
        judged = [gap for gap in gaps if not math.isnan(gap)]
        by_feature[feature] = max(judged) if judged else math.nan
        notes = [
            f"{rate}: {group} has {int(values[records])} {RECORD_NAMES[records]}"
            for rate in rates
            for group, values in groups[feature].items()
            if values[records := _records_of(rate)] < MIN_GROUP_ROWS
        ]
        if notes:
            unjudged[feature] = notes
    values = list(by_feature.values())
    value = math.nan if any(math.isnan(v) for v in values) else max(values, default=0.0)
    return FairnessReport(
        metric=spec.metric,
        value=value,
        tolerance=spec.tolerance,
        passes=not math.isnan(value) and value <= spec.tolerance,
        by_feature=by_feature,
        groups=groups,
        rates=rates,
        primary_metric=contract.metrics.primary,
        unjudged=unjudged,
    )


def gated_rates(contract: Contract) -> list[str]:
    """The per-group rates whose gap between groups the contract's measure takes.

    Demographic parity compares selection rates; equalised odds takes the larger of the gaps in
    true and false positive rate (as fairlearn's equalized_odds_difference does); metric_gap
    compares the primary metric.
    """
    metric = contract.fairness.metric
    if metric == "demographic_parity_difference":
        return ["selection_rate"]
    if metric == "equalized_odds_difference":
        return ["true_positive_rate", "false_positive_rate"]
    return [contract.metrics.primary]


def markdown(report: FairnessReport) -> list[str]:
    """Lines for the model card: the verdict, each group's rates, and what was not judged."""
    lines = [f"**{report.summary()}.**", ""]
    if not report.groups:
        return lines
    verdict = "passes" if report.passes else "fails"
    lines += [
        f"The bias gate {verdict}: the largest {report.describe_metric()} must stay at or below "
        f"{report.tolerance:g}.",
        "",
        "| feature | group | rows | "
        + " | ".join(name.replace("_", " ") for name in report.rates)
        + " |",
        "|---|---|---:|" + "---:|" * len(report.rates),
    ]
    for feature, groups in report.groups.items():
        for group, values in groups.items():
            cells = " | ".join(f"{values.get(rate, math.nan):.4f}" for rate in report.rates)
            shown = group.replace("|", "\\|")
            lines.append(f"| {feature} | {shown} | {int(values['count'])} | {cells} |")
    lines.append("")
    for feature, gap in report.by_feature.items():
        shown = "not judged" if math.isnan(gap) else f"{gap:.4f}"
        lines.append(f"- {feature}: largest gap {shown}")
    for feature, notes in report.unjudged.items():
        lines.append(
            f"- {feature}: left out for having fewer than {report.min_group_rows} records: "
            + "; ".join(notes)
        )
    lines.append("")
    return lines


def plot_groups(report: FairnessReport, out_dir: Path) -> list[Path]:
    """One PNG per sensitive feature: each group's rates, and each rate's gap against the tolerance.

    Groups too small to judge are drawn hatched and unfilled. File names keep only letters,
    digits, '-' and '_' of the feature's name.
    """
    paths = []
    for feature, groups in report.groups.items():
        figure = _plot_feature(report, feature, groups)
        name = re.sub(r"[^A-Za-z0-9_-]", "_", feature)
        paths.append(write_atomic(out_dir / f"fairness_{name}.png", png(figure)))
    return paths


def _plot_feature(
    report: FairnessReport, feature: str, groups: dict[str, dict[str, float]]
) -> Figure:
    # One layout pass instead of constrained layout's two: both panels keep their legends inside.
    figure = Figure(figsize=(9.6, 4.0), dpi=DPI, layout="tight")
    values_axes, gaps_axes = figure.subplots(1, 2, width_ratios=[2, 1])
    names, rates = list(groups), report.rates
    width = 0.8 / len(rates)
    handles = []
    for index, rate in enumerate(rates):
        colour = f"C{index}"
        positions = np.arange(len(names)) + index * width
        for position, group in zip(positions, names, strict=True):
            values = groups[group]
            if values[_records_of(rate)] >= report.min_group_rows:
                values_axes.bar(position, values[rate], width, color=colour)
            else:
                values_axes.bar(
                    position, values[rate], width, color="white", edgecolor=colour, hatch="//"
                )
        handles.append(Patch(color=colour, label=rate.replace("_", " ")))
    handles.append(
        Patch(
            facecolor="white",
            edgecolor="grey",
            hatch="//",
            label=f"fewer than {report.min_group_rows} records: not judged",
        )
    )
    # Dollar signs escaped: matplotlib would read text between two of them as math.
    labels = [name.replace("$", r"\$") for name in names]
    values_axes.set_xticks(np.arange(len(names)) + width * (len(rates) - 1) / 2, labels)
    values_axes.set_title("Each group of " + feature.replace("$", r"\$"))
    values_axes.legend(handles=handles, frameon=False, fontsize="small")
    rate_labels = [rate.replace("_", " ") for rate in rates]
    gaps = [_gap(groups, rate, report.min_group_rows) for rate in rates]
    colours = ["tab:red" if gap > report.tolerance else "tab:green" for gap in gaps]
    gaps_axes.bar(rate_labels, [0.0 if math.isnan(gap) else gap for gap in gaps], color=colours)
    for label, gap in zip(rate_labels, gaps, strict=True):
        if math.isnan(gap):
            gaps_axes.annotate("not judged", (label, 0.0), ha="center", va="bottom")
    gaps_axes.axhline(report.tolerance, color="black", linestyle="--", label="tolerance")
    highest = max([report.tolerance, *(gap for gap in gaps if not math.isnan(gap))])
    gaps_axes.set_ylim(0, highest * 1.25)
    gaps_axes.set_title("Largest gap between groups")
    gaps_axes.legend(frameon=False, fontsize="small")
    for axes in (values_axes, gaps_axes):
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", alpha=0.3)
        axes.set_axisbelow(True)
    return figure


def _gap(groups: dict[str, dict[str, float]], rate: str, min_rows: int) -> float:
    """Largest minus smallest rate over the groups large enough to judge; NaN if under two."""
    judged = [
        values[rate]
        for values in groups.values()
        if values[_records_of(rate)] >= min_rows and not math.isnan(values[rate])
    ]
    return max(judged) - min(judged) if len(judged) >= 2 else math.nan


def _check_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        if column not in frame.columns:
            present = ", ".join(str(name) for name in frame.columns)
            raise FairnessError(
                f"column {column!r} is not in the data (columns: {present}); add it to the data "
                "or change fairness.sensitive_features in ml_contract.yaml"
            )


def groups_of(column: pd.Series) -> pd.Series:
    """Each record's group: values as text, missing as 'missing', many numbers as quartile bands.

    The bands are cut at the quartiles of the values given, so the same records always fall
    into the same groups; their labels say the interval, e.g. "(41.0, 55.0]".
    """
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique() > MAX_GROUPS:
        column = pd.qcut(column, 4, duplicates="drop")
    labels = column.astype(str).where(column.notna(), "missing")
    return labels.reset_index(drop=True)


def _records_of(rate: str) -> str:
    """The group-size column a rate is checked against: the records it is computed on."""
    return RECORDS_OF_RATE.get(rate, "count")


def _by_group(
    contract: Contract,
    y_true: np.ndarray,
    predictions: np.ndarray,
    scores: np.ndarray,
    groups: pd.Series,
) -> pd.DataFrame:
    """Each group's size and rates, one row per group, through fairlearn's MetricFrame."""
    metrics: dict[str, GroupMetric] = {"count": lambda y, _score, pred: float(len(y))}
    scored = contract.task.type in SCORED_TASKS
    if scored:
        metrics |= {
            "positives": lambda y, _score, pred: float(np.sum(y == 1)),
            "negatives": lambda y, _score, pred: float(np.sum(y == 0)),
            "predicted_positives": lambda y, _score, pred: float(np.sum(pred == 1)),
            "selection_rate": lambda y, _score, pred: float(selection_rate(y, pred)),
            "true_positive_rate": lambda y, _score, pred: _rate(true_positive_rate, y, pred, 1),
            "false_positive_rate": lambda y, _score, pred: _rate(false_positive_rate, y, pred, 0),
        }
    primary = contract.metrics.primary
    metrics[primary] = lambda y, score, pred: _primary(primary, y, pred, score)
    frame = MetricFrame(
        metrics=metrics,
        y_true=y_true,
        y_pred=scores,
        sensitive_features=groups.rename("group"),
        sample_params={name: {"pred": predictions} for name in metrics},
    )
    table: pd.DataFrame = frame.by_group.astype(float)
    if scored:
        table["smaller_class"] = table[["positives", "negatives"]].min(axis=1)
    return table


def _rate(rate: Callable[..., float], y: np.ndarray, pred: np.ndarray, outcome: int) -> float:
    """A rate over the records with this true outcome; NaN for a group that has none."""
    return float(rate(y, pred, pos_label=1)) if np.any(y == outcome) else math.nan


def _primary(name: str, y: np.ndarray, pred: np.ndarray, score: np.ndarray) -> float:
    """The primary metric of one group; NaN where it is undefined (e.g. a group without positives).

    scikit-learn refuses some undefined metrics and warns about others (average precision
    without a positive record); both mean the group cannot be judged on it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            return METRICS[name](y, pred, score)
        except (ValueError, UserWarning):
            return math.nan
