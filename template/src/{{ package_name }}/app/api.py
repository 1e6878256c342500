"""Prediction service: serves the champion model and applies the contract's decision rule.

Every prediction gets an id and is logged with the model version and its features; users
send what really happened to POST /feedback with that id. /metrics speaks Prometheus.
"""

from __future__ import annotations

import asyncio
import gc
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
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
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
    MissingStoreError,
    PredictionLog,
    UnknownPredictionError,
    store_url,
    target_value,
)
from .metrics import CONTENT_TYPE, ServiceMetrics
from .middleware import BodyLimit, BodyRules, Observe
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

BAD_JSON, NOT_FOUND, TIMEOUT, TOO_LARGE, INVALID, UNAVAILABLE = 400, 404, 408, 413, 422, 503
# Room per record in a request body: a record's JSON is a few hundred bytes at most.
RECORD_BYTES = 2048
# Longest unknown field name an error answer repeats.
NAME_SHOWN = 60
BODY_OVERHEAD = 64 * 1024
# Most problems one 422 answer lists; how many more were found is said in `omitted`.
ERRORS_SHOWN = 20
# Keys a JSON object may have beyond the record's own fields before it is refused unread.
EXTRA_KEYS = 16
# How long feedback waits for a prediction that another worker may not have written yet: the
# workers' logging interval, a synced write, and room for a busy store.
FEEDBACK_WAIT = 1.0
STORE_DOWN = (
    "the prediction store cannot take writes; predictions are refused until it can "
    "(serving.on_store_failure in ml_contract.yaml)"
)


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    BAD_JSON: _error("The body is not JSON, is not sent as JSON, or repeats a key"),
    NOT_FOUND: _error("No prediction with this id"),
    TIMEOUT: _error("The body did not arrive in time; the connection is closed"),
    TOO_LARGE: _error("The body or the batch is larger than the contract allows"),
    INVALID: _error("The body does not match the schema; the answer says where and why"),
    UNAVAILABLE: _error("No model loaded, or the store cannot be reached or written"),
    500: _error("Server error; details are in the service's log only"),
}


def _documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERRORS[code] for code in codes}


NOT_READY: dict[str, Any] = {
    "model": Health,
    "description": "No model loaded yet, or the prediction store cannot be opened or written",
}


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

    def refusal(self, refuse_unlogged: bool) -> str | None:
        """Why requests cannot be served now, or None when they can."""
        if self.model is None or self.log is None:
            return "not ready: " + self.problem
        if refuse_unlogged and not self.log.writable:
            return STORE_DOWN
        return None


def body_limit(contract: Contract) -> int:
    """Largest request body accepted: room for the contract's largest batch."""
    return contract.serving.max_batch_size * RECORD_BYTES + BODY_OVERHEAD


