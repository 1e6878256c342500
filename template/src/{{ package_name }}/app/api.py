"""Prediction service: serves the champion model and applies the contract's decision rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..config import Settings
from ..data.transform import records_frame
from ..errors import ModelFileError
from ..model.evaluate import Model
from ..model.registry import load_champion
from .records import Prediction, Record, describe
from .schemas import Batch, BatchPrediction, ErrorResponse, Health

TOO_LARGE, INVALID, UNAVAILABLE = 413, 422, 503
NOT_READY: dict[str, Any] = {"model": Health, "description": "No model loaded"}
ERRORS: dict[int | str, dict[str, Any]] = {
    TOO_LARGE: {"model": ErrorResponse, "description": "Batch too large"},
    INVALID: {"model": ErrorResponse, "description": "Invalid request"},
    UNAVAILABLE: {"model": ErrorResponse, "description": "No model loaded"},
    500: {"model": ErrorResponse, "description": "Server error"},
}


@dataclass
class Served:
    """The model the service holds once it is loaded, or why it is not."""

    model: Model | None = None
    problem: str = "starting"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; the champion is loaded at start-up, and readiness waits for it.

    Raises:
        ContractError: The project's contract cannot be read; the service cannot run without it.
    """
    settings = settings or Settings()
    contract = settings.load_contract()
    served = Served()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            served.model = load_champion(settings, contract)
        except ModelFileError as error:
            served.problem = str(error)
        yield

    app = FastAPI(
        title=contract.project.name,
        description=contract.project.goal,
        summary="Predictions with the decision rule of the project's contract.",
        lifespan=lifespan,
        responses={500: ERRORS[500]},
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input back; answer with location, message and type only.
        items = [
            {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
            for item in error.errors()
        ]
        return JSONResponse({"detail": items}, status_code=INVALID)

    @app.exception_handler(Exception)
    async def server_error(_: Request, __: Exception) -> JSONResponse:
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/health/live", response_model=Health, tags=["health"])
    async def live() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get(
        "/health/ready",
        response_model=Health,
        tags=["health"],
        responses={UNAVAILABLE: NOT_READY},
    )
    async def ready() -> Health | JSONResponse:
        """The champion model is loaded and requests can be served."""
        if served.model is None:
            body = Health(status="not ready", detail=served.problem)
            return JSONResponse(body.model_dump(), status_code=UNAVAILABLE)
        return Health(status="ok", model_version=served.model.version)

    @app.post(
        "/predict",
        response_model=Prediction | BatchPrediction[Prediction],
        tags=["predict"],
        responses={code: ERRORS[code] for code in (413, 422, 503)},
    )
    async def predict(
        request: Record | Batch[Record],
    ) -> Prediction | BatchPrediction[Prediction] | JSONResponse:
        """Predict for one record, or for a batch of records sent as {"records": [...]}."""
        if served.model is None:
            return JSONResponse({"detail": "no model loaded yet"}, status_code=UNAVAILABLE)
        records = request.records if isinstance(request, Batch) else [request]
        limit = contract.serving.max_batch_size
        if len(records) > limit:
            return JSONResponse(
                {"detail": f"at most {limit} records per request"},
                status_code=TOO_LARGE,
            )
        features = records_frame(records)
        model = served.model
        answers = describe(model.predict(features), model.score(features), contract, model.version)
        return (
            BatchPrediction[Prediction](predictions=answers)
            if isinstance(request, Batch)
            else answers[0]
        )

    return app
