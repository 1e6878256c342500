"""Schemas every prediction service shares: strict inputs, health, feedback and error answers."""

from __future__ import annotations

import functools
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from ..config import Contract

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
COMMENT_LIMIT = 2000


class Strict(BaseModel):
    """No unknown fields, no strings taken for numbers, finite floats only."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers_are_integers(cls, data: Any) -> Any:
        # JSON has one kind of number, and JSON Schema counts 112.0 as the integer 112, so the
        # published spec allows it; strict mode alone would refuse it. Strings stay refused.
        if not isinstance(data, dict):
            return data
        whole = {
            key: int(value)
            for key in _integer_keys(cls)
            if isinstance(value := data.get(key), float) and value.is_integer()
        }
        return {**data, **whole} if whole else data


@functools.cache
def _integer_keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The keys of a model's integer fields, as a request spells them (read once per model)."""
    return tuple(
        field.alias or name
        for name, field in model.model_fields.items()
        if field.annotation in (int, int | None)
    )


RecordT = TypeVar("RecordT", bound=Strict)
PredictionT = TypeVar("PredictionT", bound=BaseModel)


class Batch(Strict, Generic[RecordT]):
    """Several records scored in one request; validation stops at the first wrong record.

    Stopping there bounds the work a wrong batch costs to one record's problems, whatever the
    batch's length; the answer names that record's index.
    """

    records: list[RecordT] = Field(min_length=1, fail_fast=True)


class BatchPrediction(BaseModel, Generic[PredictionT]):
    """One prediction per record, in the order of the request."""

    predictions: list[PredictionT]


class Health(BaseModel):
    """Liveness or readiness of the service."""

    status: Literal["ok", "not ready"]
    model_version: int | None = None
    detail: str | None = None


class ErrorItem(BaseModel):
    """One problem with a request, without echoing what was sent."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Body of every 4xx and 5xx answer."""

    detail: str | list[ErrorItem]
    omitted: int | None = Field(
        default=None, description="How many more problems were found than `detail` lists"
    )


class Feedback(Strict):
    """What really happened after a prediction; the outcome's type follows the task."""

    prediction_id: str = Field(
        pattern=UUID_PATTERN, description="The id the prediction was answered with"
    )
    outcome: Any
    comment: str | None = Field(default=None, max_length=COMMENT_LIMIT)


class FeedbackReceipt(BaseModel):
    """Feedback is stored durably."""

    prediction_id: str
    status: Literal["stored"] = "stored"


def feedback_schema(contract: Contract) -> type[Feedback]:
    """The feedback body for the contract's task: a class label, a yes/no or a number."""
    task = contract.task
    outcome: Any
    if task.type == "binary_classification":
        labels = (task.positive_class or "1", task.negative_class or "0")
        outcome = Literal.__getitem__(labels)
        described = "The class that turned out to be true"
    elif task.type == "multiclass_classification":
        outcome = Literal.__getitem__(tuple(task.classes or []))
        described = "The class that turned out to be true"
    elif task.type == "anomaly_detection":
        outcome = bool
        described = "Whether the record really was an anomaly"
    else:
        outcome = float
        described = f"The true value of {task.target}"
    return create_model(
        "Feedback",
        __base__=Feedback,
        __doc__=Feedback.__doc__,
        outcome=(outcome, Field(description=described)),
    )
