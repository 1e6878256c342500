"""The input split into partitions a worker reads on its own, in the input's order.

- a CSV file: byte ranges of DEFAULT_BLOCKSIZE cut at line ends (as `dask.dataframe.read_csv`
  cuts them), each parsed by pandas with the file's header, as the one-process run parses its
  chunks;
- a Parquet file, a folder of Parquet files or a glob of them: one partition per row group,
  files in natural order (part.2 before part.10), read with fastparquet as the one-process run
  reads them;
- a SQL table: ranges of an indexed column (`dask.dataframe.read_sql_table`).

Paths must be readable by every worker: on a cluster, a shared volume.
"""

from __future__ import annotations

import glob
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from dask.utils import natural_sort_key, parse_bytes
from fsspec.utils import read_block

from ..model.score import SUFFIXES, ScoreError, csv_errors

DEFAULT_BLOCKSIZE = "32 MiB"
GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class CsvBlock:
    """Bytes offset to offset + length of a CSV file, widened to whole lines."""

    path: str
    offset: int
    length: int
    header: bytes

    def read(self) -> pd.DataFrame:
        """The block's rows, parsed as pandas parses the whole file."""
        with Path(self.path).open("rb") as stream:
            block = read_block(stream, self.offset, self.length, delimiter=b"\n")
        text = block if self.offset == 0 else self.header + block
        with csv_errors(self.path):
            return pd.read_csv(io.BytesIO(text))


@dataclass(frozen=True)
class RowGroup:
    """One row group of a Parquet file."""

    path: str
    index: int

    def read(self) -> pd.DataFrame:
        """The row group's rows, as fastparquet reads them."""
        from fastparquet import ParquetFile

        try:
            with Path(self.path).open("rb") as stream:
                frame: pd.DataFrame = ParquetFile(stream)[self.index].to_pandas()
        except Exception as error:  # fastparquet raises many unrelated types
            raise ScoreError(f"{self.path}: cannot read it as Parquet ({error})") from None
        return frame


Part = CsvBlock | RowGroup


def partitions(source: str, blocksize: str | int = DEFAULT_BLOCKSIZE) -> list[Part]:
    """The partitions of a CSV or Parquet file, a folder of Parquet files, or a glob of them.

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
    return _csv_parts(path, int(parse_bytes(blocksize)))


def _csv_parts(path: Path, blocksize: int) -> list[Part]:
    size = path.stat().st_size
    with path.open("rb") as stream:
        header = stream.readline()
    return [CsvBlock(str(path), offset, blocksize, header) for offset in range(0, size, blocksize)]


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
