"""Infer the feature schema from data: a streaming column profiler, the schema writer and a diff."""

# Standard library only, and no import of the project's other modules: Copier's own interpreter
# loads this file by its path during the post-copy task, where pandas is not installed. The
# rules below mirror what pandas.read_csv makes of the same text, because the pipeline reads
# the data with pandas. csv-sniffing libraries (frictionless, csvkit) were weighed: each brings
# its own dependencies, which Copier's interpreter does not have.

from __future__ import annotations

import csv
import io
import math
import operator
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import filterfalse, islice, repeat
from pathlib import Path
from typing import Protocol

Value = str | int | float | bool
Key = tuple[str, Value]
TASKS = ("binary_classification", "multiclass_classification", "regression", "anomaly_detection")
SCORED_TASKS = ("binary_classification", "anomaly_detection")

SAMPLE_ROWS = 100_000  # rows profiled at most, whatever the size of the data
DISTINCT_CAP = 1_000  # distinct values counted per column; beyond, only "more than this"
MAX_CATEGORIES = 100  # more distinct values than this are not a category
MIN_ID_ROWS = 20  # fewer sampled values cannot tell an id from a small category
MAX_INTEGER_GROUPS = 10  # a sensitive integer column with at most this many values is groups
MARGIN = 0.1  # ranges are widened by this share of their observed span on each side
WINDOWS = 100  # a large file is sampled in this many evenly spread stretches
CHUNK_ROWS = 10_000  # rows profiled at a time
EFFECT_ROWS = 10_000  # rows kept to estimate how the target moves with each column
BLOCK_BYTES = 1 << 20
LINE_LENGTH = 100
DEFAULT_POSITIVE = "1"

# pandas.read_csv reads these as missing by default (pandas._libs.parsers.STR_NA_VALUES).
MISSING = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
TRUE = frozenset({"True", "TRUE", "true"})
BOOLEAN = TRUE | {"False", "FALSE", "false"}
# What pandas parses as int64 (up to 18 digits here) and as float64.
INTEGER = re.compile(r"[ \t]*[+-]?[0-9]{1,18}[ \t]*")
NUMBER = re.compile(r"[ \t]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")
# A character that cannot be part of such a number: where int() or float() accepted one, each
# value is checked against the patterns above.
NOT_INTEGER = re.compile(r"[^0-9+\- \t]")
NOT_NUMBER = re.compile(r"[^0-9.eE+\- \t]")
POSITIVE_WORDS = frozenset({"1", "1.0", "true", "yes", "y", "positive"})


class InferenceError(ValueError):
    """The data cannot give a schema: one line saying why and what to change."""


@dataclass(frozen=True)
class InferredColumn:
    """One column as inferred: the fields of `columns.Column`, and why it is not an input."""

    name: str
    kind: str
    role: str = "feature"
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[Value, ...] = ()
    nullable: bool = False
    typical: float | None = None
    spread: float | None = None
    weights: tuple[float, ...] = ()
    effect: float | tuple[float, ...] = 0.0
    reason: str = ""

    @property
    def is_input(self) -> bool:
        """Whether the models will read this column."""
        return self.role in ("feature", "sensitive") and self.kind != "text"


