"""Baseline rules chosen from data: the source text of the rules block in `model/baseline.py`.

Standard library only, and no imports of the project's own modules: the post-copy task loads
this file by its path in Copier's interpreter (which has no pandas or numpy), and the project's
command line imports it like any module. Given a bounded sample of rows (values as a CSV reader
gives them, or Python values; "" and None are missing), `rules_block` writes the Python source
that goes between the baseline's markers, each rule with a comment giving the numbers that
chose it; `replace_block` puts it into the baseline file's text. Column names are written as
string literals, so any name round-trips; the output passes the project's ruff settings.

How rules are chosen, per task:

- binary classification: up to three conditions (a number at or above, or below, one of its
  deciles; or a category) on distinct columns, picked one by one for the clearest rise in the
  positive rate among the rows the earlier rules leave out, each firing on at least 5% of rows;
  a rule's weight is its rise in the positive rate over the sum of the rises;
- multiclass classification: points per unit of up to three numbers or per category of a
  column, fitted by least squares to the class order and picked one by one for the variance of
  the order they explain; cut points give each class its share of rows;
- regression: a robust (Theil-Sen) line on the number with the strongest rank correlation, and
  each category's median error on the column that lowers the typical error most;
- anomaly detection: robust z-scores (median, MAD x 1.4826) of the numbers; with labels, the
  direction (high, low or far) and the columns that set anomalies apart, and the score curve.

Sensitive columns are left to the bias gate: the callers pass `rule_inputs` of the schema.
Without labels, binary and multiclass rules cannot be chosen and the block is neutral; the
anomaly block scores every number far from its median; regression predicts a constant.
"""

from __future__ import annotations

import ast
import bisect
import math
import operator
import random
import textwrap
import unicodedata
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol, TypeVar

START_MARKER = "# --- Edit the rules here"
END_MARKER = "# --- End of rules."
TASKS = ("binary_classification", "multiclass_classification", "regression", "anomaly_detection")
LINE_LENGTH = 100
MAX_ROWS = 20_000  # a larger sample is thinned evenly: rules need proportions, not every row
MIN_SUPPORT = 0.05  # a rule fires on at least this share of rows ...
MIN_ROWS = 10  # ... and on at least this many
MAX_RULES = 3
MIN_Z = 2.5  # a binary rule's rise in the positive rate must be this clear (two-proportion z)
MIN_GAIN = 0.02  # a points term must explain this share of the class order's variance
MIN_ERROR_DROP = 0.02  # a regression rule must lower the typical error by this share
MIN_RANK_CORRELATION = 0.1
MIN_AUC = 0.6  # an anomaly signal must set anomalies apart at least this well
MAX_SIGNALS = 8
MAX_CATEGORIES = 30  # a table of amounts per category stays readable up to this many
MAD_TO_SIGMA = 1.4826
NAME_SHOWN = 40  # characters of a column name quoted in a comment


class _Input(Protocol):
    @property
    def role(self) -> str: ...


InputT = TypeVar("InputT", bound=_Input)


def rule_inputs(inputs: Sequence[InputT]) -> list[InputT]:
    """The inputs rules may use: all but the sensitive ones, unless only sensitive ones exist.

    The bias gate compares the groups of a sensitive column, so a baseline that gave a group
    its own points would fail the gate it is judged by (and the behavioural tests, which hold
    such columns at each record's own value, would see those points outweigh a clear case).
    """
    unaware = [column for column in inputs if column.role != "sensitive"]
    return unaware or list(inputs)


class RulesError(ValueError):
    """The rules cannot be written: an unknown task, or the baseline file lost its markers."""


class _Sample(NamedTuple):
    """The rows' inputs parsed once: numbers as floats, categories as their text, None missing."""

    rows: int
    numbers: dict[str, list[float | None]]
    categories: dict[str, list[str | None]]


def rules_block(
    task: str,
    rows: Sequence[Mapping[str, object]],
    *,
    target: str,
    numeric: Sequence[str],
    categorical: Mapping[str, Sequence[object]],
    target_values: Sequence[object] = (),
    positive: object | None = None,
    decision: float | None = None,
    class_order: bool = True,
) -> str:
    """The source of the baseline's rules block chosen from rows, ending in a newline.

    Args:
        task: The contract's task type (one of TASKS).
        rows: A sample of the data, one mapping per row from column name to value; a value
            that is "" or None, or a row without the column, is missing.
        target: The target column's name (regression: a number per row; else a label).
        numeric: The numeric input columns.
        categorical: Each categorical input column with its categories as in the data.
        target_values: Binary classification and anomaly detection: (negative, positive) as
            in the data; multiclass classification: the classes, least severe first.
        positive: The positive value (default: the last of target_values).
        decision: The decision threshold (binary, anomaly) or the cost quantile (regression);
            only quoted in comments, since the baseline reads it from the contract.
        class_order: Multiclass classification: whether the rules may put the classes in the
            order the data gives them (CLASS_ORDER) when that decides more rows right than the
            contract's order; False for a baseline file that does not read CLASS_ORDER.

    Returns:
        Python source for the lines between the baseline's markers.

    Raises:
        RulesError: An unknown task.
    """
    if task not in TASKS:
        raise RulesError(f"unknown task type {task!r}: expected one of {', '.join(TASKS)}")
    if len(rows) > MAX_ROWS:
        step = len(rows) / MAX_ROWS
        rows = [rows[int(index * step)] for index in range(MAX_ROWS)]
    sample = _parse(rows, numeric, categorical)
    values = list(target_values)
    if task == "regression":
        outcome = _numbers([row.get(target) for row in rows])
        return _regression(sample, target, outcome, decision)
    if task == "multiclass_classification":
        order = {_label_key(value, fold=False): index for index, value in enumerate(values)}
        classes = [_label_key(row.get(target), fold=False) for row in rows]
        labels = [None if label is None else order.get(label) for label in classes]
        names = [_text(value) or "?" for value in values]
        return _multiclass(sample, names, labels, reorder=class_order)
    negative, chosen = (values[-2], values[-1]) if len(values) >= 2 else (None, None)
    chosen = positive if positive is not None else chosen
    keys = {_label_key(negative): 0, _label_key(chosen): 1}
    keys.pop(None, None)
    binary = [keys.get(_label_key(row.get(target))) for row in rows] if len(keys) == 2 else []
    flags = binary or [None] * len(rows)
    if task == "binary_classification":
        return _binary(sample, flags, _text(chosen) or "positive", decision)
    return _anomaly(sample, flags, decision)


