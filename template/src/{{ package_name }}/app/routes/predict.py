"""POST /predict: one record or a batch, scored by the full model (see fast.py for one record)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Discriminator, Tag

from ..answers import BAD_JSON, INVALID, TIMEOUT, TOO_LARGE, UNAVAILABLE, documented
from ..deps import ServiceDep
from ..records import Record
from ..schemas import Batch, BatchPrediction
from ..service import IdentifiedPrediction

router = APIRouter(tags=["predict"])


def _shape(body: Any) -> str:
    return "batch" if isinstance(body, dict) and "records" in body else "record"


PredictRequest = Annotated[
    Annotated[Record, Tag("record")] | Annotated[Batch[Record], Tag("batch")],
    Discriminator(_shape),
]
PredictAnswer = IdentifiedPrediction | BatchPrediction[IdentifiedPrediction]


@router.post(
    "/predict",
    response_model=PredictAnswer,
    responses=documented(BAD_JSON, TIMEOUT, TOO_LARGE, INVALID, UNAVAILABLE),
)
async def predict(request: PredictRequest, service: ServiceDep) -> PredictAnswer | JSONResponse:
    """Predict for one record, or for a batch of records sent as {"records": [...]}.

    Each prediction is answered and logged with an id; send it to POST /feedback later.
    """
    refusal = service.refusal()
    if refusal is not None:
        return JSONResponse({"detail": refusal}, status_code=UNAVAILABLE)
    records = request.records if isinstance(request, Batch) else [request]
    limit = service.contract.serving.max_batch_size
    if len(records) > limit:
        return JSONResponse(
            {"detail": f"at most {limit} records per request"}, status_code=TOO_LARGE
        )
    answers = service.predict(records)
    if isinstance(request, Batch):
        return BatchPrediction[IdentifiedPrediction](predictions=answers)
    return answers[0]
