"""The input split into partitions a worker reads on its own, in the input's order.

- a CSV file: runs of whole chunks of lines (see partitions), each chunk parsed by pandas
  with the file's header, exactly as the one-process run parses its chunks;
- a Parquet file, a folder of Parquet files or a glob of them: one partition per row group,
  files in natural order (part.2 before part.10), read with fastparquet as the one-process run
  reads them;
- a SQL table: chunks of rows in the order of a unique key column, one query each.

Paths must be readable by every worker: on a cluster, a shared volume.
"""

from __future__ import annotations

import glob
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from dask.utils import natural_sort_key, parse_bytes
from pydantic import SecretStr

from ..data.collect import database
from ..model.score import DEFAULT_CHUNK_ROWS, SUFFIXES, ScoreError, csv_errors

if TYPE_CHECKING:
    from sqlalchemy import Connection, Table

DEFAULT_BLOCKSIZE = "32 MiB"
SCAN_BYTES = 64 * 2**20
NEWLINE = ord("\n")
GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class CsvLines:
    """Whole lines of a CSV file, from byte start to byte end: one or more chunks of rows."""

    path: str
    start: int
    end: int
    header: bytes
    chunk_rows: int

    def chunks(self, text_columns: tuple[str, ...] = ()) -> Iterator[pd.DataFrame]:
        """The lines' rows, chunk_rows at a time, parsed as the one-process run parses them.

        Columns in text_columns are kept as the file's text, not read as numbers.
        """
        with Path(self.path).open("rb") as stream:
            stream.seek(self.start)
            lines = stream.read(self.end - self.start)
        with (
            csv_errors(self.path),
            pd.read_csv(
                io.BytesIO(self.header + lines),
                chunksize=self.chunk_rows,
                dtype=dict.fromkeys(text_columns, str),
            ) as reader,
        ):
            yield from reader


@dataclass(frozen=True)
class RowGroup:
    """One row group of a Parquet file."""

    path: str
    index: int

    def chunks(self, text_columns: tuple[str, ...] = ()) -> Iterator[pd.DataFrame]:
        """The row group's rows, as fastparquet reads them: one chunk; text_columns as text."""
        from fastparquet import ParquetFile

        try:
            with Path(self.path).open("rb") as stream:
                frame: pd.DataFrame = ParquetFile(stream)[self.index].to_pandas()
        except Exception as error:  # fastparquet raises many unrelated types
            raise ScoreError(f"{self.path}: cannot read it as Parquet ({error})") from None
        yield frame.astype(dict.fromkeys(text_columns, str))


@dataclass(frozen=True)
class TableRange:
    """Rows of a SQL table in key order: chunks that start at the given keys.

    The last chunk ends before `end`, or runs to the table's end when `end` is None.
    """

    database_url: SecretStr
    table: str
    key: str
    starts: tuple[Any, ...]
    end: Any

    def chunks(self, text_columns: tuple[str, ...] = ()) -> Iterator[pd.DataFrame]:
        """Each chunk's rows, one query each, in key order; text_columns as text."""
        from sqlalchemy import select

        with database(self.database_url) as (connection, _):
            table = _reflect(connection, self.table, self.key)
            key = table.c[self.key]
            for low, high in zip(self.starts, [*self.starts[1:], self.end], strict=True):
                query = select(table).where(key >= low).order_by(key)
                if high is not None:
                    query = query.where(key < high)
                yield pd.read_sql_query(query, connection).astype(dict.fromkeys(text_columns, str))


Part = CsvLines | RowGroup | TableRange


