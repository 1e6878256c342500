"""Drift: served inputs and predictions of a window against the champion's training reference.

Each feature is compared by its population stability index (PSI, `data.validate.psi`); the
predictions are compared too, by the PSI of their scores (or, for multiclass classification,
of the predicted classes' shares) against the champion's predictions on the reference. Anything
past the contract's `data.drift_limit` is the signal to retrain.

`write_report` leaves, under reports/monitor/:

- report.md: the verdict, a table of every PSI against the limit, and drift.png (reference
  against window for the most drifted features and the predictions);
- metrics.prom: the PSIs as the Prometheus gauge `model_drift_psi{project="<slug>",
  feature="..."}` (the predictions under `feature="prediction"`), with `model_drift_limit`
  and `model_drift_window_rows`, in the text format a node-exporter textfile collector reads
  (point its `--collector.textfile.directory` at reports/monitor/); the alert rules fire on
  `model_drift_psi`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from ..config import Contract
from ..data.transform import input_names
from ..data.validate import feature_psi, psi
from ..errors import ProjectError
from ..files import png, write_atomic

# Below this many logged predictions the PSI of 10 bins is too noisy to act on: its expected
# value on unchanged data is about (bins - 1) / rows, 0.018 at 500 rows.
MIN_WINDOW_ROWS = 500
PREDICTION = "prediction"
FEATURES_PLOTTED = 3
HISTOGRAM_BINS = 20
DPI = 100
REFERENCE_COLOUR = "C0"
WINDOW_COLOUR = "C3"


class DriftError(ProjectError):
    """The logged predictions and the reference have nothing to compare."""


class TooFewPredictionsError(ProjectError):
    """The window holds too few logged predictions for the drift measures to mean anything."""


@dataclass(frozen=True)
class DriftReport:
    """How far a window of served predictions moved from the training reference."""

    window_rows: int
    reference_rows: int
    limit: float
    features: dict[str, float]
    prediction: float | None
    prediction_basis: str
    compared_version: int | None
    model_versions: dict[int, int] = field(default_factory=dict)

    @property
    def measured(self) -> dict[str, float]:
        """Every PSI: the features', then the predictions' (as "prediction") when compared."""
        if self.prediction is None:
            return dict(self.features)
        return {**self.features, PREDICTION: self.prediction}

    @property
    def over_limit(self) -> dict[str, float]:
        """What drifted past the limit (features and "prediction"), the largest PSI first."""
        drifted = {name: value for name, value in self.measured.items() if value > self.limit}
        return dict(sorted(drifted.items(), key=lambda item: -item[1]))

    @property
    def within_limit(self) -> bool:
        """Whether nothing drifted past the contract's limit."""
        return not self.over_limit

    def worst(self) -> tuple[str, float]:
        """The feature (or "prediction") with the highest PSI."""
        measured = self.measured
        name = max(measured, key=measured.__getitem__)
        return name, measured[name]

    def summary(self) -> list[str]:
        """A verdict line, then one line per measure past the limit: name, PSI and limit."""
        name, value = self.worst()
        if self.within_limit:
            return [
                f"no drift: {self.window_rows} logged predictions within the PSI limit "
                f"{self.limit:g} (highest {value:.3f}, {name!r})"
            ]
        over = self.over_limit
        noun = "measure" if len(over) == 1 else "measures"
        return [
            f"drift: {len(over)} {noun} of {self.window_rows} logged predictions past the "
            f"PSI limit {self.limit:g}; retrain the model",
            *(f"{name!r} PSI {value:.3f} > limit {self.limit:g}" for name, value in over.items()),
        ]


def prediction_column(contract: Contract) -> str:
    """What the prediction shift compares: class shares for multiclass, else the scores."""
    return PREDICTION if contract.task.type == "multiclass_classification" else "score"


