"""Score on a Dask cluster: the one-process answers, partition by partition, written atomically.

Each worker reads its partitions (see parts.py), checks and scores them with the same
`model.score.score_part` as the one-process run, and writes its part of the output and of the
rejects into a hidden folder beside the output. Only when every partition is done are the parts
put together, in input order: into one file when the output ends in .csv or .parquet (read a
part at a time, so the client holds one partition at most), or, for any other output path,
into a folder of Parquet files part.00000.parquet, part.00001.parquet, ... that replaces the
folder in one rename. Rejected rows are numbered as in the one-process run and listed in the same
OUTPUT.rejects.csv.

A worker lost mid-run has its partitions run again elsewhere (Dask retries a task up to its
`distributed.scheduler.allowed-failures` times); a run that fails anyway removes the hidden
folder and leaves any earlier output as it was.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from distributed import Client, Future
from distributed.scheduler import KilledWorker

from ..config import Contract
from ..files import replacing
from ..model.registry import replace_directory
from ..model.score import (
    SUFFIXES,
    ScoredPart,
    ScoreError,
    ScoreResult,
    check_columns,
    rejects_path,
    same_types,
    score_part,
    strict_failure,
    strict_schema,
    write_parquet,
)
from .cluster import in_order
from .parts import Part
from .shipped import ShippedModel

REJECTS_COLUMNS = ["row", "column", "problem"]
PART_FILE = re.compile(r"part\.[0-9]{5,}\.parquet")


@dataclass(frozen=True)
class PartDone:
    """What a worker reports of one partition: its rows, and where it left them."""

    rows: int
    scored: int
    rejects: pd.DataFrame
    columns: tuple[str, ...]
    file: str | None


def score_on_cluster(
    client: Client,
    parts: list[Part],
    shipped: ShippedModel,
    contract: Contract,
    output: Path,
    *,
    source: str,
    strict: bool = False,
    progress: Callable[[int, int, int], None] = lambda _done, _total, _rows: None,
) -> ScoreResult:
    """Score every valid row of parts on the cluster and write them to output, in input order.

    Args:
        client: A client of the cluster to run on.
        parts: The input's partitions (see parts.partitions).
        shipped: The model to score with, as files for the workers.
        contract: The planning contract.
        output: A .csv or .parquet file, or a folder for partitioned Parquet; replaced only when
            the run ends.
        source: Name of the input for messages.
        strict: Fail when any row breaks the schema, instead of listing it as rejected.
        progress: Called as partitions finish with (partitions done, partitions, rows read).

    Returns:
        What was written, as the one-process `model.score.score` reports it.

    Raises:
        ScoreError: As the one-process run raises it; nothing is written then.
    """
    one_file = output.suffix in SUFFIXES
    if not one_file:
        _check_output_folder(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.parts.", dir=output.parent))
    futures: list[Future[PartDone]] = []
    try:
        model = client.scatter(shipped, broadcast=True, hash=False)
        suffix = ".csv" if output.suffix == ".csv" else ".parquet"
        futures += [
            client.submit(
                _score_partition,
                part,
                model,
                contract,
                source,
                str(staging / f"part.{index}{suffix}"),
                key=f"score-part-{index}-{staging.name}",
                pure=False,
            )
            for index, part in enumerate(parts)
        ]
        finished = in_order(futures, progress)
        rows = sum(part.rows for part in finished)
        rejects = _numbered_rejects(finished)
        _check_outcome(finished, rejects, source, strict)
        rejects_file = rejects_path(output)
        with replacing(rejects_file) as staged_rejects:
            rejects.to_csv(staged_rejects, index=False)
            _put_together(finished, output, one_file)
        if rejects.empty:
            rejects_file.unlink(missing_ok=True)
    except KilledWorker as error:
        raise ScoreError(
            f"{source}: Dask workers died while scoring a partition, {error.allowed_failures + 1} "
            "times; nothing was written. A worker out of memory is stopped: give smaller "
            "partitions (--partition-size) or workers more memory"
        ) from None
    except OSError as error:
        where = error.filename or output
        raise ScoreError(f"{where}: cannot read or write it ({error.strerror})") from None
    finally:
        # Stop what still runs before removing the folder it writes into.
        client.cancel(futures)
        shutil.rmtree(staging, ignore_errors=True)
    rejected = int(rejects["row"].nunique())
    return ScoreResult(
        output=output,
        scored=rows - rejected,
        rejected=rejected,
        rejects_file=rejects_file if rejected else None,
        chunks=len(parts),
        model_version=shipped.version,
        first_rejects=_first_lines(rejects),
    )


def _check_output_folder(output: Path) -> None:
    """Refuse a folder the run would wipe out: one that holds anything but scored parts."""
    if not output.exists():
        return
    if not output.is_dir():
        raise ScoreError(f"{output}: not a folder; give a folder, or a .csv or .parquet file")
    others = sorted(path.name for path in output.iterdir() if not PART_FILE.fullmatch(path.name))
    if others:
        raise ScoreError(
            f"{output}: holds other files ({others[0]}, ...), and the scored parts replace the "
            "whole folder; give a new folder or an earlier output folder"
        )


def _score_partition(
    part: Part, model: ShippedModel, contract: Contract, source: str, target: str
) -> PartDone:
    """On a worker: check and score a partition chunk by chunk; write its scored rows to target.

    Each chunk is scored and written on its own, as the one-process run does, so that column
    types and the model's batches are the same and so are the answers, to the last digit.
    """
    schema = strict_schema(contract)
    loaded = model.load(contract)
    rows, done = 0, list[ScoredPart]()
    for frame in part.chunks():
        if not done:
            check_columns(frame, source)
        scored = score_part(frame, rows + 1, loaded, contract, schema)
        rows += scored.rows
        done.append(scored)
    valid = [chunk.scored for chunk in done if len(chunk.scored)]
    written = None
    if valid:
        if target.endswith(".csv"):
            with Path(target).open("w", encoding="utf-8", newline="") as stream:
                for frame in valid:
                    frame.to_csv(stream, header=False, index=False)
        else:
            from fastparquet import write

            frames = list(same_types(iter(valid)))
            write(target, frames[0], object_encoding="infer")
            for frame in frames[1:]:
                write(target, frame, object_encoding="infer", append=True)
        written = target
    rejects = [chunk.rejects for chunk in done if len(chunk.rejects)]
    return PartDone(
        rows=rows,
        scored=sum(len(frame) for frame in valid),
        rejects=pd.concat(rejects, ignore_index=True) if rejects else _no_rejects(),
        columns=tuple(str(name) for name in valid[0].columns) if valid else (),
        file=written,
    )


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame(columns=REJECTS_COLUMNS)


def _numbered_rejects(parts: list[PartDone]) -> pd.DataFrame:
    """Every partition's rejects, numbered from the first row of the whole input."""
    numbered, first_row = [], 0
    for part in parts:
        if len(part.rejects):
            numbered.append(part.rejects.assign(row=part.rejects["row"] + first_row))
        first_row += part.rows
    if not numbered:
        return _no_rejects()
    return pd.concat(numbered, ignore_index=True)