def replace_block(text: str, block: str, where: str = "the baseline file") -> str:
    """Text of a baseline file with the lines between its rules markers replaced by block.

    The baseline's code reads the names its block sets, so a block that sets a name the
    current one does not would be ignored: the file is of another form (an older template's).

    Raises:
        RulesError: The markers are missing, doubled or out of order; the current block is
            not valid Python; or it does not set every name the new block sets.
    """
    lines = text.splitlines(keepends=True)
    start, end = _markers(lines, where)
    current = "".join(lines[start + 1 : end])
    missing = sorted(assigned_names(block) - assigned_names(current, where, start + 1))
    if missing:
        raise RulesError(
            f"{where}: its rules block does not set {', '.join(missing)}, which rules fitted "
            "to data set: the file has another form than this template's baseline; edit its "
            "rules by hand"
        )
    body = block if block.endswith("\n") or not block else block + "\n"
    return "".join(lines[: start + 1]) + body + "".join(lines[end:])


def assigned_names(block: str, where: str = "the rules block", offset: int = 0) -> set[str]:
    """The names a rules block sets at its top level (`NAME = ...` or `NAME: type = ...`).

    Raises:
        RulesError: The block is not valid Python.
    """
    try:
        tree = ast.parse(block)
    except SyntaxError as error:
        line = (error.lineno or 0) + offset
        message = f"{where}: line {line} of the rules is not valid Python ({error.msg})"
        raise RulesError(message) from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def read_block(text: str, where: str = "the baseline file") -> str:
    """The lines between a baseline file's rules markers, as written there.

    Raises:
        RulesError: The markers are missing, doubled or out of order.
    """
    lines = text.splitlines(keepends=True)
    start, end = _markers(lines, where)
    return "".join(lines[start + 1 : end])


def _markers(lines: Sequence[str], where: str) -> tuple[int, int]:
    starts = [index for index, line in enumerate(lines) if line.startswith(START_MARKER)]
    ends = [index for index, line in enumerate(lines) if line.startswith(END_MARKER)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise RulesError(
            f"{where}: the rules must sit between one line starting {START_MARKER!r} and one "
            f"later line starting {END_MARKER!r}; put the markers back, or edit the rules by hand"
        )
    return starts[0], ends[0]


# --- Reading values ----------------------------------------------------------------------------


def _numbers(values: Sequence[object]) -> list[float | None]:
    """Finite numbers, None for each missing or unreadable value (float() takes text too)."""
    found: list[float | None] = []
    for value in values:
        try:
            number = float(value)  # type: ignore[arg-type]  # anything float() reads
        except (TypeError, ValueError):
            found.append(None)
            continue
        found.append(number if math.isfinite(number) else None)
    return found


def _text(value: object) -> str | None:
    """A value as the baseline sees a category: its text, whole numbers without '.0'."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else str(value)
    text = str(value)
    return text if text.strip() else None


def _label_key(value: object, fold: bool = True) -> str | None:
    """How labels are matched: trimmed, whole numbers without '.0', and (fold) any case."""
    text = _text(value)
    if text is None:
        return None
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        return text.lower() if fold else text
    return str(int(number)) if number.is_integer() else text


def _quantile(ordered: Sequence[float], share: float) -> float:
    """The share-quantile of sorted values, interpolated linearly (numpy's default)."""
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _parse(
    rows: Sequence[Mapping[str, object]],
    numeric: Sequence[str],
    categorical: Mapping[str, Sequence[object]],
) -> _Sample:
    numbers = {name: _numbers([row.get(name) for row in rows]) for name in numeric}
    categories: dict[str, list[str | None]] = {}
    for name, known in categorical.items():
        # A CSV gives "1" or "1.0" where the schema lists 1: match them by their label key.
        texts = {_label_key(value, fold=False): _text(value) for value in known}
        categories[name] = [texts.get(_label_key(row.get(name), fold=False)) for row in rows]
    return _Sample(len(rows), numbers, categories)


# --- Binary classification ---------------------------------------------------------------------


class _Condition(NamedTuple):
    """A condition on one column: a number at or above, or below, a cut; or a category."""

    column: str
    op: str
    value: float | str

    def fires(self, sample: _Sample, index: int) -> bool:
        if self.op == "==":
            return sample.categories[self.column][index] == self.value
        value = sample.numbers[self.column][index]
        if value is None or isinstance(self.value, str):
            return False
        return value >= self.value if self.op == ">=" else value < self.value


class _Judged(NamedTuple):
    """A condition with the labelled rows it fires on and the positives among them."""

    condition: _Condition
    rows: int
    positives: int


def _binary(
    sample: _Sample, labels: Sequence[int | None], positive: str, decision: float | None
) -> str:
    known = [index for index, label in enumerate(labels) if label is not None]
    positives = sum(labels[index] or 0 for index in known)
    if len(known) < 2 * MIN_ROWS or positives == 0 or positives == len(known):
        return _lines(
            _comment(
                "No labelled rows with both outcomes to choose rules from, so there are no "
                "rules yet and every record scores 0. Write rules of thumb here, e.g. "
                'Rule("column", ">=", 3, 0.5, "why it matters"), or fit them to labelled data '
                "(model/rules.py). A rule's weight is its share of the score."
            ),
            ["RULES: tuple[Rule, ...] = ()"],
        )
    base = positives / len(known)
    header = _comment(
        f"Chosen from {len(known):,} labelled rows, {_percent(base)} of them "
        f"{_quoted(positive)}: up to {MAX_RULES} conditions on distinct columns, picked one by "
        "one for the clearest rise in that share among the rows the earlier rules leave out, "
        f"each firing on at least {_percent(MIN_SUPPORT)} of rows. A weight is the rule's rise "
        "in the share, over the sum of the rises."
        + (f" A record is flagged when its score reaches {decision:g}." if decision else "")
    )
    chosen = _choose_conditions(sample, labels, known, base)
    if not chosen:
        return _lines(
            header,
            _comment("No condition raised the share clearly enough: no rules yet."),
            ["RULES: tuple[Rule, ...] = ()"],
        )
    rises = [max(judged.positives / judged.rows - base, 0.0) for judged in chosen]
    lines = [*header, "RULES: tuple[Rule, ...] = ("]
    for judged, rise in zip(chosen, rises, strict=True):
        condition, rate = judged.condition, judged.positives / judged.rows
        lines += _comment(
            f"fires on {_percent(judged.rows / len(known))} of rows ({judged.rows:,}): "
            f"{_percent(rate)} of them {_quoted(positive)}, vs {_percent(base)} overall "
            f"(lift {rate / base:.2f})",
            indent=4,
        )
        why = f"{_percent(rate)} {positive[:20]} where it fires, vs {_percent(base)} overall"
        weight = round(rise / sum(rises), 2)
        value = condition.value
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)  # a whole number reads better without '.0'
        lines += _call("Rule", [condition.column, condition.op, value, weight, why], 4)
    return _lines(lines, [")"])


def _choose_conditions(
    sample: _Sample, labels: Sequence[int | None], known: Sequence[int], base: float
) -> list[_Judged]:
    """Conditions picked one by one for the clearest rise among the rows not yet covered."""
    keys = {column: _buckets(values, known) for column, values in sample.numbers.items()}
    keys |= {column: _Keys(texts, None) for column, texts in sample.categories.items()}
    overall = {column: _judge(column, key, labels, known) for column, key in keys.items()}
    needed = max(MIN_ROWS, MIN_SUPPORT * len(known))
    active = list(known)
    chosen: list[_Judged] = []
    for _ in range(MAX_RULES):
        used = {judged.condition.column for judged in chosen}
        active_positives = sum(labels[index] or 0 for index in active)
        best: tuple[float, _Judged] | None = None
        for column, key in keys.items():
            if column in used:
                continue
            on_active = _judge(column, key, labels, active)
            for judged, left in zip(overall[column], on_active, strict=True):
                rate = judged.positives / judged.rows if judged.rows else 0.0
                if judged.rows < needed or rate <= base or not MIN_ROWS <= left.rows < len(active):
                    continue
                z = _two_proportion_z(
                    left.positives,
                    left.rows,
                    active_positives - left.positives,
                    len(active) - left.rows,
                )
                if z >= MIN_Z and (best is None or z > best[0]):
                    best = (z, judged)
        if best is None:
            break
        chosen.append(best[1])
        active = [index for index in active if not best[1].condition.fires(sample, index)]
    return chosen


class _Keys(NamedTuple):
    """What each row holds for the conditions on one column; None when its value is missing.

    A category, or for a number, its bucket between cut points: how many cuts lie at or below.
    """

    per_row: Sequence[str | int | None]
    cuts: list[float] | None


def _buckets(values: Sequence[float | None], known: Sequence[int]) -> _Keys:
    present = sorted(value for index in known if (value := values[index]) is not None)
    cuts = _decile_cuts(present) if present else []
    per_row = [None if value is None else bisect.bisect_right(cuts, value) for value in values]
    return _Keys(per_row, cuts)


def _judge(
    column: str, keys: _Keys, labels: Sequence[int | None], rows: Sequence[int]
) -> list[_Judged]:
    """Every condition on a column, with the rows among `rows` it fires on and their positives.

    Numbers: for each cut, `>=` then `<`; categories: each category in sorted order.
    """
    counts: dict[str | int, list[int]] = {}
    for index in rows:
        key = keys.per_row[index]
        if key is not None:
            tally = counts.setdefault(key, [0, 0])
            tally[0] += 1
            tally[1] += labels[index] or 0
    if keys.cuts is None:
        categories = sorted({str(key) for key in keys.per_row if key is not None})
        return [
            _Judged(_Condition(column, "==", category), *counts.get(category, [0, 0]))
            for category in categories
        ]
    cuts = keys.cuts
    total = [sum(tally[0] for tally in counts.values()), sum(t[1] for t in counts.values())]
    judged = []
    below = [0, 0]
    for position, cut in enumerate(cuts):
        tally = counts.get(position, [0, 0])
        below = [below[0] + tally[0], below[1] + tally[1]]
        judged.append(
            _Judged(_Condition(column, ">=", cut), total[0] - below[0], total[1] - below[1])
        )
        judged.append(_Judged(_Condition(column, "<", cut), below[0], below[1]))
    return judged


def _decile_cuts(present: Sequence[float]) -> list[float]:
    """Readable cut points at the deciles of sorted values, each splitting them the same way.

    A cut between neighbouring values a < b splits them like b does; the number with the
    fewest digits in (a, b] is written instead of b.
    """
    cuts: list[float] = []
    for tenth in range(1, 10):
        value = present[tenth * (len(present) - 1) // 10]
        first = bisect.bisect_left(present, value)
        if first > 0:
            cut = _shortest_between(present[first - 1], value)
            if not cuts or cut > cuts[-1]:
                cuts.append(cut)
    return cuts


def _shortest_between(low: float, high: float) -> float:
    """The number with the fewest significant digits in (low, high]."""
    if low < 0 < high or high == 0:
        return 0.0
    exponent = math.floor(math.log10(abs(high)))
    for digits in range(1, 16):
        places = digits - 1 - exponent
        candidate = round(math.floor(high * 10.0**places) / 10.0**places, places)
        if low < candidate <= high:
            return candidate
    return high


def _two_proportion_z(hits: int, rows: int, other_hits: int, other_rows: int) -> float:
    """How clearly the share of hits differs between two groups of rows, in standard errors."""
    if rows == 0 or other_rows == 0:
        return 0.0
    pooled = (hits + other_hits) / (rows + other_rows)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / rows + 1 / other_rows))
    return 0.0 if spread == 0 else (hits / rows - other_hits / other_rows) / spread


