"""The lifecycle in order: collect, curate, validate, explore, calibrate, evaluate, register."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import Contract, Settings
from .data import demo
from .data.collect import (
    Splits,
    collect,
    raw_records_path,
    read_raw,
    read_records,
    split_records,
)
from .data.curate import CurationReport, curate
from .data.explore import explore
from .data.transform import features_frame
from .data.validate import ValidationReport, validate
from .files import write_atomic
from .model.baseline import Baseline
from .model.evaluate import Evaluation, evaluate, write_report
from .model.registry import save_champion


@dataclass(frozen=True)
class PipelineResult:
    """Where the pipeline left its outputs, and how the baseline did."""

    raw_files: list[Path]
    curation: CurationReport
    validation: ValidationReport
    exploration: Path
    evaluation: Evaluation
    report: Path
    champion: Path


def fit_baseline(contract: Contract, splits: Splits) -> Baseline:
    """The baseline's rules, calibrated as far as the data availability allows.

    With no data the rules stay as written; unlabelled data calibrates what needs no labels;
    labelled data also calibrates what needs the target.
    """
    model = Baseline.from_contract(contract)
    availability = contract.data.availability
    if availability != "none":
        target = splits.train[contract.task.target] if availability == "labelled" else None
        model.calibrate(features_frame(splits.train), target)
    return model


def run_pipeline(
    settings: Settings,
    rows: int | None = None,
    seed: int | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> PipelineResult:
    """Run every stage in order, reporting each one through `step`.

    Args:
        settings: Where the project's files live.
        rows: Demo records to collect (default: the contract's demo_rows).
        seed: Seed of the demo source (default: the contract's seed).
        step: Called with a short description as each stage starts.

    Returns:
        The outputs of the run.
    """
    contract = settings.load_contract()
    step("collect")
    raw_files = collect(
        contract,
        settings.raw_dir,
        rows or contract.data.demo_rows,
        contract.data.seed if seed is None else seed,
        project_dir=settings.project_dir,
        database_url=settings.database_url,
    )
    step("curate")
    records, curation = curate(read_records(contract, settings.raw_dir), contract)
    step("validate")
    validation = validate(
        records,
        contract,
        reference=read_reference(settings.reference_file),
        stats_log=settings.stats_log,
        source=raw_records_path(contract, settings.raw_dir).name,
    )
    step("explore")
    exploration = explore(records, contract, settings.path(settings.reports_dir) / "explore")
    step("calibrate the baseline")
    splits = split_records(contract, records, settings.raw_dir)
    if contract.data.availability == "unlabelled":
        splits = Splits(train=splits.train, test=curate(splits.test, contract)[0])
    model = fit_baseline(contract, splits)
    step("evaluate")
    evaluation = evaluate(model, splits.test, contract)
    report = write_report(evaluation, contract, settings.path(settings.reports_dir))
    step("register the champion")
    champion = save_champion(model, settings.champion_file)
    reference = splits.train[demo.FEATURES].to_csv(index=False).encode("utf-8")
    write_atomic(settings.reference_file, reference)
    return PipelineResult(
        raw_files, curation, validation, exploration, evaluation, report, champion
    )


def read_reference(path: Path) -> pd.DataFrame | None:
    """The champion's training features, or None before the first champion exists."""
    return read_raw(path) if path.exists() else None
