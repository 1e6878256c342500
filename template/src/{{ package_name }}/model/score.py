"""Score: the champion's predictions for a file or a query, streamed chunk by chunk.

Rows are checked against the same schema as the API's records (`app.records.Record`, through
`data.validate`) and turned into features by `data.transform.features_frame`, as in the API.
A row that breaks the schema is not scored: it goes to a rejects file beside the output, one
line per row and column naming the rule it breaks (never the value, which may be personal
data), and the run goes on. With `strict`, the first chunk holding a bad row stops the run
instead, and nothing is written.

Memory stays near one chunk whatever the input's size: CSV is read `chunk_rows` rows at a
time, Parquet one row group at a time (a file written as a single row group is read whole),
a query `chunk_rows` rows at a time. The output (CSV or Parquet, by its extension) is written
to a temporary file beside it and moved into place at the end, so an interrupted run leaves
no partial output and an earlier output stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import SecretStr

from ..config import Contract
from ..data.collect import database
from ..data.columns import load, missing_columns
from ..data.transform import features_frame, input_names
from ..data.validate import build_schema, row_problems
from ..errors import ProjectError
from ..files import replacing
from .evaluate import Model

DEFAULT_CHUNK_ROWS = 100_000
OUTPUT_COLUMNS = ("prediction", "score", "model_version")
SUFFIXES = (".csv", ".parquet")
REJECTS_SUFFIX = ".rejects.csv"
ROWS_SHOWN = 5


class ScoreError(ProjectError):
    """The input cannot be scored as given, or the output cannot be written where asked."""


@dataclass(frozen=True)
class Chunk:
    """Some rows of the input, and how far into the input they reach.

    `done` and `total` are in the input's own unit (bytes of a CSV file, rows otherwise);
    `total` is None when the input's size is not known in advance (a query).
    """

    frame: pd.DataFrame
    done: int
    total: int | None


@dataclass(frozen=True)
class ScoreResult:
    """What a scoring run wrote."""

    output: Path
    scored: int
    rejected: int
    rejects_file: Path | None
    chunks: int
    model_version: int
    first_rejects: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: rows scored, by which model, and rows rejected."""
        line = f"{self.scored} rows scored by model version {self.model_version} in {self.output}"
        if self.rejected:
            line += f"; {self.rejected} rows rejected, listed in {self.rejects_file}"
        return line


def rejects_path(output: Path) -> Path:
    """Where the rows that could not be scored are listed: beside the output."""
    return output.with_name(output.stem + REJECTS_SUFFIX)


def score_frame(frame: pd.DataFrame, model: Model, contract: Contract) -> pd.DataFrame:
    """Frame with the model's prediction, score and version added; its rows must be valid.

    The prediction is given as the API gives it: the class name for classification, True or
    False for anomaly detection, the value for regression.
    """
    clash = [name for name in OUTPUT_COLUMNS if name in frame.columns]
    if clash:
        raise ScoreError(f"the input already has a column {clash[0]!r}; rename it to score it")
    features = features_frame(frame)
    scored = frame.copy()
    scored["prediction"] = _decisions(model.predict(features), contract)
    scored["score"] = np.asarray(model.score(features), dtype="float64")
    scored["model_version"] = model.version
    return scored


def _decisions(predictions: np.ndarray, contract: Contract) -> np.ndarray:
    task = contract.task
    if task.type == "binary_classification":
        named = np.where(predictions == 1, str(task.positive_class), str(task.negative_class))
        return np.asarray(named, dtype=object)
    if task.type == "anomaly_detection":
        return np.asarray(predictions == 1, dtype=bool)
    if task.type == "multiclass_classification":
        return np.asarray(predictions, dtype=str).astype(object)
    return np.asarray(predictions, dtype="float64")


