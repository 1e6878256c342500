"""Monitor on a Dask cluster: the one-process drift report, from counts merged in input order.

The PSI bins are fixed by the training reference (quantile cuts of its numbers, its
categories), so each worker counts its partitions' logged predictions in them and the counts
add up to the whole window's exactly. Only the few columns the report plots are brought to the
client whole. The report is then built and written by the same `monitor.drift` functions as
the one-process run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from distributed import Client, Future
from distributed.scheduler import KilledWorker

from ..config import Contract
from ..data.transform import input_names
from ..data.validate import (
    bin_counts,
    category_counts,
    category_psi,
    counts_in_order,
    finite,
    has_values,
    is_number,
    merge_counts,
    psi_cuts,
    psi_of_counts,
)
from ..monitor.drift import (
    FEATURES_PLOTTED,
    MIN_WINDOW_ROWS,
    DriftReport,
    Window,
    check_window,
    drift_report,
    prediction_column,
    reference_version,
)
from .cluster import in_order
from .parts import Part
from .validate import NUMBER, TEXT, mixed_columns, workers_died

CREATED_AT = "created_at"


@dataclass(frozen=True)
class Counted:
    """One side's values in the reference's PSI bins: bin counts of numbers, or of categories."""

    numbers: np.ndarray | None
    categories: dict[Any, int]


@dataclass(frozen=True)
class PartMeasured:
    """What a worker counted in one partition of the window."""

    rows: int
    columns: tuple[str, ...]
    kinds: dict[str, frozenset[str]]
    features: dict[str, Counted]
    served: int
    prediction: Counted | None
    versions: dict[int, int]


def monitor_on_cluster(
    client: Client,
    parts: list[Part],
    reference: pd.DataFrame,
    contract: Contract,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    min_rows: int = MIN_WINDOW_ROWS,
) -> tuple[DriftReport, pd.DataFrame]:
    """Measure drift of logged predictions in parts, as `monitor.drift.monitor` does.

    Args:
        client: A client of the cluster to run on.
        parts: Partitions of logged predictions, as `FeedbackStore.predictions_frame` gives
            them, in time order.
        reference: The champion's training features, scored by the champion.
        contract: The planning contract; data.drift_limit is the limit.
        since: Start of the window; rows with an earlier created_at are left out.
        until: End of the window (excluded).
        min_rows: Fewest logged predictions worth measuring.

    Returns:
        The report, and the window's columns the report plots (for `write_report`).

    Raises:
        TooFewPredictionsError: The window holds fewer than min_rows predictions.
        DriftError: No feature of the window is comparable with the reference.
        ClusterError: Workers died on a partition more often than Dask retries.
    """
    bins = _bins(reference, contract)
    futures: list[Future[PartMeasured]] = []
    text: tuple[str, ...] = ()
    window = (since, until)
    try:
        futures, found = _measure(client, parts, bins, contract, reference, window, text)
        mixed = mixed_columns(found)
        if mixed:
            client.cancel(futures)
            text = mixed
            futures, found = _measure(client, parts, bins, contract, reference, window, text)
        rows = sum(part.rows for part in found)
        check_window(rows, min_rows)
        columns = found[0].columns
        features = _feature_psi(found, reference, columns)
        shift = _prediction_psi(found, reference, contract, min_rows)
        versions: dict[int, int] = {}
        for part in found:
            for version, count in part.versions.items():
                versions[version] = versions.get(version, 0) + count
        report = drift_report(
            Window(rows, columns, dict(sorted(versions.items()))),
            reference,
            contract,
            features,
            shift,
        )
        plotted = _plotted(client, parts, report, contract, columns, window, text)
    except KilledWorker as error:
        raise workers_died(
            error, "the logged predictions", "monitoring", "no report was written"
        ) from None
    finally:
        client.cancel(futures)
    return report, plotted


def _bins(reference: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """The quantile cuts of every numeric reference column the measures compare."""
    names = [*input_names(), prediction_column(contract)]
    return {
        name: psi_cuts(finite(reference[name]))
        for name in names
        if name in reference.columns and is_number(reference[name]) and has_values(reference[name])
    }


def _measure(
    client: Client,
    parts: list[Part],
    bins: dict[str, np.ndarray],
    contract: Contract,
    reference: pd.DataFrame,
    window: tuple[datetime | None, datetime | None],
    text: tuple[str, ...],
) -> tuple[list[Future[PartMeasured]], list[PartMeasured]]:
    run = uuid.uuid4().hex
    version = reference_version(reference)
    futures = [
        client.submit(
            _measure_partition,
            part,
            bins,
            contract,
            version,
            window,
            text,
            key=f"monitor-part-{index}-{run}",
        )
        for index, part in enumerate(parts)
    ]
    return futures, in_order(futures, lambda _done, _total, _rows: None)


def _read(
    part: Part, window: tuple[datetime | None, datetime | None], text: tuple[str, ...]
) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """A partition's logged predictions within the window, and the kinds pandas read per column."""
    frames, kinds = [], dict[str, set[str]]()
    for chunk in part.chunks(text):
        for name in chunk.columns:
            kinds.setdefault(str(name), set()).add(NUMBER if is_number(chunk[name]) else TEXT)
        frames.append(chunk)
    frame = pd.concat(frames, ignore_index=True)
    since, until = window
    if CREATED_AT in frame.columns and (since is not None or until is not None):
        created = pd.to_datetime(frame[CREATED_AT], utc=True)
        keep = pd.Series(True, index=frame.index)
        if since is not None:
            keep &= created >= since
        if until is not None:
            keep &= created < until
        frame = frame[keep].reset_index(drop=True)
    return frame, kinds


