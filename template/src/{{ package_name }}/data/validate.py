"""Validate: check data against the API's record schema, log its statistics, watch for drift."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ..app.records import Record
from ..config import Contract
from ..errors import ProjectError
from .columns import value_text

QUANTILES = (5, 25, 50, 75, 95)
# Keeps one stats line short even when a text column holds free text instead of categories.
MAX_LOGGED_CATEGORIES = 50
# Stands in for an empty bin, so that a category seen on one side only gives a large, finite PSI.
PSI_EPSILON = 1e-4
ROWS_NAMED = 5


class DataAlert(ProjectError):  # noqa: N818 - the lifecycle calls it an alert, not an error
    """Data broke its schema, missed too many values or drifted past the contract's limits."""

    def __init__(self, report: ValidationReport) -> None:
        """Keep the report; the message lists one problem per line."""
        super().__init__(report.summary())
        self.report = report


@dataclass(frozen=True)
class ValidationReport:
    """What one validation run found."""

    source: str
    rows: int
    missing: Mapping[str, float]
    psi: Mapping[str, float]
    alerts: tuple[str, ...]

    def summary(self) -> str:
        """One line when the data is fine; otherwise a header and one line per alert."""
        if self.alerts:
            count = len(self.alerts)
            problems = "problem" if count == 1 else "problems"
            return "\n".join([f"{self.source}: {count} data {problems}", *self.alerts])
        parts = [f"{self.source}: {self.rows} rows match the schema"]
        column = max(self.missing, key=self.missing.__getitem__, default=None)
        if column is None or not self.missing[column]:
            parts.append("no missing values")
        else:
            parts.append(f"at most {_percent(self.missing[column])} missing ({column!r})")
        if self.psi:
            column = max(self.psi, key=self.psi.__getitem__)
            parts.append(f"highest PSI {self.psi[column]:.3f} ({column!r})")
        else:
            parts.append("no drift check")
        return ", ".join(parts)


def _percent(share: float) -> str:
    return format(share, ".1%")


def build_schema(contract: Contract, labelled: bool) -> pa.DataFrameSchema:
    """The data's schema, derived from the API's Record so that both accept the same values.

    Numbers are checked as floats, so that a column with missing values still passes as
    integers when every value present is whole; the missing rate is judged separately.

    Args:
        contract: The planning contract; it names the target and its classes.
        labelled: Whether the data must carry the target column.

    Returns:
        A pandera schema; extra columns are allowed and left unchecked.
    """
    definition = Record.model_json_schema()
    required = set(definition.get("required", []))
    columns = {
        name: _feature_column(_without_null(field), required=name in required)
        for name, field in definition["properties"].items()
    }
    if labelled:
        columns[contract.task.target] = _target_column(contract)
    return pa.DataFrameSchema(columns, strict=False, ordered=False)


def _without_null(field: dict[str, Any]) -> dict[str, Any]:
    """The type of an optional field (`int | None`) without its null branch."""
    branches = [branch for branch in field.get("anyOf", []) if branch.get("type") != "null"]
    return {**field, **branches[0]} if len(branches) == 1 else field


def _feature_column(field: dict[str, Any], *, required: bool) -> pa.Column:
    if "enum" in field or "const" in field:
        allowed = field.get("enum", [field.get("const")])
        return pa.Column(checks=_one_of(allowed, as_text=True), nullable=True, required=required)
    if field.get("type") in ("integer", "number"):
        checks = [
            _within(
                field.get("minimum", field.get("exclusiveMinimum", -math.inf)),
                field.get("maximum", field.get("exclusiveMaximum", math.inf)),
                low_open="exclusiveMinimum" in field,
                high_open="exclusiveMaximum" in field,
            )
        ]
        if field["type"] == "integer":
            checks.append(_whole())
        return pa.Column("float64", checks=checks, coerce=True, nullable=True, required=required)
    if field.get("type") == "boolean":
        return pa.Column(checks=_one_of([True, False]), nullable=True, required=required)
    return pa.Column(nullable=True, required=required)


def _target_column(contract: Contract) -> pa.Column:
    task = contract.task
    if task.type == "regression":
        return pa.Column("float64", checks=_within(-math.inf, math.inf), coerce=True)
    if task.type == "multiclass_classification":
        return pa.Column(checks=_one_of(task.classes or [], as_text=True))
    return pa.Column(checks=_one_of([0, 1]))