def monitor(
    predictions: pd.DataFrame,
    reference: pd.DataFrame,
    contract: Contract,
    *,
    min_rows: int = MIN_WINDOW_ROWS,
) -> DriftReport:
    """Measure how far a window of logged predictions drifted from the training reference.

    Args:
        predictions: Logged predictions of the window, as `FeedbackStore.predictions_frame`
            gives them: model_version, prediction, score and every input column.
        reference: The champion's training features, scored by the champion (as
            `model.score.score_frame` does), so that it also holds its predictions.
        contract: The planning contract; data.drift_limit is the limit.
        min_rows: Fewest logged predictions worth measuring.

    Returns:
        The PSI of every feature and of the predictions. The predictions are compared only
        where the champion made them (the reference's model_version), since another model's
        answers to the same inputs differ by design.

    Raises:
        TooFewPredictionsError: The window holds fewer than min_rows predictions.
        DriftError: No feature of the window is comparable with the reference.
    """
    check_window(len(predictions), min_rows)
    logged = [name for name in input_names() if name in predictions.columns]
    features = feature_psi(predictions, reference, logged)
    column = prediction_column(contract)
    version = reference_version(reference)
    served = predictions
    if version is not None and "model_version" in predictions.columns:
        served = predictions[predictions["model_version"] == version]
    shift = None
    if len(served) >= min_rows and column in served.columns and column in reference.columns:
        shift = psi(reference[column], served[column])
    versions: dict[int, int] = {}
    if "model_version" in predictions.columns:
        counts = predictions["model_version"].astype("int64").value_counts().sort_index()
        versions = dict(zip(counts.index.tolist(), counts.tolist(), strict=True))
    return drift_report(
        Window(len(predictions), tuple(map(str, predictions.columns)), versions),
        reference,
        contract,
        features,
        shift,
    )


def check_window(rows: int, min_rows: int) -> None:
    """Raise TooFewPredictionsError when a window of rows predictions is too small to judge."""
    if rows < min_rows:
        raise TooFewPredictionsError(
            f"only {rows} logged predictions in the window; at least {min_rows} "
            "are needed to measure drift: widen the window (--since, --last)"
        )


@dataclass(frozen=True)
class Window:
    """What a window of logged predictions holds: rows, columns and rows per model version."""

    rows: int
    columns: tuple[str, ...]
    model_versions: dict[int, int]


def drift_report(
    window: Window,
    reference: pd.DataFrame,
    contract: Contract,
    features: dict[str, float],
    shift: float | None,
) -> DriftReport:
    """The report of a window's measured PSIs: features by PSI, the largest first.

    Raises:
        DriftError: No feature of the window was comparable with the reference.
    """
    if not features:
        raise DriftError(
            "no feature of the logged predictions can be compared with the reference; "
            f"they have the columns {list(window.columns)}"
        )
    column = prediction_column(contract)
    return DriftReport(
        window_rows=window.rows,
        reference_rows=len(reference),
        limit=contract.data.drift_limit,
        features=dict(sorted(features.items(), key=lambda item: -item[1])),
        prediction=shift,
        prediction_basis="predicted class shares" if column == PREDICTION else "scores",
        compared_version=reference_version(reference),
        model_versions=window.model_versions,
    )


def reference_version(reference: pd.DataFrame) -> int | None:
    """The champion version that scored the reference, when it was scored."""
    if "model_version" not in reference.columns or reference.empty:
        return None
    return int(reference["model_version"].iloc[0])


def write_report(
    report: DriftReport,
    predictions: pd.DataFrame,
    reference: pd.DataFrame,
    contract: Contract,
    out_dir: Path,
    *,
    since: datetime | None,
    until: datetime | None,
) -> Path:
    """Write report.md with its plot drift.png, and metrics.prom; return the report's path.

    The plot is drawn before anything is written; the report is written last, so a report on
    disk always has its plot.
    """
    png = plot(report, predictions, reference, contract)
    write_atomic(out_dir / "drift.png", png)
    write_atomic(out_dir / "metrics.prom", prometheus_text(report, contract.project.slug))
    lines = _markdown(report, contract, since, until)
    return write_atomic(out_dir / "report.md", ("\n".join(lines) + "\n").encode("utf-8"))


def prometheus_text(report: DriftReport, project: str) -> bytes:
    """The PSIs as Prometheus gauges in the text format of a node-exporter textfile collector.

    Every series carries `project` (the contract's project slug): series read from a textfile
    are labelled with the node exporter's job, not the service's.
    """
    registry = CollectorRegistry()
    drift = Gauge(
        "model_drift_psi",
        "Population stability index of served inputs (by feature) and predictions against "
        "the training reference",
        ["project", "feature"],
        registry=registry,
    )
    for name, value in report.measured.items():
        drift.labels(project=project, feature=name).set(value)
    limit = Gauge(
        "model_drift_limit", "The contract's PSI drift limit", ["project"], registry=registry
    )
    limit.labels(project=project).set(report.limit)
    rows = Gauge(
        "model_drift_window_rows",
        "Logged predictions in the monitored window",
        ["project"],
        registry=registry,
    )
    rows.labels(project=project).set(report.window_rows)
    text: bytes = generate_latest(registry)
    return text


