"""Train: a few scikit-learn candidates for the contract's task, judged on validation data.

The candidates and their settings are in candidates.py, which is yours to edit; this module
is the machinery that searches, judges, saves and loads them.

Every candidate is a Pipeline of the shared feature transformer and one estimator. A short,
seeded search tries a handful of settings per kind of estimator; the best by the contract's
primary metric on the validation split (ties: the lower expected cost) is the candidate.
Classifiers then act at the threshold that costs least on the validation split.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import ParameterSampler
from sklearn.pipeline import Pipeline
from skops import io as skops_io
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # sklearn's own

from ..config import Contract
from ..data.transform import build_transformer, features_frame
from ..errors import ModelFileError, ProjectError
from ..files import write_atomic
from .candidates import CLASSIFIERS, OUTLIER_DETECTORS, TRUSTED_TYPES, Kind, regressors
from .evaluate import SCORED_TASKS, choose_threshold, evaluate, task_labels

MODEL_FILE = "model.skops"
METADATA_FILE = "candidate.json"
FORMAT = 1
MIN_FIT_ROWS = 40
MIN_VALIDATION_ROWS = 20
VALIDATION_FRACTION = 0.2
# A regression target is stratified by this many quantile bins when the training split is sampled.
QUANTILE_BINS = 10
SETTINGS_PER_KIND = 4
# Types the shared feature transformer holds beyond what skops trusts: the imputer that fills
# numbers the schema lets be missing keeps the dtype it was fitted on.
TRANSFORMER_TYPES = ("numpy.dtype",)
# Fitting on a few thousand records, one thread beats several; on a busy machine by ten times.
FIT_THREADS = 1


class TrainingError(ProjectError):
    """The data cannot train a model: no labels, one class only, or too few rows."""


@dataclass(frozen=True)
class Trial:
    """One setting tried by the search, and how it did on the validation split."""

    kind: str
    params: dict[str, Any]
    validation_metric: float
    expected_cost: float
    fit_seconds: float


@dataclass
class Candidate:
    """A trained model: the feature transformer and estimator, and how it turns scores to decisions.

    Scores and decisions mean what the baseline's mean for the same task: a probability of the
    positive class (or of an anomaly) acted on at `threshold`; for several classes the most
    likely class and its probability; for regression the prediction at the contract's quantile.
    """

    kind: str
    pipeline: Pipeline
    threshold: float | None
    quantile: float | None
    classes: list[str] | None
    params: dict[str, Any]
    version: int = 0

    def score(self, features: pd.DataFrame) -> np.ndarray:
        """Continuous score per record (see the class docstring)."""
        features = features_frame(features)
        estimator = self.pipeline[-1]
        if isinstance(estimator, IsolationForest):
            # score_samples is minus the isolation forest's anomaly score: 0.5 is an average
            # record, scores towards 1 are isolated quickly and thus unusual.
            return np.asarray(-self.pipeline.score_samples(features), dtype=float)
        if self.quantile is not None:
            return np.asarray(self.pipeline.predict(features), dtype=float)
        probabilities = self.pipeline.predict_proba(features)
        if self.classes is not None:
            return np.asarray(probabilities.max(axis=1), dtype=float)
        return np.asarray(probabilities[:, 1], dtype=float)

    def decide(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Decisions and scores from one pass through the pipeline (what the API needs).

        The feature transformer costs milliseconds per call whatever the row count, so a
        service answering one record at a time should not run it twice.
        """
        features = features_frame(features)
        estimator = self.pipeline[-1]
        if isinstance(estimator, IsolationForest) or self.quantile is not None:
            scores = self.score(features)
            if self.threshold is None:
                return scores, scores
            return (scores >= self.threshold).astype(int), scores
        probabilities = self.pipeline.predict_proba(features)
        if self.classes is not None:
            labels = np.asarray(estimator.classes_, dtype=object)
            return labels[probabilities.argmax(axis=1)], probabilities.max(axis=1).astype(float)
        scores = np.asarray(probabilities[:, 1], dtype=float)
        if self.threshold is None:
            return scores, scores
        return (scores >= self.threshold).astype(int), scores

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Decision per record: 0/1 at the threshold, a class label, or a value."""
        if self.threshold is not None:
            return (self.score(features) >= self.threshold).astype(int)
        if self.classes is not None:
            return np.asarray(self.pipeline.predict(features_frame(features)), dtype=object)
        return self.score(features)

    def save(self, directory: Path) -> list[Path]:
        """Write the fitted pipeline (skops) and its decision settings (JSON) into directory."""
        model = write_atomic(directory / MODEL_FILE, skops_io.dumps(self.pipeline))
        metadata = {
            "format": FORMAT,
            "kind": self.kind,
            "threshold": self.threshold,
            "quantile": self.quantile,
            "classes": self.classes,
            "params": self.params,
            "version": self.version,
        }
        text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
        return [model, write_atomic(directory / METADATA_FILE, text.encode("utf-8"))]

    @classmethod
    def load(cls, directory: Path) -> Candidate:
        """Read a candidate saved by `save`, refusing any file that holds types it does not trust.

        Raises:
            ModelFileError: A file is missing, unreadable, or holds an unexpected type.
        """
        model_file, metadata_file = directory / MODEL_FILE, directory / METADATA_FILE
        try:
            metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
            content = model_file.read_bytes()
        except FileNotFoundError as error:
            raise ModelFileError(f"{error.filename}: no saved candidate; run train") from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ModelFileError(f"{metadata_file}: not a readable candidate ({error})") from None
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
            raise ModelFileError(f"{metadata_file}: not a candidate file of format {FORMAT}")
        pipeline = _load_pipeline(model_file, content)
        try:
            return cls(
                kind=str(metadata["kind"]),
                pipeline=pipeline,
                threshold=_optional_float(metadata["threshold"]),
                quantile=_optional_float(metadata["quantile"]),
                classes=None if metadata["classes"] is None else list(metadata["classes"]),
                params=dict(metadata["params"]),
                version=int(metadata["version"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{metadata_file}: not a readable candidate ({error})") from None


def _optional_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def _load_pipeline(path: Path, content: bytes) -> Pipeline:
    try:
        untrusted = skops_io.get_untrusted_types(data=content)
    except Exception as error:  # skops raises many kinds on a damaged file; all mean the same.
        raise ModelFileError(f"{path}: not a readable model file ({error})") from None
    unexpected = sorted(set(untrusted) - {*TRUSTED_TYPES, *TRANSFORMER_TYPES})
    if unexpected:
        raise ModelFileError(
            f"{path}: refused, it holds types a candidate never has ({', '.join(unexpected)}); "
            "train again instead of loading a file from elsewhere"
        )
    try:
        pipeline = skops_io.loads(content, trusted=list(untrusted))
    except Exception as error:  # as above: a damaged archive fails in many ways.
        raise ModelFileError(f"{path}: not a readable model file ({error})") from None
    if not isinstance(pipeline, Pipeline):
        raise ModelFileError(f"{path}: holds a {type(pipeline).__name__}, not a model pipeline")
    return pipeline


@dataclass(frozen=True)
class TrainResult:
    """The best candidate and every trial of the search, in the order they ran."""

    best: Candidate
    trials: list[Trial] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingSample:
    """The records candidates train on: all of the training split, or a stratified sample of it."""

    frame: pd.DataFrame
    total: int

    @property
    def sampled(self) -> bool:
        """Whether the candidates see fewer records than the training split holds."""
        return len(self.frame) < self.total

    def summary(self) -> str:
        """One line for the model card."""
        if not self.sampled:
            return f"Trained on all {self.total} training records."
        return (
            f"Trained on {len(self.frame)} of {self.total} rows "
            "(stratified sample, training.max_train_rows)."
        )


def sample_training(contract: Contract, train_frame: pd.DataFrame, seed: int) -> TrainingSample:
    """The training split, or a seeded sample of training.max_train_rows records when it is larger.

    Each stratum keeps its share to within one record: the label's classes for classification
    and anomaly detection, quantile bins of the target for regression. Records keep their order.
    """
    limit, total = contract.training.max_train_rows, len(train_frame)
    if total <= limit:
        return TrainingSample(train_frame, total)
    strata = _strata(contract, train_frame)
    names, counts = np.unique(strata, return_counts=True)
    shares = counts * (limit / total)
    quotas = np.floor(shares).astype(int)
    # Largest remainders first; the stable sort gives ties to the stratum that sorts first.
    order = np.argsort(-(shares - quotas), kind="stable")
    quotas[order[: limit - int(quotas.sum())]] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(strata == name), size=quota, replace=False)
        for name, quota in zip(names, quotas, strict=True)
    ]
    rows = np.sort(np.concatenate(chosen))
    return TrainingSample(train_frame.iloc[rows].reset_index(drop=True), total)


def _strata(contract: Contract, frame: pd.DataFrame) -> np.ndarray:
    target = contract.task.target
    if target not in frame.columns:
        return np.zeros(len(frame), dtype=int)
    values = frame[target]
    if contract.task.type == "regression":
        # Ranking first splits runs of equal values, so every bin is (nearly) the same size.
        ranks = values.rank(method="first")
        bins = pd.qcut(ranks, min(QUANTILE_BINS, int(ranks.notna().sum()) or 1), labels=False)
        return np.asarray(bins.fillna(-1), dtype=int)
    return np.asarray(values.astype(str), dtype=str)


def split_validation(
    contract: Contract, train_frame: pd.DataFrame, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split training records into the part models fit on and the part they are judged on.

    Classes keep their shares in both parts when there are labels, so a rare class is never
    missing from the validation part by chance.
    """
    rng = np.random.default_rng(seed)
    target = contract.task.target
    labelled = target in train_frame.columns and contract.task.type != "regression"
    if labelled:
        values = train_frame[target].astype(str).to_numpy()
        groups = [np.flatnonzero(values == value) for value in sorted(set(values))]
    else:
        groups = [np.arange(len(train_frame))]
    validation: list[int] = []
    for rows in groups:
        shuffled = rng.permutation(rows)
        validation.extend(shuffled[: round(len(rows) * VALIDATION_FRACTION)].tolist())
    is_validation = np.zeros(len(train_frame), dtype=bool)
    is_validation[validation] = True
    fit = train_frame.iloc[np.flatnonzero(~is_validation)].reset_index(drop=True)
    return fit, train_frame.iloc[np.flatnonzero(is_validation)].reset_index(drop=True)


