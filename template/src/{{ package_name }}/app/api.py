"""Prediction service: serves the champion model and applies the contract's decision rule.

Every prediction gets an id and is logged with the model version and its features; users
send what really happened to POST /feedback with that id. /metrics speaks Prometheus.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import Discriminator, Field, Tag
from starlette.exceptions import HTTPException

from ..config import Contract, Settings
from ..data.transform import records_frame
from ..errors import ProjectError
from ..model.evaluate import Model, decide
from ..model.registry import load_champion
from .feedback import (
    FeedbackError,
    FeedbackStore,
    PredictionLog,
    UnknownPredictionError,
    store_url,
    target_value,
)
from .metrics import CONTENT_TYPE, ServiceMetrics
from .middleware import BodyLimit, Observe
from .records import Prediction, Record, describe
from .schemas import (
    Batch,
    BatchPrediction,
    ErrorResponse,
    Feedback,
    FeedbackReceipt,
    Health,
    feedback_schema,
)

logger = logging.getLogger(__name__)

BAD_JSON, NOT_FOUND, TOO_LARGE, INVALID, UNAVAILABLE = 400, 404, 413, 422, 503
# Room per record in a request body: a record's JSON is a few hundred bytes at most.
RECORD_BYTES = 2048
# Longest unknown field name an error answer repeats.
NAME_SHOWN = 60
BODY_OVERHEAD = 64 * 1024


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    BAD_JSON: _error("The body is not JSON, or not sent as JSON"),
    NOT_FOUND: _error("No prediction with this id"),
    TOO_LARGE: _error("The body or the batch is larger than the contract allows"),
    INVALID: _error("The body does not match the schema; the answer says where and why"),
    UNAVAILABLE: _error("No model loaded, or the store cannot be reached"),
    500: _error("Server error; details are in the service's log only"),
}


def _documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERRORS[code] for code in codes}


NOT_READY: dict[str, Any] = {"model": Health, "description": "No model loaded yet"}


class IdentifiedPrediction(Prediction):
    """A prediction, with the id that feedback about it refers to."""

    prediction_id: str = Field(description="Send it to POST /feedback to say what happened")


def _shape(body: Any) -> str:
    return "batch" if isinstance(body, dict) and "records" in body else "record"


PredictRequest = Annotated[
    Annotated[Record, Tag("record")] | Annotated[Batch[Record], Tag("batch")],
    Discriminator(_shape),
]
PredictAnswer = IdentifiedPrediction | BatchPrediction[IdentifiedPrediction]

# /metrics answers in Prometheus's text format, as the OpenAPI spec says. Built one level at a
# time, so that no generated line closes two braces at once (leftover-template scans look for it).
_METRICS_SCHEMA: dict[str, Any] = {"type": "string"}
_METRICS_MEDIA: dict[str, Any] = {"schema": _METRICS_SCHEMA}
_METRICS_CONTENT: dict[str, Any] = {CONTENT_TYPE: _METRICS_MEDIA}
METRICS_RESPONSE: dict[str, Any] = {"content": _METRICS_CONTENT}


@dataclass
class Served:
    """What the service holds once it has started, or why it cannot serve."""

    model: Model | None = None
    store: FeedbackStore | None = None
    log: PredictionLog | None = None
    problem: str = "starting"


def body_limit(contract: Contract) -> int:
    """Largest request body accepted: room for the contract's largest batch."""
    return contract.serving.max_batch_size * RECORD_BYTES + BODY_OVERHEAD