# --- Additive rules: multiclass points and regression amounts ----------------------------------


class _Term:
    """One column's share of an additive rule: an amount per unit of a number, or per category.

    A missing number counts as the column's median; a missing or unlisted category as 0. The
    gain is the share of the outcome's variance the term explained when it was picked.
    """

    def __init__(
        self,
        column: str,
        slope: float = 0.0,
        table: dict[str, float] | None = None,
        gain: float = 0.0,
    ) -> None:
        self.column, self.slope, self.table, self.gain = column, slope, table, gain


def _medians(sample: _Sample, rows: Sequence[int]) -> dict[str, float]:
    """The median of each number that varies on rows (numbers that do not are left out)."""
    found = {}
    for column, values in sample.numbers.items():
        present = sorted(value for index in rows if (value := values[index]) is not None)
        if len(present) >= MIN_ROWS and present[0] < present[-1]:
            found[column] = _quantile(present, 0.5)
    return found


def _filled(
    sample: _Sample, medians: Mapping[str, float], rows: Sequence[int]
) -> dict[str, list[float]]:
    """Each varying number on rows, a missing value counted as the median."""
    return {
        column: [
            median if (value := sample.numbers[column][index]) is None else value for index in rows
        ]
        for column, median in medians.items()
    }


def _contribution(
    term: _Term, numbers: Mapping[str, Sequence[float]], groups: Mapping[str, Sequence[str | None]]
) -> list[float]:
    if term.table is not None:
        table = term.table
        return [0.0 if group is None else table.get(group, 0.0) for group in groups[term.column]]
    return [term.slope * value for value in numbers[term.column]]