def partitions(
    source: str,
    blocksize: str | int = DEFAULT_BLOCKSIZE,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> list[Part]:
    """The partitions of a CSV or Parquet file, a folder of Parquet files, or a glob of them.

    A CSV file is cut into whole chunks of chunk_rows lines, as many as fill blocksize bytes
    per partition, so that every chunk holds the rows the one-process run's chunk holds:
    pandas then infers the same column types and the model scores the same batches, which
    keeps even the last digit of a score the same. (A blank line, or a line break inside a
    quoted value, counts as a line here but not for pandas: the chunks then shift by it, and
    only floating-point rounding of the scores may differ.)

    Raises:
        ScoreError: Nothing matches, the file type is not CSV or Parquet, or it is empty.
    """
    path = Path(source)
    if GLOB_CHARACTERS & set(source):
        names = sorted(glob.glob(source), key=natural_sort_key)  # noqa: PTH207 - a user's pattern
        return _parquet_parts([Path(name) for name in names], source)
    if path.is_dir():
        names = sorted((str(found) for found in path.glob("*.parquet")), key=natural_sort_key)
        return _parquet_parts([Path(name) for name in names], source)
    if path.suffix not in SUFFIXES:
        raise ScoreError(f"{source}: give a .csv or .parquet file, a folder or a glob of .parquet")
    if not path.is_file():
        raise ScoreError(f"{source}: not found")
    if path.stat().st_size == 0:
        raise ScoreError(f"{source}: the file is empty")
    if path.suffix == ".parquet":
        return _parquet_parts([path], source)
    return _csv_parts(path, int(parse_bytes(blocksize)), chunk_rows)


def _csv_parts(path: Path, blocksize: int, chunk_rows: int) -> list[Part]:
    with path.open("rb") as stream:
        header = stream.readline()
    bounds = [len(header), *_chunk_starts(path, len(header), chunk_rows), path.stat().st_size]
    parts: list[Part] = []
    start = bounds[0]
    for index, bound in enumerate(bounds[1:], start=1):
        if bound - start >= blocksize or index == len(bounds) - 1:
            parts.append(CsvLines(str(path), start, bound, header, chunk_rows))
            start = bound
    return parts


def _chunk_starts(path: Path, first: int, chunk_rows: int) -> Iterator[int]:
    """Byte offsets where line chunk_rows + 1, 2 * chunk_rows + 1, ... of the data starts."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        stream.seek(first)
        position, lines = first, 0
        while block := stream.read(SCAN_BYTES):
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == NEWLINE)
            # The line that closes each chunk is number k * chunk_rows; its end starts the next.
            for closing in range(chunk_rows - lines % chunk_rows, ends.size + 1, chunk_rows):
                start = position + int(ends[closing - 1]) + 1
                if start < size:
                    yield start
            position += len(block)
            lines += ends.size


def _parquet_parts(files: list[Path], source: str) -> list[Part]:
    from fastparquet import ParquetFile

    files = [found for found in files if found.is_file() and found.suffix == ".parquet"]
    if not files:
        raise ScoreError(f"{source}: no .parquet file found")
    parts: list[Part] = []
    for found in files:
        try:
            with found.open("rb") as stream:
                groups = len(ParquetFile(stream).row_groups)
        except Exception as error:  # fastparquet raises many unrelated types
            raise ScoreError(f"{found}: cannot read it as Parquet ({error})") from None
        parts.extend(RowGroup(str(found), index) for index in range(groups))
    return parts


def table_partitions(
    database_url: SecretStr | None,
    table: str,
    key: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    chunks_per_partition: int = 4,
) -> list[Part]:
    """The partitions of a SQL table: chunks of chunk_rows rows in the order of a unique key.

    They are the chunks the one-process run reads from `SELECT * FROM table ORDER BY key`
    with the same chunk_rows, so the answers are the same to the last digit.

    Raises:
        ScoreError: The table or the key column does not exist, or the key is not unique.
        RawDataError: The database cannot be reached.
    """
    from sqlalchemy import distinct, func, select

    with database(database_url) as (connection, _):
        reflected = _reflect(connection, table, key)
        column = reflected.c[key]
        rows, distinct_keys = connection.execute(
            select(func.count(), func.count(distinct(column))).select_from(reflected)
        ).one()
        if rows != distinct_keys:
            raise ScoreError(f"{table}.{key}: the key must be unique and never empty")
        numbered = select(column.label("key"), func.row_number().over(order_by=column).label("n"))
        ranked = numbered.subquery()
        starts = list(
            connection.execute(
                select(ranked.c.key).where((ranked.c.n - 1) % chunk_rows == 0).order_by(ranked.c.n)
            ).scalars()
        )
    if database_url is None or not starts:
        raise ScoreError(f"{table}: the table has no rows")
    groups = [
        starts[i : i + chunks_per_partition] for i in range(0, len(starts), chunks_per_partition)
    ]
    ends = [group[0] for group in groups[1:]] + [None]
    return [
        TableRange(database_url, table, key, tuple(group), end)
        for group, end in zip(groups, ends, strict=True)
    ]


def _reflect(connection: Connection, table: str, key: str) -> Table:
    from sqlalchemy import MetaData
    from sqlalchemy import Table as SqlTable
    from sqlalchemy.exc import NoSuchTableError

    try:
        reflected = SqlTable(table, MetaData(), autoload_with=connection)
    except NoSuchTableError:
        raise ScoreError(f"{table}: no such table in the database") from None
    if key not in reflected.c:
        raise ScoreError(f"{table}: no column {key!r} to order and split the rows by")
    return reflected