def _check_outcome(parts: list[PartDone], rejects: pd.DataFrame, source: str, strict: bool) -> None:
    rows = sum(part.rows for part in parts)
    if rows == 0:
        raise ScoreError(f"{source}: no rows to score")
    if strict and len(rejects):
        first_row = 1
        for part in parts:
            if len(part.rejects):
                mine = rejects[rejects["row"].between(first_row, first_row + part.rows - 1)]
                failed = ScoredPart(pd.DataFrame(), mine, part.rows, first_row)
                raise ScoreError(strict_failure(failed, source))
            first_row += part.rows
    if rejects["row"].nunique() == rows:
        shown = "\n".join(_first_lines(rejects))
        raise ScoreError(f"{source}: no row can be scored; the first problems:\n{shown}")


def _first_lines(rejects: pd.DataFrame) -> tuple[str, ...]:
    return ScoredPart(pd.DataFrame(), rejects, 0, 1).first_rejects


def _put_together(parts: list[PartDone], output: Path, one_file: bool) -> None:
    files = [part for part in parts if part.file is not None]
    if not one_file:

        def fill(folder: Path) -> None:
            for index, part in enumerate(files):
                Path(str(part.file)).rename(folder / f"part.{index:05d}.parquet")

        replace_directory(output, fill)
        return
    with replacing(output) as staged:
        if output.suffix == ".csv":
            _join_csv(files, staged)
        else:
            write_parquet(staged, _read_parts(files))


def _join_csv(files: list[PartDone], staged: Path) -> None:
    with staged.open("wb") as joined:
        if files:
            header = pd.DataFrame(columns=list(files[0].columns)).to_csv(index=False)
            joined.write(header.encode("utf-8"))
        for part in files:
            with Path(str(part.file)).open("rb") as piece:
                shutil.copyfileobj(piece, joined)


def _read_parts(files: list[PartDone]) -> Iterator[pd.DataFrame]:
    from fastparquet import ParquetFile

    for part in files:
        # Given an open file, fastparquet reads from it and leaves closing it to us.
        with Path(str(part.file)).open("rb") as stream:
            frame: pd.DataFrame = ParquetFile(stream).to_pandas()
        yield frame
