"""Validate on a Dask cluster: the one-process findings, from summaries merged in input order.

Each worker reads its partitions (see parts.py) and sums them up in pieces that merge exactly:
pandera's failures by column and check (a count and the first rows), missing values, the
counts of each text column's values, the counts of each numeric feature in the reference's PSI
bins. Quantiles, means and spreads need whole columns: the finite values of one numeric column
at a time are brought to the client, never the whole data. The findings are then judged and
logged by the same `data.validate.conclude` as the one-process run, so the statistics line,
the alerts and their order are the same.

Pandas guesses a CSV column's type chunk by chunk: a column read as numbers in one chunk and as
text in another (one bad value) is text for the whole file in the one-process run, so such
columns are read again as text everywhere before anything is judged.

A worker lost mid-run has its partitions run again elsewhere; a run that fails anyway logs
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from distributed import Client, Future
from distributed.scheduler import KilledWorker

from ..config import Contract
from ..data.collect import encode_target
from ..data.validate import (
    Failure,
    Findings,
    ValidationReport,
    bin_counts,
    build_schema,
    category_counts,
    category_psi,
    category_stats,
    conclude,
    counts_in_order,
    describe_failures,
    finite,
    has_values,
    is_number,
    merge_counts,
    merge_failures,
    number_stats,
    psi_cuts,
    psi_of_counts,
    schema_failures,
    text_as_categories,
)
from .cluster import ClusterError, in_order
from .parts import Part

NUMBER = "number"
TEXT = "text"


@dataclass(frozen=True)
class PartChecked:
    """What a worker found in one partition; its finite numbers stay there until asked for."""

    rows: int
    labelled: bool
    columns: tuple[str, ...]
    kinds: dict[str, frozenset[str]]
    failures: tuple[Failure, ...]
    missing: dict[str, int]
    counts: dict[str, dict[Any, int]]
    categorical: dict[str, bool]
    bins: dict[str, np.ndarray]
    numbers: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> PartChecked:
        """The partition's findings without its numbers, small enough to send to the client."""
        return replace(self, numbers={})


def validate_on_cluster(
    client: Client,
    parts: list[Part],
    contract: Contract,
    *,
    reference: pd.DataFrame | None,
    stats_log: Path,
    source: str,
    labelled: bool | None = None,
    progress: Callable[[int, int, int], None] = lambda _done, _total, _rows: None,
) -> ValidationReport:
    """Check parts against the schema and the contract's limits, as `data.validate.validate`.

    Args:
        client: A client of the cluster to run on.
        parts: The data's partitions (see parts.partitions), in input order.
        contract: The planning contract; data.max_missing_rate and data.drift_limit apply.
        reference: Data the model was built on, to measure drift against; None skips drift.
        stats_log: JSON-lines file that gets one line of statistics per run.
        source: Name of the data's origin, written to the log and the messages.
        labelled: Whether the data must carry the target; by default it is checked when present.
        progress: Called as partitions finish with (partitions done, partitions, rows read).

    Returns:
        What the run found, when nothing is wrong.

    Raises:
        DataAlert: After the statistics line was written, when any check failed.
        ClusterError: Workers died on a partition more often than Dask retries; nothing is logged.
    """
    cuts = {} if reference is None else _reference_cuts(reference)
    text = _label_columns(contract)
    futures: list[Future[PartChecked]] = []
    try:
        futures, found = _check(client, parts, contract, labelled, text, cuts, source, progress)
        mixed = mixed_columns(found)
        if mixed:
            # One-process pandas reads such a column as text from the start: do so everywhere.
            client.cancel(futures)
            text = (*text, *mixed)
            futures, found = _check(client, parts, contract, labelled, text, cuts, source, progress)
        findings = _merge(client, futures, found, contract, reference, cuts)
    except KilledWorker as error:
        raise workers_died(error, source, "validating", "nothing was logged") from None
    finally:
        client.cancel(futures)
    return conclude(findings, contract, stats_log=stats_log, source=source)


class _Read(Protocol):
    @property
    def kinds(self) -> dict[str, frozenset[str]]: ...


def mixed_columns(found: Sequence[_Read]) -> tuple[str, ...]:
    """Columns pandas read as numbers in some chunks and as text in others."""
    names = dict.fromkeys(name for part in found for name in part.kinds)
    return tuple(
        name
        for name in names
        if len(frozenset().union(*(part.kinds.get(name, frozenset()) for part in found))) > 1
    )


def workers_died(error: KilledWorker, source: str, doing: str, kept: str) -> ClusterError:
    """The one line for a partition whose workers died more often than Dask retries."""
    return ClusterError(
        f"{source}: Dask workers died while {doing} a partition, {error.allowed_failures + 1} "
        f"times; {kept}. A worker out of memory is stopped: give smaller partitions "
        "(--partition-size) or workers more memory"
    )


