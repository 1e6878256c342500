"""Explore: a Markdown report of plots that show what the data holds before a model learns it."""

from __future__ import annotations

import hashlib
import inspect
import itertools
import math
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ..config import Contract
from ..errors import ProjectError
from ..files import png, write_atomic
from .columns import load

REPORT_FILE = "report.md"
DPI = 100
# One colour for counts and values, one for reference lines; classes take the C0..C9 cycle.
BAR = "C0"
REFERENCE = "C3"
MAX_LEVELS = 15  # categorical levels shown one by one; the rest are grouped as "other"
DISCRETE_LEVELS = 12  # whole-number columns with at most this many values are shown per value
QUANTILE_BINS = 10
SKEWNESS_FOR_LOG_SCALE = 2.0
MIN_ROWS_FOR_IDENTIFIER = 100
EN_DASH = "\u2013"  # between the ends of a range, where a hyphen would read as a minus sign
# The report's last line: what it was drawn from, so an unchanged report is not drawn again.
_DRAWN_FROM = re.compile(r"^<!-- drawn from (?P<key>[0-9a-f]{64}) -->$", re.MULTILINE)
_IMAGE = re.compile(r"!\[(?:\\.|[^\]\\])*\]\(([^)]+)\)")  # an embedded plot: ![title](file)
UNCHANGED = "unchanged: same rows, contract, schema and code as when it was drawn"


class ExploreError(ProjectError, ValueError):
    """The data cannot be explored as given (no rows, duplicate or missing columns)."""


@dataclass(frozen=True)
class _Plot:
    file: str
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class _Groups:
    """Each row's group (-1 where the value is missing) and the groups' labels, in plot order."""

    codes: np.ndarray
    labels: list[str]
    binned: bool


def axis_label(column: str) -> str:
    """A column's name on an axis: its description in the feature schema, else its name in words.

    Dollar signs are escaped, so that matplotlib never reads a column name as math.
    """
    described = {known.name: known.description for known in load().columns}
    if described.get(column):
        return _plain(described[column])
    return _plain(column.replace("_", " ").strip().capitalize() or column)


def feature_columns(frame: pd.DataFrame, contract: Contract) -> list[str]:
    """Every column but the target, less identifiers (whole numbers or text, all distinct)."""
    return [
        column
        for column in frame.columns
        if column != contract.task.target and not _looks_like_identifier(frame[column])
    ]


def plot_distribution(frame: pd.DataFrame, column: str) -> Figure:
    """Histogram of a numeric column, or bars of a categorical column's most common levels."""
    series = frame[column]
    if not _is_numeric(series):
        return _plot_levels(series, column)
    values = _finite(series)
    figure, axes = _new_figure()
    axes.set_title(_title(f"Distribution of {column}"))
    axes.set_ylabel("Records")
    axes.set_xlabel(axis_label(column))
    if values.size == 0:
        _say(axes, "no numeric values")
    elif _is_discrete(series):
        levels, counts = np.unique(values, return_counts=True)
        axes.bar(levels, counts, width=0.8, color=BAR)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        log = _wants_log_scale(values)
        bins = _histogram_bins(values, log)
        axes.hist(values, bins=bins, color=BAR, edgecolor="white")
        if log:
            axes.set_xscale("log")
            axes.set_xlabel(f"{axis_label(column)} (log scale)")
        median = float(np.median(values))
        axes.axvline(median, color=REFERENCE, linestyle="--", label=f"median {_number(median)}")
        axes.legend(frameon=False)
    return figure


def plot_target(frame: pd.DataFrame, contract: Contract) -> Figure:
    """Records per class, or the histogram of a numeric target with the contract's quantile."""
    target = _labelled(frame, contract)[contract.task.target]
    if contract.task.type != "regression":
        names, order = _class_names(target, contract)
        return _plot_levels(names, contract.task.target, order=order)
    values = _finite(target)
    figure, axes = _new_figure()
    axes.set_title(_title(f"Distribution of {contract.task.target}"))
    axes.set_xlabel(axis_label(contract.task.target))
    axes.set_ylabel("Records")
    if values.size == 0:
        _say(axes, "no numeric values")
        return figure
    axes.hist(values, bins=_histogram_bins(values, log=False), color=BAR, edgecolor="white")
    median = float(np.median(values))
    axes.axvline(median, color="0.3", linestyle=":", label=f"median {_number(median)}")
    quantile = contract.decision.quantile
    if quantile is not None:
        at = float(np.quantile(values, quantile))
        label = f"{quantile:g} quantile {_number(at)} (costs)"
        axes.axvline(at, color=REFERENCE, linestyle="--", label=label)
    axes.legend(frameon=False)
    return figure