def file_chunks(path: Path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Read a CSV file chunk_rows rows at a time, or a Parquet file one row group at a time."""
    if path.suffix not in SUFFIXES:
        raise ScoreError(f"{path}: give a .csv or .parquet file")
    if not path.is_file():
        raise ScoreError(f"{path}: not found")
    size = path.stat().st_size
    if size == 0:
        raise ScoreError(f"{path}: the file is empty")
    with path.open("rb") as stream:
        if path.suffix == ".parquet":
            yield from _parquet_chunks(path, stream)
        else:
            yield from _csv_chunks(path, stream, size, chunk_rows)


def _csv_chunks(path: Path, stream: IO[bytes], size: int, chunk_rows: int) -> Iterator[Chunk]:
    with csv_errors(path), pd.read_csv(stream, chunksize=chunk_rows) as reader:
        for frame in reader:
            # The parser reads ahead, so the position is a close estimate of the progress.
            yield Chunk(frame, min(stream.tell(), size), size)


@contextmanager
def csv_errors(path: Path | str) -> Iterator[None]:
    """Turn pandas' errors reading a CSV file into one ScoreError line that says what to do."""
    try:
        yield
    except UnicodeDecodeError as error:
        raise ScoreError(f"{path}: not UTF-8 text ({error.reason}); save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise ScoreError(f"{path}: the file has no columns") from None
    except pd.errors.ParserError as error:
        detail = str(error).strip().splitlines()[-1].removeprefix("Error tokenizing data. ")
        raise ScoreError(f"{path}: not valid CSV ({detail})") from None


def _parquet_chunks(path: Path, stream: IO[bytes]) -> Iterator[Chunk]:
    from fastparquet import ParquetFile

    try:
        # Given an open file, fastparquet reads from it and leaves closing it to us.
        parquet = ParquetFile(stream)
        total = int(parquet.count())
        done = 0
        for frame in parquet.iter_row_groups():
            done += len(frame)
            yield Chunk(frame, done, total)
    except Exception as error:  # fastparquet raises many unrelated types
        raise ScoreError(f"{path}: cannot read it as Parquet ({error})") from None


def query_chunks(
    database_url: SecretStr | None, query: str, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[Chunk]:
    """Run a query and read its result chunk_rows rows at a time, streamed from the server."""
    from sqlalchemy import text

    with database(database_url) as (connection, _):
        streaming = connection.execution_options(stream_results=True)
        done = 0
        for frame in pd.read_sql_query(text(query), streaming, chunksize=chunk_rows):
            done += len(frame)
            yield Chunk(frame, done, None)


def score(
    chunks: Iterable[Chunk],
    model: Model,
    contract: Contract,
    output: Path,
    *,
    source: str,
    strict: bool = False,
    progress: Callable[[Chunk, int], None] = lambda _chunk, _rows: None,
) -> ScoreResult:
    """Score every valid row of chunks and write them, with the model's answers, to output.

    Args:
        chunks: The input, a chunk at a time (see file_chunks and query_chunks).
        model: The model to score with, normally the champion.
        contract: The planning contract; it says how predictions are named.
        output: A .csv or .parquet file; it replaces an earlier one only when the run ends.
        source: Name of the input for messages (a file name or the database).
        strict: Stop at the first chunk holding a bad row, instead of listing it as rejected.
        progress: Called after each chunk with the chunk and the rows read so far.

    Returns:
        What was written. Rejected rows (numbered from 1, the header not counted) are listed
        in rejects_path(output) as `row,column,problem`; that file is removed when no row is
        rejected, so that an old list never stands beside a new output.

    Raises:
        ScoreError: The input has no rows or lacks a feature column, a bad row in strict mode,
            or the output cannot be written.
    """
    if output.suffix not in SUFFIXES:
        raise ScoreError(f"{output}: the output must end in .csv or .parquet")
    schema = strict_schema(contract)
    rejects_file = rejects_path(output)
    state = _Run()
    try:
        with replacing(rejects_file) as staged_rejects, replacing(output) as staged_output:
            with staged_rejects.open("w", encoding="utf-8", newline="") as rejects:
                rejects.write("row,column,problem\n")
                scored = _scored_chunks(
                    chunks, model, contract, schema, source, strict, rejects, state, progress
                )
                if output.suffix == ".parquet":
                    write_parquet(staged_output, scored)
                else:
                    write_csv(staged_output, scored)
            if state.rows == 0:
                raise ScoreError(f"{source}: no rows to score")
            if state.rejected == state.rows:
                shown = "\n".join(state.first_rejects)
                raise ScoreError(f"{source}: no row can be scored; the first problems:\n{shown}")
        if not state.rejected:
            rejects_file.unlink(missing_ok=True)
    except OSError as error:
        where = error.filename or output
        raise ScoreError(f"{where}: cannot read or write it ({error.strerror})") from None
    return ScoreResult(
        output=output,
        scored=state.rows - state.rejected,
        rejected=state.rejected,
        rejects_file=rejects_file if state.rejected else None,
        chunks=state.chunks,
        model_version=model.version,
        first_rejects=tuple(state.first_rejects),
    )


@dataclass
class _Run:
    """Counts kept while the chunks stream through."""

    rows: int = 0
    rejected: int = 0
    chunks: int = 0
    first_rejects: list[str] = field(default_factory=list)


def strict_schema(contract: Contract) -> pa.DataFrameSchema:
    """The data schema with every input the feature schema requires held to it."""
    schema = build_schema(contract, labelled=False)
    nullable = {column.name: {"nullable": column.nullable} for column in load().inputs}
    return schema.update_columns(nullable)


def _scored_chunks(
    chunks: Iterable[Chunk],
    model: Model,
    contract: Contract,
    schema: pa.DataFrameSchema,
    source: str,
    strict: bool,
    rejects: IO[str],
    state: _Run,
    progress: Callable[[Chunk, int], None],
) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        if state.chunks == 0:
            check_columns(chunk.frame, source)
        part = score_part(chunk.frame, state.rows + 1, model, contract, schema)
        state.rows += part.rows
        state.chunks += 1
        if part.rejected:
            if strict:
                raise ScoreError(strict_failure(part, source))
            part.rejects.to_csv(rejects, header=False, index=False)
            state.rejected += part.rejected
            state.first_rejects.extend(part.first_rejects[: ROWS_SHOWN - len(state.first_rejects)])
        progress(chunk, state.rows)
        if not part.scored.empty:
            yield part.scored


@dataclass(frozen=True)
class ScoredPart:
    """One part of the input, checked and scored.

    `scored` holds the valid rows with the model's answers, in input order; `rejects` one line
    per rejected row and column (`row`, `column`, `problem`), rows numbered from the part's
    first row; `first_rejects` the first few of those lines as sentences.
    """

    scored: pd.DataFrame
    rejects: pd.DataFrame
    rows: int
    first_row: int

    @property
    def rejected(self) -> int:
        """How many rows of the part break the schema."""
        return int(self.rejects["row"].nunique())

    @property
    def first_rejects(self) -> tuple[str, ...]:
        """The first problems, one sentence each: row, column and the rule it breaks."""
        shown = self.rejects.head(ROWS_SHOWN)
        return tuple(
            f"row {row}: {column!r} {problem}"
            for row, column, problem in zip(
                shown["row"], shown["column"], shown["problem"], strict=True
            )
        )


def score_part(
    frame: pd.DataFrame,
    first_row: int,
    model: Model,
    contract: Contract,
    schema: pa.DataFrameSchema,
) -> ScoredPart:
    """Check one part of the input against schema and score its valid rows.

    The same function serves the one-process run (a part is a chunk) and a distributed one (a
    part is a partition), so that both give the same answers and name the same rejects.

    Args:
        frame: The rows, as read.
        first_row: The number of the part's first row in the whole input, counting from 1.
        model: The model to score with.
        contract: The planning contract; it says how predictions are named.
        schema: The schema rows are held to (see strict_schema).
    """
    frame = frame.set_axis(pd.RangeIndex(first_row, first_row + len(frame)), axis="index")
    problems = row_problems(schema, frame)
    bad_rows = [row for row in frame.index if row in problems]
    rejects = pd.DataFrame(
        [(row, column, rule) for row in bad_rows for column, rule in problems[row].items()],
        columns=["row", "column", "problem"],
    )
    valid = frame.drop(index=bad_rows) if bad_rows else frame
    scored = (
        score_frame(valid, model, contract).reset_index(drop=True) if len(valid) else valid.iloc[:0]
    )
    return ScoredPart(scored=scored, rejects=rejects, rows=len(frame), first_row=first_row)


def strict_failure(part: ScoredPart, source: str) -> str:
    """The message that stops a strict run at a part holding bad rows."""
    lines = part.first_rejects
    more = len(part.rejects) - len(lines)
    last_row = part.first_row + part.rows - 1
    tail = [f"... and {more} more in rows {part.first_row}-{last_row}"] if more > 0 else []
    return "\n".join([f"{source}: bad rows", *lines, *tail])


def check_columns(frame: pd.DataFrame, source: str) -> None:
    """Refuse input that lacks a feature column the model needs."""
    missing = [name for name in input_names() if name not in frame.columns]
    if missing:
        raise ScoreError(f"{source}: {missing_columns(missing, source)}")


def nullable_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Frame with whole numbers and booleans as nullable types, so a gap elsewhere fits them."""
    return frame.astype(
        {
            name: "Int64" if pd.api.types.is_integer_dtype(dtype) else "boolean"
            for name, dtype in frame.dtypes.items()
            if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        }
    )


def same_types(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Frames with the column types of the first, so that every row group has one schema.

    Whole numbers and booleans become nullable types, so that a gap in a later chunk fits.
    """
    dtypes: dict[Hashable, Any] | None = None
    rows = 0
    for frame in frames:
        nullable = nullable_types(frame)
        if dtypes is None:
            dtypes = nullable.dtypes.to_dict()
        changed = [name for name in nullable.columns if not _castable(nullable[name], dtypes[name])]
        if changed:
            raise ScoreError(
                f"column {changed[0]!r} changes type after {rows} scored rows (it was "
                f"{dtypes[changed[0]]}); write the output as .csv, or give the column one type"
            )
        rows += len(frame)
        yield nullable.astype(dtypes)


def _castable(series: pd.Series, dtype: Any) -> bool:
    try:
        series.astype(dtype)
    except (TypeError, ValueError):
        return False
    return True


def write_csv(path: Path, frames: Iterator[pd.DataFrame]) -> None:
    """Write frames one after the other as one CSV file, with the first one's header."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        header = True
        for frame in frames:
            frame.to_csv(stream, header=header, index=False)
            header = False


def write_parquet(path: Path, frames: Iterator[pd.DataFrame]) -> None:
    """Write frames as one Parquet file, a row group each, with the first one's column types."""
    from fastparquet import writer

    frames = same_types(frames)
    first = next(frames, None)
    if first is None:
        return
    metadata = writer.make_metadata(first, object_encoding="infer", index_cols=[])
    with path.open("wb") as stream:
        # One row group per chunk: the file is written as the chunks arrive.
        writer.write_simple(stream, _chained(first, frames), metadata)


def _chained(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest
