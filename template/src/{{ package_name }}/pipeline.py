"""The lifecycle in order, from raw data to the champion the service loads.

collect → curate → validate → explore → calibrate the baseline → on the first run, register the
baseline as version 1 and make it `champion`, so the service always has a model → train
candidates (every trial an MLflow run with its parameters, metrics, the raw-data manifest hash,
the git commit and the contract) → evaluate the best candidate, the baseline and the champion
on the test split → fairness → plots and the model card → register the candidate → alias it
`challenger` if it passes the challenger gate → make it `champion` if it also passes the
promotion gate, and measure drift against its training features from then on.

When the candidate fails a gate nothing is lost and nothing changes hands: the champion stays
(after a first run, the baseline), the reports and the model card are written, the candidate
stays registered without an alias for inspection, and the result says which number missed and
by how much (`PipelineResult.passed` is False; the `pipeline` command exits with code 1).
A candidate that decides exactly as the champion on every test record (the same data and seed
trained twice) is not registered again; that is a pass, so re-running the pipeline is safe.
Without labelled training data (data.availability unlabelled) no candidate is trained and the
baseline serves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Contract, Settings
from .data.collect import (
    MANIFEST_FILE,
    Splits,
    collect,
    raw_records_path,
    read_raw,
    read_records,
    split_records,
)
from .data.curate import CurationReport, curate
from .data.explore import UNCHANGED, explore
from .data.transform import features_frame, input_names
from .data.validate import ValidationReport, validate
from .errors import ModelFileError
from .files import write_atomic
from .model.baseline import Baseline
from .model.card import write_evaluation_plots, write_model_card
from .model.evaluate import Evaluation, Model, evaluate, write_report
from .model.fairness import FairnessReport, assess, markdown, plot_groups
from .model.gate import Verdict, challenger_verdict, deciding_gate, promotion_verdict
from .model.registry import CHALLENGER, CHAMPION, Registry, StaleModelError, git_commit
from .model.train import Candidate, TrainingSample, sample_training, split_validation, train

Step = Callable[[str], None]


@dataclass(frozen=True)
class Judgement:
    """How a candidate compares with the baseline and the champion, and what the gates say."""

    candidate: Evaluation
    baseline: Evaluation
    champion: Evaluation | None
    fairness: FairnessReport
    challenger: Verdict
    report: Path
    card: Path


@dataclass(frozen=True)
class PipelineResult:
    """Where the pipeline left its outputs, how the models did and which gates passed."""

    raw_files: list[Path]
    curation: CurationReport
    validation: ValidationReport
    exploration: Path
    baseline: Evaluation
    report: Path
    champion_version: int
    judgement: Judgement | None = None
    candidate_version: int | None = None
    promotion: Verdict | None = None
    notes: list[str] = field(default_factory=list)
    exploration_kept: bool = False

    @property
    def reasons(self) -> list[str]:
        """Every gate's reasons for refusing the candidate; empty when nothing was refused."""
        verdicts = [self.judgement.challenger if self.judgement else None, self.promotion]
        return [reason for verdict in verdicts if verdict for reason in verdict.reasons]

    @property
    def passed(self) -> bool:
        """No gate refused the candidate."""
        return not self.reasons


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


def data_splits(settings: Settings, contract: Contract, records: pd.DataFrame) -> Splits:
    """Train and test splits of curated records; a hand-labelled test sample is curated too."""
    splits = split_records(contract, records, settings.raw_dir)
    if contract.data.availability == "unlabelled":
        splits = Splits(train=splits.train, test=curate(splits.test, contract)[0])
    return splits


def curated_splits(settings: Settings, contract: Contract) -> Splits:
    """The collected records, curated and split as the pipeline does it."""
    records, _ = curate(read_records(contract, settings.raw_dir), contract)
    return data_splits(settings, contract, records)


def manifest_digest(settings: Settings) -> str:
    """SHA-256 of data/raw/manifest.json: which raw data a model was trained on."""
    path = settings.raw_dir / MANIFEST_FILE
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "none"


def lineage(settings: Settings) -> dict[str, str]:
    """Tags tying a run to its data and code: the raw-data manifest hash and the git commit."""
    return {
        "data_manifest_sha256": manifest_digest(settings),
        "git_commit": git_commit(settings.project_dir) or "none",
    }


def write_reference(settings: Settings, splits: Splits) -> Path:
    """Keep the champion's training features: what validate and monitor measure drift against."""
    reference = splits.train[input_names()].to_csv(index=False).encode("utf-8")
    return write_atomic(settings.reference_file, reference)