def _fit_points(
    numbers: Mapping[str, Sequence[float]],
    groups: Mapping[str, Sequence[str | None]],
    y: Sequence[float],
) -> tuple[list[_Term], float]:
    """Additive terms fitted to y, and the share of y's variance they explain (R^2).

    Terms are picked one by one for the variance of y they explain, then refitted together.
    """
    count = len(y)
    mean_y = sum(y) / count
    variance = sum((value - mean_y) ** 2 for value in y)
    if variance == 0:
        return [], 0.0
    centred = {}
    for column, x in numbers.items():
        mean_x = sum(x) / count
        centred[column] = [value - mean_x for value in x]
    squares = {column: sum(map(operator.mul, x, x)) for column, x in centred.items()}
    terms: list[_Term] = []
    residual = [value - mean_y for value in y]
    explained = 0.0
    for _ in range(MAX_RULES):
        used = {term.column for term in terms}
        best: _Term | None = None
        for column, x in centred.items():
            if column not in used:
                covariance = sum(map(operator.mul, x, residual))
                gain = covariance * covariance / squares[column] / variance
                if best is None or gain > best.gain:
                    best = _Term(column, slope=covariance / squares[column], gain=gain)
        for column, texts in groups.items():
            if column not in used:
                table, sizes = _group_means(texts, residual)
                gain = sum(sizes[group] * value**2 for group, value in table.items()) / variance
                if best is None or gain > best.gain:
                    best = _Term(column, table=table, gain=gain)
        if best is None or best.gain < MIN_GAIN:
            break
        terms.append(best)
        residual = _backfit(terms, numbers, groups, y)
        explained = 1 - sum(map(operator.mul, residual, residual)) / variance
    return terms, explained


def _group_means(
    groups: Sequence[str | None], values: Sequence[float]
) -> tuple[dict[str, float], dict[str, int]]:
    """Each group's mean value, shrunk toward 0 for small groups; and the groups' sizes."""
    sums: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for group, value in zip(groups, values, strict=True):
        if group is not None:
            sums[group] = sums.get(group, 0.0) + value
            sizes[group] = sizes.get(group, 0) + 1
    return {group: sums[group] / (sizes[group] + MIN_ROWS / 2) for group in sums}, sizes


def _backfit(
    terms: list[_Term],
    numbers: Mapping[str, Sequence[float]],
    groups: Mapping[str, Sequence[str | None]],
    y: Sequence[float],
    rounds: int = 8,
) -> list[float]:
    """Refit each term on what the others and the level leave, a few rounds; the residual."""
    count = len(y)
    parts = [_contribution(term, numbers, groups) for term in terms]
    fitted = [sum(values) for values in zip(*parts, strict=True)]
    for _ in range(rounds):
        for position, term in enumerate(terms):
            partial = [
                value - total + own
                for value, total, own in zip(y, fitted, parts[position], strict=True)
            ]
            level = sum(partial) / count
            partial = [value - level for value in partial]
            if term.table is not None:
                term.table = _group_means(groups[term.column], partial)[0]
            else:
                x = numbers[term.column]
                mean_x = sum(x) / count
                centred = [value - mean_x for value in x]
                term.slope = sum(map(operator.mul, centred, partial)) / max(
                    sum(map(operator.mul, centred, centred)), 1e-300
                )
            new = _contribution(term, numbers, groups)
            fitted = [
                total - old + fresh
                for total, old, fresh in zip(fitted, parts[position], new, strict=True)
            ]
            parts[position] = new
    level = sum(value - total for value, total in zip(y, fitted, strict=True)) / count
    return [value - total - level for value, total in zip(y, fitted, strict=True)]


def _multiclass(
    sample: _Sample, classes: Sequence[str], labels: Sequence[int | None], *, reorder: bool = True
) -> str:
    known = [index for index, label in enumerate(labels) if label is not None]
    class_order = ["CLASS_ORDER: tuple[str, ...] | None = None"]
    if len(known) < 2 * MIN_ROWS or len({labels[index] for index in known}) < 2:
        return _lines(
            _comment(
                "No labelled rows of two classes or more to choose points from, so every record "
                "earns 0 points and falls in the least severe class. Write points here, e.g. "
                'POINTS_PER_UNIT = {"column": 0.5}, or fit them to labelled data '
                "(model/rules.py)."
            ),
            [
                "POINTS_PER_UNIT: dict[str, float] = {}",
                "POINTS_PER_CATEGORY: dict[str, dict[str, float]] = {}",
                "CUT_POINTS: tuple[float, ...] | None = None",
                "POINTS_RANGE = (1.0, 7.0)",
                *(class_order if reorder else []),
            ],
        )
    medians = _medians(sample, known)
    numbers = _filled(sample, medians, known)
    groups = {
        column: [texts[index] for index in known]
        for column, texts in sample.categories.items()
        if len({text for text in texts if text is not None}) <= MAX_CATEGORIES
    }
    found = [labels[index] or 0 for index in known]
    orders = [list(range(len(classes)))]
    by_data = _data_order(numbers, found, len(classes)) if reorder else orders[0]
    if by_data not in (orders[0], orders[0][::-1]):  # reversed, it is the contract's order still
        orders.append(by_data)
    fits = [_fit_in_order(numbers, groups, found, order) for order in orders]
    # The order that decides more of these rows right; the contract's when it is as good.
    chosen = max(range(len(fits)), key=lambda position: (fits[position][2], -position))
    terms, explained, _ = fits[chosen]
    order = orders[chosen]
    y = _ranked(found, order)
    # The classes' names in band order: the contract's, or the data's (written as CLASS_ORDER).
    banded = [classes[position] for position in order]
    if order != orders[0]:
        class_order = _sequence("CLASS_ORDER: tuple[str, ...] | None", list(map(_literal, banded)))
    shares = _shares(y, len(classes))
    if not terms:
        # Points of 0 fall between the cut points around the most common class.
        common = max(range(len(classes)), key=lambda position: shares[position])
        cuts = [position + 0.5 - common for position in range(len(classes) - 1)]
        return _lines(
            _comment(
                f"Chosen from {len(known):,} labelled rows: no column follows the class order "
                f"clearly enough (each explains less than {_percent(MIN_GAIN)} of its variance), "
                f"so every record earns 0 points and gets the most common class, "
                f"{_quoted(banded[common])} ({_percent(shares[common])} of rows)."
            ),
            [
                "POINTS_PER_UNIT: dict[str, float] = {}",
                "POINTS_PER_CATEGORY: dict[str, dict[str, float]] = {}",
                *_sequence("CUT_POINTS: tuple[float, ...] | None", [_literal(c) for c in cuts]),
                "POINTS_RANGE = (0.0, 0.0)",
                *(class_order if reorder else []),
            ],
        )
    for term in terms:
        term.slope = _significant(term.slope, 3)
        if term.table is not None:
            term.table = {k: round(v, 2) for k, v in sorted(term.table.items()) if round(v, 2)}
    points = [0.0] * len(known)
    for term in terms:
        points = [a + b for a, b in zip(points, _contribution(term, numbers, groups), strict=True)]
    ordered = sorted(points)
    cumulative = [sum(shares[: position + 1]) for position in range(len(classes) - 1)]
    cuts = [_significant(_quantile(ordered, min(share, 1.0)), 4) for share in cumulative]
    ranked = " < ".join(_quoted(name) for name in banded)
    lines = _comment(
        f"Chosen from {len(known):,} labelled rows: points per unit of a number or per "
        f"category, fitted by least squares to the class order ({ranked}) and picked one at a "
        "time for the share of the order's variance they explain; together they explain "
        f"{_percent(explained)}. A missing number counts as its median, a missing category as 0."
        + (
            " The classes are in the order their means of the column that tells them apart "
            "best put them (CLASS_ORDER): it decides more of these rows right than the "
            "contract's order."
            if order != orders[0]
            else ""
        )
    )
    numeric = [term for term in terms if term.table is None]
    per_category = [term for term in terms if term.table is not None]
    lines += _dictionary(
        "POINTS_PER_UNIT: dict[str, float]",
        [
            (
                _comment(
                    f"{_quoted(term.column)}: mean "
                    + ", ".join(
                        f"{_significant(mean, 3):g} in {_quoted(name)}"
                        for name, mean in _class_means(sample, term.column, known, labels, classes)
                    )
                    + f"; explains {_percent(term.gain)} of the order on its own",
                    indent=4,
                ),
                term.column,
                term.slope,
            )
            for term in numeric
        ],
    )
    lines += _dictionary(
        "POINTS_PER_CATEGORY: dict[str, dict[str, float]]",
        [
            (
                _comment(
                    f"{_quoted(term.column)}: explains {_percent(term.gain)} of the order on its "
                    "own; the categories not listed earn 0",
                    indent=4,
                ),
                term.column,
                term.table or {},
            )
            for term in per_category
        ],
    )
    lines += _comment(
        "Cut points that give each class its share of these rows: "
        + ", ".join(
            f"{_quoted(name)} {_percent(share)}" for name, share in zip(banded, shares, strict=True)
        )
        + "."
    )
    lines += _sequence("CUT_POINTS: tuple[float, ...] | None", [_literal(cut) for cut in cuts])
    low, high = _significant(ordered[0], 4), _significant(ordered[-1], 4)
    lines.append(
        f"POINTS_RANGE = ({_literal(low)}, {_literal(high)})  # the points these rows earn"
    )
    if reorder:
        lines += class_order
    return _lines(lines)


