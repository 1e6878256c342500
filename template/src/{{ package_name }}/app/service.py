"""What the service holds while it runs, and the two ways it answers POST /predict.

`predict` scores any number of records with the full model (the FastAPI route); `predict_one`
answers a single valid record through the compiled decision path (model/compiled.py) for the
plain ASGI handler in front of FastAPI (fast.py). Both give the same answer, log the same row
and count the same metrics; the API tests run against both.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import Field, ValidationError
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # sklearn's own

from ..config import Contract, Settings
from ..data.columns import load, python_names
from ..data.transform import input_names, records_frame
from ..errors import ProjectError
from ..model.compiled import Decider, category_flags, compile_decider, features
from ..model.evaluate import Model, decide
from ..model.registry import load_champion
from .feedback import (
    FeedbackStore,
    MissingStoreError,
    PredictionLog,
    new_prediction_id,
    store_url,
)
from .metrics import ServiceMetrics
from .records import Prediction, Record, describe, metric_label

logger = logging.getLogger(__name__)
STORE_DOWN = (
    "the prediction store cannot take writes; predictions are refused until it can "
    "(serving.on_store_failure in ml_contract.yaml)"
)
# One record is scored in microseconds; a pool of OpenMP or BLAS threads woken for it costs
# milliseconds (scikit-learn's gradient boosting spends 1-4 ms per row with them on a busy
# machine). Workers scale out as processes, one thread of native code each.
NATIVE_THREADS = 1


class IdentifiedPrediction(Prediction):
    """A prediction, with the id that feedback about it refers to."""

    prediction_id: str = Field(description="Send it to POST /feedback to say what happened")


@dataclass
class Service:
    """The loaded model, the prediction store and its log, or why the service cannot serve.

    Args:
        settings: Where the model, the store and the contract are.
        contract: The project's contract.
        metrics: The service's Prometheus metrics.
        compile_model: Whether single records go through the compiled decision path.
    """

    settings: Settings
    contract: Contract
    metrics: ServiceMetrics
    compile_model: bool = True
    model: Model | None = None
    decider: Decider | None = None
    store: FeedbackStore | None = None
    log: PredictionLog | None = None
    problem: str = "starting"
    names: list[str] = field(default_factory=input_names)

    def __post_init__(self) -> None:
        """Read once what every request needs: field names and how the contract decides."""
        identifiers = python_names([column.name for column in load().inputs])
        self.fields = [identifiers[name] for name in self.names]
        self.flags = category_flags()
        self.regression = self.contract.task.type == "regression"
        self.refuse_unlogged = self.contract.serving.on_store_failure == "refuse"

    def refusal(self) -> str | None:
        """Why requests cannot be served now, or None when they can."""
        if self.model is None or self.log is None:
            return "not ready: " + self.problem
        if self.refuse_unlogged and not self.log.writable:
            return STORE_DOWN
        return None

    async def start(self) -> None:
        """Load the champion and open the store; what fails is logged and makes readiness wait."""
        # Answers say what is missing; where it is (paths, URLs) goes to the log only.
        problems = []
        threadpool_limits(limits=NATIVE_THREADS)
        try:
            self.model = await asyncio.to_thread(load_champion, self.settings, self.contract)
            self.metrics.model_version.set(self.model.version)
            if self.compile_model:
                self.decider = await asyncio.to_thread(compile_decider, self.model)
        except ProjectError as error:
            logger.error("%s", error)
            problems.append("no model loaded")
        try:
            self.store = await asyncio.to_thread(
                FeedbackStore,
                store_url(self.settings),
                target=self.contract.task.target,
                ledger=self.settings.store_ledger,
            )
        except MissingStoreError as error:
            logger.error("%s", error)
            problems.append("the prediction store is missing")
        except ProjectError as error:
            logger.error("%s", error)
            problems.append("the prediction store cannot be opened")
        self.problem = "; ".join(problems) + " (the service's log says why)"
        if self.store is not None:
            self.log = PredictionLog(self.store, on_unlogged=self.metrics.observe_unlogged)
            self.log.start()
        # What start-up loaded (libraries, the model) lives as long as the process: keep the
        # collector's full passes, which requests with many objects set off, from walking it.
        gc.freeze()

    async def stop(self) -> None:
        """Write what the log still holds and close the store."""
        if self.log is not None:
            await self.log.stop()
        if self.store is not None:
            self.store.close()

    def threshold(self, model: Model) -> float | None:
        """The threshold the model really decides at (a trained model's own), if any."""
        return getattr(model, "threshold", None)

    def predict(self, records: list[Record]) -> list[IdentifiedPrediction]:
        """Score records with the full model, log them and count them (call once ready)."""
        model, log = self.model, self.log
        if model is None or log is None:
            raise RuntimeError("predict() before the service is ready; check refusal() first")
        frame = records_frame(records)
        decisions, scores = decide(model, frame)
        answers = describe(decisions, scores, self.contract, model.version, self.threshold(model))
        ids = [new_prediction_id() for _ in answers]
        log.add(model.version, frame, decisions.tolist(), scores.tolist(), ids)
        self._count(answers, decisions if self.regression else scores)
        return [
            IdentifiedPrediction(**answer, prediction_id=prediction_id)
            for answer, prediction_id in zip(answers, ids, strict=True)
        ]

    def predict_one(self, document: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to one record through the compiled path; None leaves it to the full route.

        None when the service cannot serve now or the record is not valid: the FastAPI route
        answers those with the same words as always.
        """
        model, log, decider = self.model, self.log, self.decider
        if decider is None or decider.model is not model or log is None or model is None:
            return None
        if self.refusal() is not None:
            return None
        try:
            record = Record.model_validate(document)
        except ValidationError:
            return None
        values = [getattr(record, name) for name in self.fields]
        decision, score = decider.decide(values)
        answers = describe([decision], [score], self.contract, model.version, self.threshold(model))
        prediction_id = new_prediction_id()
        log.add_rows([self._row(prediction_id, model.version, decision, score, values)])
        self._count(answers, [decision if self.regression else score])
        answers[0]["prediction_id"] = prediction_id
        return answers[0]

    def _row(
        self, prediction_id: str, version: int, decision: Any, score: float, values: list[Any]
    ) -> dict[str, Any]:
        """The store's row for one prediction (as feedback.prediction_rows makes it)."""
        return {
            "prediction_id": prediction_id,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
            "model_version": int(version),
            "prediction": decision.item() if isinstance(decision, np.generic) else decision,
            "score": score if math.isfinite(score) else None,
            "features": dict(zip(self.names, features(values, self.flags), strict=True)),
        }

    def _count(self, answers: list[dict[str, Any]], values: Any) -> None:
        self.metrics.observe_predictions(
            [metric_label(answer) for answer in answers], [float(value) for value in values]
        )