def _error_items(error: RequestValidationError) -> list[dict[str, Any]]:
    # FastAPI's own handler echoes the input back; answer with location, message and type only.
    items = []
    for item in error.errors():
        loc = list(item["loc"])
        if item["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            # An unknown field's name is input too: it is named, but cut short and escaped so
            # that no markup or control character comes back as it was sent.
            loc[-1] = _shown_name(loc[-1])
        if loc[:1] == ["body"] and loc[1:2] in (["record"], ["batch"]):
            # The shape /predict took the body for is not part of the body's location.
            loc = loc[:1] + loc[2:]
        items.append({"loc": loc, "msg": item["msg"], "type": item["type"]})
    return items


def _shown_name(name: str) -> str:
    """A field name from a request, safe to answer with: escaped, then cut to 60 characters."""
    shown = html.escape(name.encode("unicode_escape").decode("ascii"))
    return shown[:NAME_SHOWN] + ("..." if len(shown) > NAME_SHOWN else "")


def _not_json(error: RequestValidationError) -> bool:
    """Whether the body could not be read as JSON at all (not JSON, or not sent as JSON)."""
    return any(
        item["type"] == "json_invalid" or isinstance(item.get("input"), bytes)
        for item in error.errors()
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; the champion is loaded at start-up, and readiness waits for it.

    Raises:
        ContractError: The project's contract cannot be read; the service cannot run without it.
    """
    settings = settings or Settings()
    contract = settings.load_contract()
    served = Served()
    metrics = ServiceMetrics(contract)
    label_field = next(iter(Prediction.model_fields))
    regression = contract.task.type == "regression"

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        problems = []
        try:
            served.model = await asyncio.to_thread(load_champion, settings, contract)
            metrics.model_version.set(served.model.version)
        except ProjectError as error:
            problems.append(str(error))
        try:
            served.store = await asyncio.to_thread(
                FeedbackStore, store_url(settings), target=contract.task.target
            )
        except ProjectError as error:
            problems.append(str(error))
        served.problem = "; ".join(problems)
        if served.store is not None:
            served.log = PredictionLog(served.store)
            served.log.start()
        try:
            yield
        finally:
            if served.log is not None:
                await served.log.stop()
            if served.store is not None:
                served.store.close()

    app = FastAPI(
        title=contract.project.name,
        description=contract.project.goal,
        summary="Predictions with the decision rule of the project's contract, and feedback.",
        lifespan=lifespan,
        responses={500: ERRORS[500]},
    )
    app.state.served = served
    app.state.metrics = metrics

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        if _not_json(error):
            return JSONResponse(
                {"detail": "the body is not JSON; send JSON with content-type application/json"},
                status_code=BAD_JSON,
            )
        return JSONResponse({"detail": _error_items(error)}, status_code=INVALID)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        return JSONResponse({"detail": str(error.detail)}, status_code=error.status_code)

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
        """The champion model is loaded, the store is open, and requests can be served."""
        if served.model is None or served.store is None:
            body = Health(status="not ready", detail=served.problem)
            return JSONResponse(body.model_dump(), status_code=UNAVAILABLE)
        return Health(status="ok", model_version=served.model.version)

    @app.post(
        "/predict",
        response_model=PredictAnswer,
        tags=["predict"],
        responses=_documented(BAD_JSON, TOO_LARGE, INVALID, UNAVAILABLE),
    )
    async def predict(request: PredictRequest) -> PredictAnswer | JSONResponse:
        """Predict for one record, or for a batch of records sent as {"records": [...]}.

        Each prediction is answered and logged with an id; send it to POST /feedback later.
        """
        model, log = served.model, served.log
        if model is None or log is None:
            return JSONResponse({"detail": "not ready: " + served.problem}, status_code=UNAVAILABLE)
        records = request.records if isinstance(request, Batch) else [request]
        limit = contract.serving.max_batch_size
        if len(records) > limit:
            return JSONResponse(
                {"detail": f"at most {limit} records per request"}, status_code=TOO_LARGE
            )
        features = records_frame(records)
        decisions, scores = decide(model, features)
        threshold = getattr(model, "threshold", None)
        answers = describe(decisions, scores, contract, model.version, threshold)
        ids = [str(uuid.uuid4()) for _ in answers]
        log.add(model.version, features, decisions.tolist(), scores.tolist(), ids)
        metrics.observe_predictions(
            ["value"] * len(answers)
            if regression
            else [str(getattr(answer, label_field)) for answer in answers],
            [float(value) for value in (decisions if regression else scores)],
        )
        identified = [
            IdentifiedPrediction(**answer.model_dump(), prediction_id=prediction_id)
            for answer, prediction_id in zip(answers, ids, strict=True)
        ]
        if isinstance(request, Batch):
            return BatchPrediction[IdentifiedPrediction](predictions=identified)
        return identified[0]

    feedback_type = feedback_schema(contract)

    async def feedback(body: Feedback) -> FeedbackReceipt | JSONResponse:
        """Say what really happened after a prediction, by its id; stored before the answer."""
        store, log = served.store, served.log
        if store is None or log is None:
            return JSONResponse({"detail": "not ready: " + served.problem}, status_code=UNAVAILABLE)
        try:
            await log.flush()
            await asyncio.to_thread(
                store.add_feedback,
                body.prediction_id,
                target_value(contract, body.outcome),
                body.comment,
            )
        except UnknownPredictionError:
            return JSONResponse({"detail": "no prediction with this id"}, status_code=NOT_FOUND)
        except FeedbackError as error:
            logger.error("%s", error)
            return JSONResponse({"detail": "cannot store feedback"}, status_code=UNAVAILABLE)
        return FeedbackReceipt(prediction_id=body.prediction_id)

    app.add_api_route(
        "/feedback",
        _accepting(feedback, feedback_type),
        methods=["POST"],
        status_code=201,
        response_model=FeedbackReceipt,
        tags=["feedback"],
        responses=_documented(BAD_JSON, NOT_FOUND, TOO_LARGE, INVALID, UNAVAILABLE),
    )

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: METRICS_RESPONSE},
    )
    async def prometheus() -> Response:
        """Request counts, latency, predictions by class and the model version, for Prometheus."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    paths = frozenset(route.path for route in app.routes if hasattr(route, "path"))
    app.add_middleware(BodyLimit, max_bytes=body_limit(contract))
    app.add_middleware(Observe, metrics=metrics, paths=paths)
    return app


def _accepting(endpoint: Callable[..., Any], body_type: type[Feedback]) -> Callable[..., Any]:
    """The endpoint, with its body declared as the task's own schema for FastAPI to check."""
    # The outcome's allowed values come from the contract, so the body type is built at run
    # time; FastAPI reads the type from the signature.
    signature = inspect.signature(endpoint)
    parameter = signature.parameters["body"].replace(annotation=body_type)
    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[parameter], return_annotation=inspect.Signature.empty
    )
    return endpoint