def _data_order(
    numbers: Mapping[str, Sequence[float]], found: Sequence[int], count: int
) -> list[int]:
    """The classes (positions) in the order of their means of the number that separates them best.

    Best: the largest share of the number's variance lies between the classes' means. Classes
    without rows, and ties, keep the contract's order.
    """
    best: tuple[float, list[float]] | None = None
    for x in numbers.values():
        sums, sizes = [0.0] * count, [0] * count
        for value, label in zip(x, found, strict=True):
            sums[label] += value
            sizes[label] += 1
        mean = sum(x) / len(x)
        total = sum((value - mean) ** 2 for value in x)
        if total <= 0:
            continue
        means = [
            sums[position] / sizes[position] if sizes[position] else mean
            for position in range(count)
        ]
        between = sum(size * (value - mean) ** 2 for size, value in zip(sizes, means, strict=True))
        if best is None or between / total > best[0]:
            best = (between / total, means)
    if best is None:
        return list(range(count))
    means = best[1]
    return sorted(range(count), key=lambda position: (means[position], position))


def _fit_in_order(
    numbers: Mapping[str, Sequence[float]],
    groups: Mapping[str, Sequence[str | None]],
    found: Sequence[int],
    order: Sequence[int],
) -> tuple[list[_Term], float, int]:
    """Points fitted to the classes in `order`; their R^2, and how many rows they decide right.

    Rows are cut into bands, one per class in order, each the class's share of the rows.
    """
    y = _ranked(found, order)
    terms, explained = _fit_points(numbers, groups, y)
    if not terms:
        return terms, explained, 0
    points = [0.0] * len(y)
    for term in terms:
        points = [a + b for a, b in zip(points, _contribution(term, numbers, groups), strict=True)]
    ordered = sorted(points)
    shares = _shares(y, len(order))
    cuts = [
        _quantile(ordered, min(sum(shares[: place + 1]), 1.0)) for place in range(len(order) - 1)
    ]
    right = sum(
        1
        for value, earned in zip(y, points, strict=True)
        if bisect.bisect_right(cuts, earned) == value
    )
    return terms, explained, right


def _ranked(found: Sequence[int], order: Sequence[int]) -> list[float]:
    """Each row's class (a position in the contract's classes) as its place in `order`."""
    rank = {position: place for place, position in enumerate(order)}
    return [float(rank[label]) for label in found]


def _shares(ranks: Sequence[float], count: int) -> list[float]:
    """The share of rows at each of `count` places."""
    return [sum(1 for value in ranks if value == place) / len(ranks) for place in range(count)]


def _class_means(
    sample: _Sample,
    column: str,
    known: Sequence[int],
    labels: Sequence[int | None],
    classes: Sequence[str],
) -> list[tuple[str, float]]:
    """The mean of a number in each class that has it."""
    found = []
    for position, name in enumerate(classes):
        values = [
            value
            for index in known
            if labels[index] == position and (value := sample.numbers[column][index]) is not None
        ]
        if values:
            found.append((name, sum(values) / len(values)))
    return found


# --- Regression ----------------------------------------------------------------------------------