def train(
    contract: Contract,
    fit_frame: pd.DataFrame,
    validation_frame: pd.DataFrame,
    *,
    seed: int,
    progress: Callable[[str], None] = lambda _: None,
    kinds: tuple[Kind, ...] | None = None,
) -> TrainResult:
    """Search a handful of settings per kind of model and keep the best on validation data.

    Args:
        contract: The planning contract: task, costs, primary metric.
        fit_frame: Records the models are fitted on (with the target, except for anomaly
            detection, which then fits an isolation forest on the features alone).
        validation_frame: Labelled records the settings are judged and the threshold chosen on.
        seed: Seeds the search and every estimator: the same seed gives the same candidate.
        progress: Called with one line per trial.
        kinds: The kinds of estimator to try; None tries candidates.py's for the task.

    Returns:
        The best candidate and every trial.

    Raises:
        TrainingError: The data cannot train a model (the message says what to do).
    """
    task, target = contract.task.type, contract.task.target
    unsupervised = task == "anomaly_detection" and not _has_labels(fit_frame, target)
    _check_rows(fit_frame, MIN_FIT_ROWS, "training")
    _check_rows(validation_frame, MIN_VALIDATION_ROWS, "validation")
    if not unsupervised:
        _check_labels(contract, fit_frame, "training")
    _check_labels(contract, validation_frame, "validation")
    if kinds is None:
        kinds = _kinds(contract, unsupervised=unsupervised)
    features = features_frame(fit_frame)
    labels = None if unsupervised else task_labels(contract, fit_frame[target])
    trials: list[Trial] = []
    ranked: list[tuple[tuple[float, float], Candidate]] = []
    for kind in kinds:
        for params in _settings(kind, seed):
            with threadpool_limits(limits=FIT_THREADS):
                candidate, trial = _try(
                    contract, kind, params, seed, features, labels, validation_frame
                )
            trials.append(trial)
            progress(
                f"{trial.kind} {_describe(params)}: {contract.metrics.primary} "
                f"{trial.validation_metric:.4f}, expected cost {trial.expected_cost:.4f} "
                f"({trial.fit_seconds:.1f} s)"
            )
            ranked.append((_rank(contract, trial), candidate))
    # min keeps the first of equals, so ties go to the simpler kind tried first.
    best = min(ranked, key=lambda pair: pair[0])[1]
    return TrainResult(best=best, trials=trials)