@dataclass(frozen=True)
class InferredTarget:
    """The target as inferred: the fields of `columns.Target`."""

    name: str
    values: tuple[Value, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    typical: float | None = None
    spread: float | None = None
    weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class InferredSchema:
    """A schema inferred from data, with what the sample was and what to tell people.

    Attributes:
        target: The target column.
        columns: Every other column, model inputs first, then the rest, each in data order.
        noise: How much of the outcome the columns do not explain (shapes synthetic rows).
        notes: Why each column that is not an input is not one.
        warnings: What a person should look at (missing labels, unknown sensitive columns).
        rows_sampled: Rows profiled.
        rows_total: Rows the source holds, when known.
        source: Where the rows came from, as shown to people.
    """

    target: InferredTarget
    columns: tuple[InferredColumn, ...]
    noise: float = 1.0
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    rows_sampled: int = 0
    rows_total: int | None = None
    source: str = ""

    @property
    def inputs(self) -> tuple[InferredColumn, ...]:
        """The columns the models will read."""
        return tuple(column for column in self.columns if column.is_input)

    def summary(self) -> str:
        """One line: columns, inputs, target and the sample."""
        total = "" if self.rows_total is None else f" of {self.rows_total:,}"
        return (
            f"{len(self.columns)} columns ({len(self.inputs)} model inputs), target "
            f"{self.target.name!r}; {self.rows_sampled:,} rows sampled{total}"
        )


class ColumnLike(Protocol):
    """What the diff and the check read of a column (`columns.Column` or `InferredColumn`)."""

    @property
    def name(self) -> str: ...  # noqa: D102
    @property
    def kind(self) -> str: ...  # noqa: D102
    @property
    def role(self) -> str: ...  # noqa: D102
    @property
    def minimum(self) -> float | None: ...  # noqa: D102
    @property
    def maximum(self) -> float | None: ...  # noqa: D102
    @property
    def categories(self) -> tuple[Value, ...]: ...  # noqa: D102
    @property
    def nullable(self) -> bool: ...  # noqa: D102


class TargetLike(Protocol):
    """What the diff and the check read of a target."""

    @property
    def name(self) -> str: ...  # noqa: D102
    @property
    def values(self) -> tuple[Value, ...]: ...  # noqa: D102
    @property
    def minimum(self) -> float | None: ...  # noqa: D102
    @property
    def maximum(self) -> float | None: ...  # noqa: D102


class SchemaLike(Protocol):
    """What the diff and the check read of a schema (`columns.Schema` or `InferredSchema`)."""

    @property
    def target(self) -> TargetLike: ...  # noqa: D102
    @property
    def columns(self) -> Sequence[ColumnLike]: ...  # noqa: D102


# --- Reading CSV --------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvSample:
    """A CSV file's header as pandas names the columns, its row count, and a bounded sample.

    Attributes:
        columns: The column names.
        rows_total: Data rows in the file (its line breaks less the header), when counted.
        chunks: The sampled rows, a chunk at a time, each row as wide as the header.
    """

    columns: tuple[str, ...]
    rows_total: int | None
    chunks: Iterator[list[list[str]]]


def count_rows(path: Path) -> int:
    """The data rows of a CSV file: its line breaks less the header, counted in 1 MiB blocks.

    A quoted value that spans lines counts once per line it spans.
    """
    breaks, last = 0, b"\n"
    with path.open("rb") as stream:
        while block := stream.read(BLOCK_BYTES):
            breaks += block.count(b"\n")
            last = block[-1:]
    return max(breaks + (last != b"\n") - 1, 0)


def sample_csv(path: Path, limit: int = SAMPLE_ROWS) -> CsvSample:
    """Read a CSV file's header and a bounded, deterministic sample of its rows, streaming.

    A file of at most `limit` rows is read whole. A larger one is read in `WINDOWS` evenly
    spread stretches, so that the sample sees the whole file; when quoted values span lines
    (where a stretch cannot find the start of a row) its first `limit` rows are taken instead.

    Args:
        path: The CSV file (UTF-8, comma-separated, a header row first).
        limit: Most rows to sample.

    Returns:
        The header, the row count and the sampled rows.

    Raises:
        InferenceError: The file is missing, empty, not UTF-8 or has no header.
    """
    _check_readable(path)
    total = count_rows(path)
    with path.open("rb") as stream:
        header_bytes = _first_record(stream)
        data_start = stream.tell()
    header = _header(header_bytes, path)
    width = len(header)
    if total <= limit or path.stat().st_size - data_start < WINDOWS * 2:
        chunks = _sequential(path, data_start, width, limit)
    else:
        chunks = _spread(path, data_start, width, limit)
    return CsvSample(columns=header, rows_total=total, chunks=chunks)


def read_csv(path: Path) -> CsvSample:
    """Every row of a CSV file, streaming, a chunk at a time (for checks that see all rows)."""
    _check_readable(path)
    with path.open("rb") as stream:
        header_bytes = _first_record(stream)
        data_start = stream.tell()
    header = _header(header_bytes, path)
    return CsvSample(
        columns=header,
        rows_total=None,
        chunks=_sequential(path, data_start, len(header), None),
    )


def _check_readable(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InferenceError(f"{path}: not found") from None
    except OSError as error:
        raise InferenceError(f"{path}: cannot read it ({error.strerror})") from None
    if not path.is_file():
        raise InferenceError(f"{path}: not a file")
    if size == 0:
        raise InferenceError(f"{path}: the file is empty")
    try:
        path.open("rb").close()
    except OSError as error:
        raise InferenceError(f"{path}: cannot read it ({error.strerror})") from None


def _first_record(stream: io.BufferedReader) -> bytes:
    """The bytes of the first record: lines up to one that closes every quote opened."""
    record = b""
    while line := stream.readline():
        record += line
        if record.count(b'"') % 2 == 0:
            break
    return record


def _header(raw: bytes, path: Path) -> tuple[str, ...]:
    """The column names as pandas gives them: empty ones named, repeated ones numbered."""
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise InferenceError(f"{path}: line 1 is not UTF-8 text; save the file as UTF-8") from None
    names = next(csv.reader(io.StringIO(text, newline="")), [])
    if names in ([], [""]):
        raise InferenceError(f"{path}: no header row with column names")
    header: list[str] = []
    for position, name in enumerate(names):
        candidate = name or f"Unnamed: {position}"
        number = 1
        while candidate in header:
            candidate, number = f"{name}.{number}", number + 1
        header.append(candidate)
    return tuple(header)


def _sequential(path: Path, start: int, width: int, limit: int | None) -> Iterator[list[list[str]]]:
    """The rows from `start` on, at most `limit`, a chunk at a time."""
    with path.open("rb") as raw:
        raw.seek(start)
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        while limit is None or limit > 0:
            size = CHUNK_ROWS if limit is None else min(CHUNK_ROWS, limit)
            try:
                rows = list(islice(reader, size))
            except UnicodeDecodeError:
                line = reader.line_num + 2
                raise InferenceError(
                    f"{path}: not UTF-8 text near line {line:,}; save it as UTF-8"
                ) from None
            except csv.Error as error:
                raise InferenceError(f"{path}: not valid CSV ({error})") from None
            if not rows:
                return
            if limit is not None:
                limit -= len(rows)
            if fitted := _fit(rows, width):
                yield fitted


def _fit(rows: list[list[str]], width: int) -> list[list[str]]:
    """Rows as wide as the header: blank lines dropped, short rows padded (as pandas does)."""
    if set(map(len, rows)) == {width}:
        return rows
    return [(row + [""] * width)[:width] for row in rows if row]


def _spread(path: Path, start: int, width: int, limit: int) -> Iterator[list[list[str]]]:
    """About `limit` rows taken from `WINDOWS` evenly spread stretches of the file.

    The first stretch's lines give the typical line length; each later stretch reads about
    as many bytes as its share of rows needs, from its first full line on.
    """
    per_window = max(1, limit // WINDOWS)
    span = path.stat().st_size - start
    line_bytes = 1.0
    chunk: list[list[str]] = []
    with path.open("rb") as stream:
        for window in range(WINDOWS):
            begin = start + span * window // WINDOWS
            end = start + span * (window + 1) // WINDOWS
            stream.seek(begin)
            if window == 0:
                block = b"".join(islice(iter(stream.readline, b""), per_window))
                line_bytes = len(block) / max(block.count(b"\n"), 1)
            else:
                block = stream.read(min(end - begin, int(line_bytes * (per_window + 2) * 1.25)))
                first, last = block.find(b"\n"), block.rfind(b"\n")
                block = block[first + 1 : last + 1] if 0 <= first < last else b""
            rows = _parse(block, width, path, begin)[:per_window]
            if window == 0 and b'"' in block and _spans_lines(rows):
                # A stretch could start inside a quoted value: take the first rows instead.
                yield from _sequential(path, start, width, limit)
                return
            chunk += rows
            if len(chunk) >= CHUNK_ROWS:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _parse(block: bytes, width: int, path: Path, offset: int) -> list[list[str]]:
    """The rows of a stretch of whole lines."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InferenceError(
            f"{path}: not UTF-8 text near byte {offset + error.start:,}; save it as UTF-8"
        ) from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise InferenceError(f"{path}: not valid CSV ({error})") from None
    return _fit(rows, width) if rows else rows


def _spans_lines(rows: list[list[str]]) -> bool:
    return any("\n" in value or "\r" in value for row in rows for value in row)


# --- Profiling ----------------------------------------------------------------------------


def as_text(value: object) -> str:
    """A value from Parquet, SQL or Python as the text a CSV file would hold for it."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    text = str(value)
    return "" if text in ("NaT", "<NA>", "nan", "NaN", "None") else text


class _Profile:
    """Running statistics of one column, in memory bounded by DISTINCT_CAP and the sample."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen = 0
        self.present = 0
        self.counts: Counter[str] | None = Counter()
        self.examples: tuple[str, ...] = ()
        self.maybe_bool = True
        self.maybe_int = True
        self.maybe_number = True
        self.low = math.inf
        self.high = -math.inf
        self.shift: float | int | None = None
        self.total = 0.0
        self.squares = 0.0
        self.numbers = 0
        # Hashes of every value while all of them are distinct (an id candidate).
        self.unique: set[int] | None = set()

    def add(self, values: Sequence[str]) -> None:
        """Take in one chunk of a column's values, each the text a CSV file holds."""
        self.seen += len(values)
        present = values
        if not MISSING.isdisjoint(values):
            present = list(filterfalse(MISSING.__contains__, values))
        if not present:
            return
        self.present += len(present)
        if self.counts is not None:
            self.counts.update(present)
            self.maybe_bool = self.maybe_bool and self.counts.keys() <= BOOLEAN
            if len(self.counts) > DISTINCT_CAP:
                self.examples = tuple(islice(self.counts, DISTINCT_CAP))
                self.counts = None
        if self.maybe_int:
            self._add_integers(present)
        if self.maybe_number and not self.maybe_int:
            self._add_numbers(present)
        self._add_unique(present)

    def _add_integers(self, present: Sequence[str]) -> None:
        try:
            numbers = list(map(int, present))
        except ValueError:
            self.maybe_int = False
            return
        # int() also takes what pandas does not (1_000, other scripts' digits, 19 digits).
        odd = NOT_INTEGER.search("".join(present)) or max(map(abs, numbers)) >= 10**18
        if odd and not all(map(INTEGER.fullmatch, present)):
            self.maybe_int = False
            return
        self._add_sums(numbers, sum)

    def _add_numbers(self, present: Sequence[str]) -> None:
        try:
            numbers = list(map(float, present))
        except ValueError:
            self.maybe_number = False
            return
        # float() also takes inf, nan and what int() takes that pandas does not.
        odd = NOT_NUMBER.search("".join(present))
        if odd and not all(map(NUMBER.fullmatch, present)):
            self.maybe_number = False
            return
        self._add_sums(numbers, math.fsum)

    def _add_sums(self, numbers: list[int] | list[float], total: Callable[..., float]) -> None:
        if self.shift is None:
            self.shift = numbers[0]
        # Sums of the values less the first one seen: exact enough for a mean far from zero.
        shifted = list(map(operator.sub, numbers, repeat(self.shift)))
        self.total += total(shifted)
        self.squares += total(map(operator.mul, shifted, shifted))
        self.numbers += len(numbers)
        self.low = min(self.low, min(numbers))
        self.high = max(self.high, max(numbers))

    def _add_unique(self, present: Sequence[str]) -> None:
        if self.unique is None:
            return
        if self.maybe_number and not self.maybe_int:
            self.unique = None  # decimal numbers are all distinct without being ids
            return
        hashes = set(map(hash, present))
        if len(hashes) < len(present) or not self.unique.isdisjoint(hashes):
            self.unique = None
        else:
            self.unique |= hashes

    @property
    def distinct(self) -> int | None:
        """How many distinct values, or None when more than DISTINCT_CAP."""
        return None if self.counts is None else len(self.counts)

    @property
    def all_distinct(self) -> bool:
        return self.unique is not None and self.present >= MIN_ID_ROWS

    @property
    def mean(self) -> float:
        return (self.shift or 0.0) + self.total / max(self.numbers, 1)

    @property
    def stdev(self) -> float:
        if self.numbers < 2:
            return 0.0
        variance = (self.squares - self.total**2 / self.numbers) / (self.numbers - 1)
        return math.sqrt(max(variance, 0.0))

    def convert(self) -> Callable[[str], Value]:
        """How a value of this column reads as a Python value, the way pandas reads it."""
        if self.maybe_bool:
            return TRUE.__contains__
        if self.maybe_int:
            return int
        if self.maybe_number:
            return float
        return str

    def values(self) -> list[tuple[Value, int]]:
        """Each distinct value as pandas reads it, with its count, in order (see _order)."""
        merged: Counter[Key] = Counter()
        convert = self.convert()
        for token, count in (self.counts or Counter()).items():
            merged[value_key(convert(token))] += count
        return sorted(((key[1], count) for key, count in merged.items()), key=_order)

    def shown_examples(self) -> list[str]:
        return list(self.counts) if self.counts is not None else list(self.examples)


def value_key(value: Value) -> Key:
    """A value with its type: 1, 1.0 and True are equal in Python but apart in the data."""
    return (type(value).__name__, value)


def _order(item: tuple[Value, int]) -> tuple[int, float, str]:
    value = item[0]
    if isinstance(value, bool | int | float):
        return (0, float(value), "")
    return (1, 0.0, value)


class Profiler:
    """Profile rows a chunk at a time, then decide the schema (see `infer_rows`)."""

    def __init__(
        self,
        columns: Sequence[str],
        *,
        target: str,
        task: str,
        sensitive: Sequence[str] = (),
        positive: str | None = None,
        likely_positive: Sequence[str] = (),
        classes: Sequence[str] = (),
        labelled: bool = True,
    ) -> None:
        """Start profiling.

        Args:
            columns: The column names, in the order of each row's values.
            target: The target column's name.
            task: binary_classification, multiclass_classification, regression or
                anomaly_detection.
            sensitive: Columns whose groups the bias gate compares.
            positive: Binary classification and anomaly detection: the target's value that
                means positive. Default (and "1"): 1, true or yes, else the rarer value.
            likely_positive: Values to try, in order, when `positive` is not given: the first
                that names one of the target's values is positive (none of them: the default).
            classes: Multiclass: the contract's classes, whose order the target's values take
                when they are the same values.
            labelled: Whether the data must hold the target column.
        """
        if task not in TASKS:
            raise InferenceError(f"unknown task type {task!r}: use one of {', '.join(TASKS)}")
        repeated = sorted({name for name in columns if list(columns).count(name) > 1})
        if repeated:
            raise InferenceError(f"columns {repeated} appear more than once")
        self.columns = tuple(columns)
        self.target = target
        self.task = task
        self.sensitive = tuple(sensitive)
        self.positive = positive
        self.likely_positive = tuple(likely_positive)
        self.classes = tuple(classes)
        self.labelled = labelled
        self.rows = 0
        self.profiles = [_Profile(name) for name in self.columns]
        # Every `stride`-th row, at most EFFECT_ROWS of them, to estimate effects on the target.
        self.kept: list[list[str]] = [[] for _ in self.columns]
        self.stride = 1

    def add(self, rows: Sequence[Sequence[object]], *, text: bool = False) -> None:
        """Profile a chunk of rows, each a sequence of values in column order.

        Args:
            rows: The rows; values are the text a CSV file holds, or Python values.
            text: Whether every value is text (rows from the csv module), which saves a check.
        """
        width = len(self.columns)
        if not rows or not width:
            return
        if set(map(len, rows)) != {width}:
            rows = [(list(row) + [""] * width)[:width] for row in rows]
        first_kept = -self.rows % self.stride
        for index, column in enumerate(zip(*rows, strict=True)):
            values: Sequence[str] = column
            if not text and set(map(type, column)) != {str}:
                values = list(map(as_text, column))
            self.profiles[index].add(values)
            self.kept[index] += values[first_kept :: self.stride]
        self.rows += len(rows)
        while len(self.kept[0]) > EFFECT_ROWS:
            self.kept = [kept[::2] for kept in self.kept]
            self.stride *= 2

    def result(self, *, rows_total: int | None = None, source: str = "") -> InferredSchema:
        """The schema the profiled rows call for.

        Raises:
            InferenceError: No rows, no target column (labelled data), or a target that
                does not fit the task.
        """
        if self.rows == 0:
            raise InferenceError(f"{source or 'the data'}: no rows to infer a schema from")
        warnings: list[str] = []
        by_name = dict(zip(self.columns, self.profiles, strict=True))
        target_profile = by_name.get(self.target)
        if target_profile is None and self.labelled:
            shown = ", ".join(repr(name) for name in self.columns[:12])
            more = ", …" if len(self.columns) > 12 else ""
            raise InferenceError(
                f"{source or 'the data'}: no target column {self.target!r}; its columns are "
                f"{shown}{more}"
            )
        target = self._target(target_profile, warnings)
        for name in self.sensitive:
            if name not in by_name:
                warnings.append(f"sensitive feature {name!r} is not in the data")
        columns = [
            _column(profile, self.rows, sensitive=profile.name in self.sensitive)
            for profile in self.profiles
            if profile.name != self.target
        ]
        for column in columns:
            if column.name in self.sensitive and column.role != "sensitive":
                warnings.append(
                    f"sensitive feature {column.name!r} cannot be grouped ({column.reason})"
                )
        noise = 1.0
        if target_profile is not None:
            columns, noise = self._effects(columns, target, target_profile)
        ordered = [column for column in columns if column.is_input]
        ordered += [column for column in columns if not column.is_input]
        notes = tuple(
            f"{column.name!r} is not a model input ({column.reason})"
            for column in ordered
            if not column.is_input
        )
        if not any(column.is_input for column in ordered):
            warnings.append("no column can be a model input: the schema needs at least one")
        return InferredSchema(
            target=target,
            columns=tuple(ordered),
            noise=noise,
            notes=notes,
            warnings=tuple(warnings),
            rows_sampled=self.rows,
            rows_total=rows_total,
            source=source,
        )

    def _target(self, profile: _Profile | None, warnings: list[str]) -> InferredTarget:
        name = self.target
        if profile is None:
            if self.task == "multiclass_classification":
                return InferredTarget(name, values=tuple(self.classes))
            if self.task == "regression":
                return InferredTarget(name)
            return InferredTarget(name, values=(0, 1))
        if profile.present < profile.seen:
            warnings.append(
                f"{profile.seen - profile.present:,} of {profile.seen:,} sampled rows have no "
                f"label in {name!r}"
            )
        if profile.present == 0:
            raise InferenceError(f"the target column {name!r} is empty in every sampled row")
        if self.task == "regression":
            if not profile.maybe_number:
                example = next(
                    (value for value in profile.shown_examples() if not NUMBER.fullmatch(value)),
                    "",
                )
                raise InferenceError(
                    f"the target column {name!r} holds text such as {example!r}: regression "
                    "needs numbers"
                )
            low, high = _widen(profile.low, profile.high, integer=False)
            return InferredTarget(
                name,
                minimum=low,
                maximum=high,
                typical=_significant(profile.mean),
                spread=_significant(profile.stdev),
            )
        if profile.counts is None:
            raise InferenceError(
                f"the target column {name!r} has more than {DISTINCT_CAP:,} distinct values: "
                f"a class per value cannot be learnt ({self.task})"
            )
        counted = profile.values()
        values = [value for value, _ in counted]
        if self.task in SCORED_TASKS:
            if len(values) != 2:
                shown = ", ".join(repr(value) for value in values[:6])
                raise InferenceError(
                    f"the target column {name!r} has {len(values)} distinct values ({shown}); "
                    f"{self.task.replace('_', ' ')} needs two"
                )
            positive = self._positive_index(counted, warnings)
            counted = [counted[1 - positive], counted[positive]]
        else:
            # Classes numbered 0.0, 1.0, ... (a column that held a missing value) are 0, 1, ...
            # or, where the answers name the classes, spelt as the answers spell them.
            counted = [(_whole(value), count) for value, count in counted]
            keys = [_label_key(str(value)) for value, _ in counted]
            told = [_label_key(label) for label in self.classes]
            if sorted(str(value) for value, _ in counted) == sorted(self.classes):
                counted.sort(key=lambda item: self.classes.index(str(item[0])))
            elif len(set(told)) == len(told) and sorted(keys) == sorted(told):
                answered = [self.classes[told.index(key)] for key in keys]
                counted = sorted(
                    (
                        (value if str(value) == label else label, count)
                        for label, (value, count) in zip(answered, counted, strict=True)
                    ),
                    key=lambda item: self.classes.index(str(item[0])),
                )
        if self.task == "multiclass_classification" and len(counted) < 3:
            warnings.append(
                f"the target column {name!r} has {len(counted)} classes; multiclass "
                "classification needs at least 3"
            )
        return InferredTarget(
            name,
            values=tuple(value for value, _ in counted),
            weights=_shares([count for _, count in counted]),
        )

    def _positive_index(self, counted: list[tuple[Value, int]], warnings: list[str]) -> int:
        """Which of the two values means positive: as told, else 1/true/yes, else the rarer."""
        values = [value for value, _ in counted]
        told = self.positive
        if told is not None and told.strip() and told != DEFAULT_POSITIVE:
            matches = [index for index, value in enumerate(values) if _means(value, told)]
            if not matches:
                shown = " and ".join(repr(value) for value in values)
                raise InferenceError(
                    f"the positive value {told!r} is not in the target column "
                    f"{self.target!r}, which holds {shown}"
                )
            return matches[0]
        for likely in self.likely_positive if told is None else ():
            matches = [index for index, value in enumerate(values) if _means(value, likely)]
            if likely != DEFAULT_POSITIVE and matches:
                return matches[0]
        for index, value in enumerate(values):
            if str(value).strip().lower() in POSITIVE_WORDS:
                return index
        rarer = 0 if counted[0][1] < counted[1][1] else 1
        warnings.append(
            f"neither target value means 1, true or yes: the rarer one, {values[rarer]!r}, is "
            "taken as positive (say otherwise with positive_value or --positive)"
        )
        return rarer

    def _effects(
        self, columns: list[InferredColumn], target: InferredTarget, target_profile: _Profile
    ) -> tuple[list[InferredColumn], float]:
        """Each input's pull on the target, from the kept rows (shapes synthetic rows only).

        Returns the columns with their effects, and the noise that leaves the synthetic
        outcome about as predictable as the real one.
        """
        position = {name: index for index, name in enumerate(self.columns)}
        outcome = _outcome(self.task, target, target_profile, self.kept[position[self.target]])
        explained = 0.0
        updated: list[InferredColumn] = []
        for column in columns:
            if not column.is_input or column.role == "sensitive":
                # Synthetic rows carry no group gap: the bias gate judges the real data's.
                updated.append(column)
                continue
            tokens = self.kept[position[column.name]]
            if column.kind == "category":
                convert = self.profiles[position[column.name]].convert()
                effects = _category_effects(column, convert, tokens, outcome)
                explained += sum(
                    share * value**2 for share, value in zip(column.weights, effects, strict=True)
                )
                updated.append(replace(column, effect=effects if any(effects) else 0.0))
            else:
                effect = _correlation(tokens, outcome)
                explained += effect**2
                updated.append(replace(column, effect=effect))
        return updated, round(math.sqrt(max(1.0 - explained, 0.04)), 2)


def _outcome(
    task: str, target: InferredTarget, profile: _Profile, tokens: list[str]
) -> list[float | None]:
    """The target of each kept row as a number: 1/0, the class's rank, or the value."""
    convert = profile.convert()
    if task == "regression":
        return [None if token in MISSING else float(token) for token in tokens]
    keys = [value_key(value) for value in target.values]
    rank = {key: float(position) for position, key in enumerate(keys)}
    return [None if token in MISSING else rank.get(value_key(convert(token))) for token in tokens]


def _correlation(tokens: list[str], outcome: list[float | None]) -> float:
    """Pearson's correlation of a numeric column with the outcome, over the rows with both."""
    pairs = [
        (float(token), value)
        for token, value in zip(tokens, outcome, strict=True)
        if value is not None and token not in MISSING
    ]
    if len(pairs) < 3:
        return 0.0
    count = len(pairs)
    mean_x = math.fsum(x for x, _ in pairs) / count
    mean_y = math.fsum(y for _, y in pairs) / count
    cross = math.fsum((x - mean_x) * (y - mean_y) for x, y in pairs)
    spread_x = math.fsum((x - mean_x) ** 2 for x, _ in pairs)
    spread_y = math.fsum((y - mean_y) ** 2 for _, y in pairs)
    if spread_x <= 0 or spread_y <= 0:
        return 0.0
    return round(cross / math.sqrt(spread_x * spread_y), 2)


def _category_effects(
    column: InferredColumn,
    convert: Callable[[str], Value],
    tokens: list[str],
    outcome: list[float | None],
) -> tuple[float, ...]:
    """Per category: how far the mean outcome lies from the overall mean, in outcome spreads."""
    position = {value_key(value): index for index, value in enumerate(column.categories)}
    sums = [0.0] * len(column.categories)
    counts = [0] * len(column.categories)
    everything: list[float] = []
    for token, value in zip(tokens, outcome, strict=True):
        if value is None or token in MISSING:
            continue
        index = position.get(value_key(convert(token)))
        if index is not None:
            sums[index] += value
            counts[index] += 1
            everything.append(value)
    if len(everything) < 3:
        return (0.0,) * len(column.categories)
    mean = math.fsum(everything) / len(everything)
    spread = math.sqrt(math.fsum((value - mean) ** 2 for value in everything) / len(everything))
    if spread <= 0:
        return (0.0,) * len(column.categories)
    return tuple(
        round((total / count - mean) / spread, 2) if count else 0.0
        for total, count in zip(sums, counts, strict=True)
    )


def _column(profile: _Profile, rows: int, *, sensitive: bool) -> InferredColumn:
    """Decide one column's kind and role from its statistics."""
    name = profile.name
    nullable = profile.present < profile.seen
    distinct = profile.distinct
    if profile.present == 0:
        return InferredColumn(
            name,
            "text",
            role="ignored",
            nullable=True,
            reason=f"all missing in the {rows:,} sampled rows",
        )
    if distinct == 1:
        value = profile.values()[0][0]
        textual = profile.maybe_bool or not profile.maybe_number
        kind = "category" if textual else "integer" if profile.maybe_int else "number"
        return InferredColumn(
            name,
            kind,
            role="ignored",
            nullable=nullable,
            categories=(value,) if kind == "category" else (),
            reason=f"constant: every sampled value is {_short(value)}"
            + (" or missing" if nullable else ""),
        )
    role = "sensitive" if sensitive else "feature"
    if profile.maybe_bool:
        return _category(profile, role, nullable)
    if profile.maybe_int:
        if profile.all_distinct and not sensitive:
            return InferredColumn(
                name,
                "integer",
                role="id",
                nullable=nullable,
                reason=f"id-like: all {profile.present:,} sampled values are distinct",
            )
        groups = distinct is not None and (
            distinct <= 2 or (sensitive and distinct <= MAX_INTEGER_GROUPS)
        )
        if groups:
            return _category(profile, role, nullable)
        return _numeric(profile, "integer", role, nullable)
    if profile.maybe_number:
        return _numeric(profile, "number", role, nullable)
    if sensitive and distinct is not None:
        return _category(profile, role, nullable)
    if profile.all_distinct and not sensitive and not _free_text(profile):
        return InferredColumn(
            name,
            "text",
            role="id",
            nullable=nullable,
            reason=f"id-like: all {profile.present:,} sampled values are distinct",
        )
    if (
        distinct is not None
        and distinct <= MAX_CATEGORIES
        and (2 * distinct <= profile.present or distinct <= MAX_INTEGER_GROUPS)
    ):
        return _category(profile, role, nullable)
    many = f"{distinct:,}" if distinct is not None else f"more than {DISTINCT_CAP:,}"
    what = "free text" if _free_text(profile) else "too many values for a category"
    return InferredColumn(
        name,
        "text",
        role="ignored",
        nullable=nullable,
        reason=f"{what}: {many} distinct values in {profile.present:,} sampled rows",
    )


def _free_text(profile: _Profile) -> bool:
    """Whether distinct strings read as prose: mostly with spaces, or long."""
    examples = profile.shown_examples()
    if not examples:
        return False
    spaced = sum(1 for value in examples if " " in value.strip())
    mean_length = sum(map(len, examples)) / len(examples)
    return spaced * 2 >= len(examples) or mean_length > 40


def _category(profile: _Profile, role: str, nullable: bool) -> InferredColumn:
    counted = profile.values()
    return InferredColumn(
        profile.name,
        "category",
        role=role,
        categories=tuple(value for value, _ in counted),
        nullable=nullable,
        weights=_shares([count for _, count in counted]),
    )


def _numeric(profile: _Profile, kind: str, role: str, nullable: bool) -> InferredColumn:
    low, high = _widen(profile.low, profile.high, integer=kind == "integer")
    return InferredColumn(
        profile.name,
        kind,
        role=role,
        minimum=low,
        maximum=high,
        nullable=nullable,
        typical=_significant(profile.mean),
        spread=_significant(profile.stdev),
    )


def _widen(low: float, high: float, *, integer: bool) -> tuple[float, float]:
    """The observed range widened by MARGIN of its span on each side, kept at 0 if it was ≥ 0."""
    margin = (high - low) * MARGIN
    wide_low, wide_high = low - margin, high + margin
    if low >= 0:
        wide_low = max(wide_low, 0.0)
    if integer:
        return float(math.floor(wide_low)), float(math.ceil(wide_high))
    span = wide_high - wide_low
    if span <= 0:
        return wide_low, wide_high
    exponent = math.floor(math.log10(span)) - 2
    step = 10.0**exponent
    digits = max(0, -exponent)
    return (
        round(math.floor(wide_low / step) * step, digits),
        round(math.ceil(wide_high / step) * step, digits),
    )


def _significant(value: float) -> float:
    return float(f"{value:.4g}")


def _whole(value: Value) -> Value:
    """A float that is a whole number as that integer; any other value as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _label_key(text: str) -> str:
    """What the spellings of one class label share: 6, 6.0 and 6.00 are all the class 6."""
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _shares(counts: list[int]) -> tuple[float, ...]:
    total = sum(counts) or 1
    return tuple(round(count / total, 4) for count in counts)


def _means(value: Value, told: str) -> bool:
    """Whether the text someone typed names this value of the data."""
    text = told.strip()
    if isinstance(value, bool):
        return text.lower() in (("true", "1", "yes") if value else ("false", "0", "no"))
    if isinstance(value, int | float):
        try:
            return float(text) == value
        except ValueError:
            return False
    return value == told


def _short(value: Value, limit: int = 30) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# --- Inferring ----------------------------------------------------------------------------


def infer_rows(
    rows: Iterable[Sequence[object]],
    columns: Sequence[str],
    *,
    target: str,
    task: str,
    sensitive: Sequence[str] = (),
    positive: str | None = None,
    classes: Sequence[str] = (),
    labelled: bool = True,
    limit: int = SAMPLE_ROWS,
    rows_total: int | None = None,
    source: str = "",
) -> InferredSchema:
    """Infer the schema from rows given as sequences of values in column order.

    Values may be the raw text of a CSV file or Python values (None for missing). At most
    `limit` rows are read.

    Args:
        rows: The rows.
        columns: The column names, in the order of each row's values.
        target: The target column's name.
        task: The contract's task type.
        sensitive: Columns whose groups the bias gate compares.
        positive: Binary classification and anomaly detection: the target value that means
            positive (default: 1, true or yes, else the rarer value).
        classes: Multiclass: the contract's classes, to order the target's values.
        labelled: Whether the data must hold the target column.
        limit: Most rows to profile.
        rows_total: Rows the source holds, when known (for the summary).
        source: Where the rows came from, as shown to people.

    Returns:
        The inferred schema.
    """
    profiler = Profiler(
        columns,
        target=target,
        task=task,
        sensitive=sensitive,
        positive=positive,
        classes=classes,
        labelled=labelled,
    )
    iterator = iter(rows)
    remaining = limit
    while remaining > 0 and (chunk := list(islice(iterator, min(CHUNK_ROWS, remaining)))):
        profiler.add(chunk)
        remaining -= len(chunk)
    return profiler.result(rows_total=rows_total, source=source)


def infer_schema(
    records: Iterable[Mapping[str, object]],
    columns: Sequence[str],
    *,
    target: str,
    task: str,
    sensitive: Sequence[str] = (),
    positive: str | None = None,
    classes: Sequence[str] = (),
    labelled: bool = True,
    limit: int = SAMPLE_ROWS,
    rows_total: int | None = None,
    source: str = "",
) -> InferredSchema:
    """Infer the schema from rows given as mappings of column name to value (see infer_rows).

    A column a record lacks counts as missing in that record.
    """
    names = tuple(columns)
    return infer_rows(
        (tuple(map(record.get, names)) for record in records),
        names,
        target=target,
        task=task,
        sensitive=sensitive,
        positive=positive,
        classes=classes,
        labelled=labelled,
        limit=limit,
        rows_total=rows_total,
        source=source,
    )


def infer_csv(
    path: Path,
    *,
    target: str,
    task: str,
    sensitive: Sequence[str] = (),
    positive: str | None = None,
    classes: Sequence[str] = (),
    labelled: bool = True,
    limit: int = SAMPLE_ROWS,
) -> InferredSchema:
    """Infer the schema of a CSV file from a bounded sample (see sample_csv and infer_rows)."""
    sample = sample_csv(path, limit)
    profiler = Profiler(
        sample.columns,
        target=target,
        task=task,
        sensitive=sensitive,
        positive=positive,
        classes=classes,
        labelled=labelled,
    )
    for chunk in sample.chunks:
        profiler.add(chunk, text=True)
    return profiler.result(rows_total=sample.rows_total, source=path.name)


# --- Writing schema.py --------------------------------------------------------------------

DOCSTRING = (
    "This file is yours: `copier update` never changes it. When your data changes, run "
    "`{command} schema infer PATH`: it prints what differs from this file and writes the new "
    "schema only when you pass --write. Names stay as they are in the data.",
    "Inferred from the data: a number's range is the one observed, widened by a tenth of its "
    "span on each side. Typical, spread, weights and effect only shape synthetic rows (the "
    "checks that run where the real data is not, such as CI). Each column that is not a model "
    "input says why.",
)


class _Writer:
    """Lines of Python source as ruff formats them, with every line within the line length."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, indent: int, text: str) -> None:
        full = " " * indent + text
        # ruff's E501 spares a line of one word; a longer one (a long name) is marked instead.
        if len(full) > LINE_LENGTH and len(full.split()) > 1:
            full += "  # noqa: E501"
        self.lines.append(full)

    def comment(self, indent: int, text: str) -> None:
        width = LINE_LENGTH - indent - 2
        for part in textwrap.wrap(text, width, break_on_hyphens=False):
            self.lines.append(" " * indent + "# " + part)

    def items(self, indent: int, key: str, items: list[str]) -> None:
        """`key=(a, b),` on one line when it fits, else one item per line."""
        comma = "," if len(items) == 1 else ""
        inline = f"{key}=({', '.join(items)}{comma}),"
        if indent + len(inline) <= LINE_LENGTH:
            self.line(indent, inline)
            return
        self.line(indent, f"{key}=(")
        for item in items:
            self.line(indent + 4, f"{item},")
        self.line(indent, "),")


def schema_source(schema: InferredSchema, *, command: str) -> str:
    """The text of schema.py declaring an inferred schema, as `ruff format` would write it.

    Names and values are written as Python literals in ASCII (other characters escaped), so
    that any name round-trips exactly and no linter sees a confusable character.

    Args:
        schema: The inferred schema.
        command: How people run the project's command line, e.g. "uv run customer-churn".

    Returns:
        The module's source text.
    """
    out = _Writer()
    out.lines.append(
        '"""The data\'s columns: the one place that lists them. Every stage and test reads '
        "this schema."
    )
    for paragraph in DOCSTRING:
        out.lines.append("")
        text = paragraph.format(command=command)
        out.lines += textwrap.wrap(
            text, LINE_LENGTH, break_long_words=False, break_on_hyphens=False
        )
    out.lines += ['"""', "", "from __future__ import annotations", ""]
    names = ["Column", "Schema", "Target"] if schema.columns else ["Schema", "Target"]
    out.lines += [f"from .data.columns import {', '.join(names)}", ""]
    total = "" if schema.rows_total is None else f" of {schema.rows_total:,}"
    source = f"from {_short(schema.source, 60)}" if schema.source else "from the data"
    out.comment(0, f"Inferred {source}: {schema.rows_sampled:,} rows sampled{total}.")
    out.line(0, "SCHEMA = Schema(")
    _write_target(out, schema.target)
    out.line(4, "columns=(")
    for column in schema.columns:
        _write_column(out, column)
    out.line(4, "),")
    if schema.noise != 1.0:
        out.line(4, f"noise={_number(schema.noise)},")
    if schema.notes:
        out.items(4, "notes", [_literal(note) for note in schema.notes])
    out.line(0, ")")
    return "\n".join(out.lines) + "\n"


def _write_target(out: _Writer, target: InferredTarget) -> None:
    out.line(4, "target=Target(")
    out.line(8, f"{_literal(target.name)},")
    if target.values:
        out.items(8, "values", [_value(value) for value in target.values])
    for key in ("minimum", "maximum", "typical", "spread"):
        number: float | None = getattr(target, key)
        if number is not None:
            out.line(8, f"{key}={_number(number)},")
    if target.weights:
        out.items(8, "weights", [_number(weight) for weight in target.weights])
    out.line(4, "),")


def _write_column(out: _Writer, column: InferredColumn) -> None:
    if column.reason:
        out.comment(8, f"Not a model input ({column.reason}).")
    elif column.role == "sensitive" and column.kind != "category":
        out.comment(
            8,
            "Sensitive and numeric: the bias gate compares each value's group (quartile bands "
            "beyond 10 values).",
        )
    out.line(8, "Column(")
    out.line(12, f"{_literal(column.name)},")
    out.line(12, f"{_literal(column.kind)},")
    if column.role != "feature":
        out.line(12, f"role={_literal(column.role)},")
    for key in ("minimum", "maximum"):
        number: float | None = getattr(column, key)
        if number is not None:
            out.line(12, f"{key}={_number(number)},")
    if column.categories:
        out.items(12, "categories", [_value(value) for value in column.categories])
    if column.nullable:
        out.line(12, "nullable=True,")
    for key in ("typical", "spread"):
        number = getattr(column, key)
        if number is not None:
            out.line(12, f"{key}={_number(number)},")
    if column.weights and len(column.categories) > 1:
        out.items(12, "weights", [_number(weight) for weight in column.weights])
    if isinstance(column.effect, tuple):
        out.items(12, "effect", [_number(effect) for effect in column.effect])
    elif column.effect:
        out.line(12, f"effect={_number(column.effect)},")
    out.line(8, "),")


def _literal(text: str) -> str:
    """A string literal in ASCII with the quotes ruff prefers: double, unless it holds more."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    parts: list[str] = []
    for char in text:
        if char in ("\\", quote):
            parts.append("\\" + char)
        elif " " <= char <= "~":
            parts.append(char)
        else:
            parts.append(ascii(char)[1:-1])
    return quote + "".join(parts) + quote


def _value(value: Value) -> str:
    if isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    return _literal(value)


def _number(value: float) -> str:
    """A number as short as it reads: whole numbers without a decimal point."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# --- Comparing schemas --------------------------------------------------------------------


def differences(old: SchemaLike, new: SchemaLike) -> list[str]:
    """What a newly inferred schema changes in the one in use, one line per change.

    New, missing and retyped columns, changed roles, categories, ranges and nullability, and
    changes of the target.
    """
    lines: list[str] = []
    before, after = old.target, new.target
    if before.name != after.name:
        lines.append(f"target: {before.name!r} → {after.name!r}")
    if _keys(before.values) != _keys(after.values):
        lines.append(
            f"target {after.name!r}: values {_shown(before.values)} → {_shown(after.values)}"
        )
    if (before.minimum, before.maximum) != (after.minimum, after.maximum):
        lines.append(f"target {after.name!r}: range {_range(before)} → {_range(after)}")
    columns_before = {column.name: column for column in old.columns}
    columns_after = {column.name: column for column in new.columns}
    for name, column in columns_after.items():
        if name not in columns_before:
            lines.append(f"new column {name!r}: {column.kind}, {column.role}")
    for name, column in columns_before.items():
        if name not in columns_after:
            lines.append(f"missing column {name!r}: was {column.kind}, {column.role}")
    for name, was in columns_before.items():
        now = columns_after.get(name)
        if now is not None:
            lines += _column_changes(was, now)
    return lines


def _column_changes(was: ColumnLike, now: ColumnLike) -> list[str]:
    name = repr(now.name)
    lines: list[str] = []
    if was.kind != now.kind:
        lines.append(f"{name}: retyped {was.kind} → {now.kind}")
    if was.role != now.role:
        lines.append(f"{name}: role {was.role} → {now.role}")
    if was.kind == now.kind == "category":
        old_keys, new_keys = _keys(was.categories), _keys(now.categories)
        added = [value for value in now.categories if value_key(value) not in old_keys]
        gone = [value for value in was.categories if value_key(value) not in new_keys]
        if added or gone:
            parts = [f"new {_listed(added)}"] if added else []
            parts += [f"gone {_listed(gone)}"] if gone else []
            lines.append(f"{name}: categories {'; '.join(parts)}")
    ranged = was.kind == now.kind and now.kind in ("integer", "number")
    if ranged and (was.minimum, was.maximum) != (now.minimum, now.maximum):
        lines.append(f"{name}: range {_range(was)} → {_range(now)}")
    if was.nullable != now.nullable:
        change = "now has" if now.nullable else "no longer has"
        lines.append(f"{name}: {change} missing values")
    return lines


class _Ranged(Protocol):
    @property
    def minimum(self) -> float | None: ...
    @property
    def maximum(self) -> float | None: ...


def _range(item: _Ranged) -> str:
    low = "…" if item.minimum is None else f"{item.minimum:g}"
    high = "…" if item.maximum is None else f"{item.maximum:g}"
    return f"{low} to {high}"


def _keys(values: Iterable[Value]) -> set[Key]:
    return {value_key(value) for value in values}


def _shown(values: Sequence[Value]) -> str:
    return f"({_listed(values)})"


def _listed(values: Sequence[Value]) -> str:
    shown = ", ".join(repr(value) for value in values[:8])
    return shown + (", …" if len(values) > 8 else "")