def _regression(
    sample: _Sample, target: str, outcome: Sequence[float | None], quantile: float | None
) -> str:
    known = [index for index, value in enumerate(outcome) if value is not None]
    if len(known) < 2 * MIN_ROWS:
        return _lines(
            _comment(
                "No labelled rows to choose rules from, so every record gets BASE. Write the "
                "typical value here, and amounts per unit of a number or per category, e.g. "
                'AMOUNT_PER_UNIT = {"column": 2.5}, or fit them to labelled data (model/rules.py).'
            ),
            [
                "BASE = 0.0",
                "AMOUNT_PER_UNIT: dict[str, float] = {}",
                "AMOUNT_PER_CATEGORY: dict[str, dict[str, float]] = {}",
                "LOWEST: float | None = None  # no prediction goes below this (None: no floor)",
            ],
        )
    y = [outcome[index] or 0.0 for index in known]
    medians = _medians(sample, known)
    numbers = _filled(sample, medians, known)
    base = _quantile(sorted(y), 0.5)
    prediction = [base] * len(y)
    error = _mean_error(y, prediction)
    start_error = error
    lines = _comment(
        f"Chosen from {len(known):,} labelled rows, where {_quoted(target)} has median "
        f"{_significant(base, 4):g} and a typical error of {_significant(error, 4):g} around it "
        "(mean absolute error): a robust (Theil-Sen) line on the number with the strongest rank "
        "correlation, then each category's median error on the column that lowers the typical "
        f"error most; each kept only if it lowers that error by {_percent(MIN_ERROR_DROP)} or more."
        " A missing number counts as its median, a missing category as 0."
    )
    per_unit: list[tuple[list[str], str, float | Mapping[str, float]]] = []
    line = _strongest_line(sample, known, y, numbers)
    if line is not None:
        column, correlation, slope = line
        intercept = _quantile(
            sorted(value - slope * x for value, x in zip(y, numbers[column], strict=True)), 0.5
        )
        slope, intercept = _significant(slope, 4), _significant(intercept, 4)
        fitted = [intercept + slope * x for x in numbers[column]]
        fitted_error = _mean_error(y, fitted)
        if fitted_error <= (1 - MIN_ERROR_DROP) * error:
            per_unit.append(
                (
                    _comment(
                        f"{_quoted(column)}: rank correlation {correlation:.2f} with "
                        f"{_quoted(target)}, the strongest; the typical error falls from "
                        f"{_significant(error, 4):g} to {_significant(fitted_error, 4):g}",
                        indent=4,
                    ),
                    column,
                    slope,
                )
            )
            base, prediction, error = intercept, fitted, fitted_error
    per_category: list[tuple[list[str], str, float | Mapping[str, float]]] = []
    best = _best_category_medians(sample, known, y, prediction)
    if best is not None and best[1] <= (1 - MIN_ERROR_DROP) * error:
        column, category_error, table = best
        per_category.append(
            (
                _comment(
                    f"{_quoted(column)}: each category's median error moves the typical error "
                    f"from {_significant(error, 4):g} to {_significant(category_error, 4):g}; "
                    "categories not listed add 0",
                    indent=4,
                ),
                column,
                table,
            )
        )
        groups = sample.categories[column]
        prediction = [
            value + (table.get(group, 0.0) if (group := groups[index]) is not None else 0.0)
            for value, index in zip(prediction, known, strict=True)
        ]
        error = category_error
    lines.append(f"BASE = {_literal(_significant(base, 4))}")
    lines += _dictionary("AMOUNT_PER_UNIT: dict[str, float]", per_unit)
    lines += _dictionary("AMOUNT_PER_CATEGORY: dict[str, dict[str, float]]", per_category)
    if quantile is not None:
        residuals = sorted(value - guess for value, guess in zip(y, prediction, strict=True))
        shift = _quantile(residuals, quantile)
        lines += _comment(
            f"Calibration then shifts every prediction to the contract's cost quantile, "
            f"{quantile:g}, of the errors: {shift:+.4g} on these rows. The rules lower the "
            f"typical error from {_significant(start_error, 4):g} to {_significant(error, 4):g}."
        )
    lowest = min(y)
    if lowest >= 0:
        lines.append(f"LOWEST: float | None = 0.0  # {_quoted(target)} is never below 0 here")
    else:
        lines.append(f"LOWEST: float | None = None  # {_quoted(target)} goes below 0 here")
    return _lines(lines)


def _mean_error(y: Sequence[float], prediction: Sequence[float]) -> float:
    return sum(abs(a - b) for a, b in zip(y, prediction, strict=True)) / len(y)


def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    for position in range(1, len(order) + 1):
        if position == len(order) or values[order[position]] != values[order[start]]:
            rank = (start + position + 1) / 2
            for index in order[start:position]:
                ranks[index] = rank
            start = position
    return ranks


def _correlation(x: Sequence[float], y: Sequence[float]) -> float:
    mean_x, mean_y = sum(x) / len(x), sum(y) / len(y)
    dx = [value - mean_x for value in x]
    dy = [value - mean_y for value in y]
    spread = math.sqrt(sum(map(operator.mul, dx, dx)) * sum(map(operator.mul, dy, dy)))
    return 0.0 if spread == 0 else sum(map(operator.mul, dx, dy)) / spread


def _strongest_line(
    sample: _Sample,
    known: Sequence[int],
    y: Sequence[float],
    numbers: Mapping[str, Sequence[float]],
) -> tuple[str, float, float] | None:
    """The number with the strongest rank correlation with y, and its Theil-Sen slope."""
    y_ranks = _ranks(y)
    best: tuple[str, float] | None = None
    for column in numbers:
        present = [
            position
            for position, index in enumerate(known)
            if sample.numbers[column][index] is not None
        ]
        if len(present) < 2 * MIN_ROWS:
            continue
        x = [numbers[column][position] for position in present]
        correlation = _correlation(_ranks(x), [y_ranks[position] for position in present])
        if abs(correlation) >= MIN_RANK_CORRELATION and (
            best is None or abs(correlation) > abs(best[1])
        ):
            best = (column, correlation)
    if best is None:
        return None
    column, correlation = best
    pairs = [
        (x, value)
        for index, x, value in zip(known, numbers[column], y, strict=True)
        if sample.numbers[column][index] is not None
    ]
    slope = _theil_sen(pairs)
    return None if slope is None else (column, correlation, slope)


def _theil_sen(pairs: Sequence[tuple[float, float]], draws: int = 20_000) -> float | None:
    """The median slope between pairs of points: all pairs of a few, else seeded random ones."""
    count = len(pairs)
    if count * (count - 1) // 2 <= draws:
        couples = [(a, b) for a in range(count) for b in range(a + 1, count)]
    else:
        chance = random.Random(0)  # noqa: S311 - sampling, not security  # nosec B311
        couples = [(chance.randrange(count), chance.randrange(count)) for _ in range(draws)]
    slopes = sorted(
        (pairs[b][1] - pairs[a][1]) / (pairs[b][0] - pairs[a][0])
        for a, b in couples
        if pairs[a][0] != pairs[b][0]
    )
    return _quantile(slopes, 0.5) if slopes else None