def _error_items(error: RequestValidationError) -> list[dict[str, Any]]:
    # FastAPI's own handler echoes the input back; answer with location, message and type only.
    items = []
    for item in error.errors()[:ERRORS_SHOWN]:
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

    refuse_unlogged = contract.serving.on_store_failure == "refuse"

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Answers say what is missing; where it is (paths, URLs) goes to the log only.
        problems = []
        try:
            served.model = await asyncio.to_thread(load_champion, settings, contract)
            metrics.model_version.set(served.model.version)
        except ProjectError as error:
            logger.error("%s", error)
            problems.append("no model loaded")
        try:
            served.store = await asyncio.to_thread(
                FeedbackStore,
                store_url(settings),
                target=contract.task.target,
                ledger=settings.store_ledger,
            )
        except MissingStoreError as error:
            logger.error("%s", error)
            problems.append("the prediction store is missing")
        except ProjectError as error:
            logger.error("%s", error)
            problems.append("the prediction store cannot be opened")
        served.problem = "; ".join(problems) + " (the service's log says why)"
        if served.store is not None:
            served.log = PredictionLog(served.store, on_unlogged=metrics.observe_unlogged)
            served.log.start()
        # What start-up loaded (libraries, the model) lives as long as the process: keep the
        # collector's full passes, which requests with many objects set off, from walking it.
        gc.freeze()
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
        docs_url=None,
        redoc_url=None,
    )
    if settings.docs_pages:
        _add_docs_pages(app)
    app.state.served = served
    app.state.metrics = metrics

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        if _not_json(error):
            return JSONResponse(
                {"detail": "the body is not JSON; send JSON with content-type application/json"},
                status_code=BAD_JSON,
            )
        body: dict[str, Any] = {"detail": _error_items(error)}
        if (omitted := len(error.errors()) - ERRORS_SHOWN) > 0:
            body["omitted"] = omitted
        return JSONResponse(body, status_code=INVALID)

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
        """The champion model is loaded, the store takes writes, and requests can be served."""
        refusal = served.refusal(refuse_unlogged)
        if refusal is not None or served.model is None:
            body = Health(status="not ready", detail=refusal)
            return JSONResponse(body.model_dump(), status_code=UNAVAILABLE)
        return Health(status="ok", model_version=served.model.version)

    @app.post(
        "/predict",
        response_model=PredictAnswer,
        tags=["predict"],
        responses=_documented(BAD_JSON, TIMEOUT, TOO_LARGE, INVALID, UNAVAILABLE),
    )
    async def predict(request: PredictRequest) -> PredictAnswer | JSONResponse:
        """Predict for one record, or for a batch of records sent as {"records": [...]}.

        Each prediction is answered and logged with an id; send it to POST /feedback later.
        """
        model, log = served.model, served.log
        refusal = served.refusal(refuse_unlogged)
        if refusal is not None or model is None or log is None:
            return JSONResponse({"detail": refusal}, status_code=UNAVAILABLE)
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
        """Say what really happened after a prediction, by its id; stored before the answer.

        A prediction another worker made a moment ago may not be in the store yet: an unknown
        id is looked up again for up to a second before the answer is 404.
        """
        store, log = served.store, served.log
        if store is None or log is None:
            return JSONResponse({"detail": "not ready: " + served.problem}, status_code=UNAVAILABLE)
        if not log.writable:
            return JSONResponse({"detail": STORE_DOWN}, status_code=UNAVAILABLE)
        outcome = target_value(contract, body.outcome)
        deadline = asyncio.get_running_loop().time() + FEEDBACK_WAIT
        try:
            while True:
                await log.flush()
                try:
                    await asyncio.to_thread(
                        store.add_feedback, body.prediction_id, outcome, body.comment
                    )
                    break
                except UnknownPredictionError:
                    if asyncio.get_running_loop().time() >= deadline:
                        raise
                    await asyncio.sleep(log.interval)
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
        responses=_documented(BAD_JSON, NOT_FOUND, TIMEOUT, TOO_LARGE, INVALID, UNAVAILABLE),
    )

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: METRICS_RESPONSE},
    )
    async def prometheus() -> Response:
        """Request counts, latency, predictions by class and the model version, for Prometheus."""
        metrics.store_writable.set(int(served.log is not None and served.log.writable))
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    paths = frozenset(route.path for route in app.routes if hasattr(route, "path"))
    rules = BodyRules(
        max_bytes=body_limit(contract),
        timeout=contract.serving.body_timeout_seconds,
        max_keys=len(Record.model_fields) + len(Feedback.model_fields) + EXTRA_KEYS,
        max_records={"/predict": contract.serving.max_batch_size},
        shown=_shown_name,
    )
    app.add_middleware(BodyLimit, rules=rules)
    app.add_middleware(Observe, metrics=metrics, paths=paths)
    return app


def _add_docs_pages(app: FastAPI) -> None:
    """Serve /docs and /redoc, with the project's name escaped: it is an answer, not markup."""
    title = html.escape(app.title)

    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "", title=f"{title} - docs")

    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url or "", title=f"{title} - ReDoc")

    app.add_api_route("/docs", swagger, include_in_schema=False, response_class=HTMLResponse)
    app.add_api_route("/redoc", redoc, include_in_schema=False, response_class=HTMLResponse)


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