def _kinds(contract: Contract, *, unsupervised: bool) -> tuple[Kind, ...]:
    if unsupervised:
        return OUTLIER_DETECTORS
    if contract.task.type == "regression":
        return regressors(contract.decision.quantile or 0.5)
    return CLASSIFIERS


def _settings(kind: Kind, seed: int) -> list[dict[str, Any]]:
    combinations = math.prod(len(values) for values in kind.grid.values())
    sampler = ParameterSampler(
        kind.grid, n_iter=min(SETTINGS_PER_KIND, combinations), random_state=seed
    )
    return [{name: _plain(value) for name, value in sorted(p.items())} for p in sampler]


def _plain(value: Any) -> Any:
    """Numpy scalars as Python numbers, so parameters log and serialise as they read."""
    return value.item() if isinstance(value, np.generic) else value


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in params.items())


def _try(
    contract: Contract,
    kind: Kind,
    params: dict[str, Any],
    seed: int,
    features: pd.DataFrame,
    labels: np.ndarray | None,
    validation_frame: pd.DataFrame,
) -> tuple[Candidate, Trial]:
    task = contract.task.type
    pipeline = Pipeline([("features", build_transformer()), ("model", kind.build(params, seed))])
    started = time.perf_counter()
    pipeline.fit(features, labels)
    seconds = time.perf_counter() - started
    # An estimator that trains elsewhere (on a cluster) hands over a plain fitted model, which is
    # what is judged, saved and served.
    to_local = getattr(pipeline[-1], "to_local", None)
    if callable(to_local):
        pipeline.steps[-1] = (pipeline.steps[-1][0], to_local())
    candidate = Candidate(
        kind=kind.name,
        pipeline=pipeline,
        threshold=contract.decision.threshold if task in SCORED_TASKS else None,
        quantile=contract.decision.quantile if task == "regression" else None,
        classes=list(contract.task.classes or []) if task == "multiclass_classification" else None,
        params=params,
    )
    if candidate.threshold is not None:
        candidate.threshold = choose_threshold(candidate, validation_frame, contract)
    judged = evaluate(candidate, validation_frame, contract)
    return candidate, Trial(kind.name, params, judged.value, judged.expected_cost, seconds)


