"""Schemas every prediction service shares: strict inputs, health and error answers."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """No unknown fields, no strings taken for numbers, finite floats only."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


RecordT = TypeVar("RecordT", bound=Strict)
PredictionT = TypeVar("PredictionT", bound=BaseModel)


class Batch(Strict, Generic[RecordT]):
    """Several records scored in one request."""

    records: list[RecordT] = Field(min_length=1)


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