def _reference_cuts(reference: pd.DataFrame) -> dict[str, np.ndarray]:
    """The PSI bins of every numeric reference column with values, as the one-process run cuts."""
    return {
        str(name): psi_cuts(finite(reference[name]))
        for name in reference.columns
        if is_number(reference[name]) and has_values(reference[name])
    }


def _label_columns(contract: Contract) -> tuple[str, ...]:
    """Class labels such as "1" or "yes" stay text, as `data.collect.read_records` reads them."""
    return (contract.task.target,) if contract.task.type != "regression" else ()


def _check(
    client: Client,
    parts: list[Part],
    contract: Contract,
    labelled: bool | None,
    text: tuple[str, ...],
    cuts: dict[str, np.ndarray],
    source: str,
    progress: Callable[[int, int, int], None],
) -> tuple[list[Future[PartChecked]], list[PartChecked]]:
    """Check every partition on the cluster; the futures hold each one's numbers on a worker."""
    run = uuid.uuid4().hex
    futures = [
        client.submit(
            _check_partition,
            part,
            contract,
            labelled,
            text,
            cuts,
            source,
            key=f"validate-part-{index}-{run}",
        )
        for index, part in enumerate(parts)
    ]
    summaries = [client.submit(PartChecked.summary, future, pure=False) for future in futures]
    return futures, in_order(summaries, progress)


def _check_partition(
    part: Part,
    contract: Contract,
    labelled: bool | None,
    text: tuple[str, ...],
    cuts: dict[str, np.ndarray],
    source: str,
) -> PartChecked:
    """On a worker: what validate finds in one partition, in pieces that merge exactly."""
    frames, kinds = [], dict[str, set[str]]()
    for chunk in part.chunks(text):
        frame = encode_target(chunk, contract, source)
        for name in frame.columns:
            kinds.setdefault(str(name), set()).add(NUMBER if is_number(frame[name]) else TEXT)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    target = contract.task.target
    schema = build_schema(contract, target in frame.columns if labelled is None else labelled)
    frame = text_as_categories(frame, schema)
    columns = [str(name) for name in schema.columns if name in frame.columns]
    numeric = {name: is_number(frame[name]) for name in columns}
    return PartChecked(
        rows=len(frame),
        labelled=target in schema.columns,
        columns=tuple(columns),
        kinds={name: frozenset(found) for name, found in kinds.items()},
        failures=tuple(schema_failures(schema, frame)),
        missing={name: int(frame[name].isna().sum()) for name in columns},
        counts={name: counts_in_order(frame[name]) for name in columns if not numeric[name]},
        categorical={name: isinstance(frame[name].dtype, pd.CategoricalDtype) for name in columns},
        bins={
            name: bin_counts(finite(frame[name]), cuts[name])
            for name in columns
            if numeric[name] and name in cuts
        },
        numbers={name: finite(frame[name]) for name in columns if numeric[name]},
    )


def _numbers(part: PartChecked, name: str) -> np.ndarray:
    return part.numbers[name]


def _merge(
    client: Client,
    futures: list[Future[PartChecked]],
    found: list[PartChecked],
    contract: Contract,
    reference: pd.DataFrame | None,
    cuts: dict[str, np.ndarray],
) -> Findings:
    """The whole data's findings from its partitions', in input order."""
    first = found[0]
    schema = build_schema(contract, first.labelled)
    starts = np.cumsum([0, *(part.rows for part in found)]).tolist()
    rows = int(starts[-1])
    failures = merge_failures(
        schema, [(start, part.failures) for start, part in zip(starts, found, strict=False)]
    )
    columns = list(first.columns)
    missing = {name: sum(part.missing[name] for part in found) for name in columns}
    numeric = {name: name not in first.counts for name in columns}
    counts = {
        name: merge_counts(
            [part.counts[name] for part in found],
            categorical=any(part.categorical[name] for part in found),
        )
        for name in columns
        if not numeric[name]
    }
    stats: dict[str, dict[str, Any]] = {}
    for name in columns:
        if numeric[name]:
            # One column at a time: the client never holds more than one column's numbers.
            pieces = client.gather([client.submit(_numbers, f, name, pure=False) for f in futures])
            stats[name] = number_stats(np.concatenate(pieces), missing[name], rows)
        else:
            stats[name] = category_stats(counts[name], missing[name], rows)
    drift: dict[str, float] = {}
    if reference is not None:
        features = [name for name in columns if name != contract.task.target]
        for name in features:
            if name not in reference.columns or numeric[name] != is_number(reference[name]):
                continue
            expected = reference[name]
            if numeric[name]:
                actual = np.sum([part.bins[name] for part in found if name in part.bins], axis=0)
                if name in cuts and int(np.sum(actual)):
                    drift[name] = psi_of_counts(bin_counts(finite(expected), cuts[name]), actual)
            elif counts[name] and has_values(expected):
                drift[name] = category_psi(category_counts(expected), counts[name])
    return Findings(
        rows=rows,
        problems=describe_failures(failures),
        missing=missing,
        drift=drift,
        stats=stats,
    )
