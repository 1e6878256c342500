"""Check data against the feature schema, streaming: one line per problem, never a traceback."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import filterfalse

from .infer import (
    BOOLEAN,
    DISTINCT_CAP,
    INTEGER,
    MISSING,
    NOT_INTEGER,
    NOT_NUMBER,
    NUMBER,
    TRUE,
    SchemaLike,
    Value,
    as_text,
    value_key,
)

INPUT_ROLES = ("feature", "sensitive")


@dataclass(frozen=True)
class Check:
    """The outcome of checking data against a schema.

    Attributes:
        rows: Rows checked.
        problems: One line per problem; none when the data fits the schema.
    """

    rows: int
    problems: tuple[str, ...]


def check_rows(
    schema: SchemaLike,
    columns: Sequence[str],
    chunks: Iterable[Sequence[Sequence[object]]],
    *,
    labelled: bool = True,
    schema_file: str = "schema.py",
    reinfer: str = "schema infer PATH",
) -> Check:
    """Check rows against a schema, one line per problem.

    The problems: a model input or the target missing from the columns, a column the schema
    does not declare, values that are not numbers, not whole numbers or outside their range,
    values not among a category's, labels not among the target's values, and missing values
    in a column the schema does not declare nullable (or in the target).

    Args:
        schema: The schema in use.
        columns: The data's column names, in the order of each row's values.
        chunks: The rows, a chunk at a time; values are CSV text or Python values.
        labelled: Whether the data must hold the target column.
        schema_file: The schema's file, as named in the problems.
        reinfer: The command that re-infers the schema, as named in the problems.

    Returns:
        How many rows were checked and the problems.
    """
    problems = _column_problems(schema, columns, labelled, schema_file, reinfer)
    checks = _value_checks(schema, columns)
    rows = 0
    width = len(columns)
    for chunk in chunks:
        if not chunk:
            continue
        if set(map(len, chunk)) != {width}:
            chunk = [(list(row) + [""] * width)[:width] for row in chunk]
        transposed = list(zip(*chunk, strict=True))
        for index, check in checks.items():
            values: Sequence[str] = transposed[index]
            if set(map(type, values)) != {str}:
                values = list(map(as_text, values))
            check.add(values, rows + 1)
        rows += len(chunk)
    for check in checks.values():
        problems += check.problems()
    return Check(rows=rows, problems=tuple(problems))


def _column_problems(
    schema: SchemaLike, columns: Sequence[str], labelled: bool, schema_file: str, reinfer: str
) -> list[str]:
    problems: list[str] = []
    present = set(columns)
    declared = {column.name for column in schema.columns}
    for column in schema.columns:
        is_input = column.role in INPUT_ROLES and column.kind != "text"
        if is_input and column.name not in present:
            problems.append(
                f"missing column {column.name!r}: {schema_file} declares it as a model input"
            )
    target = schema.target.name
    if labelled and target not in present:
        problems.append(f"missing target column {target!r}")
    for name in columns:
        if name not in declared and name != target:
            problems.append(f"extra column {name!r}: not in {schema_file}; run `{reinfer}`")
    return problems


def _value_checks(schema: SchemaLike, columns: Sequence[str]) -> dict[int, _ColumnCheck]:
    """A check per column whose values the schema constrains, by the column's position."""
    declared = {column.name: column for column in schema.columns}
    target = schema.target
    checks: dict[int, _ColumnCheck] = {}
    for index, name in enumerate(columns):
        if name == target.name:
            kind = "category" if target.values else "number"
            checks[index] = _ColumnCheck(
                f"target {name!r}", kind, target.values, target.minimum, target.maximum
            )
            checks[index].label = True
            continue
        column = declared.get(name)
        if column is not None and column.role in INPUT_ROLES and column.kind != "text":
            checks[index] = _ColumnCheck(
                repr(name), column.kind, column.categories, column.minimum, column.maximum
            )
            checks[index].nullable = column.nullable
    return checks


class _ColumnCheck:
    """Counts one column's problems over every row, keeping the first row of each."""

    def __init__(
        self,
        shown: str,
        kind: str,
        values: tuple[Value, ...],
        low: float | None,
        high: float | None,
    ) -> None:
        self.shown = shown
        self.kind = kind
        self.allowed = {value_key(value) for value in values}
        self.low = -math.inf if low is None else low
        self.high = math.inf if high is None else high
        self.nullable = False
        self.label = False
        self.known: set[str] = set()  # values already found among the categories
        self.first: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()
        self.smallest = math.inf
        self.largest = -math.inf

    def add(self, values: Sequence[str], first_row: int) -> None:
        """Check one chunk of the column's values; the first is on row `first_row`."""
        if self._fine(values):
            return
        for row, token in enumerate(values, start=first_row):
            if token in MISSING:
                self._note("missing", row)
            elif self.kind == "category":
                if not self._known(token):
                    if len(self.unknown) < DISTINCT_CAP or token in self.unknown:
                        self.unknown[token] += 1
                    self._note("unknown", row)
            elif not NUMBER.fullmatch(token):
                self._note("text", row)
            elif self.kind == "integer" and not INTEGER.fullmatch(token):
                self._note("fraction", row)
            elif not self.low <= (number := float(token)) <= self.high:
                self.smallest = min(self.smallest, number)
                self.largest = max(self.largest, number)
                self._note("outside", row)

    def _fine(self, values: Sequence[str]) -> bool:
        """Whether a chunk has no problem, found without a Python loop over its values."""
        present = values
        if not MISSING.isdisjoint(values):
            if not self.nullable:
                return False
            present = list(filterfalse(MISSING.__contains__, values))
            if not present:
                return True
        if self.kind == "category":
            unseen = set(present) - self.known
            known = {token for token in unseen if self._known(token)}
            self.known |= known
            return len(known) == len(unseen)
        integer = self.kind == "integer"
        try:
            numbers = list(map(int if integer else float, present))
        except ValueError:
            return False
        if (NOT_INTEGER if integer else NOT_NUMBER).search("".join(present)):
            return False
        return self.low <= min(numbers) and max(numbers) <= self.high

    def _note(self, problem: str, row: int) -> None:
        self.counts[problem] += 1
        self.first.setdefault(problem, row)

    def _known(self, token: str) -> bool:
        """Whether a value is one of the category's, read as pandas reads it."""
        if ("str", token) in self.allowed:
            return True
        if token in BOOLEAN and ("bool", token in TRUE) in self.allowed:
            return True
        if INTEGER.fullmatch(token) and ("int", int(token)) in self.allowed:
            return True
        return bool(NUMBER.fullmatch(token)) and ("float", float(token)) in self.allowed

    def problems(self) -> list[str]:
        examples = ", ".join(repr(token) for token, _ in self.unknown.most_common(5))
        what = "labels not among the target's values" if self.label else "values not among its"
        what += "" if self.label else " categories"
        found = [
            self._line("missing", "with no label" if self.label else "missing (not nullable)"),
            self._line("unknown", f"with {what}: {examples}"),
            self._line("text", "that are not numbers"),
            self._line("fraction", "that are not whole numbers"),
            self._line(
                "outside",
                f"outside {self.low:g} to {self.high:g} (seen {self.smallest:g} to "
                f"{self.largest:g})",
            ),
        ]
        if self.nullable and not self.label:
            found[0] = ""
        return [line for line in found if line]

    def _line(self, problem: str, text: str) -> str:
        count = self.counts[problem]
        if not count:
            return ""
        rows = "row" if count == 1 else "rows"
        return f"{self.shown}: {count:,} {rows} {text} (first: row {self.first[problem]:,})"