def _best_category_medians(
    sample: _Sample, known: Sequence[int], y: Sequence[float], prediction: Sequence[float]
) -> tuple[str, float, dict[str, float]] | None:
    """The categorical column whose categories' median errors lower the typical error most."""
    residual = [value - guess for value, guess in zip(y, prediction, strict=True)]
    best: tuple[str, float, dict[str, float]] | None = None
    for column, texts in sample.categories.items():
        by_group: dict[str, list[float]] = {}
        for position, index in enumerate(known):
            group = texts[index]
            if group is not None:
                by_group.setdefault(group, []).append(residual[position])
        table = {
            group: _significant(_quantile(sorted(values), 0.5), 3)
            for group, values in sorted(by_group.items())
            if len(values) >= MIN_ROWS
        }
        table = {group: shift for group, shift in table.items() if shift}
        if not table or len(table) > MAX_CATEGORIES:
            continue
        error = sum(
            abs(value - table.get(group, 0.0))
            if (group := texts[index]) is not None
            else abs(value)
            for value, index in zip(residual, known, strict=True)
        ) / len(y)
        if best is None or error < best[1]:
            best = (column, error, table)
    return best


# --- Anomaly detection ---------------------------------------------------------------------------


class _Signal(NamedTuple):
    """How unusual each row is on one number, in robust standard deviations from its median."""

    column: str
    log: bool
    center: float
    scale: float
    z: tuple[float, ...]  # signed; a missing value scores 0
    direction: str = "far"
    auc: float | None = None

    def unusual(self) -> list[float]:
        if self.direction == "high":
            return list(self.z)
        if self.direction == "low":
            return [-value for value in self.z]
        return [abs(value) for value in self.z]


def _anomaly(sample: _Sample, flags: Sequence[int | None], threshold: float | None) -> str:
    known = [index for index, flag in enumerate(flags) if flag is not None]
    anomalies = sum(flags[index] or 0 for index in known)
    labelled = min(anomalies, len(known) - anomalies) >= MIN_ROWS // 2
    signals = [
        signal
        for column, values in sample.numbers.items()
        if (signal := _robust_signal(column, values)) is not None
    ]
    if not signals:
        return _lines(
            _comment(
                "No number varies enough in these rows to measure how unusual a record is, so "
                "there are no signals and every record scores the same. Write signals here, "
                'e.g. Signal("column", "high", False, 10.0, 2.0, "why it matters").'
            ),
            ["SIGNALS: tuple[Signal, ...] = ()", "Z_CUTOFF = 4.0", "STEEPNESS = 3.0"],
        )
    chosen = _directed_signals(signals, flags, known) if labelled else []
    if chosen:
        header = (
            f"Chosen from {len(known):,} labelled rows, {anomalies:,} of them anomalies: the "
            "numbers whose robust z-score (distance from the median in MADs x 1.4826, on a log "
            "scale for skewed numbers) sets anomalies apart, in the direction that does (AUC: "
            "the chance that an anomaly scores above a normal row), added while the largest "
            "z-score sets them apart better."
        )
    else:
        chosen = signals
        header = (
            f"Chosen from {sample.rows:,} rows"
            + (" (no number sets the labelled anomalies apart)" if labelled else " without labels")
            + ": every number counts, as far from its median either way in robust z-scores "
            "(MADs x 1.4826, on a log scale for skewed numbers). A record scores by its most "
            "unusual number."
        )
    cutoff, steepness = 4.0, 3.0
    curve = _score_curve(chosen, flags, known) if labelled else None
    lines = _comment(header)
    lines.append("SIGNALS: tuple[Signal, ...] = (")
    for signal in chosen:
        note = f"{_quoted(signal.column)} {signal.direction}: median {signal.center:.4g}, robust "
        note += f"sigma {signal.scale:.4g}" + (" (log scale)" if signal.log else "")
        if signal.auc is not None:
            note += f"; AUC {signal.auc:.2f}"
        lines += _comment(note, indent=4)
        why = {"high": "unusually high", "low": "unusually low", "far": "far from typical"}
        args = [
            signal.column,
            signal.direction,
            signal.log,
            _significant(signal.center, 4),
            _significant(signal.scale, 4),
            why[signal.direction],
        ]
        lines += _call("Signal", args, 4)
    lines.append(")")
    if curve is not None:
        cutoff, steepness, auc = curve
        lines += _comment(
            f"Fitted to the labels by logistic regression on the largest z-score (AUC {auc:.2f})"
            + (f"; a record is flagged when its score reaches {threshold:g}." if threshold else ".")
        )
    else:
        lines += _comment(
            "Without labels to fit them: a record 4 robust sigmas out on some number scores 0.5."
        )
    lines.append(
        f"Z_CUTOFF = {_literal(_significant(cutoff, 4))}  # the largest z-score that scores 0.5"
    )
    lines.append(
        f"STEEPNESS = {_literal(_significant(steepness, 4))}  # how fast the score rises around it"
    )
    return _lines(lines)


def _robust_signal(column: str, values: Sequence[float | None]) -> _Signal | None:
    """Robust z-scores of a number: log1p first when it is positive and skewed to the right."""
    present = sorted(value for value in values if value is not None)
    if len(present) < MIN_ROWS:
        return None
    low, middle, high = (_quantile(present, share) for share in (0.1, 0.5, 0.9))
    log = present[0] >= 0 and high - middle > 2 * (middle - low) and high > middle
    if log:
        present = [math.log1p(value) for value in present]
    center = _quantile(present, 0.5)
    scale = _quantile(sorted(abs(value - center) for value in present), 0.5) * MAD_TO_SIGMA
    if scale <= 0:
        scale = (_quantile(present, 0.75) - _quantile(present, 0.25)) / 1.349
    if scale <= 0:
        scale = math.sqrt(sum((value - center) ** 2 for value in present) / len(present))
    if scale <= 0:
        return None
    z = tuple(
        0.0 if value is None else ((math.log1p(value) if log else value) - center) / scale
        for value in values
    )
    return _Signal(column, log, center, scale, z)


def _directed_signals(
    signals: Sequence[_Signal], flags: Sequence[int | None], known: Sequence[int]
) -> list[_Signal]:
    """Signals turned the way that sets anomalies apart, added while they help the largest z."""
    truth = [flags[index] or 0 for index in known]
    directed = []
    for signal in signals:
        z = [signal.z[index] for index in known]
        high = _auc(z, truth)
        far = _auc([abs(value) for value in z], truth)
        auc, direction = max((high, "high"), (1 - high, "low"), (far, "far"))
        if auc >= MIN_AUC:
            directed.append(signal._replace(direction=direction, auc=auc))
    directed.sort(key=lambda signal: -(signal.auc or 0.0))
    chosen: list[_Signal] = []
    largest: list[float] = []
    best = 0.0
    for signal in directed[: 2 * MAX_SIGNALS]:
        unusual = signal.unusual()
        trial = [unusual[index] for index in known]
        if largest:
            trial = [max(a, b) for a, b in zip(largest, trial, strict=True)]
        auc = _auc(trial, truth)
        if auc >= best + 0.005:
            chosen.append(signal)
            largest, best = trial, auc
        if len(chosen) == MAX_SIGNALS:
            break
    return chosen