def ensure_champion(
    registry: Registry, baseline: Baseline, settings: Settings, splits: Splits, step: Step
) -> tuple[Model, list[str]]:
    """The champion, registering the baseline as champion when there is none (or a stale one).

    Returns:
        The champion and notes on what changed.
    """
    if registry.version_of(CHAMPION) is not None:
        try:
            return registry.load(CHAMPION), []
        except StaleModelError as error:
            note = f"{error}: the recalibrated baseline replaces it"
    else:
        note = "no champion yet: the baseline is registered and serves"
    step("register the baseline as champion")
    version = registry.register(baseline, tags={"stage": "baseline", **lineage(settings)})
    registry.set_alias(CHAMPION, version)
    write_reference(settings, splits)
    return registry.load(CHAMPION), [f"{note} (version {version})"]


def train_candidate(
    settings: Settings,
    contract: Contract,
    registry: Registry,
    splits: Splits,
    *,
    seed: int,
    step: Step,
    sample: TrainingSample | None = None,
) -> Candidate:
    """Train the candidates on the training split, log every trial, and return the best.

    Above training.max_train_rows training records, they train on a stratified sample of it
    (`sample`, when the caller has drawn it already).
    """
    sample = sample or sample_training(contract, splits.train, seed)
    if sample.sampled:
        step(f"train candidates on {len(sample.frame)} of {sample.total} training records")
    else:
        step("train candidates")
    fit_frame, validation_frame = split_validation(contract, sample.frame, seed)
    result = train(contract, fit_frame, validation_frame, seed=seed, progress=step)
    tags = {"stage": "train", "seed": str(seed), **lineage(settings)}
    contract_file = settings.path(settings.contract_file)
    for number, trial in enumerate(result.trials, start=1):
        step(f"log trial {number}/{len(result.trials)} to MLflow")
        registry.log_run(
            f"trial {number}: {trial.kind}",
            params={"kind": trial.kind, **trial.params},
            metrics={
                f"validation_{contract.metrics.primary}": trial.validation_metric,
                "validation_expected_cost": trial.expected_cost,
                "fit_seconds": trial.fit_seconds,
            },
            tags=tags,
            artifacts={"contract": contract_file},
        )
    return result.best


def judge(
    settings: Settings,
    contract: Contract,
    candidate: Model,
    baseline: Model,
    champion: Model | None,
    splits: Splits,
    step: Step,
    data_lines: list[str] | None = None,
) -> Judgement:
    """Evaluate the candidate, baseline and champion on the test split; write report and card."""
    step("evaluate the candidate, the baseline and the champion")
    test = splits.test
    judged = evaluate(candidate, test, contract)
    against = evaluate(baseline, test, contract)
    incumbent = None if champion is None else evaluate(champion, test, contract)
    step("measure fairness")
    fairness = assess(candidate, test, contract)
    fairness_lines = [
        *markdown(fairness),
        f"The baseline, on the same records: {assess(baseline, test, contract).summary()}.",
    ]
    if contract.fairness.reason:
        tolerance = contract.fairness.tolerance
        fairness_lines.append(f"Why the tolerance is {tolerance:g}: {contract.fairness.reason}")
    verdict = challenger_verdict(judged, against, fairness)
    final = verdict
    if verdict.passed and incumbent is not None:
        final = promotion_verdict(judged, incumbent)
    reports = settings.path(settings.reports_dir)
    report = write_report(judged, contract, reports)
    step("draw plots and write the model card")
    figures = write_evaluation_plots(candidate, test, contract, reports / "figures")
    figures += plot_groups(fairness, reports / "figures")
    card, _ = write_model_card(
        contract,
        candidate=judged,
        baseline=against,
        champion=incumbent,
        fairness_lines=fairness_lines,
        figures=figures,
        data_lines=data_lines or [f"{len(splits.train)} training and {len(test)} test records."],
        out_dir=reports,
        decided_by=deciding_gate(final),
    )
    return Judgement(judged, against, incumbent, fairness, verdict, report, card)


def decides_alike(first: Model, second: Model, frame: pd.DataFrame) -> bool:
    """Whether two models of one kind give the same scores and decisions on every record."""
    if first.kind != second.kind:
        return False
    features = features_frame(frame)
    return bool(
        np.array_equal(first.score(features), second.score(features))
        and np.array_equal(first.predict(features), second.predict(features))
    )


def registered_twin(
    registry: Registry, candidate: Model, champion: Model, frame: pd.DataFrame
) -> int | None:
    """A registered version that decides exactly as the candidate: the champion or the newest.

    The newest version is the candidate of the last run when the gates refused it: training
    the same data with the same seed again must not register the same model a second time.
    """
    if decides_alike(candidate, champion, frame):
        return champion.version
    newest = registry.latest_version()
    if newest is None or newest == champion.version:
        return None
    try:
        latest = registry.load_version(newest)
    except ModelFileError:
        return None  # an unreadable or stale version is no twin: register the candidate
    return newest if decides_alike(candidate, latest, frame) else None