def plot_target_by(frame: pd.DataFrame, column: str, contract: Contract) -> Figure:
    """How the target changes with one feature, in the form that suits the task and the feature.

    Binary and anomaly targets: the positive rate per level or quantile bin, with 95% intervals.
    Multiclass: a box per class for a continuous feature, else the class shares per level.
    Regression: a hexbin of target against a continuous feature with binned means, else a box
    of the target per level.
    """
    rows = _labelled(frame, contract)
    target = rows[contract.task.target]
    groups = _groups(rows[column])
    task = contract.task.type
    if not groups.labels:
        figure, axes = _new_figure()
        axes.set_title(_title(f"{contract.task.target} by {column}"))
        _say(axes, f"no labelled record has a value of {column}")
        return figure
    if task == "regression":
        if groups.binned:
            return _plot_hexbin(rows, column, contract)
        return _plot_boxes_by_group(_finite_or_nan(target), groups, column, contract)
    if task == "multiclass_classification":
        if groups.binned:
            return _plot_boxes_by_class(rows[column], target, column, contract)
        return _plot_class_shares(target, groups, column, contract)
    return _plot_rates(target, groups, column, contract)


def plot_missing(frame: pd.DataFrame, contract: Contract) -> Figure:
    """Share of missing values per column against the contract's data.max_missing_rate."""
    shares = frame.isna().mean()
    limit = contract.data.max_missing_rate
    names = [str(name) for name in shares.index]
    figure, axes = _new_figure(height=max(2.5, 0.32 * len(names) + 1.3))
    axes.grid(axis="y", visible=False)
    axes.grid(axis="x", alpha=0.3)
    positions = np.arange(len(names))
    axes.barh(positions, shares.to_numpy(), color=BAR)
    axes.set_yticks(positions, labels=[_tick(name) for name in names])
    axes.invert_yaxis()
    axes.axvline(limit, color=REFERENCE, linestyle="--", label=f"limit {_pct(limit, 0)} (contract)")
    top = max(limit * 1.25, float(shares.max()) * 1.15, 0.05)
    axes.set_xlim(0, min(top, 1.05))
    axes.xaxis.set_major_formatter(_percent(top))
    for position, share in zip(positions, shares.to_numpy(), strict=True):
        if share > 0:
            axes.annotate(
                _pct(share),
                (share, position),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    if not shares.any():
        _say(axes, "no missing values")
    axes.set_title("Missing values per column")
    axes.set_xlabel("Share of records with no value")
    axes.legend(frameon=False, loc="lower right")
    return figure


def plot_correlation(frame: pd.DataFrame, contract: Contract) -> Figure:
    """Rank (Spearman) correlation of the numeric features with each other and the target."""
    table = _correlation_table(frame, contract)
    columns = list(table.columns)
    side = float(np.clip(0.55 * len(columns) + 2.8, 4.5, 12))
    figure, axes = _new_figure(width=side + 1.2, height=side)
    axes.grid(visible=False)
    axes.set_title("Rank correlation of numeric features and the target")
    if len(columns) < 2:
        _say(axes, "fewer than two numeric columns")
        axes.set_axis_off()
        return figure
    matrix = table.corr(method="spearman").to_numpy()
    image = axes.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    positions = np.arange(len(columns))
    ticks = [_tick(column) for column in columns]
    axes.set_xticks(positions, labels=ticks, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(positions, labels=ticks)
    axes.spines[["left", "bottom"]].set_visible(False)
    if len(columns) <= 16:
        for (row, col), value in np.ndenumerate(matrix):
            text = "n/a" if np.isnan(value) else f"{value:.2f}".replace("-0.00", "0.00")
            colour = "white" if abs(value) > 0.6 else "0.15"
            axes.text(col, row, text, ha="center", va="center", fontsize=8, color=colour)
    figure.colorbar(image, ax=axes, shrink=0.8, label="Spearman correlation")
    return figure


def explore(
    frame: pd.DataFrame,
    contract: Contract,
    out_dir: Path,
    progress: Callable[[str], None] = lambda _: None,
    *,
    redraw: bool = False,
) -> Path:
    """Write a Markdown report with one PNG per question worth asking of the data.

    Every plot is drawn in memory before anything is written, so a failure leaves no files
    behind; each file is then written atomically, the report last, so a report on disk always
    has all of its plots. Figures are built with matplotlib's object API, outside pyplot: no
    backend is switched and no figure stays open.

    A report already in out_dir that was drawn from the same rows, contract, feature schema,
    plotting code and library versions, with all of its plots, is kept as it is: re-running the
    pipeline to try another model does not draw the same plots again.

    Args:
        frame: The records to explore; the target column is optional (unlabelled data).
        contract: The planning contract: target, task type, sensitive features, limits.
        out_dir: Folder for report.md and its PNG files.
        progress: Told "plot N of M" before each plot is drawn: a plot takes a fifth of a
            second or so, two per feature, so wide data keeps a report busy for minutes.
            Told UNCHANGED instead when the report on disk is kept.
        redraw: Draw every plot even if the report on disk is unchanged.

    Returns:
        The path of report.md.
    """
    _check(frame)
    drawn_from = _drawn_from(frame, contract)
    if not redraw and _is_current(out_dir / REPORT_FILE, drawn_from):
        progress(UNCHANGED)
        return out_dir / REPORT_FILE
    features = feature_columns(frame, contract)
    skipped = [
        column
        for column in frame.columns
        if column != contract.task.target and column not in features
    ]
    has_target = contract.task.target in frame.columns and frame[contract.task.target].notna().any()
    names = _FileNames()
    target_plots: list[_Plot] = []
    overview: list[_Plot] = []
    by_feature: dict[str, list[_Plot]] = {column: [] for column in features}
    # Every plot is planned first and drawn after, so the progress count is the plan's length.
    planned: list[tuple[list[_Plot], str, str, str, Callable[[], Figure]]] = []

    def plan(
        into: list[_Plot], stem: str, title: str, caption: str, make: Callable[[], Figure]
    ) -> None:
        planned.append((into, stem, title, caption, make))

    if has_target:
        plan(
            target_plots,
            "target-distribution",
            f"Distribution of {contract.task.target}",
            _TARGET_CAPTIONS[contract.task.type],
            partial(plot_target, frame, contract),
        )
    plan(
        overview,
        "missing-values",
        "Missing values per column",
        f"Columns past the dashed line miss more values than data.max_missing_rate "
        f"({_pct(contract.data.max_missing_rate, 0)}) allows; look for columns missing together.",
        partial(plot_missing, frame, contract),
    )
    plan(
        overview,
        "correlation",
        "Rank correlation of numeric features and the target",
        "Read the target's row for features that carry signal; pairs near ±1 say the same "
        "thing twice.",
        partial(plot_correlation, frame, contract),
    )
    sensitive = set(contract.fairness.sensitive_features)
    for column in features:
        numeric = _is_numeric(frame[column])
        plan(
            by_feature[column],
            f"distribution-{column}",
            f"Distribution of {column}",
            _DISTRIBUTION_CAPTIONS[numeric],
            partial(plot_distribution, frame, column),
        )
        if has_target:
            caption = _target_by_caption(frame, column, contract)
            if column in sensitive:
                caption += " This is a sensitive feature: a gap here is a fairness question first."
            plan(
                by_feature[column],
                f"{contract.task.target}-by-{column}",
                f"{contract.task.target} by {column}",
                caption,
                partial(plot_target_by, frame, column, contract),
            )
    for number, (into, stem, title, caption, make) in enumerate(planned, start=1):
        progress(f"plot {number} of {len(planned)}")
        into.append(_Plot(names.png(stem), title, caption, png(make())))
    report = _report(frame, contract, skipped, target_plots, overview, by_feature)
    report += f"\n<!-- drawn from {drawn_from} -->\n"
    # The plots keep their file names from report to report: until the new report is written,
    # the old one would show new plots under the old digest.
    (out_dir / REPORT_FILE).unlink(missing_ok=True)
    for plot in [*target_plots, *overview, *(p for plots in by_feature.values() for p in plots)]:
        write_atomic(out_dir / plot.file, plot.png)
    return write_atomic(out_dir / REPORT_FILE, report.encode("utf-8"))


# --- plots ---------------------------------------------------------------------------------


def _new_figure(width: float = 6.4, height: float = 4.0) -> tuple[Figure, Axes]:
    # Tight layout fits labels, legends and colour bars in one pass where constrained layout
    # takes two: a report's dozens of plots draw about a third faster, and look the same.
    figure = Figure(figsize=(width, height), dpi=DPI, layout="tight")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    return figure, axes


def _histogram_bins(values: np.ndarray, log: bool) -> int | list[float]:
    """Log-spaced bins for skewed values; whole numbers get bins a whole number of values wide.

    Whole numbers in bins of fractional width alias: some bins catch one more value than their
    neighbours and the histogram grows false steps.
    """
    low, high = float(values.min()), float(values.max())
    count = int(np.clip(math.sqrt(values.size), 10, 50))
    if log:
        return [float(edge) for edge in np.geomspace(low, high, count + 1)]
    if np.all(values == np.round(values)):
        width = max(1, math.ceil((high - low + 1) / count))
        return [float(edge) for edge in np.arange(low - 0.5, high + 0.5 + width, width)]
    return count


def _percent(top: float) -> PercentFormatter:
    """Percent ticks, with a decimal only when the axis ends below 10%."""
    return PercentFormatter(1.0, decimals=0 if top >= 0.1 else 1)


def _say(axes: Axes, message: str) -> None:
    axes.text(
        0.5, 0.5, _plain(message), transform=axes.transAxes, ha="center", va="center", color="0.4"
    )


def _plot_levels(series: pd.Series, column: str, order: list[str] | None = None) -> Figure:
    """Horizontal bars of records per level, most common first (or in the given order)."""
    counts = series.dropna().astype(str).value_counts()
    if order is not None:
        counts = counts.reindex(order, fill_value=0)
    if len(counts) > MAX_LEVELS:
        rest = counts.iloc[MAX_LEVELS - 1 :]
        counts = counts.iloc[: MAX_LEVELS - 1]
        counts[f"other ({len(rest)} levels)"] = int(rest.sum())
    figure, axes = _new_figure(height=max(2.5, 0.35 * len(counts) + 1.4))
    axes.grid(axis="y", visible=False)
    axes.grid(axis="x", alpha=0.3)
    axes.set_title(_title(f"Distribution of {column}"))
    axes.set_xlabel("Records")
    axes.set_ylabel(axis_label(column))
    if counts.empty:
        _say(axes, "no values")
        return figure
    positions = np.arange(len(counts))
    # Classes keep the colour they have in every other plot; plain levels share one colour.
    colours = [f"C{index % 10}" for index in positions] if order is not None else BAR
    axes.barh(positions, counts.to_numpy(), color=colours)
    axes.set_yticks(positions, labels=[_tick(str(name)) for name in counts.index])
    axes.invert_yaxis()
    total = counts.sum()
    for position, count in zip(positions, counts.to_numpy(), strict=True):
        axes.annotate(
            f"{count:,} ({_pct(count / total)})",
            (count, position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axes.set_xlim(0, counts.max() * 1.25)
    return figure


def _plot_rates(target: pd.Series, groups: _Groups, column: str, contract: Contract) -> Figure:
    """Positive rate per group with a 95% interval, against the overall rate."""
    positive = _is_positive(target, contract).to_numpy(dtype=float)
    known = groups.codes >= 0
    size = len(groups.labels)
    counts = np.bincount(groups.codes[known], minlength=size)
    hits = np.bincount(groups.codes[known], weights=positive[known], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = hits / counts
        margins = 1.96 * np.sqrt(rates * (1 - rates) / counts)
    name = _positive_name(contract)
    figure, axes = _new_figure()
    positions = np.arange(size)
    axes.bar(positions, np.nan_to_num(rates), color=BAR, width=0.7)
    axes.errorbar(positions, rates, yerr=margins, fmt="none", ecolor="0.25", capsize=3, lw=1)
    overall = float(positive.mean()) if positive.size else 0.0
    axes.axhline(overall, color=REFERENCE, linestyle="--", label=f"overall {_pct(overall)}")
    highest = max(float(np.nanmax(rates + margins, initial=0.0)), overall, 0.04)
    axes.set_ylim(0, min(1.0, highest * 1.15))
    axes.yaxis.set_major_formatter(_percent(highest))
    _group_ticks(axes, positions, groups)
    axes.set_xlabel(_group_axis_label(column, groups))
    axes.set_ylabel(_plain(f"Share {name}"))
    axes.set_title(_title(f"{name} rate by {column}"))
    axes.legend(frameon=False)
    return figure


def _plot_class_shares(
    target: pd.Series, groups: _Groups, column: str, contract: Contract
) -> Figure:
    """Stacked shares of each class per group: bars that differ mark a useful feature."""
    names, classes = _class_names(target, contract)
    known = groups.codes >= 0
    table = pd.crosstab(
        pd.Series(groups.codes[known]), pd.Series(names.to_numpy()[known]), normalize="index"
    ).reindex(index=range(len(groups.labels)), columns=classes, fill_value=0.0)
    figure, axes = _new_figure(width=7.4)
    positions = np.arange(len(groups.labels))
    bottom = np.zeros(len(positions))
    for index, label in enumerate(classes):
        shares = table[label].fillna(0.0).to_numpy()
        axes.bar(
            positions, shares, bottom=bottom, color=f"C{index % 10}", label=_plain(label), width=0.7
        )
        bottom += shares
    axes.yaxis.set_major_formatter(_percent(1.0))
    axes.set_ylim(0, 1)
    _group_ticks(axes, positions, groups)
    axes.set_xlabel(_group_axis_label(column, groups))
    axes.set_ylabel("Share of records")
    axes.set_title(_title(f"{contract.task.target} by {column}"))
    # Reversed, so the legend stacks the classes the way the bars do.
    handles, labels = axes.get_legend_handles_labels()
    axes.legend(
        handles[::-1],
        labels[::-1],
        title=contract.task.target,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1, 1),
    )
    return figure


def _plot_boxes_by_class(
    feature: pd.Series, target: pd.Series, column: str, contract: Contract
) -> Figure:
    """One box of the feature per class, classes in the contract's order."""
    labels, classes = _class_names(target, contract)
    names = labels.to_numpy()
    values = _finite_or_nan(feature).to_numpy()
    samples = [values[(names == label) & ~np.isnan(values)] for label in classes]
    figure, axes = _new_figure()
    ticks = [_tick(label) for label in classes]
    boxes = axes.boxplot(
        samples,
        tick_labels=ticks,
        patch_artist=True,
        widths=0.6,
        medianprops={"color": "0.15"},
        flierprops={"markersize": 2, "alpha": 0.3},
    )
    for index, box in enumerate(boxes["boxes"]):
        box.set_facecolor(f"C{index % 10}")
    _tilt_if_crowded(axes, ticks)
    present = values[~np.isnan(values)]
    if present.size and _wants_log_scale(present):
        axes.set_yscale("log")
    axes.set_xlabel(axis_label(contract.task.target))
    axes.set_ylabel(axis_label(column))
    axes.set_title(_title(f"{column} by {contract.task.target}"))
    return figure


def _plot_boxes_by_group(
    target: pd.Series, groups: _Groups, column: str, contract: Contract
) -> Figure:
    """One box of the numeric target per level of the feature."""
    values = target.to_numpy(dtype=float)
    samples = [
        values[(groups.codes == code) & ~np.isnan(values)] for code in range(len(groups.labels))
    ]
    ticks = [_tick(label) for label in groups.labels]
    figure, axes = _new_figure()
    axes.boxplot(
        samples,
        tick_labels=ticks,
        patch_artist=True,
        widths=0.6,
        boxprops={"facecolor": BAR},
        medianprops={"color": "0.15"},
        flierprops={"markersize": 2, "alpha": 0.3},
    )
    _tilt_if_crowded(axes, ticks)
    axes.set_xlabel(axis_label(column))
    axes.set_ylabel(axis_label(contract.task.target))
    axes.set_title(_title(f"{contract.task.target} by {column}"))
    return figure


def _plot_hexbin(rows: pd.DataFrame, column: str, contract: Contract) -> Figure:
    """Density of target against a continuous feature, with the mean per quantile bin."""
    x = _finite_or_nan(rows[column]).to_numpy()
    y = _finite_or_nan(rows[contract.task.target]).to_numpy()
    keep = ~np.isnan(x) & ~np.isnan(y)
    x, y = x[keep], y[keep]
    figure, axes = _new_figure(width=7.0)
    axes.grid(visible=False)
    axes.set_title(_title(f"{contract.task.target} by {column}"))
    if x.size == 0:
        _say(axes, "no records with both values")
        return figure
    log = _wants_log_scale(x)
    # A log colour scale keeps the sparse cells, where outliers live, visible beside dense ones.
    cells = axes.hexbin(
        x, y, gridsize=35, mincnt=1, cmap="Blues", norm=LogNorm(), xscale="log" if log else "linear"
    )
    figure.colorbar(cells, ax=axes, label="Records")
    groups = _groups(pd.Series(x))
    known = groups.codes >= 0
    counts = np.bincount(groups.codes[known], minlength=len(groups.labels))
    with np.errstate(invalid="ignore"):
        mean_x = np.bincount(groups.codes[known], weights=x[known]) / counts
        mean_y = np.bincount(groups.codes[known], weights=y[known]) / counts
    axes.plot(mean_x, mean_y, color=REFERENCE, marker="o", label="mean per quantile bin")
    axes.legend(frameon=False, loc="upper left")
    axes.set_xlabel(axis_label(column) + (" (log scale)" if log else ""))
    axes.set_ylabel(axis_label(contract.task.target))
    return figure


def _group_ticks(axes: Axes, positions: np.ndarray, groups: _Groups) -> None:
    labels = [_tick(label) for label in groups.labels]
    axes.set_xticks(positions, labels=labels)
    _tilt_if_crowded(axes, labels)


def _tilt_if_crowded(axes: Axes, labels: list[str]) -> None:
    """Tilt the x tick labels when side by side they would run into each other."""
    if sum(len(label) + 2 for label in labels) <= 60 and len(labels) <= 12:
        return
    axes.tick_params(axis="x", labelrotation=35)
    for label in axes.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")


def _group_axis_label(column: str, groups: _Groups) -> str:
    return f"{axis_label(column)} (quantile bins)" if groups.binned else axis_label(column)


# --- what a report was drawn from ----------------------------------------------------------


def _drawn_from(frame: pd.DataFrame, contract: Contract) -> str:
    """A digest of everything a report shows: any change to one of them draws it again.

    The rows (values, order, column names and types, categories used or not), the contract,
    the feature schema (its descriptions label the axes), this module's and the PNG writer's
    code, matplotlib's settings and the versions of the libraries that draw. Hashing a million
    rows takes well under a second; drawing takes a fifth of a second a plot.
    """
    digest = hashlib.sha256()
    digest.update(repr([(str(name), str(kind)) for name, kind in frame.dtypes.items()]).encode())
    for kind in frame.dtypes:
        if isinstance(kind, pd.CategoricalDtype):  # unused categories are plotted as levels too
            categories = pd.util.hash_pandas_object(pd.Series(kind.categories), index=False)
            digest.update(repr(kind.ordered).encode() + categories.to_numpy().tobytes())
    try:
        rows = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:  # cells pandas cannot hash, such as lists: their text stands for them
        rows = pd.util.hash_pandas_object(frame.astype(str), index=False)
    digest.update(rows.to_numpy().tobytes())
    digest.update(contract.model_dump_json().encode())
    digest.update(repr(load().columns).encode())
    try:
        for code in (inspect.getfile(_drawn_from), inspect.getfile(png)):
            digest.update(Path(code).read_bytes())
    except OSError:  # installed without its source: a digest no report matches, so always drawn
        return secrets.token_hex(32)
    # A copy, so that reading the backend setting does not make matplotlib choose one (which
    # imports pyplot); which backend is in use does not change a PNG drawn on a Figure.
    settings = matplotlib.rcParams.copy()
    digest.update(repr(sorted(item for item in settings.items() if item[0] != "backend")).encode())
    digest.update(f"{matplotlib.__version__} {pd.__version__} {np.__version__}".encode())
    return digest.hexdigest()


def _is_current(report: Path, drawn_from: str) -> bool:
    """Whether report was drawn from drawn_from and every plot it shows is still there."""
    try:
        text = report.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    found = _DRAWN_FROM.search(text)
    if found is None or found["key"] != drawn_from:
        return False
    return all((report.parent / file).is_file() for file in _IMAGE.findall(text))


# --- columns -------------------------------------------------------------------------------


def _check(frame: pd.DataFrame) -> None:
    if len(frame.columns) == 0:
        raise ExploreError("the data has no columns to explore")
    if len(frame) == 0:
        raise ExploreError("the data has no rows to explore")
    names = [str(column) for column in frame.columns]
    if any(not isinstance(column, str) for column in frame.columns):
        raise ExploreError("column names must be text; read the data with a header row")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ExploreError(f"duplicate column names {duplicates}; rename them before exploring")


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _finite(series: pd.Series) -> np.ndarray:
    values = np.asarray(series.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def _finite_or_nan(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce").astype(float)
    return values.where(np.isfinite(values))


def _is_discrete(series: pd.Series) -> bool:
    values = _finite(series)
    return bool(
        values.size
        and np.unique(values).size <= DISCRETE_LEVELS
        and np.all(values == np.round(values))
    )


def _wants_log_scale(values: np.ndarray) -> bool:
    if values.size < 3 or values.min() <= 0:
        return False
    spread = values.std()
    if spread == 0:
        return False
    skewness = float(np.mean(((values - values.mean()) / spread) ** 3))
    return skewness > SKEWNESS_FOR_LOG_SCALE


def _looks_like_identifier(series: pd.Series) -> bool:
    whole_numbers = pd.api.types.is_integer_dtype(series)
    text = not _is_numeric(series) and not pd.api.types.is_bool_dtype(series)
    return (
        (whole_numbers or text)
        and len(series) >= MIN_ROWS_FOR_IDENTIFIER
        and series.nunique(dropna=False) == len(series)
    )


def _groups(series: pd.Series) -> _Groups:
    """Levels of a categorical or few-valued column, or quantile bins of a continuous one."""
    if _is_numeric(series) and not _is_discrete(series):
        values = _finite_or_nan(series).to_numpy()
        present = values[~np.isnan(values)]
        whole = bool(np.all(present == np.round(present)))
        edges = _quantile_edges(present, whole)
        if edges.size >= 3:
            inner = np.searchsorted(edges[1:-1], values, side="right")
            codes = np.where(np.isnan(values), -1, inner).astype(int)
            return _Groups(codes, _bin_labels(edges, whole), binned=True)
    counts = series.dropna().value_counts()
    if _is_numeric(series):
        counts = counts.sort_index()
    levels = list(counts.index[:MAX_LEVELS])
    if len(counts) > MAX_LEVELS:
        levels = list(counts.index[: MAX_LEVELS - 1])
    lookup = {level: code for code, level in enumerate(levels)}
    other = len(levels) if len(counts) > len(levels) else -1
    codes = np.where(series.isna(), -1, series.map(lookup).fillna(other)).astype(int)
    labels = [_number(level) if _is_numeric(series) else str(level) for level in levels]
    if other >= 0:
        labels.append(f"other ({len(counts) - len(levels)})")
    return _Groups(codes, labels, binned=False)


def _quantile_edges(values: np.ndarray, whole: bool) -> np.ndarray:
    """Distinct decile edges; whole numbers are cut at values that occur, so bins read as ranges."""
    if values.size == 0:
        return np.array([])
    quantiles = np.linspace(0, 1, QUANTILE_BINS + 1)
    if whole:
        return np.unique(np.quantile(values, quantiles, method="inverted_cdf"))
    return np.unique(np.quantile(values, quantiles))


def _bin_labels(edges: np.ndarray, whole: bool) -> list[str]:
    """Labels of the bins [low, high), the last one closed; whole numbers show what they hold."""
    labels = []
    last = len(edges) - 2
    for index, (low, high) in enumerate(itertools.pairwise(edges)):
        top = high - 1 if whole and index < last else high
        if whole and top == low:
            labels.append(_number(low))
        else:
            labels.append(f"{_number(low)}{EN_DASH}{_number(top)}")
    return labels


def _labelled(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    target = contract.task.target
    if target not in frame.columns:
        raise ExploreError(f"the data has no target column {target!r}")
    return frame[frame[target].notna()]


def _positive_name(contract: Contract) -> str:
    if contract.task.type == "anomaly_detection":
        return "anomaly"
    return contract.task.positive_class or "positive"


def _is_positive(target: pd.Series, contract: Contract) -> pd.Series:
    """True where the target is the positive class: 1, true, or the contract's label for it."""
    text = target.astype(str).str.strip().str.lower()
    positive = {"1", "1.0", "true", _positive_name(contract).lower()}
    return text.isin(positive)


def _class_names(target: pd.Series, contract: Contract) -> tuple[pd.Series, list[str]]:
    """The target as class names, and the classes in the contract's order (others after)."""
    task = contract.task
    if task.type == "multiclass_classification":
        names = target.astype(str)
        present = set(names)
        listed = [label for label in task.classes or [] if label in present]
        return names, listed + sorted(present - set(listed))
    negative = "normal" if task.type == "anomaly_detection" else task.negative_class or "0"
    positive = _positive_name(contract)
    names = _is_positive(target, contract).map({True: positive, False: negative})
    return names, [negative, positive]


def _correlation_table(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    numeric = {
        column: _finite_or_nan(frame[column])
        for column in feature_columns(frame, contract)
        if _is_numeric(frame[column])
    }
    target = contract.task.target
    if target in frame.columns and frame[target].notna().any():
        labelled = frame[target].notna()
        if contract.task.type == "regression":
            numeric[target] = _finite_or_nan(frame[target])
        elif contract.task.type == "multiclass_classification":
            names, classes = _class_names(frame[target][labelled], contract)
            for label in classes:
                numeric[f"{target}={label}"] = (names == label).astype(float)
        else:
            positive = _is_positive(frame[target], contract).astype(float)
            numeric[target] = positive.where(labelled)
    return pd.DataFrame(numeric)


# --- report --------------------------------------------------------------------------------


_TARGET_CAPTIONS = {
    "binary_classification": "Look at the share of the positive class: the rarer it is, the "
    "more records a model needs and the less accuracy tells you.",
    "anomaly_detection": "Anomalies should be rare; a share far from what the business expects "
    "points at the labels, not the model.",
    "multiclass_classification": "Look for rare classes: they need more records, and a macro "
    "average to be seen in the metrics.",
    "regression": "Look for skew and outliers; the dashed line is the quantile the costs ask "
    "the model to predict.",
}
_DISTRIBUTION_CAPTIONS = {
    True: "Look for skew, spikes at one value (defaults, caps) and values that cannot happen.",
    False: "Look for rare levels, and for spellings of one level that should be merged.",
}


def _target_by_caption(frame: pd.DataFrame, column: str, contract: Contract) -> str:
    binned = _groups(frame[column]).binned
    task = contract.task.type
    if task == "regression":
        return (
            "The red line of means shows the trend; a bend or a step is worth a feature of its own."
            if binned
            else "Boxes at different heights mark levels the prediction should tell apart."
        )
    if task == "multiclass_classification":
        return (
            "Boxes that shift from class to class mark a feature that separates the classes."
            if binned
            else "Shares that change from bar to bar mark a feature that separates the classes."
        )
    return "A rate that moves with the feature carries signal; long whiskers rest on few records."


class _FileNames:
    """File names from column names: lower-case ASCII words joined by '-', each used once."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def png(self, stem: str) -> str:
        ascii_text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80] or "column"
        name, number = slug, 1
        while name in self._used:
            number += 1
            name = f"{slug}-{number}"
        self._used.add(name)
        return f"{name}.png"


def _report(
    frame: pd.DataFrame,
    contract: Contract,
    skipped: list[str],
    target_plots: list[_Plot],
    overview: list[_Plot],
    by_feature: dict[str, list[_Plot]],
) -> str:
    task, groups = contract.task, contract.fairness.sensitive_features
    has_target = bool(target_plots)
    sensitive = [column for column in groups if column in frame.columns]
    absent = [column for column in groups if column not in frame.columns]
    lines = [
        f"# Data exploration: {_text(contract.project.name)}",
        "",
        f"- Rows: {len(frame):,}",
        f"- Columns: {len(frame.columns)} ({len(by_feature)} features explored)",
        f"- Target: {_code(task.target)} ({task.type.replace('_', ' ')})"
        + ("" if has_target else " — not in this data, so no plot shows it"),
        "- Sensitive features: "
        + (", ".join(_code(column) for column in sensitive) or "none")
        + (f" (not in this data: {', '.join(_code(c) for c in absent)})" if absent else ""),
    ]
    if skipped:
        names = ", ".join(_code(column) for column in skipped)
        lines.append(f"- Not plotted, every value distinct like an identifier: {names}")
    lines += ["", "## Columns", "", *_stats_table(frame, contract, skipped), ""]
    if has_target:
        lines += ["## Target", "", *_figures(target_plots)]
    lines += ["## Overview", "", *_figures(overview)]
    if sensitive and has_target:
        lines += ["## Sensitive features", "", *_group_table(frame, contract, sensitive), ""]
    lines += ["## Features", ""]
    for column, plots in by_feature.items():
        lines += [f"### {_text(column)}", "", *_figures(plots)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _figures(plots: list[_Plot]) -> list[str]:
    lines: list[str] = []
    for plot in plots:
        lines += [f"![{_text(plot.title)}]({plot.file})", "", f"*{_text(plot.caption)}*", ""]
    return lines


def _stats_table(frame: pd.DataFrame, contract: Contract, skipped: list[str]) -> list[str]:
    lines = [
        "| column | kind | missing | distinct | mean | std | min | median | max | most common |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for column in frame.columns:
        series = frame[column]
        kind = "target" if column == contract.task.target else "feature"
        kind = "identifier" if column in skipped else kind
        missing = _pct(series.isna().mean())
        distinct = f"{series.nunique():,}"
        common = series.mode(dropna=True)
        most_common = "—" if common.empty else _text(_short(str(common.iloc[0])))
        if _is_numeric(series):
            most_common = "—" if common.empty else _number(float(common.iloc[0]))
            values = _finite(series)
            numbers = (
                [values.mean(), values.std(), values.min(), np.median(values), values.max()]
                if values.size
                else []
            )
            cells = [_number(float(value)) for value in numbers] or ["—"] * 5
            kind += ", numeric"
        else:
            cells = ["—"] * 5
            kind += ", categorical"
        row = [_code(column), kind, missing, distinct, *cells, most_common]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _group_table(frame: pd.DataFrame, contract: Contract, sensitive: list[str]) -> list[str]:
    """Records and target per group of each sensitive feature: where fairness checks start."""
    rows = _labelled(frame, contract)
    target = rows[contract.task.target]
    task = contract.task.type
    classes: list[str] = []
    if task == "regression":
        header, summary = f"mean {_text(contract.task.target)}", _finite_or_nan(target)
    elif task == "multiclass_classification":
        header, (summary, classes) = "class shares", _class_names(target, contract)
    else:
        header = f"{_text(_positive_name(contract))} rate"
        summary = _is_positive(target, contract).astype(float)
    lines = [
        f"| feature | group | records | share | {header} |",
        "|---|---|--:|--:|--:|",
    ]
    for column in sensitive:
        groups = _groups(rows[column])
        for code, label in enumerate(groups.labels):
            members = groups.codes == code
            count = int(members.sum())
            if task == "multiclass_classification":
                shares = summary[members].value_counts(normalize=True)
                value = ", ".join(
                    f"{_text(name)} {_pct(shares.get(name, 0.0), 0)}" for name in classes
                )
            else:
                value = _format_summary(summary[members], task)
            lines.append(
                f"| {_code(column)} | {_text(label)} | {count:,} | {_pct(count / len(rows))} "
                f"| {value} |"
            )
    return lines


def _format_summary(values: pd.Series, task: str) -> str:
    mean = values.mean()
    if pd.isna(mean):
        return "—"
    return _number(float(mean)) if task == "regression" else _pct(float(mean))


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _title(text: str) -> str:
    return _plain(text[:1].upper() + text[1:])


def _plain(text: str) -> str:
    """Text that matplotlib shows as it is: a '$' would otherwise start math."""
    return text.replace("$", r"\$")


def _tick(text: str) -> str:
    return _plain(_short(text))


def _pct(share: float, decimals: int = 1) -> str:
    return format(share, f".{decimals}%")


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!])")


def _text(text: str) -> str:
    """Text as Markdown shows it literally: on one line, special characters escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _code(text: str) -> str:
    """A column name in a code span, unless it holds a backtick or a bar that would break it."""
    flat = " ".join(text.split())
    return _text(flat) if "`" in flat or "|" in flat else f"`{flat}`"