def _auc(scores: Sequence[float], truth: Sequence[int]) -> float:
    """The chance that a positive row scores above a negative one (ties count half)."""
    positives = sum(truth)
    negatives = len(truth) - positives
    if positives == 0 or negatives == 0:
        return 0.5
    ranks = _ranks(scores)
    rank_sum = sum(rank for rank, flag in zip(ranks, truth, strict=True) if flag)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _score_curve(
    signals: Sequence[_Signal], flags: Sequence[int | None], known: Sequence[int]
) -> tuple[float, float, float] | None:
    """Cutoff and steepness of a logistic curve of the largest z-score fitted to the labels."""
    columns = [signal.unusual() for signal in signals]
    x = [max(column[index] for column in columns) for index in known]
    y = [flags[index] or 0 for index in known]
    intercept, slope = _logistic(x, y)
    if slope <= 0:
        return None
    return -intercept / slope, slope, _auc(x, y)


def _logistic(x: Sequence[float], y: Sequence[int], rounds: int = 50) -> tuple[float, float]:
    """Intercept and slope of a one-feature logistic regression, by Newton's method.

    The slope has a light L2 penalty, as in scikit-learn's default.
    """
    intercept, slope = 0.0, 0.0
    for _ in range(rounds):
        g0 = g1 = h00 = h01 = 0.0
        h11 = 1.0
        g1 = slope
        for value, label in zip(x, y, strict=True):
            p = 0.5 * (1 + math.tanh((intercept + slope * value) / 2))
            weight = max(p * (1 - p), 1e-12)
            g0 += p - label
            g1 += (p - label) * value
            h00 += weight
            h01 += weight * value
            h11 += weight * value * value
        determinant = h00 * h11 - h01 * h01
        if determinant <= 0:
            break
        step0 = (h11 * g0 - h01 * g1) / determinant
        step1 = (h00 * g1 - h01 * g0) / determinant
        intercept, slope = intercept - step0, slope - step1
        if abs(step0) + abs(step1) < 1e-9:
            break
    return intercept, slope


# --- Writing Python ----------------------------------------------------------------------------


def _lines(*parts: Sequence[str]) -> str:
    return "".join(line + "\n" for part in parts for line in part)


def _comment(text: str, indent: int = 0) -> list[str]:
    """Comment lines holding text, wrapped to the line length."""
    pad = " " * indent
    width = LINE_LENGTH - indent - 2
    return [f"{pad}# {line}" for line in textwrap.wrap(text, width, break_on_hyphens=False)]


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def _significant(value: float, digits: int) -> float:
    """The value rounded to a number of significant digits, so that it reads short."""
    return float(f"{value:.{digits}g}") if math.isfinite(value) else value


def _quoted(name: str) -> str:
    """A name for a comment: a string literal, cut short when it is long."""
    return _literal(name if len(name) <= NAME_SHOWN else name[: NAME_SHOWN - 3] + "...")


def _literal(value: object) -> str:
    """A Python literal as the formatter writes it.

    Strings in double quotes unless that takes more escapes, with the characters a linter could
    mistake for others escaped.
    """
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    return _string(str(value))


def _string(text: str) -> str:
    quote = "'" if text.count('"') > text.count("'") else '"'
    mixed = any(character.isascii() and character.isalpha() for character in text)
    body = []
    for character in text:
        if character in (quote, "\\"):
            body.append("\\" + character)
        elif character in "\n\r\t":
            body.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[character])
        elif character.isprintable() and (character.isascii() or _unambiguous(character, mixed)):
            body.append(character)
        else:
            code = ord(character)
            body.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
    return quote + "".join(body) + quote


def _unambiguous(character: str, mixed: bool) -> bool:
    """Whether a non-ASCII character may stand as it is in a string literal.

    Letters, marks and digits may, unless they are letters of another script among Latin
    letters: linters flag those as confusable.
    """
    if unicodedata.category(character)[0] not in "LMN":
        return False
    return not mixed or unicodedata.name(character, "").startswith("LATIN")


def _call(name: str, args: Sequence[object], indent: int) -> list[str]:
    """A call as an item of a collection, laid out as the formatter lays it out."""
    pad, inner = " " * indent, " " * (indent + 4)
    written = [_literal(arg) for arg in args]
    one_line = f"{pad}{name}({', '.join(written)}),"
    if len(one_line) <= LINE_LENGTH:
        return [one_line]
    hugged = inner + ", ".join(written)
    if len(hugged) <= LINE_LENGTH:
        return [f"{pad}{name}(", hugged, f"{pad}),"]
    return [f"{pad}{name}(", *(_fitting(f"{inner}{arg},") for arg in written), f"{pad}),"]


def _fitting(line: str) -> str:
    """A line that cannot be split (a long name): kept, and marked for the line-length check."""
    return line if len(line) <= LINE_LENGTH else f"{line}  # noqa: E501"


def _dictionary(
    target: str, entries: Sequence[tuple[list[str], str, float | Mapping[str, float]]]
) -> list[str]:
    """`target = {...}` with one entry a line, each under its comment; {} without entries.

    An entry's value is a number, or a table of categories on one line when it fits, else
    one category a line.
    """
    if not entries:
        return [target + " = {}"]
    lines = [target + " = {"]
    for comment, key, value in entries:
        lines += comment
        if not isinstance(value, Mapping):
            lines.append(_fitting(f"    {_literal(key)}: {_literal(value)},"))
            continue
        items = [f"{_literal(name)}: {_literal(amount)}" for name, amount in value.items()]
        line = f"    {_literal(key)}: " + "{" + ", ".join(items) + "},"
        if len(line) <= LINE_LENGTH or not items:
            lines.append(_fitting(line))
            continue
        lines.append(_fitting(f"    {_literal(key)}: " + "{"))
        lines += [_fitting(f"        {item},") for item in items]
        lines.append("    },")
    return [*lines, "}"]


def _sequence(target: str, items: Sequence[str]) -> list[str]:
    """`target = (...)` as a tuple, on one line when it fits, else one item a line."""
    one_line = f"{target} = ({', '.join(items)}{',' if len(items) == 1 else ''})"
    if len(one_line) <= LINE_LENGTH:
        return [one_line]
    return [f"{target} = (", *(_fitting(f"    {item},") for item in items), ")"]