def release(
    settings: Settings,
    registry: Registry,
    candidate: Model,
    judgement: Judgement,
    splits: Splits,
    step: Step,
) -> tuple[int, Verdict | None]:
    """Register the candidate; challenger and then champion only as far as the gates allow.

    Returns:
        The candidate's version and the promotion verdict (None when it never became challenger).
    """
    step("register the candidate")
    tags = {
        "stage": "candidate",
        f"test_{judgement.candidate.metric}": f"{judgement.candidate.value:.6g}",
        "test_expected_cost": f"{judgement.candidate.expected_cost:.6g}",
        **lineage(settings),
    }
    version = registry.register(candidate, tags=tags)
    if not judgement.challenger.passed:
        return version, None
    registry.set_alias(CHALLENGER, version)
    promotion = None
    if judgement.champion is not None:
        promotion = promotion_verdict(judgement.candidate, judgement.champion)
    if promotion is None or promotion.passed:
        step("promote the challenger to champion")
        promote(settings, registry, version, splits)
    return version, promotion


def promote(settings: Settings, registry: Registry, version: int, splits: Splits) -> None:
    """Make a version champion, retire its challenger alias, and follow it for drift."""
    registry.set_alias(CHAMPION, version)
    if registry.version_of(CHALLENGER) == version:
        registry.remove_alias(CHALLENGER)
    write_reference(settings, splits)


def run_pipeline(
    settings: Settings,
    rows: int | None = None,
    seed: int | None = None,
    step: Step = lambda _: None,
) -> PipelineResult:
    """Run every stage in order, reporting each one through `step`.

    Args:
        settings: Where the project's files live.
        rows: Demo records to collect (default: the contract's demo_rows).
        seed: Seed of the demo source and of training (default: the contract's seed).
        step: Called with a short description as each stage starts.

    Returns:
        The outputs of the run; `passed` says whether every gate let the candidate through.
    """
    contract = settings.load_contract()
    seed = contract.data.seed if seed is None else seed
    registry = Registry(settings, contract)
    step("check the registry")
    registry.version_of(CHAMPION)  # a registry that does not answer fails here, before the work
    step("collect")
    raw_files = collect(
        contract,
        settings.raw_dir,
        rows or contract.data.demo_rows,
        seed,
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
    exploration, exploration_kept = explore_data(
        records, contract, settings.path(settings.reports_dir) / "explore", step
    )
    step("calibrate the baseline")
    splits = data_splits(settings, contract, records)
    baseline = fit_baseline(contract, splits)
    champion, notes = ensure_champion(registry, baseline, settings, splits, step)
    judgement: Judgement | None = None
    version: int | None = None
    promotion: Verdict | None = None
    if contract.data.availability == "unlabelled":
        step("evaluate the baseline")
        evaluation = evaluate(baseline, splits.test, contract)
        report = write_report(evaluation, contract, settings.path(settings.reports_dir))
        notes.append("no labelled training data: no candidate trained; the champion stays")
    else:
        sample = sample_training(contract, splits.train, seed)
        candidate = train_candidate(
            settings, contract, registry, splits, seed=seed, step=step, sample=sample
        )
        data_lines = [
            f"Raw data: {', '.join(path.name for path in raw_files)} "
            f"(manifest sha256 {manifest_digest(settings)[:12]}).",
            curation.summary(),
            validation.summary(),
            f"{len(splits.train)} training records (a part held out for validation), "
            f"{len(splits.test)} test records.",
            sample.summary(),
        ]
        judgement = judge(
            settings, contract, candidate, baseline, champion, splits, step, data_lines
        )
        evaluation, report = judgement.baseline, judgement.report
        twin = registered_twin(registry, candidate, champion, splits.test)
        if twin is not None:
            notes.append(
                f"the candidate decides exactly as version {twin} on every test record: "
                "nothing new to register"
            )
        else:
            version, promotion = release(settings, registry, candidate, judgement, splits, step)
    return PipelineResult(
        raw_files=raw_files,
        curation=curation,
        validation=validation,
        exploration=exploration,
        baseline=evaluation,
        report=report,
        champion_version=registry.version_of(CHAMPION) or champion.version,
        judgement=judgement,
        candidate_version=version,
        promotion=promotion,
        notes=notes,
        exploration_kept=exploration_kept,
    )


def explore_data(
    records: pd.DataFrame, contract: Contract, folder: Path, step: Callable[[str], None]
) -> tuple[Path, bool]:
    """The data report in folder, drawn or kept as it was, and whether it was kept."""
    told: list[str] = []

    def progress(done: str) -> None:
        told.append(done)
        step(f"explore: {done}")

    return explore(records, contract, folder, progress), told == [UNCHANGED]


def read_reference(path: Path) -> pd.DataFrame | None:
    """The champion's training features, or None before the first champion exists."""
    return read_raw(path) if path.exists() else None