def _rank(contract: Contract, trial: Trial) -> tuple[float, float]:
    """Sort key, smaller is better: the primary metric (NaN last), then the expected cost."""
    value = trial.validation_metric
    if math.isnan(value):
        return (math.inf, trial.expected_cost)
    return (-value if contract.metrics.greater_is_better else value, trial.expected_cost)


def _has_labels(frame: pd.DataFrame, target: str) -> bool:
    return target in frame.columns and bool(frame[target].notna().any())


def _check_rows(frame: pd.DataFrame, least: int, part: str) -> None:
    if len(frame) < least:
        raise TrainingError(
            f"the {part} data has {len(frame)} records; training needs at least {least}. "
            f"Collect more data: a model needs {MIN_FIT_ROWS + MIN_VALIDATION_ROWS} records for "
            "training and validation besides the test split (data.test_fraction of the data); "
            "a lower data.test_fraction helps only if the test split can spare them"
        )


def _check_labels(contract: Contract, frame: pd.DataFrame, part: str) -> None:
    target = contract.task.target
    if target not in frame.columns or frame[target].isna().all():
        raise TrainingError(
            f"the {part} data has no labels in column {target!r}: label a sample with the "
            "label command, or train on labelled data (data.availability: labelled)"
        )
    missing = int(frame[target].isna().sum())
    if missing:
        raise TrainingError(
            f"the {part} data has {missing} records without a label in column {target!r}: "
            "label or drop them (curate) before training"
        )
    if contract.task.type == "regression":
        return
    present = sorted(frame[target].astype(str).unique())
    if len(present) < 2:
        raise TrainingError(
            f"the {part} data has only one class ({present[0]!r}) in column {target!r}: "
            "a model needs examples of at least two classes, so collect or label more records"
        )
