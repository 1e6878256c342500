"""Collect: land raw records in data/raw, where they are never modified afterwards."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import SecretStr

from ..config import Contract
from ..errors import RawDataError
from ..files import write_atomic
from .columns import SCHEMA_FILE, label_key, load, missing_columns, synthetic, value_text

if TYPE_CHECKING:
    from sqlalchemy import Connection

RAW_FILE = "demo.csv"
FEEDBACK_FILE = "feedback.csv"
LABELLED_SAMPLE_FILE = "labelled_sample.csv"
LABELLED_SAMPLE_ROWS = 500
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Splits:
    """What the baseline is calibrated on and what it is evaluated on."""

    train: pd.DataFrame
    test: pd.DataFrame


def collect(
    contract: Contract,
    raw_dir: Path,
    rows: int,
    seed: int,
    *,
    project_dir: Path | None = None,
    database_url: SecretStr | None = None,
) -> list[Path]:
    """Land the contract's source in raw_dir, refusing to change data already there.

    The demo source writes its seeded records (without the target for unlabelled data, plus a
    small labelled sample for evaluation). A CSV or Parquet file is checked and copied byte
    for byte; a SQL query's result is written as CSV, and so are the feedback source's
    labelled records (served predictions joined with their feedback). Every raw file's
    SHA-256 is recorded in data/raw/manifest.json.

    Args:
        contract: The planning contract.
        raw_dir: Folder for immutable raw data.
        rows: Number of demo records to generate.
        seed: Random seed of the demo source.
        project_dir: Folder that a relative data.path is read from (default: current).
        database_url: SQLAlchemy URL for a SQL source.

    Returns:
        The raw files, written now or already there with the same content.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    spec = contract.data
    if spec.source == "demo":
        frame = synthetic_rows(contract, rows, seed)
        outputs = {RAW_FILE: frame}
        if spec.availability == "unlabelled":
            outputs[RAW_FILE] = frame.drop(columns=[contract.task.target])
            sample_rows = min(LABELLED_SAMPLE_ROWS, max(rows // 5, 1))
            outputs[LABELLED_SAMPLE_FILE] = synthetic_rows(contract, sample_rows, seed + 1)
        # The records' own file last: whoever finds it (raw_records_path) finds the rest too.
        landed = {
            name: _write_immutable(raw_dir / name, _csv_bytes(table), len(table), "demo")
            for name, table in reversed(outputs.items())
        }
        written = [landed[name] for name in outputs]
    elif spec.source == "feedback":
        frame, shown = _labelled_feedback(contract, project_dir)
        target = raw_records_path(contract, raw_dir)
        written = [_write_immutable(target, _csv_bytes(frame), len(frame), f"feedback:{shown}")]
    elif spec.source == "sql":
        frame, shown = _run_query(database_url, spec.query or "")
        _check_columns(frame, contract, shown)
        target = raw_records_path(contract, raw_dir)
        written = [_write_immutable(target, _csv_bytes(frame), len(frame), f"sql:{shown}")]
    else:
        relative = spec.path or Path()  # the contract refuses a file source without a path
        source = relative if relative.is_absolute() else (project_dir or Path.cwd()) / relative
        frame = read_raw(source)
        _check_columns(frame, contract, str(source))
        content = source.read_bytes()
        target = raw_records_path(contract, raw_dir)
        written = [_write_immutable(target, content, len(frame), f"{spec.source}:{source}")]
    return written


def synthetic_rows(contract: Contract, rows: int, seed: int) -> pd.DataFrame:
    """Seeded synthetic records drawn from the feature schema, labelled: the demo source."""
    return synthetic(load(), rows, seed, task=contract.task.type)


def raw_records_path(contract: Contract, raw_dir: Path) -> Path:
    """Where the raw records of the contract's source land."""
    spec = contract.data
    if spec.source == "sql":
        digest = hashlib.sha256((spec.query or "").encode("utf-8")).hexdigest()[:12]
        return raw_dir / f"query-{digest}.csv"
    if spec.source in ("csv", "parquet") and spec.path is not None:
        return raw_dir / spec.path.name
    if spec.source == "feedback":
        return raw_dir / FEEDBACK_FILE
    return raw_dir / RAW_FILE


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def _check_columns(frame: pd.DataFrame, contract: Contract, where: str) -> None:
    missing = [column.name for column in load().inputs if column.name not in frame.columns]
    if missing:
        raise RawDataError(f"{where}: {missing_columns(missing, where)}")
    labelled = contract.data.availability != "unlabelled"
    if labelled and contract.task.target not in frame.columns:
        raise RawDataError(f"{where}: no target column {contract.task.target!r}")


def _labelled_feedback(contract: Contract, project_dir: Path | None) -> tuple[pd.DataFrame, str]:
    """The served records users gave feedback on, labelled with what really happened."""
    from ..app.feedback import FeedbackError, FeedbackStore, store_url
    from ..config import Settings

    settings = Settings(project_dir=project_dir or Path.cwd())
    try:
        store = FeedbackStore(store_url(settings), target=contract.task.target)
        try:
            frame = store.labelled_frame()
        finally:
            store.close()
    except FeedbackError as error:
        raise RawDataError(str(error)) from None
    if frame.empty:
        raise RawDataError(
            f"{store.shown}: no prediction has feedback yet; serve the model and send "
            "POST /feedback first"
        )
    return frame, store.shown


def _run_query(database_url: SecretStr | None, query: str) -> tuple[pd.DataFrame, str]:
    """Run the contract's query; errors name the database without its password."""
    from sqlalchemy import text

    with database(database_url) as (connection, shown):
        return pd.read_sql_query(text(query), connection), shown


@contextmanager
def database(database_url: SecretStr | None) -> Iterator[tuple[Connection, str]]:
    """A connection to the database and its URL as shown to people (without the password).

    Errors while connecting or running queries in the block become one RawDataError line
    naming the database; the password never appears in it.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    if database_url is None:
        raise RawDataError("data.source is sql but no database URL is set (see .env.example)")
    secret = database_url.get_secret_value()
    try:
        url = make_url(secret)
    except ArgumentError:
        raise RawDataError("the database URL is not a valid SQLAlchemy URL") from None
    shown = url.render_as_string(hide_password=True)
    try:
        engine = create_engine(url)
    except (ArgumentError, ModuleNotFoundError) as error:
        raise RawDataError(f"{shown}: cannot use this database ({error})") from None
    try:
        with engine.connect() as connection:
            yield connection, shown
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        if url.password:
            reason = reason.replace(str(url.password), "***")
        raise RawDataError(f"{shown}: the query failed ({reason})") from None
    finally:
        engine.dispose()


def _write_immutable(path: Path, content: bytes, rows: int, source: str) -> Path:
    digest = _digest(content)
    if path.exists():
        if _digest(path.read_bytes()) == digest:
            return path
        raise RawDataError(
            f"{path} already holds different data and raw data is never overwritten; "
            "move it away to collect again"
        )
    write_atomic(path, content)
    _record(path, digest, rows, source)
    return path


def _record(path: Path, digest: str, rows: int, source: str) -> None:
    """Add one raw file to the manifest beside it, keeping every earlier entry."""
    manifest_path = path.parent / MANIFEST_FILE
    manifest: dict[str, dict[str, object]] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest[path.name] = {
        "sha256": digest,
        "rows": rows,
        "source": source,
        "collected_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    content = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_atomic(manifest_path, content.encode("utf-8"))


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def read_raw(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read one raw CSV or Parquet file; every problem is one line naming the file.

    Args:
        path: The file.
        text_columns: Columns to keep as strings (class labels such as "1" or "yes").

    Returns:
        The records.
    """
    if not path.exists():
        raise RawDataError(f"{path}: not found; run `collect` first")
    if path.stat().st_size == 0:
        raise RawDataError(f"{path}: the file is empty")
    if path.suffix == ".parquet":
        # fastparquet directly: 16 MB against pyarrow's 165 MB, and pandas deprecates its
        # fastparquet engine (docs/opinions.md).
        from fastparquet import ParquetFile

        try:
            # From memory: given a path, fastparquet leaves the file open.
            frame: pd.DataFrame = ParquetFile(io.BytesIO(path.read_bytes())).to_pandas()
        except Exception as error:  # fastparquet raises many unrelated types
            raise RawDataError(f"{path}: cannot read it as Parquet ({error})") from None
        frame = _text_as_csv_gives_it(frame)
        labels = [column for column in text_columns if column in frame.columns]
        typed = frame.astype(dict.fromkeys(labels, str))
        for column in labels:
            # astype(str) writes a gap as the text "nan" before pandas 3: keep it a gap.
            typed[column] = typed[column].where(frame[column].notna())
        return typed
    try:
        return pd.read_csv(path, dtype=dict.fromkeys(text_columns, str))
    except UnicodeDecodeError:
        raise RawDataError(f"{path}: {_where_not_utf8(path.read_bytes())}") from None
    except pd.errors.EmptyDataError:
        raise RawDataError(f"{path}: the file has no columns") from None
    except pd.errors.ParserError as error:
        detail = str(error).strip().splitlines()[-1].removeprefix("Error tokenizing data. ")
        raise RawDataError(f"{path}: not valid CSV ({detail})") from None
    except OSError as error:
        raise RawDataError(f"{path}: cannot read it ({error.strerror})") from None


# The type pandas gives text it reads from CSV: str from pandas 3 on, object before.
_CSV_TEXT = pd.Series(["text"]).dtype


def _text_as_csv_gives_it(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns read from Parquet as a CSV of the same records reads them.

    fastparquet gives text as objects with None where a value is missing; read from CSV, the
    same column has pandas' text type and NaN, and every later stage sees one of the two.
    """
    text = [
        column
        for column, dtype in frame.dtypes.items()
        if pd.api.types.is_object_dtype(dtype)
        and pd.api.types.infer_dtype(frame[column], skipna=True) == "string"
    ]
    if not text:
        return frame
    frame = frame.copy()
    for column in text:
        frame[column] = frame[column].where(frame[column].notna(), np.nan).astype(_CSV_TEXT)
    return frame


def _where_not_utf8(content: bytes) -> str:
    """Say on which line the first byte that is not UTF-8 sits."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        return f"line {line} is not UTF-8 text (byte {content[error.start]:#04x}); save it as UTF-8"
    return "not UTF-8 text; save it as UTF-8"


def read_records(contract: Contract, raw_dir: Path) -> pd.DataFrame:
    """The raw records of the contract's source, their columns checked."""
    # Class labels such as "1" or "yes" must stay the strings the contract lists.
    path = raw_records_path(contract, raw_dir)
    records = read_raw(path, _label_columns(contract))
    _check_columns(records, contract, str(path))
    return encode_target(records, contract, str(path))


def encode_target(frame: pd.DataFrame, contract: Contract, where: str) -> pd.DataFrame:
    """The target as the models use it: 0/1 for yes/no tasks, class text, or numbers.

    The feature schema's target values are the data's own (0/1, true/false, yes/no or any two
    strings); a value it does not list is one error line naming the value's row.
    """
    target = contract.task.target
    if target not in frame.columns:
        return frame
    task = contract.task.type
    if task == "regression":
        numbers = pd.to_numeric(frame[target], errors="coerce")
        bad = numbers.isna() & frame[target].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise RawDataError(f"{where}: line {row}: target {target!r} is not a number")
        return frame.assign(**{target: numbers})
    labels = frame[target].map(lambda value: None if pd.isna(value) else value_text(value))
    values = [value_text(value) for value in load().target.values]
    if task == "multiclass_classification":
        known = values or list(contract.task.classes or [])
        return _known_labels(
            frame.assign(**{target: _as_known(labels, known)}), target, known, where
        )
    # Yes/no values match however the file spells them: 1, 1.0, true, True.
    negative, positive = [_yes_no_key(value) for value in values[-2:]] or ["0", "1"]
    keys = labels.map(lambda value: value if value is None else _yes_no_key(value))
    frame = _known_labels(frame.assign(**{target: keys}), target, [negative, positive], where)
    encoded = frame[target].map({negative: 0, positive: 1})
    return frame.assign(**{target: encoded})


def _yes_no_key(value: str) -> str:
    return label_key(value.strip().lower())


def _as_known(labels: pd.Series, known: list[str]) -> pd.Series:
    """Labels written another way than a known class (6.0 for 6) as that class.

    Only where one known class has the label's key: with both 1 and 1.0 among the classes,
    each stays as written.
    """
    by_key: dict[str, str | None] = {}
    for label in known:
        key = label_key(label)
        by_key[key] = None if key in by_key else label
    written = {label for label in labels.dropna().unique() if label not in known}
    renamed = {label: by_key.get(label_key(label)) for label in written}
    renamed = {label: name for label, name in renamed.items() if name is not None}
    return labels.map(lambda label: renamed.get(label, label)) if renamed else labels


def _known_labels(frame: pd.DataFrame, target: str, known: list[str], where: str) -> pd.DataFrame:
    unknown = frame[target].notna() & ~frame[target].isin(known)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        value = str(frame[target].iloc[row])[:40]
        package = __name__.split(".")[0]
        raise RawDataError(
            f"{where}: line {row + 2}: target {target!r} has {value!r}, which is not one of "
            f"the target values {known[:10]} in {SCHEMA_FILE.format(package=package)}"
        )
    return frame


def _label_columns(contract: Contract) -> tuple[str, ...]:
    classified = contract.task.type != "regression"
    return (contract.task.target,) if classified else ()


def split_records(contract: Contract, records: pd.DataFrame, raw_dir: Path) -> Splits:
    """Split records into the part the baseline learns from and the part it is judged on.

    Labelled (and demo) data is split at random with the contract's seed and test fraction,
    every copy of a repeated row on the same side;
    unlabelled data is all used for calibration and the hand-labelled sample for evaluation.
    """
    if contract.data.availability == "unlabelled":
        path = raw_dir / LABELLED_SAMPLE_FILE
        sample = encode_target(read_raw(path, _label_columns(contract)), contract, str(path))
        return Splits(train=records, test=sample)
    # Copies of one row form one group and land on one side: a test row the model was
    # trained on would flatter it.
    keys = pd.util.hash_pandas_object(records, index=False).to_numpy()
    _, group, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.random.default_rng(contract.data.seed).permutation(len(sizes))
    test_rows = max(1, round(len(records) * contract.data.test_fraction))
    test_groups = order[: int(np.searchsorted(np.cumsum(sizes[order]), test_rows)) + 1]
    in_test = np.isin(group, test_groups)
    return Splits(
        train=records[~in_test].reset_index(drop=True),
        test=records[in_test].reset_index(drop=True),
    )


def load_splits(contract: Contract, raw_dir: Path) -> Splits:
    """Read the raw records and split them (see split_records)."""
    return split_records(contract, read_records(contract, raw_dir), raw_dir)