def _count(series: pd.Series, cuts: np.ndarray | None) -> Counted:
    if is_number(series) and cuts is not None:
        return Counted(bin_counts(finite(series), cuts), {})
    return Counted(None, counts_in_order(series))


def _measure_partition(
    part: Part,
    bins: dict[str, np.ndarray],
    contract: Contract,
    version: int | None,
    window: tuple[datetime | None, datetime | None],
    text: tuple[str, ...],
) -> PartMeasured:
    """On a worker: one partition's counts in the reference's bins."""
    frame, kinds = _read(part, window, text)
    logged = [name for name in input_names() if name in frame.columns]
    served = frame
    if version is not None and "model_version" in frame.columns:
        served = frame[frame["model_version"] == version]
    column = prediction_column(contract)
    versions: dict[int, int] = {}
    if "model_version" in frame.columns:
        counts = frame["model_version"].astype("int64").value_counts()
        versions = dict(zip(counts.index.tolist(), counts.tolist(), strict=True))
    return PartMeasured(
        rows=len(frame),
        columns=tuple(str(name) for name in frame.columns),
        kinds={name: frozenset(found) for name, found in kinds.items()},
        features={name: _count(frame[name], bins.get(name)) for name in logged},
        served=len(served),
        prediction=_count(served[column], bins.get(column)) if column in served.columns else None,
        versions=versions,
    )


def _psi(reference: pd.Series, parts: list[Counted], cuts: np.ndarray | None) -> float | None:
    """The PSI of the merged counts against the reference; None when they are not comparable."""
    numbers = [part.numbers for part in parts if part.numbers is not None]
    numeric = [part.numbers is not None for part in parts]
    if all(numeric) and cuts is not None:
        actual = np.sum(numbers, axis=0)
        if not int(np.sum(actual)):
            return None
        return psi_of_counts(bin_counts(finite(reference), cuts), actual)
    if any(numeric) or is_number(reference):
        return None
    counts = merge_counts([part.categories for part in parts], categorical=False)
    if not counts or not has_values(reference):
        return None
    return category_psi(category_counts(reference), counts)


def _feature_psi(
    found: list[PartMeasured], reference: pd.DataFrame, columns: tuple[str, ...]
) -> dict[str, float]:
    """As `data.validate.feature_psi`: features whose type and values both sides share."""
    drift: dict[str, float] = {}
    for name in input_names():
        if name not in columns or name not in reference.columns:
            continue
        numeric = all(part.features[name].numbers is not None for part in found)
        if numeric != is_number(reference[name]):
            continue
        cuts = (
            psi_cuts(finite(reference[name])) if numeric and has_values(reference[name]) else None
        )
        value = _psi(reference[name], [part.features[name] for part in found], cuts)
        if value is not None:
            drift[name] = value
    return drift


def _prediction_psi(
    found: list[PartMeasured], reference: pd.DataFrame, contract: Contract, min_rows: int
) -> float | None:
    """The PSI of the champion's predictions in the window, when it made min_rows of them."""
    column = prediction_column(contract)
    counted = [part.prediction for part in found if part.prediction is not None]
    served = sum(part.served for part in found)
    if served < min_rows or len(counted) < len(found) or column not in reference.columns:
        return None
    expected = reference[column]
    numeric = all(part.numbers is not None for part in counted)
    cuts = psi_cuts(finite(expected)) if numeric and has_values(expected) else None
    value = _psi(expected, counted, cuts)
    if value is None:
        raise ValueError("psi needs values on both sides")
    return value


def _plotted(
    client: Client,
    parts: list[Part],
    report: DriftReport,
    contract: Contract,
    columns: tuple[str, ...],
    window: tuple[datetime | None, datetime | None],
    text: tuple[str, ...],
) -> pd.DataFrame:
    """The window's columns that the report plots, whole and in order; nothing else."""
    column = prediction_column(contract)
    names = list(report.features)[:FEATURES_PLOTTED]
    if column in columns:
        names.append(column)
    futures = [client.submit(_columns, part, names, window, text, pure=False) for part in parts]
    pieces: list[pd.DataFrame] = client.gather(futures)
    return pd.concat(pieces, ignore_index=True)


def _columns(
    part: Part,
    names: list[str],
    window: tuple[datetime | None, datetime | None],
    text: tuple[str, ...],
) -> pd.DataFrame:
    frame, _ = _read(part, window, text)
    plotted: pd.DataFrame = frame[names]
    return plotted