def _markdown(
    report: DriftReport, contract: Contract, since: datetime | None, until: datetime | None
) -> list[str]:
    start = since.isoformat(timespec="seconds") if since else "the first logged prediction"
    end = until.isoformat(timespec="seconds") if until else "now"
    versions = ", ".join(f"version {v}: {n}" for v, n in report.model_versions.items()) or "-"
    verdict = report.summary()
    rows = list(report.features.items())
    if report.prediction is not None:
        rows.insert(0, (f"{PREDICTION} ({report.prediction_basis})", report.prediction))
    lines = [
        f"# Drift: {contract.project.name}",
        "",
        f"Window: {start} to {end}; {report.window_rows} logged predictions ({versions}), "
        f"against {report.reference_rows} reference records.",
        "",
        f"**{verdict[0]}.**",
        "",
        *(f"- {line}" for line in verdict[1:]),
        *([""] if len(verdict) > 1 else []),
        "| measure | PSI | limit | |",
        "|---|---:|---:|---|",
        *(
            f"| {name} | {value:.3f} | {report.limit:g} | "
            f"{'past the limit' if value > report.limit else 'ok'} |"
            for name, value in rows
        ),
        "",
    ]
    if report.prediction is None:
        lines += [
            f"The predictions were not compared: fewer than the minimum of them were made by "
            f"the champion (version {report.compared_version}).",
            "",
        ]
    lines += [
        "![reference against window](drift.png)",
        "",
        "PSI below 0.1 is usually read as no change, 0.1 to 0.2 as a moderate one, above 0.2 "
        "as a real shift. Past the limit, collect recent labelled data (feedback) and retrain.",
    ]
    return lines


def plot(
    report: DriftReport, predictions: pd.DataFrame, reference: pd.DataFrame, contract: Contract
) -> bytes:
    """Reference against window for the most drifted features and for the predictions, as PNG."""
    shown = list(report.features)[:FEATURES_PLOTTED]
    column = prediction_column(contract)
    panels = [*shown, column] if column in predictions.columns else shown
    figure = Figure(figsize=(4.2 * len(panels), 3.4), dpi=DPI, layout="constrained")
    for index, name in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        value = report.prediction if name == column else report.features.get(name)
        title = f"{PREDICTION} ({report.prediction_basis})" if name == column else name
        psi_text = "not compared" if value is None else f"PSI {value:.3f}"
        axes.set_title(f"{title}\n{psi_text}", fontsize=10)
        _compare(axes, reference[name], predictions[name])
        axes.spines[["top", "right"]].set_visible(False)
    figure.legend(
        handles=figure.axes[0].get_legend_handles_labels()[0],
        loc="outside lower center",
        ncols=2,
        frameon=False,
    )
    return png(figure)


def _compare(axes: Axes, reference: pd.Series, window: pd.Series) -> None:
    """Share of values per bin (numbers) or per category, reference beside window."""
    numeric = pd.api.types.is_numeric_dtype(reference) and pd.api.types.is_numeric_dtype(window)
    numeric = numeric and not pd.api.types.is_bool_dtype(reference)
    if numeric:
        expected = reference.to_numpy(dtype="float64", na_value=np.nan)
        actual = window.to_numpy(dtype="float64", na_value=np.nan)
        expected, actual = expected[np.isfinite(expected)], actual[np.isfinite(actual)]
        edges = np.histogram_bin_edges(np.concatenate([expected, actual]), bins=HISTOGRAM_BINS)
        for values, colour, label in (
            (expected, REFERENCE_COLOUR, "reference"),
            (actual, WINDOW_COLOUR, "window"),
        ):
            weights = np.full(values.size, 1 / max(values.size, 1))
            axes.hist(
                values,
                bins=edges.tolist(),
                weights=weights,
                histtype="step",
                linewidth=1.6,
                color=colour,
                label=label,
            )
        axes.set_ylabel("share of records")
        return
    expected_shares = reference.astype(str).value_counts(normalize=True)
    actual_shares = window.astype(str).value_counts(normalize=True)
    categories = [
        *expected_shares.index,
        *(category for category in actual_shares.index if category not in expected_shares),
    ]
    positions = np.arange(len(categories))
    for offset, shares, colour, label in (
        (-0.2, expected_shares, REFERENCE_COLOUR, "reference"),
        (0.2, actual_shares, WINDOW_COLOUR, "window"),
    ):
        heights = [float(shares.get(c, 0.0)) for c in categories]
        axes.bar(positions + offset, heights, width=0.4, color=colour, label=label)
    axes.set_xticks(positions, categories, rotation=30 if len(categories) > 3 else 0)
    axes.set_ylabel("share of records")
