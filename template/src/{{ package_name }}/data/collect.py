"""Collect: land raw records in data/raw, where they are never modified afterwards."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Contract
from ..errors import RawDataError
from ..files import write_atomic
from . import demo

RAW_FILE = "demo.csv"
LABELLED_SAMPLE_FILE = "labelled_sample.csv"
LABELLED_SAMPLE_ROWS = 500


@dataclass(frozen=True)
class Splits:
    """What the baseline is calibrated on and what it is evaluated on."""

    train: pd.DataFrame
    test: pd.DataFrame


def collect(contract: Contract, raw_dir: Path, rows: int, seed: int) -> list[Path]:
    """Write the demo source's records to raw_dir, refusing to change data already there.

    With unlabelled data the records are written without their target, and a small labelled
    sample (the rows a person would label by hand) is written beside them for evaluation.

    Args:
        contract: The planning contract.
        raw_dir: Folder for immutable raw data.
        rows: Number of records to generate.
        seed: Random seed of the demo source.

    Returns:
        The raw files, written now or already there with the same content.
    """
    frame = demo.generate(contract, rows, seed)
    outputs = {RAW_FILE: frame}
    if contract.data.availability == "unlabelled":
        outputs[RAW_FILE] = frame.drop(columns=[contract.task.target])
        sample_rows = min(LABELLED_SAMPLE_ROWS, max(rows // 5, 1))
        outputs[LABELLED_SAMPLE_FILE] = demo.generate(contract, sample_rows, seed + 1)
    raw_dir.mkdir(parents=True, exist_ok=True)
    return [_write_immutable(raw_dir / name, table) for name, table in outputs.items()]


def _write_immutable(path: Path, frame: pd.DataFrame) -> Path:
    content = frame.to_csv(index=False).encode("utf-8")
    if path.exists():
        if _digest(path.read_bytes()) == _digest(content):
            return path
        raise RawDataError(
            f"{path} already holds different data and raw data is never overwritten; "
            "move it away to collect again"
        )
    return write_atomic(path, content)


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def read_raw(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read one raw CSV file, naming the file in any error; text_columns stay strings."""
    try:
        return pd.read_csv(path, dtype=dict.fromkeys(text_columns, str))
    except FileNotFoundError:
        raise RawDataError(f"{path}: not found; run `collect` first") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise RawDataError(f"{path}: cannot read it as CSV ({error})") from None


def load_splits(contract: Contract, raw_dir: Path) -> Splits:
    """Split the raw data into the part the baseline learns from and the part it is judged on.

    Labelled (and demo) data is split at random with the contract's seed and test fraction;
    unlabelled data is all used for calibration and the hand-labelled sample for evaluation.
    """
    # Class labels such as "1" or "yes" must stay the strings the contract lists.
    labels = (contract.task.target,) if contract.task.type == "multiclass_classification" else ()
    records = read_raw(raw_dir / RAW_FILE, labels)
    missing = [column for column in demo.FEATURES if column not in records.columns]
    if missing:
        raise RawDataError(f"{raw_dir / RAW_FILE}: missing feature columns {missing}")
    if contract.data.availability == "unlabelled":
        return Splits(train=records, test=read_raw(raw_dir / LABELLED_SAMPLE_FILE, labels))
    if contract.task.target not in records.columns:
        raise RawDataError(f"{raw_dir / RAW_FILE}: no target column {contract.task.target!r}")
    order = np.random.default_rng(contract.data.seed).permutation(len(records))
    test_rows = max(1, round(len(records) * contract.data.test_fraction))
    test, train = order[:test_rows], order[test_rows:]
    return Splits(
        train=records.iloc[train].reset_index(drop=True),
        test=records.iloc[test].reset_index(drop=True),
    )
