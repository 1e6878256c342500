"""Rows of a CSV or Parquet file or a SQL query, a chunk at a time, for the schema commands."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RawDataError
from .infer import CHUNK_ROWS, InferenceError, read_csv, sample_csv

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import SecretStr

FILE_KINDS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Rows:
    """Rows of a data source with their column names.

    Attributes:
        columns: The column names, in the order of each row's values.
        chunks: The rows, a chunk at a time.
        total: Rows the source holds, when known.
        shown: The source as shown to people.
        text: Whether every value is the text of a CSV file (else Python values).
    """

    columns: tuple[str, ...]
    chunks: Iterator[Sequence[Sequence[object]]]
    total: int | None
    shown: str
    text: bool


def file_rows(path: Path, limit: int | None = None) -> Rows:
    """The rows of a CSV or Parquet file: a bounded sample when `limit` is given, else all.

    Raises:
        RawDataError: The file is missing, unreadable or neither CSV nor Parquet.
    """
    kind = FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise RawDataError(f"{path}: not a .csv or .parquet file")
    if kind == "parquet":
        return _parquet_rows(path, limit)
    try:
        data = read_csv(path) if limit is None else sample_csv(path, limit)
    except InferenceError as error:
        raise RawDataError(str(error)) from None
    return Rows(data.columns, _csv_chunks(data.chunks), data.rows_total, path.name, text=True)


def _csv_chunks(chunks: Iterator[list[list[str]]]) -> Iterator[Sequence[Sequence[object]]]:
    try:
        yield from chunks
    except InferenceError as error:
        raise RawDataError(str(error)) from None


def _parquet_rows(path: Path, limit: int | None) -> Rows:
    """A Parquet file's rows, read a row group at a time (the first `limit` rows for a sample)."""
    # fastparquet directly, as collect.read_raw reads Parquet; from memory, since given a path
    # it leaves the file open.
    from fastparquet import ParquetFile

    try:
        parquet = ParquetFile(io.BytesIO(path.read_bytes()))
        columns = tuple(str(name) for name in parquet.columns)
        total = int(parquet.count())
    except FileNotFoundError:
        raise RawDataError(f"{path}: not found") from None
    except Exception as error:  # fastparquet raises many unrelated types
        raise RawDataError(f"{path}: cannot read it as Parquet ({error})") from None
    frames = parquet.iter_row_groups()
    return Rows(columns, _frame_chunks(frames, columns, limit), total, path.name, text=False)


def query_rows(database_url: SecretStr | None, query: str, limit: int | None = None) -> Rows:
    """The rows a SQL query returns (the first `limit` of them for a sample).

    The connection stays open while the chunks are read and closes when they end.
    """
    frames = _query_frames(database_url, query)
    first = next(frames, None)
    if first is None:
        raise RawDataError("the query returned no result to read columns from")
    columns = tuple(str(name) for name in first.columns)
    chunks = _frame_chunks(_chained(first, frames), columns, limit)
    return Rows(columns, chunks, None, "the query", text=False)


def _query_frames(database_url: SecretStr | None, query: str) -> Iterator[pd.DataFrame]:
    import pandas as pd
    from sqlalchemy import text

    from .collect import database

    with database(database_url) as (connection, _):
        yield from pd.read_sql_query(text(query), connection, chunksize=CHUNK_ROWS)


def _chained(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest


def _frame_chunks(
    frames: Iterator[pd.DataFrame], columns: tuple[str, ...], limit: int | None
) -> Iterator[Sequence[Sequence[object]]]:
    """Rows of data frames as tuples of Python values, a chunk at a time, at most `limit`."""
    remaining = limit
    for frame in frames:
        rows = frame.reindex(columns=list(columns)).itertuples(index=False, name=None)
        while chunk := list(islice(rows, CHUNK_ROWS)):
            if remaining is not None:
                chunk = chunk[:remaining]
                remaining -= len(chunk)
            yield chunk
            if remaining is not None and remaining <= 0:
                return
