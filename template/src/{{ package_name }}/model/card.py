"""Model card: figures of how a model decides, and a card in Markdown and HTML for people.

Figures are drawn with matplotlib's object API and its Agg canvas, outside pyplot: no display
and no global state. The card is built once as a list of blocks and written twice, as Markdown
and as HTML with every piece of text escaped.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix

from ..config import Contract
from ..data.transform import features_frame
from ..files import png, write_atomic
from .evaluate import SCORED_TASKS, Evaluation, Model, cost_curve

DPI = 110
CALIBRATION_BINS = 10
MARKDOWN_FILE = "model_card.md"
HTML_FILE = "model_card.html"
TASK_NAMES = {
    "binary_classification": "binary classification",
    "multiclass_classification": "multiclass classification",
    "regression": "regression",
    "anomaly_detection": "anomaly detection",
}


# --- figures -----------------------------------------------------------------------------------


def write_evaluation_plots(
    model: Model, frame: pd.DataFrame, contract: Contract, out_dir: Path
) -> list[Path]:
    """Draw how the model decides on labelled records, one PNG per figure in out_dir.

    Yes/no tasks get the cost curve over thresholds (the model's threshold marked), the confusion
    matrix and the calibration curve; several classes the confusion matrix; regression the
    residuals.

    Returns:
        The figure files, in the order a reader should see them.
    """
    target = contract.task.target
    if target not in frame.columns or frame.empty:
        raise ValueError(f"plots need rows with the target column {target!r}")
    features = features_frame(frame)
    y_true = frame[target].to_numpy()
    task = contract.task.type
    figures: dict[str, Figure] = {}
    if task in SCORED_TASKS:
        scores = model.score(features)
        labels = np.asarray(y_true, dtype=int)
        threshold = getattr(model, "threshold", None)
        figures["cost_curve"] = _cost_curve(scores, labels, contract, threshold)
        names = _yes_no_names(contract)
        figures["confusion_matrix"] = _confusion(
            labels, model.predict(features), [0, 1], names, _at(threshold)
        )
        figures["calibration"] = _calibration(scores, labels)
    elif task == "multiclass_classification":
        classes = list(contract.task.classes or [])
        predicted = np.asarray(model.predict(features)).astype(str)
        figures["confusion_matrix"] = _confusion(
            y_true.astype(str), predicted, classes, classes, "most likely class"
        )
    else:
        predicted = np.asarray(model.predict(features), dtype=float)
        figures["residuals"] = _residuals(
            np.asarray(y_true, dtype=float), predicted, target, contract.decision.quantile
        )
    return [write_atomic(out_dir / f"{name}.png", png(figure)) for name, figure in figures.items()]


def _yes_no_names(contract: Contract) -> list[str]:
    if contract.task.type == "anomaly_detection":
        return ["normal", "anomaly"]
    return [contract.task.negative_class or "0", contract.task.positive_class or "1"]


def _at(threshold: float | None) -> str:
    return "threshold not set" if threshold is None else f"threshold {threshold:.3g}"


def _new_figure(
    width: float = 6.4, height: float = 4.4, columns: int = 1
) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = [figure.add_subplot(1, columns, column + 1) for column in range(columns)]
    for one in axes:
        one.spines[["top", "right"]].set_visible(False)
        one.set_axisbelow(True)
    return figure, axes


def _plain(text: str) -> str:
    """Text matplotlib shows as written: a dollar sign would start math mode."""
    return text.replace("$", r"\$")


def _cost_curve(
    scores: np.ndarray, labels: np.ndarray, contract: Contract, threshold: float | None
) -> Figure:
    thresholds, costs = cost_curve(scores, labels, contract)
    figure, (axes,) = _new_figure()
    axes.grid(alpha=0.3)
    axes.plot(thresholds, costs, color="tab:blue", label="expected cost of this model")
    planned = contract.expected_threshold()
    if planned is not None:
        axes.axvline(
            planned,
            color="tab:gray",
            linestyle="--",
            label=f"threshold from the costs {planned:.3g}",
        )
    if threshold is not None:
        at = costs[np.argmin(np.abs(thresholds - threshold))]
        axes.axvline(threshold, color="tab:red", label=f"this model's threshold {threshold:.3g}")
        axes.plot([threshold], [at], "o", color="tab:red")
    axes.set_title("Expected cost by decision threshold")
    axes.set_xlabel("Decision threshold (act on scores at or above it)")
    if thresholds.min() > 0 and thresholds.max() < 1:
        # Probabilities near 0 and 1 matter as much as those in the middle: spread both ends.
        axes.set_xscale("logit")
        axes.tick_params(axis="x", labelrotation=30)
        axes.set_xlabel("Decision threshold (act on scores at or above it; logit scale)")
    axes.set_ylabel("Expected cost per record (cost units)")
    axes.set_ylim(bottom=0)
    axes.legend(loc="best", fontsize="small")
    return figure


def _confusion(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[object], names: list[str], rule: str
) -> Figure:
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    size = max(4.4, 1.0 + 0.9 * len(names))
    figure, (axes,) = _new_figure(size + 1.0, size)
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, label="Records")
    ticks = list(range(len(names)))
    axes.set_xticks(ticks, [_plain(name) for name in names])
    axes.set_yticks(ticks, [_plain(name) for name in names])
    high = counts.max() / 2 if counts.size else 0
    for row in ticks:
        for column in ticks:
            value = int(counts[row, column])
            colour = "white" if value > high else "black"
            axes.text(column, row, str(value), ha="center", va="center", color=colour)
    axes.set_title(f"Confusion matrix ({rule}, {len(y_true)} records)")
    axes.set_xlabel("Predicted class")
    axes.set_ylabel("Actual class")
    return figure


def _calibration(scores: np.ndarray, labels: np.ndarray) -> Figure:
    order = np.argsort(scores, kind="stable")
    bins = [part for part in np.array_split(order, CALIBRATION_BINS) if len(part)]
    mean_score = [float(np.mean(scores[part])) for part in bins]
    observed = [float(np.mean(labels[part])) for part in bins]
    figure, (axes,) = _new_figure(5.6, 5.0)
    axes.grid(alpha=0.3)
    low = min(0.0, float(np.min(scores)))
    high = max(1.0, float(np.max(scores)))
    axes.plot([low, high], [low, high], color="tab:gray", linestyle="--", label="calibrated")
    axes.plot(mean_score, observed, "o-", color="tab:blue", label="this model")
    axes.set_title(f"Calibration ({len(bins)} bins of equal size)")
    axes.set_xlabel("Mean score in the bin")
    axes.set_ylabel("Observed share of positives in the bin")
    axes.legend(loc="upper left", fontsize="small")
    return figure


def _residuals(
    y_true: np.ndarray, y_pred: np.ndarray, target: str, quantile: float | None
) -> Figure:
    residual = y_true - y_pred
    figure, (scatter, histogram) = _new_figure(10.0, 4.4, columns=2)
    name = _plain(target.replace("_", " "))
    scatter.grid(alpha=0.3)
    scatter.scatter(y_pred, residual, s=6, alpha=0.4, color="tab:blue", label="records")
    scatter.axhline(0, color="tab:red", label="prediction = actual")
    scatter.set_title("Residuals by prediction")
    scatter.set_xlabel(f"Predicted {name} (target units)")
    scatter.set_ylabel("Actual minus predicted (target units)")
    scatter.legend(loc="best", fontsize="small")
    covered = float(np.mean(residual <= 0)) if len(residual) else math.nan
    aim = "" if quantile is None else f", aiming at {format(quantile, '.0%')}"
    histogram.grid(axis="y", alpha=0.3)
    histogram.hist(residual, bins=40, color="tab:blue", alpha=0.8)
    below = f"at or below the prediction: {format(covered, '.0%')}{aim}"
    histogram.axvline(0, color="tab:red", label=below)
    histogram.set_title("Distribution of residuals")
    histogram.set_xlabel("Actual minus predicted (target units)")
    histogram.set_ylabel("Records")
    histogram.legend(loc="upper right", fontsize="small")
    return figure


# --- the card ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """One piece of the card: a heading, a list, a table, Markdown lines or a figure."""

    kind: str
    text: str = ""
    items: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def write_model_card(
    contract: Contract,
    *,
    candidate: Evaluation,
    baseline: Evaluation,
    champion: Evaluation | None,
    fairness_lines: list[str],
    figures: list[Path],
    data_lines: list[str],
    out_dir: Path,
    decided_by: str | None = None,
) -> tuple[Path, Path]:
    """Write the model card as reports/model_card.md and model_card.html.

    Args:
        contract: The planning contract: the problem, the costs and the gate.
        candidate: The trained model's evaluation on held-out data.
        baseline: The baseline's evaluation on the same data.
        champion: The served model's evaluation on the same data, if there is one.
        fairness_lines: Markdown lines of the fairness assessment.
        figures: Figure files to show; linked relative to out_dir.
        data_lines: Markdown lines saying where the data came from and how it was split.
        out_dir: Where the card is written (the reports directory).
        decided_by: Which gate decided whether the candidate is promoted, in words.

    Returns:
        The Markdown and the HTML card.
    """
    relative = [Path(os.path.relpath(figure, out_dir)).as_posix() for figure in figures]
    compared = _Compared(candidate, baseline, champion, decided_by)
    blocks = _card(contract, compared, fairness_lines, relative, data_lines)
    markdown = _markdown(blocks)
    page = _html(blocks, f"Model card: {contract.project.name}")
    return (
        write_atomic(out_dir / MARKDOWN_FILE, markdown.encode("utf-8")),
        write_atomic(out_dir / HTML_FILE, page.encode("utf-8")),
    )


@dataclass(frozen=True)
class _Compared:
    """The models the card compares, and the gate that decided between them."""

    candidate: Evaluation
    baseline: Evaluation
    champion: Evaluation | None
    decided_by: str | None


def _card(
    contract: Contract,
    models: _Compared,
    fairness_lines: list[str],
    figures: list[str],
    data_lines: list[str],
) -> list[_Block]:
    candidate, baseline, champion = models.candidate, models.baseline, models.champion
    compared = [("candidate", candidate), ("baseline", baseline)]
    if champion is not None:
        compared.append(("champion", champion))
    return [
        _Block("h1", f"Model card: {contract.project.name}"),
        _Block("h2", "Problem and goal"),
        _Block("list", items=tuple(_problem(contract))),
        _Block("h2", "Costs and the decision rule"),
        _Block("list", items=tuple(_costs(contract, candidate))),
        _Block("h2", "Data"),
        _Block("markdown", items=tuple(data_lines or ["No description of the data was given."])),
        _Block("h2", "Candidate, baseline and champion"),
        _Block("table", rows=tuple(_comparison(compared))),
        _Block("list", items=tuple(_verdicts(models))),
        _Block("h2", "Fairness"),
        _Block(
            "markdown",
            items=tuple(fairness_lines or ["No fairness assessment was made for this card."]),
        ),
        _Block("h2", "Figures"),
        *(_Block("figure", _title(figure), items=(figure,)) for figure in figures),
        _Block("h2", "Limits"),
        _Block("list", items=tuple(_limits(contract, candidate))),
    ]


def _problem(contract: Contract) -> list[str]:
    task, target = contract.task, contract.task.target
    lines = [f"Goal: {contract.project.goal}"]
    if task.type == "binary_classification":
        what = f"{target}: {task.positive_class} or {task.negative_class}"
    elif task.type == "multiclass_classification":
        what = f"{target}, one of {', '.join(task.classes or [])}"
    elif task.type == "regression":
        what = f"the value of {target}"
    else:
        what = f"whether a record is an anomaly ({target} = 1)"
    lines.append(f"Task: {TASK_NAMES[task.type]}, predicting {what}.")
    if contract.metrics.business_metric:
        lines.append(f"Business metric: {contract.metrics.business_metric}")
    side = "at least" if contract.metrics.greater_is_better else "at most"
    lines.append(f"Gate: {contract.metrics.primary} must be {side} {contract.metrics.gate:g}.")
    return lines


def _costs(contract: Contract, candidate: Evaluation) -> list[str]:
    costs = contract.costs
    if contract.task.type == "regression":
        over, under = costs.over_prediction or 0.0, costs.under_prediction or 0.0
        quantile = contract.decision.quantile
        return [
            f"Predicting one unit too much costs {over:g}; one unit too little costs {under:g}.",
            f"The cheapest prediction is the c_under / (c_over + c_under) = {quantile:g} quantile "
            "of the outcome; every model here aims at it, and expected cost is the pinball loss "
            "at that quantile times (c_over + c_under).",
        ]
    c_fp, c_fn = costs.false_positive or 0.0, costs.false_negative or 0.0
    if contract.task.type == "multiclass_classification":
        return [
            f"A wrong class costs {c_fp + c_fn:g} (false positive {c_fp:g} for the class "
            f"predicted, plus false negative {c_fn:g} for the class missed).",
            "With the same cost for every error, the cheapest decision is the most likely class.",
        ]
    planned = contract.expected_threshold() or 0.0
    lines = [
        f"A false positive costs {c_fp:g}; a false negative costs {c_fn:g}.",
        f"Acting pays off when the chance of a positive is at least c_fp / (c_fp + c_fn) = "
        f"{planned:.4g}: the threshold from the costs.",
    ]
    chosen = candidate.model_threshold
    if chosen is not None:
        lines.append(
            f"The candidate acts on scores of at least {chosen:.4g}, the threshold with the "
            "least expected cost on its validation data (its scores are not exact probabilities)."
        )
    return lines


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _comparison(compared: list[tuple[str, Evaluation]]) -> list[tuple[str, ...]]:
    first = compared[0][1]
    names = [first.metric, *(name for name in first.metrics if name != first.metric)]
    rows: list[tuple[str, ...]] = [("", *(role for role, _ in compared))]
    rows.append(("model", *(_model_name(e) for _, e in compared)))
    rows.append((f"{first.metric} (gate {first.gate:g})", *(_number(e.value) for _, e in compared)))
    for name in names[1:]:
        rows.append((name, *(_number(e.metrics.get(name, math.nan)) for _, e in compared)))
    rows.append(("expected cost per record", *(_number(e.expected_cost) for _, e in compared)))
    if first.model_threshold is not None:
        rows.append(
            (
                "decision threshold",
                *(
                    "n/a" if e.model_threshold is None else f"{e.model_threshold:.4g}"
                    for _, e in compared
                ),
            )
        )
    rows.append(("passes the gate", *("yes" if e.passes_gate else "no" for _, e in compared)))
    rows.append(("records judged", *(str(e.rows) for _, e in compared)))
    return rows


def _model_name(evaluation: Evaluation) -> str:
    if evaluation.model_version <= 0:
        # The card is written before the candidate is registered: its version is not known yet
        # (the run's output and the registry say it), and "not registered" would soon be wrong.
        return f"{evaluation.model_kind} (this run's candidate)"
    return f"{evaluation.model_kind} version {evaluation.model_version}"


def _better(first: Evaluation, second: Evaluation) -> bool:
    if math.isnan(first.value) or math.isnan(second.value):
        return False
    if first.greater_is_better:
        return first.value > second.value
    return first.value < second.value


def _verdicts(models: _Compared) -> list[str]:
    candidate, baseline, champion = models.candidate, models.baseline, models.champion
    lines = [f"Candidate: {candidate.gate_summary()}."]
    if models.decided_by:
        lines.append(f"Decided by: {models.decided_by}.")
    against = [("baseline", baseline)] + ([("champion", champion)] if champion else [])
    for role, other in against:
        metric = "beats" if _better(candidate, other) else "does not beat"
        cost = "lower" if candidate.expected_cost < other.expected_cost else "no lower"
        lines.append(
            f"Against the {role}: {metric} it on {candidate.metric} "
            f"({_number(candidate.value)} vs {_number(other.value)}), at a {cost} expected cost "
            f"({candidate.expected_cost:.4f} vs {other.expected_cost:.4f} per record)."
        )
    if champion is None:
        lines.append("There is no champion yet: the first model to pass the gates becomes one.")
    without = ", ".join(
        f"{name.replace('_', ' ')} {cost:.4f}" for name, cost in candidate.reference_costs.items()
    )
    if without:
        lines.append(f"Deciding without a model costs per record: {without}.")
    return lines


def _limits(contract: Contract, candidate: Evaluation) -> list[str]:
    sensitive = ", ".join(contract.fairness.sensitive_features) or "none"
    lines = [
        f"Judged on {candidate.rows} held-out records from the same source and period as the "
        "training data: not tested on later data, other populations or other sources; watch "
        "drift with the monitor command.",
        f"Fairness was measured only across the sensitive features named in the contract "
        f"({sensitive}), one at a time: not across their combinations or other groups.",
        "Not tested against inputs outside the ranges seen in training, beyond what the "
        "record schema refuses, nor against deliberate manipulation.",
        "The model finds associations, not causes: acting on its decisions can change the "
        "behaviour it learned from.",
    ]
    if contract.task.type in SCORED_TASKS:
        lines.append(
            "The threshold was chosen on a validation split of limited size; its cost can "
            "differ on new data (see the cost curve)."
        )
    if contract.data.source == "demo":
        lines.append(
            "The data is synthetic (the demo source): these numbers say nothing about real "
            "records until the project collects them."
        )
    return lines


def _title(figure: str) -> str:
    return Path(figure).stem.replace("_", " ").capitalize()


# --- writing the blocks ------------------------------------------------------------------------


def _markdown_cell(text: str) -> str:
    return text.replace("|", r"\|")


def _markdown(blocks: list[_Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        if block.kind == "h1":
            lines += [f"# {block.text}", ""]
        elif block.kind == "h2":
            lines += [f"## {block.text}", ""]
        elif block.kind == "list":
            lines += [*(f"- {item}" for item in block.items), ""]
        elif block.kind == "markdown":
            lines += [*block.items, ""]
        elif block.kind == "table":
            header, *body = block.rows
            lines.append("| " + " | ".join(_markdown_cell(cell) for cell in header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in body]
            lines.append("")
        elif block.kind == "figure":
            lines += [f"![{block.text}]({block.items[0]})", ""]
    return "\n".join(lines)


def _html(blocks: list[_Block], title: str) -> str:
    escape = html.escape
    body: list[str] = []
    for block in blocks:
        if block.kind in ("h1", "h2"):
            body.append(f"<{block.kind}>{escape(block.text)}</{block.kind}>")
        elif block.kind == "list":
            body.append(_html_list(block.items))
        elif block.kind == "markdown":
            body.extend(_html_from_markdown(block.items))
        elif block.kind == "table":
            body.append(_html_table(block.rows))
        elif block.kind == "figure":
            source = escape(block.items[0])
            body.append(
                f'<figure><img src="{source}" alt="{escape(block.text)}">'
                f"<figcaption>{escape(block.text)}</figcaption></figure>"
            )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{escape(title)}</title>",
            "<style>",
            "body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; "
            "padding: 0 1rem; line-height: 1.5; }",
            "table { border-collapse: collapse; } th, td { border: 1px solid #ccc; "
            "padding: 0.3rem 0.6rem; text-align: left; }",
            "img { max-width: 100%; }",
            "</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _html_list(items: tuple[str, ...] | list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def _html_table(rows: tuple[tuple[str, ...], ...] | list[tuple[str, ...]]) -> str:
    header, *body = rows
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for row in body:
        lines.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


def _html_from_markdown(lines: tuple[str, ...]) -> list[str]:
    """Lines written as Markdown (tables, lists, headings, paragraphs) as escaped HTML."""
    out: list[str] = []
    table: list[tuple[str, ...]] = []
    items: list[str] = []

    def flush() -> None:
        if table:
            out.append(_html_table(table))
            table.clear()
        if items:
            out.append(_html_list(items))
            items.clear()

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("|"):
            if items:
                flush()
            cells = tuple(cell.strip() for cell in stripped.strip("|").split("|"))
            if not all(set(cell) <= set("-: ") for cell in cells):
                table.append(cells)
            continue
        if stripped.startswith(("- ", "* ")):
            if table:
                flush()
            items.append(stripped[2:])
            continue
        flush()
        if stripped.startswith("#"):
            out.append(f"<h3>{html.escape(stripped.lstrip('#').strip())}</h3>")
        elif stripped:
            out.append(f"<p>{html.escape(stripped)}</p>")
    flush()
    return out