def _one_of(allowed: Sequence[object], *, as_text: bool = False) -> pa.Check:
    texts = [value_text(value) for value in allowed]

    def check(series: pd.Series) -> pd.Series:
        # As text, values match however the file typed them: categories 1, 2, 3 read as text
        # (a column with one bad value) or as floats (a column with gaps), classes read as numbers.
        if as_text:
            return series.map(value_text, na_action="ignore").isin(texts)
        return series.isin(allowed)

    return pa.Check(check, name="one_of", error=f"not one of {list(allowed)}")


def _within(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        above = series > low if low_open else series >= low
        below = series < high if high_open else series <= high
        finite: pd.Series = np.isfinite(series)
        return above & below & finite

    if math.isinf(low) and math.isinf(high):
        return pa.Check(check, name="finite", error="not a finite number")
    interval = f"{'(' if low_open else '['}{_plain(low)}, {_plain(high)}{')' if high_open else ']'}"
    return pa.Check(check, name="within", error=f"outside {interval}")


def _plain(bound: float) -> str:
    """A bound as people write it: 1000000 rather than 1e+06 or 1000000.0."""
    return str(int(bound)) if math.isfinite(bound) and float(bound).is_integer() else str(bound)


def _whole() -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        # Infinite values already fail the range check; they are not reported twice.
        finite: pd.Series = np.isfinite(series)
        return ~finite | (series % 1 == 0)

    return pa.Check(check, name="whole", error="not a whole number")


def schema_problems(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> list[str]:
    """Every way frame breaks schema, one line per column and check.

    Each line names the column, the rule, how many rows break it and the first few of them
    (index labels of frame), never the values themselves, which may be personal data.
    """
    return describe_failures(schema_failures(schema, frame))


def schema_failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> list[Failure]:
    """Every way frame breaks schema, by column and check (see schema_problems)."""
    try:
        # pandera's own defensive copy is deep; a shallow one keeps frame's columns as they are.
        schema.validate(frame.copy(deep=False), lazy=True, inplace=True)
    except SchemaErrors as errors:
        return failures(errors.failure_cases)
    return []


def row_problems(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> dict[Hashable, dict[str, str]]:
    """Every row of frame that breaks schema: index label -> column -> the rule it breaks.

    Rules read as in schema_problems ("missing", "not a number", "outside [0, 130]"), never
    the values. Problems of a whole column (a missing column) name no row and are left to
    schema_problems.
    """
    problems, uncoercible = _row_failures(schema, frame)
    if uncoercible:
        # pandera skips a column's checks when a value in it is not a number: check the rest.
        more, _ = _row_failures(schema, frame.drop(index=uncoercible))
        for row, found in more.items():
            problems.setdefault(row, {}).update(found)
    return problems


def _row_failures(
    schema: pa.DataFrameSchema, frame: pd.DataFrame
) -> tuple[dict[Hashable, dict[str, str]], list[Hashable]]:
    """Problems by row and column, and the rows holding a value that is not a number."""
    try:
        schema.validate(frame.copy(deep=False), lazy=True, inplace=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases.dropna(subset=["index"])
    else:
        return {}, []
    coercion = cases["check"].astype(str).str.startswith("coerce_dtype")
    # A value that is not a number is reported as such, not again for its range.
    cases = pd.concat([cases[coercion], cases[~coercion]])
    problems: dict[Hashable, dict[str, str]] = {}
    for row, column, check in zip(cases["index"], cases["column"], cases["check"], strict=True):
        problems.setdefault(row, {}).setdefault(str(column), _rule(str(check)))
    return problems, list(pd.unique(cases.loc[coercion, "index"]))


@dataclass(frozen=True)
class Failure:
    """One column's rows breaking one check: how many, the first few, and a failure case.

    Failures of parts of the data merge into the failures of the whole (see merge_failures).
    """

    column: str
    check: str
    count: int
    rows: tuple[Any, ...]
    cases: tuple[str, ...]


def failures(cases: pd.DataFrame) -> list[Failure]:
    """The failures among pandera's failure cases, by column and check, in pandera's order."""
    found: list[Failure] = []
    checks = cases["check"].astype(str)
    for key, group in cases.groupby([cases["column"].fillna(""), checks], sort=False):
        column, check = (str(part) for part in key)
        rows = pd.Index(group["index"].dropna().unique())
        if pd.api.types.is_numeric_dtype(rows):
            rows = rows.sort_values()
        named = tuple(rows[:ROWS_NAMED].tolist())
        found.append(
            Failure(column, check, rows.size, named, tuple(map(str, group["failure_case"])))
        )
    return found


def merge_failures(
    schema: pa.DataFrameSchema, parts: Sequence[tuple[int, Sequence[Failure]]]
) -> list[Failure]:
    """The failures of consecutive parts of the data, as the whole data's, in pandera's order.

    Args:
        schema: The schema the parts were checked against.
        parts: Each part's first row (its rows numbered from 0 within the part are offset by it)
            and its failures.
    """
    merged: dict[tuple[str, str], Failure] = {}
    for first_row, found in parts:
        for failure in found:
            rows = tuple(first_row + row for row in failure.rows)
            earlier = merged.get((failure.column, failure.check))
            if earlier is None:
                merged[failure.column, failure.check] = Failure(
                    failure.column, failure.check, failure.count, rows, failure.cases
                )
                continue
            merged[failure.column, failure.check] = Failure(
                failure.column,
                failure.check,
                earlier.count + failure.count,
                (*earlier.rows, *rows)[:ROWS_NAMED],
                earlier.cases,
            )
    return sorted(merged.values(), key=_pandera_order(schema))


def _pandera_order(schema: pa.DataFrameSchema) -> Any:
    """Sort key of failures as pandera lists them: missing columns, types, then column by column."""
    names = list(schema.columns)

    def key(failure: Failure) -> tuple[int, int, int]:
        if failure.check == "column_in_dataframe":
            return (0, 0, 0)
        position = names.index(failure.column) if failure.column in names else len(names)
        if failure.check.startswith("coerce_dtype"):
            return (1, position, 0)
        if failure.check.startswith("dtype("):
            return (2, position, 0)
        if failure.check == "not_nullable":
            return (2, position, 1)
        errors = (
            []
            if position == len(names)
            else [c.error for c in schema.columns[failure.column].checks]
        )
        return (
            2,
            position,
            2 + (errors.index(failure.check) if failure.check in errors else len(errors)),
        )

    return key


def describe_failures(found: Sequence[Failure]) -> list[str]:
    """One line per column and check; a column that is not numeric only once, as such."""
    uncoercible = {failure.column for failure in found if failure.check.startswith("coerce_dtype")}
    problems: list[str] = []
    for failure in found:
        column, check = failure.column, failure.check
        if check == "column_in_dataframe":
            problems.extend(f"{name!r} column is missing" for name in failure.cases)
            continue
        if column in uncoercible and not check.startswith("coerce_dtype"):
            continue  # checks on a column that is not numeric fail for the same rows again
        if failure.count == 0:
            problems.append(f"{column!r} fails {check}: {failure.cases[0]}")
            continue
        named = ", ".join(str(row) for row in failure.rows)
        more = ", ..." if failure.count > ROWS_NAMED else ""
        plural = "row" if failure.count == 1 else "rows"
        problems.append(f"{column!r} {_rule(check)} in {failure.count} {plural}: {named}{more}")
    return problems


def _describe_failures(cases: pd.DataFrame) -> list[str]:
    return describe_failures(failures(cases))


def _rule(check: str) -> str:
    if check.startswith("coerce_dtype"):
        return "not a number"
    if check == "not_nullable":
        return "missing"
    return check


def psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    """Population stability index of current against reference.

    Numbers are cut into bins at the reference's quantiles; anything else is compared by
    category, a category the reference never had counting as one more bin. Missing and
    infinite values are left out: the missing rate is watched on its own.

    Args:
        reference: Values the model was built on.
        current: Values to compare with them.
        bins: Number of quantile bins for numbers (fewer when the reference has ties).

    Returns:
        0 for identical distributions; above 0.2 is commonly read as a real shift.

    Raises:
        ValueError: Fewer than 2 bins, or a side with no values to compare.
    """
    if is_number(reference) and is_number(current):
        expected, actual = finite(reference), finite(current)
        if expected.size == 0 or actual.size == 0:
            raise ValueError("psi needs values on both sides")
        cuts = psi_cuts(expected, bins)
        return psi_of_counts(bin_counts(expected, cuts), bin_counts(actual, cuts))
    return category_psi(category_counts(reference), category_counts(current))


def psi_cuts(expected: np.ndarray, bins: int = 10) -> np.ndarray:
    """Where psi cuts numbers into bins: at the quantiles of the reference's finite values."""
    if bins < 2:
        raise ValueError(f"psi needs at least 2 bins, got {bins}")
    cuts: np.ndarray = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    return cuts


def category_psi(
    expected_by_category: Mapping[Any, int], actual_by_category: Mapping[Any, int]
) -> float:
    """The PSI of categories counted on each side, most frequent first."""
    if not expected_by_category or not actual_by_category:
        raise ValueError("psi needs values on both sides")
    new = [category for category in actual_by_category if category not in expected_by_category]
    categories = [*expected_by_category, *new]
    expected_counts = np.array([expected_by_category.get(c, 0) for c in categories])
    actual_counts = np.array([actual_by_category.get(c, 0) for c in categories])
    return psi_of_counts(expected_counts, actual_counts)


def psi_of_counts(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    """The PSI of two sides counted in the same bins."""
    expected_share = np.maximum(expected_counts / expected_counts.sum(), PSI_EPSILON)
    actual_share = np.maximum(actual_counts / actual_counts.sum(), PSI_EPSILON)
    return float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))


def bin_counts(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """How many values fall below the first cut, on it, between it and the next, ..., above.

    A value equal to a cut has a bin of its own. Real columns are often mostly one value (the
    zeros of a count, a cap, a flag that is mostly 1): every quantile is then that value, and
    it is the only cut. A bin of its own keeps a shift away from it visible on either side;
    counted with the values below it or above it, one side would share its bin and psi would
    stay 0 whatever happened there. Between cuts nothing changes: the bins on the cuts of a
    continuous column hold next to nothing.
    """
    below, up_to = np.searchsorted(cuts, values, "left"), np.searchsorted(cuts, values, "right")
    places = below + up_to
    counts: np.ndarray = np.bincount(places, minlength=2 * cuts.size + 1)
    return counts


def category_counts(series: pd.Series) -> dict[Any, int]:
    """How often each value occurs, most frequent first, leaving out unused categories."""
    return {value: int(count) for value, count in series.value_counts().items() if count}


def counts_in_order(series: pd.Series) -> dict[Any, int]:
    """How often each value occurs, in the order of the values' first appearance.

    The counts of consecutive parts merge (merge_counts) into the whole's `value_counts`.
    """
    return {value: int(count) for value, count in series.value_counts(sort=False).items() if count}


def merge_counts(parts: Sequence[Mapping[Any, int]], *, categorical: bool) -> dict[Any, int]:
    """The counts of consecutive parts as `value_counts` gives the whole's: most frequent first.

    Ties keep pandas' order: the categories' order (sorted) for a categorical column, else the
    order of first appearance.
    """
    total: dict[Any, int] = {}
    for counts in parts:
        for value, count in counts.items():
            total[value] = total.get(value, 0) + count
    values = sorted(total) if categorical else list(total)
    return {value: total[value] for value in sorted(values, key=lambda v: -total[v])}


def is_number(series: pd.Series) -> bool:
    """Whether series holds numbers (booleans are compared as categories)."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def finite(series: pd.Series) -> np.ndarray:
    """The finite values of a numeric series, as floats, in order."""
    values: np.ndarray = series.to_numpy(dtype="float64", na_value=np.nan)
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def column_stats(series: pd.Series) -> dict[str, Any]:
    """Missing rate, and either the spread of a numeric column or a text column's categories."""
    missing = int(series.isna().sum())
    if is_number(series):
        return number_stats(finite(series), missing, len(series))
    return category_stats(category_counts(series), missing, len(series))


def number_stats(values: np.ndarray, missing: int, rows: int) -> dict[str, Any]:
    """column_stats of a numeric column from its finite values and its count of missing ones."""
    stats: dict[str, Any] = {"missing_rate": _rounded(missing / rows) if rows else None}
    if values.size:
        stats.update(
            min=_rounded(values.min()),
            max=_rounded(values.max()),
            mean=_rounded(values.mean()),
            std=_rounded(values.std(ddof=1)) if values.size > 1 else None,
            quantiles=dict(
                zip(
                    [str(q) for q in QUANTILES],
                    [_rounded(v) for v in np.quantile(values, np.array(QUANTILES) / 100)],
                    strict=True,
                )
            ),
        )
    return stats


def category_stats(counts: Mapping[Any, int], missing: int, rows: int) -> dict[str, Any]:
    """column_stats of a text column from its counts by value, most frequent first."""
    stats: dict[str, Any] = {"missing_rate": _rounded(missing / rows) if rows else None}
    logged = list(counts.items())[:MAX_LOGGED_CATEGORIES]
    present = sum(counts.values())
    stats["frequencies"] = {str(value): _rounded(count / present) for value, count in logged}
    if len(counts) > MAX_LOGGED_CATEGORIES:
        stats["other_categories"] = len(counts) - MAX_LOGGED_CATEGORIES
    return stats


def _rounded(value: float) -> float | None:
    """A JSON-safe number: 6 significant digits, None for NaN or infinity."""
    number = float(value)
    return float(f"{number:.6g}") if math.isfinite(number) else None


def append_stats(stats_log: Path, line: Mapping[str, Any]) -> None:
    """Append one JSON line to stats_log in a single write, synced to disk; older lines stay."""
    text = json.dumps(line, allow_nan=False, ensure_ascii=False)
    stats_log.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(stats_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # A run killed mid-write may have left a partial line: start on a fresh one.
        if os.fstat(descriptor).st_size and not _ends_with_newline(stats_log):
            text = "\n" + text
        os.write(descriptor, (text + "\n").encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as stream:
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) == b"\n"


def validate(
    frame: pd.DataFrame,
    contract: Contract,
    *,
    reference: pd.DataFrame | None,
    stats_log: Path,
    source: str,
    labelled: bool | None = None,
) -> ValidationReport:
    """Check frame against the schema and the contract's limits, logging its statistics first.

    Args:
        frame: The data to check.
        contract: The planning contract; data.max_missing_rate and data.drift_limit apply.
        reference: Data the model was built on, to measure drift against; None skips drift.
        stats_log: JSON-lines file that gets one line of statistics per run.
        source: Name of the data's origin (a file name), written to the log and the messages.
        labelled: Whether frame must carry the target; by default it is checked when present.

    Returns:
        What the run found, when nothing is wrong.

    Raises:
        DataAlert: After the statistics line was written, when any check failed; its message
            has one line per problem.
    """
    target = contract.task.target
    schema = build_schema(contract, target in frame.columns if labelled is None else labelled)
    frame = text_as_categories(frame, schema)
    columns = [name for name in schema.columns if name in frame.columns]
    features = [name for name in columns if name != target]
    return conclude(
        Findings(
            rows=len(frame),
            problems=schema_problems(schema, frame),
            missing={name: int(frame[name].isna().sum()) for name in columns},
            drift={} if reference is None else feature_psi(frame, reference, features),
            stats={name: column_stats(frame[name]) for name in columns},
        ),
        contract,
        stats_log=stats_log,
        source=source,
    )


@dataclass(frozen=True)
class Findings:
    """What the checks of one data set found, before it is judged against the contract."""

    rows: int
    problems: list[str]
    missing: dict[str, int]
    drift: dict[str, float]
    stats: dict[str, dict[str, Any]]


def conclude(
    findings: Findings, contract: Contract, *, stats_log: Path, source: str
) -> ValidationReport:
    """Judge findings against the contract's limits, log them, and raise DataAlert if any failed."""
    alerts = [f"schema: {problem}" for problem in findings.problems]
    if not findings.rows:
        alerts.append("schema: no rows")
    missing = {
        name: float(count) / max(findings.rows, 1) for name, count in findings.missing.items()
    }
    limit = contract.data.max_missing_rate
    alerts += [
        f"missing: {name!r} {_percent(rate)} missing > limit {_percent(limit)}"
        for name, rate in missing.items()
        if rate > limit
    ]
    alerts += [
        f"drift: {name!r} PSI {value:.2f} > limit {contract.data.drift_limit:g}"
        for name, value in findings.drift.items()
        if value > contract.data.drift_limit
    ]
    report = ValidationReport(source, findings.rows, missing, findings.drift, tuple(alerts))
    append_stats(
        stats_log,
        {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": source,
            "rows": findings.rows,
            "columns": findings.stats,
            "psi": {name: _rounded(value) for name, value in findings.drift.items()},
            "alerts": list(alerts),
        },
    )
    if alerts:
        raise DataAlert(report)
    return report


def text_as_categories(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Frame with the text columns the schema compares to fixed values turned into categories.

    Pandas scans Python strings once to build the categories; every later count, membership and
    missing-value check on them is then nearly free.
    """
    text = [
        name
        for name, column in schema.columns.items()
        if column.dtype is None
        and name in frame.columns
        and (pd.api.types.is_string_dtype(frame[name]) or pd.api.types.is_object_dtype(frame[name]))
    ]
    return frame.astype(dict.fromkeys(text, "category")) if text else frame


def feature_psi(
    frame: pd.DataFrame, reference: pd.DataFrame, features: Sequence[str]
) -> dict[str, float]:
    """PSI of each feature both frames hold in comparable form.

    A feature whose type changed, or with no values on one side, is left to the schema and
    missing-rate checks, which name its rows.
    """
    drift = {}
    for name in features:
        if name not in reference.columns:
            continue
        current, expected = frame[name], reference[name]
        if is_number(current) != is_number(expected):
            continue
        if has_values(current) and has_values(expected):
            drift[name] = psi(expected, current)
    return drift


def has_values(series: pd.Series) -> bool:
    """Whether series holds anything psi can compare: a finite number or a category."""
    return bool(finite(series).size) if is_number(series) else bool(series.notna().any())
