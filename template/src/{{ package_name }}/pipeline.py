"""The lifecycle in order: collect, calibrate the baseline, evaluate it, make it the champion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Contract, Settings
from .data import demo
from .data.collect import Splits, collect, load_splits
from .model.baseline import Baseline
from .model.evaluate import Evaluation, evaluate, write_report
from .model.registry import save_champion


@dataclass(frozen=True)
class PipelineResult:
    """Where the pipeline left its outputs, and how the baseline did."""

    raw_files: list[Path]
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
        model.calibrate(splits.train[demo.FEATURES], target)
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
    step("calibrate the baseline")
    splits = load_splits(contract, settings.raw_dir)
    model = fit_baseline(contract, splits)
    step("evaluate")
    evaluation = evaluate(model, splits.test, contract)
    report = write_report(evaluation, contract, settings.path(settings.reports_dir))
    step("register the champion")
    champion = save_champion(model, settings.champion_file)
    return PipelineResult(raw_files, evaluation, report, champion)
